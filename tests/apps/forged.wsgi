# What a forged request head names: it must never run. If it does, it leaves var/forged.
import os

with open(os.path.join(os.path.dirname(__file__), 'var', 'forged'), 'w') as f:
    f.write('imported')


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'forged ran']
