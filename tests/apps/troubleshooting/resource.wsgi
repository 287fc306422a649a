from resapp import read_resource

def application(environ, start_response):
    body = read_resource().encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
