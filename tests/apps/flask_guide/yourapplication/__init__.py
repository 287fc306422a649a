# A small Flask application in the shape of Flask's mod_wsgi deployment guide.
import os
import sys

from flask import Flask, request

app = Flask(__name__)


@app.route('/')
def index():
    return 'Hello from yourapplication'


@app.route('/hello/<name>')
def hello(name):
    return 'Hello, %s!' % name


@app.route('/echo', methods=['POST'])
def echo():
    return 'echo=%s' % request.form['x']


@app.route('/whoami')
def whoami():
    import flask
    try:
        import venv_only_module
        venv = venv_only_module.VALUE
    except ImportError:
        venv = None
    out = {
        'uid': os.getuid(),
        'gid': os.getgid(),
        'pid': os.getpid(),
        'process_group': request.environ.get('mod_wsgi.process_group'),
        'application_group': request.environ.get('mod_wsgi.application_group'),
        'flask_file': flask.__file__,
        'sys.prefix': sys.prefix,
        'venv_only_module': venv,
        'VIRTUAL_ENV': os.environ.get('VIRTUAL_ENV'),
    }
    body = ''.join('%s=%s\n' % (k, ascii(v)) for k, v in sorted(out.items()))
    return body, 200, {'Content-Type': 'text/plain'}
