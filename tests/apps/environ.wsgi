# Reports the WSGI environ as `key=ascii(value)` lines, plus facts about the script module.
import sys

def report(environ, callable_name):
    lines = ['%s=%s' % (k, ascii(v)) for k, v in sorted(environ.items())]
    # CGI variables (upper-case keys) must all be str.
    non_str = sorted(k for k, v in environ.items() if k.isupper() and type(v) is not str)
    lines.append('non_str_cgi=%s' % ascii(non_str))
    lines.append('module_name=%s' % ascii(__name__))
    lines.append('module_file=%s' % ascii(__file__))
    lines.append('callable=%s' % ascii(callable_name))
    lines.append('sys_modules_has_script=%s' % (__name__ in sys.modules))
    return ('\n'.join(lines) + '\n').encode('ascii')

def application(environ, start_response):
    body = report(environ, 'application')
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]

def other(environ, start_response):
    body = report(environ, 'other')
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
