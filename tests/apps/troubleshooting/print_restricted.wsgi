# Prints to stdout, as code written for the console does.
def application(environ, start_response):
    print('marker-print-from-app')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'printed\n']
