# Imports fine but has no `application`.
def app(environ, start_response):
    start_response('200 OK', [])
    return [b'wrong name']
