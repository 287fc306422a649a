# Failures on the wire. PATH_INFO picks a behaviour:
#   /yield-raise      yields a chunk, then raises (chunked response)
#   /yield-raise-cl   the same with Content-Length: 100 (short body)
#   /read             reads the whole request body; answers with its length
def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path.startswith('/yield-raise'):
        headers = [('Content-Type', 'text/plain')]
        if path == '/yield-raise-cl':
            headers.append(('Content-Length', '100'))
        start_response('200 OK', headers)
        return broken()
    if path == '/read':
        body = environ['wsgi.input'].read()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'read %d' % len(body)]
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']


def broken():
    yield b'first;'
    raise RuntimeError('broken after the first chunk')
