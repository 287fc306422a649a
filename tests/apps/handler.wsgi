# A WSGIHandlerScript: handle_request() serves the resource the URL names.
import os


def handle_request(environ, start_response):
    path = environ['SCRIPT_FILENAME']
    report = {
        'pid': os.getpid(),
        'resource': path,
        'exists': os.path.exists(path),
        'SCRIPT_NAME': environ['SCRIPT_NAME'],
        'PATH_INFO': environ['PATH_INFO'],
        'handler_script': environ['mod_wsgi.handler_script'],
        'request_handler': environ['mod_wsgi.request_handler'],
        'callable_object': environ['mod_wsgi.callable_object'],
        'process_group': environ['mod_wsgi.process_group'],
        'application_group': environ['mod_wsgi.application_group'],
    }
    body = ''.join('%s=%s\n' % (k, ascii(v)) for k, v in report.items())
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]


def application(environ, start_response):
    raise RuntimeError('handler scripts are called through handle_request')
