# Fails while being imported.
raise ValueError('marker-import-failure')

def application(environ, start_response):
    start_response('200 OK', [])
    return [b'unreachable']
