# The guide's second remedy: send stdout to stderr (the error log) in the .wsgi file.
import sys
sys.stdout = sys.stderr

def application(environ, start_response):
    print('marker-print-redirected')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'printed\n']
