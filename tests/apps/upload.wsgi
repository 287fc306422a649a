# Reads the whole request body and reports it: `length`, `md5`, and `waited`, the seconds
# spent waiting in wsgi.input (how much of the upload the application sat through).
# Each request first appends its QUERY_STRING to var/started.
import hashlib, os, time

def application(environ, start_response):
    var = os.path.join(os.path.dirname(environ['SCRIPT_FILENAME']), 'var')
    with open(os.path.join(var, 'started'), 'a') as f:
        f.write(environ.get('QUERY_STRING', '') + '\n')
    stream, total, digest, waited = environ['wsgi.input'], 0, hashlib.md5(), 0.0
    while True:
        before = time.monotonic()
        data = stream.read(65536)
        waited += time.monotonic() - before
        if not data:
            break
        total += len(data)
        digest.update(data)
    body = 'length=%d\nmd5=%s\nwaited=%.3f\nCONTENT_LENGTH=%s\n' % (
        total, digest.hexdigest(), waited, environ.get('CONTENT_LENGTH'))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
