# Subscribes to mod_wsgi's events and records them in <script dir>/var/events-<pid>,
# one line each: EVENT <name> <sorted payload keys> <details>.
import mod_wsgi
import os

VAR = os.path.join(os.path.dirname(__file__), 'var')


def record(line):
    with open(os.path.join(VAR, 'events-%d' % os.getpid()), 'a') as f:
        f.write(line + '\n')


def wrapped(application):
    def wrapper(environ, start_response):
        return [b'wrapped:'] + list(application(environ, start_response))
    return wrapper


def handler(name, **event):
    details = ''
    if name == 'request_started':
        details = 'same_data=%s active=%s connects=%r restarts=%r queued=%s' % (
            event['request_data'] is mod_wsgi.request_data(),
            event['request_id'] in mod_wsgi.active_requests,
            event['daemon_connects'], event['daemon_restarts'],
            event['request_start'] <= event['queue_start'] <= event['daemon_start'] <= event['application_start'])
        event['request_data']['seen'] = True
        if event['request_environ'].get('PATH_INFO') == '/wrap':
            return {'application_object': wrapped(event['application_object'])}
    elif name == 'response_started':
        details = 'status=%r headers=%r' % (event['response_status'], event['response_headers'])
    elif name == 'request_exception':
        details = 'exception=%s' % event['exception_info'][0].__name__
    elif name == 'request_finished':
        details = 'output_length=%d input_length=%d seen=%s' % (
            event['output_length'], event['input_length'], event['request_data'].get('seen'))
    record('EVENT %s %s %s' % (name, ','.join(sorted(event)), details))


def shutdown(name, **event):
    record('SHUTDOWN %s %s' % (name, ','.join(sorted(event))))


mod_wsgi.subscribe_events(handler)
mod_wsgi.subscribe_shutdown(shutdown)


def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/raise':
        raise ValueError('marker-event-exception')
    if path == '/metrics':
        metrics = mod_wsgi.process_metrics()
        body = ('keys=%s\nrequest_count=%d\nserver_metrics=%r\nfile_wrapper=%s\nrequest_data=%r\n' % (
            ','.join(sorted(metrics)), metrics['request_count'], mod_wsgi.server_metrics(),
            mod_wsgi.FileWrapper is environ['wsgi.file_wrapper'], mod_wsgi.request_data())).encode()
    else:
        environ['wsgi.input'].read()
        body = b'ok'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
