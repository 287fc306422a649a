# Reads a file next to the script; fails when the daemon runs as a user who may not.
import os

def application(environ, start_response):
    path = os.path.join(os.path.dirname(__file__), 'secret.txt')
    with open(path) as f:
        body = f.read().encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
