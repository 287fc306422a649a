# An app wrapped in wsgiref.validate.validator: any PEP 3333 violation by the server (environ
# contents, stream methods, close() not called) raises AssertionError or warns WSGIWarning,
# which ends up in the error log.
import time
import warnings
from wsgiref.validate import validator

warnings.simplefilter('always')

def body_chunks():
    for i in range(5):
        yield b'chunk %d\n' % i
        time.sleep(0.01)

def inner(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/post':
        inp = environ['wsgi.input']
        length = int(environ.get('CONTENT_LENGTH') or 0)
        first = inp.readline()
        rest = inp.read(length - len(first))
        lines = inp.readlines()
        body = b'got %d bytes, %d more lines' % (len(first) + len(rest), len(lines))
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    if path == '/stream':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return body_chunks()
    environ['wsgi.errors'].write('validated request %s\n' % path)
    environ['wsgi.errors'].flush()
    body = b'validated ' + environ['REQUEST_METHOD'].encode('latin-1')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]

application = validator(inner)
