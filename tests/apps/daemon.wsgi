# Daemon-mode probe. PATH_INFO picks a behaviour; /info reports the process and the request in
# `key=ascii(value)` lines. Markers go to <script dir>/var, where the test looks for them.
import hashlib
import os
import random
import sys
import time

VERSION = 'v1'
VAR = os.path.join(os.path.dirname(__file__), 'var')
DATA = os.path.join(os.path.dirname(__file__), 'data.bin')
counter = [0]

ENV_KEYS = [
    'REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_URI',
    'CONTENT_TYPE', 'CONTENT_LENGTH', 'HTTP_X_CUSTOM_HEADER', 'HTTP_HOST', 'SERVER_PORT',
    'REMOTE_ADDR', 'SERVER_PROTOCOL', 'SCRIPT_FILENAME',
    'wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once', 'wsgi.url_scheme',
    'wsgi.version', 'wsgi.input_terminated',
    'mod_wsgi.process_group', 'mod_wsgi.application_group', 'mod_wsgi.script_reloading',
]


def mark(name, text=''):
    path = os.path.join(VAR, name)
    with open(path + '.tmp', 'w') as f:
        f.write(text)
    os.rename(path + '.tmp', path)


def wait_for(name, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(os.path.join(VAR, name)):
            return True
        time.sleep(0.02)
    return False


def umask():
    old = os.umask(0o22)
    os.umask(old)
    return old


def info(environ):
    out = {}
    for k in ENV_KEYS:
        if k in environ:
            out['env.' + k] = environ[k]
    with open('/proc/self/cmdline', 'rb') as f:
        cmdline = f.read()
    out.update({
        'version': VERSION,
        'counter': counter[0],
        'pid': os.getpid(),
        'ppid': os.getppid(),
        'uid': os.getuid(),
        'euid': os.geteuid(),
        'gid': os.getgid(),
        'egid': os.getegid(),
        'groups': sorted(os.getgroups()),
        'cwd': os.getcwd(),
        'umask': oct(umask()),
        'HOME': os.environ.get('HOME'),
        'LANG': os.environ.get('LANG'),
        'LC_ALL': os.environ.get('LC_ALL'),
        'preferred_encoding': __import__('locale').getpreferredencoding(False),
        'cmdline': cmdline.split(b'\0')[0].decode('latin-1').rstrip(' '),
        'sys.prefix': sys.prefix,
        'sys.path': sys.path,
    })
    try:
        import venv_only_module
        out['venv_only_module'] = venv_only_module.VALUE
    except ImportError:
        out['venv_only_module'] = None
    return ''.join('%s=%s\n' % (k, ascii(v)) for k, v in sorted(out.items())).encode('ascii')


class Tracked:
    """An iterable whose close() leaves the marker file `closed`."""
    def __init__(self, items):
        self.items = items
    def __iter__(self):
        return iter(self.items)
    def close(self):
        mark('closed', str(os.getpid()))


def stream():
    yield b'first;'
    # Only continues once the test has seen the first chunk: proves it was not buffered.
    yield b'second;' if wait_for('stream-go') else b'timeout;'
    yield b'third'


def application(environ, start_response):
    counter[0] += 1
    mode = environ.get('PATH_INFO', '')
    text = [('Content-Type', 'text/plain')]
    if mode.startswith('/info') or mode == '' or mode == '/':
        body = info(environ)
        start_response('200 OK', text + [('Content-Length', str(len(body)))])
        return [body]
    if mode == '/pid':
        start_response('200 OK', text)
        return [('pid=%d\n' % os.getpid()).encode('ascii')]
    if mode == '/md5':
        # Reads the body in pieces of varying sizes.
        inp = environ['wsgi.input']
        h = hashlib.md5()
        total = 0
        sizes = [1, 1000, 65536, 7, 300000]
        i = 0
        while True:
            piece = inp.read(sizes[i % len(sizes)])
            i += 1
            if not piece:
                break
            h.update(piece)
            total += len(piece)
        body = ('length=%d\nmd5=%s\n' % (total, h.hexdigest())).encode('ascii')
        start_response('200 OK', text)
        return [body]
    if mode == '/big':
        # 8 MiB in 64 KiB pieces; the MD5 travels in a header.
        rnd = random.Random(42)
        pieces = [rnd.randbytes(65536) for _ in range(128)]
        h = hashlib.md5()
        for p in pieces:
            h.update(p)
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('X-MD5', h.hexdigest())])
        return pieces
    if mode == '/stream':
        start_response('200 OK', text)
        return stream()
    if mode == '/file':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(DATA, 'rb'))
    if mode == '/close':
        start_response('200 OK', text)
        return Tracked([b'a', b'b'])
    if mode == '/error':
        raise RuntimeError('marker-daemon-exception')
    if mode == '/notfound':
        start_response('404 Not Found', text + [('X-Custom', 'custom value'),
                                                ('X-Multi', 'a'), ('X-Multi', 'b'),
                                                ('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2')])
        return [b'no such thing']
    if mode.startswith('/hold-gil/'):
        # /hold-gil/SECONDS/TAG: as /sleep, but in C code that keeps the GIL (a deadlock).
        _, _, seconds, tag = mode.split('/')
        mark('started-' + tag, str(os.getpid()))
        __import__('ctypes').PyDLL(None).sleep(int(seconds))
        start_response('200 OK', text)
        return [b'held']
    if mode.startswith('/sleep/'):
        # /sleep/SECONDS/TAG: leaves `started-TAG` (holding the pid), then sleeps.
        _, _, seconds, tag = mode.split('/')
        mark('started-' + tag, str(os.getpid()))
        time.sleep(float(seconds))
        mark('finished-' + tag, str(os.getpid()))
        start_response('200 OK', text)
        return [('slept pid=%d\n' % os.getpid()).encode('ascii')]
    start_response('404 Not Found', text)
    return [b'unknown mode']
