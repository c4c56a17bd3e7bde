"""Creates the payouts table and attaches payout's triggers to it.

The extension itself is a superuser's to create (CREATE EXTENSION payout),
in the database and, for manage.py test, in the template of the test
databases; this migration says so rather than failing on a missing type.
"""
import django.utils.timezone
from django.db import migrations, models

import payouts.fields


def require_extension(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'payout'")
        if cursor.fetchone() is None:
            raise RuntimeError(
                f'the payout extension is not installed in database "{schema_editor.connection.settings_dict["NAME"]}":'
                ' a superuser runs CREATE EXTENSION payout there; for manage.py test, in the template of the'
                ' test databases (DATABASES TEST TEMPLATE; see doc/django.md)')


class Migration(migrations.Migration):

    initial = True

    dependencies = []

    operations = [
        migrations.RunPython(require_extension, migrations.RunPython.noop, elidable=True),
        migrations.CreateModel(
            name='Payout',
            fields=[
                ('id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('amount', models.DecimalField(decimal_places=2, max_digits=12)),
                ('status', payouts.fields.StatusField(default='CREATED')),
                ('resolution', payouts.fields.ResolutionField(blank=True, null=True)),
                ('autoprocess', models.BooleanField(default=True)),
                ('note', models.TextField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'db_table': 'payouts',
            },
        ),
        # Django 3.2 keeps defaults in Python.  Other programs write this
        # table too (processors, the application in other languages), and
        # they rely on the database's defaults.
        migrations.RunSQL(
            "ALTER TABLE payouts ALTER status SET DEFAULT 'CREATED',"
            " ALTER autoprocess SET DEFAULT true,"
            " ALTER created_at SET DEFAULT now()",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "SELECT payout.attach('payouts', notify => true)",
            "SELECT payout.detach('payouts')",
        ),
    ]
