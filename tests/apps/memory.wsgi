# GET /m?N answers one bytes object of N MiB (8 by default), made once per
# size, so a relay's cost shows in the processes' memory and the app's does
# not. POST reads the body in 64 KiB pieces and answers its length.
BODIES = {}


def application(environ, start_response):
    if environ['REQUEST_METHOD'] == 'POST':
        stream, total = environ['wsgi.input'], 0
        while True:
            data = stream.read(64 * 1024)
            if not data:
                break
            total += len(data)
        body = str(total).encode()
    else:
        mib = int(environ.get('QUERY_STRING') or 8)
        body = BODIES.get(mib)
        if body is None:
            body = BODIES[mib] = b'x' * (mib << 20)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(len(body)))])
    return [body]
