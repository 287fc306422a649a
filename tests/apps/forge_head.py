# Run as Apache's user (www-data), as a CGI script or PHP could: connects to a
# daemon group's socket and sends a request head of its own making, naming
# the script given, in the frame format of this module's hop, with a MAC it
# cannot know. Prints what the daemon answered (nothing, if it refused).
import os
import random
import socket
import struct
import sys

sock_path, script = sys.argv[1], sys.argv[2]


def string(b):
    return struct.pack('>I', len(b)) + b


sealed = b''.join([
    string(script.encode()), string(b'application'), string(b''),  # script, callable, app group
    b'\x00', struct.pack('>q', 0),  # script_reloading, script_mtime
    string(b'forged-1'), struct.pack('>q', 0),  # request_id, request_start
    b'\x00\x00',  # enable_sendfile, ignore_activity
    string(b'127.0.0.1'), struct.pack('>H', 80), string(b'http'),
    string(b'wsgi-script'), string(b''),  # request_handler, handler_script
    struct.pack('>q', 0), struct.pack('>II', 1, 0),  # queue_start, connects, restarts
])
environ = [(b'REQUEST_METHOD', b'GET'), (b'PATH_INFO', b'/'), (b'REMOTE_ADDR', b'10.6.6.6'),
           (b'SCRIPT_FILENAME', script.encode())]
environ = struct.pack('>I', len(environ)) + b''.join(string(k) + string(v) for k, v in environ)
mac = bytes(random.getrandbits(8) for _ in range(32))
payload = mac + struct.pack('>I', len(sealed)) + sealed + environ

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sock_path)
s.sendall(struct.pack('>BI', 0x01, len(payload)) + payload + struct.pack('>BI', 0x03, 0))
received = b''
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        received += chunk
except (socket.timeout, ConnectionResetError):
    pass
# The challenge (kind 0x18, 16 bytes) opens the connection; anything after it is an answer.
answer = received[21:] if received[:1] == b'\x18' else received
print('uid=%d answered=%d' % (os.getuid(), len(answer)))
