"""Makes the indexes payout.check() says the table lacks.

payout.attach() made them with the table; a table attached with
indexes => false (a large one, whose indexes are better made without
blocking writes), or one whose indexes were dropped since, lacks them.
payout.check() gives the statement that makes each, in its column
statement: CREATE INDEX CONCURRENTLY, which cannot run in a transaction,
so this migration is not atomic, and runs each statement on its own.
"""
from django.db import migrations


def make_indexes(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM payout.check('payouts') WHERE NOT ok AND statement IS NOT NULL")
        for statement, in cursor.fetchall():
            cursor.execute(statement)


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('payouts', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(make_indexes, migrations.RunPython.noop, elidable=True),
    ]
