# The smallest app: a fixed body.
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello from wsgi\n']
