"""Settings of the payout example project (Django 3.2, as Debian 12
packages it, with psycopg2).

The database is the one libpq's environment variables name (PGHOST,
PGPORT, PGDATABASE, PGUSER, PGPASSWORD); Django passes empty settings on
as none, and libpq reads the variables.  Test databases are copies of a
template in which a superuser created the extension (see doc/django.md).
"""
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# An example's key: a real project reads it from its secrets.
SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'payout-example-not-secret')
DEBUG = False
ALLOWED_HOSTS = ['localhost', 'testserver']

INSTALLED_APPS = [
    'django.contrib.admin',
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.messages',
    'payouts',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    'django.contrib.messages.middleware.MessageMiddleware',
]

ROOT_URLCONF = 'shop.urls'

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'APP_DIRS': True,
        'OPTIONS': {
            'context_processors': [
                'django.template.context_processors.request',
                'django.contrib.auth.context_processors.auth',
                'django.contrib.messages.context_processors.messages',
            ],
        },
    },
]

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': os.environ.get('PGDATABASE', 'shop'),
        'USER': os.environ.get('PGUSER', ''),
        'PASSWORD': os.environ.get('PGPASSWORD', ''),
        'HOST': os.environ.get('PGHOST', ''),
        'PORT': os.environ.get('PGPORT', ''),
        'OPTIONS': {},
        'TEST': {
            # manage.py test creates its database from this template, which
            # has the extension: the role Django connects as may not create
            # it (CREATE EXTENSION payout is a superuser's).
            'TEMPLATE': os.environ.get('PAYOUT_TEST_TEMPLATE', 'payout_template'),
        },
    },
}

DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'
USE_TZ = True
TIME_ZONE = 'UTC'
STATIC_URL = '/static/'

# The back office.  Django's database role is a member of the moderators'
# role and of the staff's own roles, through a NOINHERIT role
# (prepare.sql): it has none of their rights until the back office takes
# one on, for one transaction, for the member of staff who decides
# (payouts/backoffice.py).  A member of staff
# listed in PAYOUT_STAFF_ROLES acts as their own database role; everyone
# else as PAYOUT_MODERATOR_ROLE, the role payout.moderator_role names.
# Either way payout.actor names the member of staff in payout.history.
PAYOUT_MODERATOR_ROLE = os.environ.get('PAYOUT_MODERATOR_ROLE', 'payout_moderator')
PAYOUT_STAFF_ROLES = dict(
    pair.split('=', 1) for pair in os.environ.get('PAYOUT_STAFF_ROLES', '').split(',') if pair
)
