import os

from django.core.wsgi import get_wsgi_application

# Stays outside bulletin.conf: it names the settings module, so comes before any settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bulletin.settings")
application = get_wsgi_application()
