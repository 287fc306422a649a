# Counts requests in module state and reports where it runs: which interpreter (application
# group), the module's load generation, and whether a module from WSGIPythonPath imports.
import sys
import mod_wsgi

VERSION = 'v1'
counter = [0]

print('marker-state-loaded %s' % __file__, file=sys.stderr)

def application(environ, start_response):
    counter[0] += 1
    try:
        import extra_module
        extra = extra_module.VALUE
    except ImportError:
        extra = None
    lines = [
        'version=%s' % ascii(VERSION),
        'counter=%d' % counter[0],
        'application_group=%s' % ascii(environ['mod_wsgi.application_group']),
        'interpreter=%s' % ascii(mod_wsgi.application_group),
        'extra_module=%s' % ascii(extra),
        'script_reloading=%s' % ascii(environ['mod_wsgi.script_reloading']),
        'shared=%s' % ascii(sys.modules.get('__shared_marker__', None) is not None),
    ]
    sys.modules.setdefault('__shared_marker__', sys)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('\n'.join(lines) + '\n').encode('ascii')]
