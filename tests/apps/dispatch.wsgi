# WSGIDispatchScript: the query string picks what each function answers.
def process_group(environ):
    answer = environ['QUERY_STRING']
    if answer == 'daemon':
        return 'd'
    if answer == 'env':
        return '%{ENV:CHOSEN_GROUP}'
    if answer == 'bad':
        return 5
    if answer == 'raise':
        raise RuntimeError('marker-dispatch')
    return None


def application_group(environ):
    return {'named': 'chosen', 'global': '%{GLOBAL}'}.get(environ['QUERY_STRING'])


def callable_object(environ):
    return 'other' if environ['QUERY_STRING'] == 'other' else None
