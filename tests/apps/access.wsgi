# Access-control hooks (WSGIAccessScript, WSGIAuthUserScript, WSGIAuthGroupScript) and an
# application that reports who it was let in as. The user name picks the script's answer.
import hashlib

GROUPS = {'alice': ['staff', b'ops'], 'bob': ('visitors',), 'carol': None, 'dave': [], 'erin': ['STAFF']}


def check_password(environ, user, password):
    if user == 'whoami':
        # A str answer grants access as that user name: shows where the script runs.
        return 'group=%s' % environ['mod_wsgi.application_group']
    if user == 'odd':
        return 1
    if user == 'broken':
        raise RuntimeError('marker-check-password')
    if user == 'unicode':
        return password == 'p\u00e4ss'
    if user in GROUPS:
        return password == 'secret'
    return None


def get_realm_hash(environ, user, realm):
    if user == 'broken':
        raise RuntimeError('marker-realm-hash')
    if user in GROUPS:
        digest = hashlib.md5(('%s:%s:secret' % (user, realm)).encode()).hexdigest()
        # bytes will do as well as str
        return digest.encode() if user == 'bob' else digest
    return None


def groups_for_user(environ, user):
    if user == 'broken':
        raise RuntimeError('marker-groups')
    return GROUPS.get(user, [])


def allow_access(environ, host):
    answer = environ['QUERY_STRING']
    if answer == 'raise':
        raise RuntimeError('marker-allow-access')
    environ['wsgi.errors'].write('allow_access host=%s\n' % host)
    return {'yes': True, 'no': False, 'none': None, 'one': 1}[answer]


def application(environ, start_response):
    body = 'user=%s auth=%s\n' % (environ.get('REMOTE_USER'), environ.get('AUTH_TYPE'))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
