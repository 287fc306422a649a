# Answers with an X-Big header of QUERY_STRING bytes.
def application(environ, start_response):
    size = int(environ.get('QUERY_STRING') or 10)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Big', 'v' * size)])
    return [b'ok']
