# Responses that the daemon hop reads as a CGI script's would be: QUERY_STRING
# picks a Location or Status header; ?echo reports how the request arrived.
def application(environ, start_response):
    query = environ.get('QUERY_STRING')
    if query == 'echo':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [('%s %s %s' % (environ['REQUEST_METHOD'], environ.get('CONTENT_LENGTH'),
                               environ.get('REDIRECT_URL'))).encode()]
    status = '200 OK'
    headers = [('Content-Type', 'text/plain'), ('X-From-App', 'yes')]
    if query == 'static':
        headers.append(('Location', '/static.txt'))
    elif query == 'app':
        headers.append(('Location', '/d/?echo'))
    elif query == 'absolute':
        headers.append(('Location', 'http://example.com/x'))
    elif query == 'created':
        status = '201 Created'
        headers.append(('Location', '/static.txt'))
    elif query == 'status':
        headers.append(('Status', '404 Nope'))
    elif query == 'bad-status':
        headers.append(('Status', 'abc'))
    start_response(status, headers)
    return [b'from app']
