# Streams a large response, or reads a large upload, in bounded pieces; reports the pid.
import hashlib, os

MIB = 1024 * 1024

def application(environ, start_response):
    if environ['REQUEST_METHOD'] == 'POST':
        stream, total, digest = environ['wsgi.input'], 0, hashlib.md5()
        while True:
            data = stream.read(64 * 1024)
            if not data:
                break
            total += len(data)
            digest.update(data)
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [('%d %s %d\n' % (total, digest.hexdigest(), os.getpid())).encode()]
    count = int(environ.get('QUERY_STRING') or 100)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('X-Pid', str(os.getpid()))])
    chunk = b'x' * MIB
    return (chunk for _ in range(count))
