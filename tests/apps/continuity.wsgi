# For load around restarts: a small fixed answer, the process id, and an upload's length.
import os

VERSION = 'v1'


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/pid':
        body = str(os.getpid()).encode()
    elif path == '/upload':
        body = str(len(environ['wsgi.input'].read())).encode()
    else:
        body = ('hello %s\n' % VERSION).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
