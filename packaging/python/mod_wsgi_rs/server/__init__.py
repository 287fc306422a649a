"""Django application providing ``manage.py runmodwsgi``: add ``"mod_wsgi_rs.server"`` to
INSTALLED_APPS."""
