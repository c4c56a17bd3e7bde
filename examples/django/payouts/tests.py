"""Tests of the example, with manage.py test.

They need what examples/django/prepare.sql makes: the test database comes
from the template that has the extension, and Django's role has the roles
and settings of the back office.  Django's role is the table's owner, and
no moderator: it meets the hold like the application.
"""
import importlib
from io import StringIO

from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, ProgrammingError, connection, transaction
from django.test import TestCase, TransactionTestCase, override_settings

from .backoffice import acting_as
from .fields import Resolution, Status
from .models import Payout

STAFF_ROLES = {'alice': 'payout_staff_alice', 'carol': 'payout_staff_carol'}


def sql(query, *params):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def last_change(pk):
    """Who made the last recorded change of payout pk."""
    return sql('SELECT new_status, new_resolution, user_name, session_user_name, actor FROM payout.history'
               " WHERE tbl = 'payouts'::regclass AND key = %s ORDER BY id DESC LIMIT 1", str(pk))[0]


def make(pk, status='READY', resolution=None, **fields):
    """A payout walked along the graph to status (READY or INVOKING) and
    given resolution, as the application and a processor would."""
    Payout.objects.create(pk=pk, amount=10, **fields)
    Payout.objects.filter(pk=pk).update(status='READY')
    if status == 'INVOKING':
        Payout.objects.filter(pk=pk).update(status='INVOKING')
    if resolution:
        Payout.objects.filter(pk=pk).update(resolution=resolution)
    return Payout.objects.get(pk=pk)


class Grants:
    """The grants the README's security model recommends, which the
    deployment makes after migrate (here the test database's)."""

    @classmethod
    def setUpTestData(cls):
        sql('GRANT SELECT, INSERT, UPDATE, DELETE ON payouts TO payout_moderator, payout_staff_carol')


class SchemaTests(TestCase):
    def test_labels_are_the_databases(self):
        self.assertEqual([s for s, in sql('SELECT unnest(enum_range(NULL::payout.status))::text')], Status.values)
        self.assertEqual([r for r, in sql('SELECT unnest(enum_range(NULL::payout.resolution))::text')],
                         Resolution.values)

    def test_migration_attached_the_table(self):
        self.assertEqual(sql("SELECT status_column, resolution_column, notify, history"
                             " FROM payout.attachment('payouts')"), [('status', 'resolution', True, True)])

    def test_database_defaults_for_other_writers(self):
        sql('INSERT INTO payouts (id, amount) VALUES (1, 10)')
        self.assertEqual(sql('SELECT status, autoprocess, created_at IS NOT NULL FROM payouts'),
                         [('CREATED', True, True)])

    def test_migrations_match_the_models(self):
        out = StringIO()
        call_command('makemigrations', 'payouts', '--check', '--dry-run', stdout=out)
        self.assertIn('No changes detected', out.getvalue())

    def test_no_index_missing(self):
        self.assertEqual(sql("SELECT item FROM payout.check('payouts') WHERE NOT ok"), [])

    def test_test_database_has_the_moderator_setting(self):
        # ALTER ROLE ... SET reaches the test database; ALTER DATABASE ...
        # SET of another database would not.
        self.assertEqual(sql('SHOW payout.moderator_role'), [('payout_moderator',)])


class IndexTests(TransactionTestCase):
    def test_migration_makes_the_indexes_check_lists(self):
        # CREATE INDEX CONCURRENTLY runs outside a transaction: this test
        # runs in autocommit, as the migration does.
        sql('DROP INDEX payouts_payout_ready')
        self.assertEqual(sql("SELECT item FROM payout.check('payouts') WHERE NOT ok"), [('payout.claim()',)])
        migration = importlib.import_module('payouts.migrations.0002_payout_indexes')
        with connection.schema_editor(atomic=False) as editor:
            migration.make_indexes(None, editor)
        self.assertEqual(sql("SELECT item FROM payout.check('payouts') WHERE NOT ok"), [])


class ErrorTests(TestCase):
    def test_illegal_change_is_integrity_error(self):
        make(1)
        with self.assertRaises(IntegrityError) as raised, transaction.atomic():
            Payout.objects.filter(pk=1).update(status='PROCESSED')
        self.assertEqual(raised.exception.__cause__.pgcode, '23514')
        self.assertEqual(raised.exception.__cause__.diag.constraint_name, 'payout_status_transition')

    def test_hold_is_programming_error(self):
        make(2, 'INVOKING', 'CONNECTION_TIMEOUT_ERROR')
        with self.assertRaises(ProgrammingError) as raised, transaction.atomic():
            Payout.objects.filter(pk=2).update(status='PROCESSING', resolution='OK')
        cause = raised.exception.__cause__
        self.assertEqual((cause.pgcode, cause.diag.constraint_name), ('42501', 'payout_moderation_hold'))
        self.assertIn('members of role "payout_moderator"', cause.diag.message_hint)

    def test_classes_follow_the_sqlstate(self):
        for sqlstate, cls in (('23502', IntegrityError), ('42501', ProgrammingError), ('40001', OperationalError)):
            with self.assertRaises(cls) as raised, transaction.atomic():
                sql(f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{sqlstate}'; END $$")
            self.assertEqual(raised.exception.__cause__.pgcode, sqlstate)

    def test_fatal_needs_the_failure_status(self):
        make(3, 'INVOKING')
        with self.assertRaises(IntegrityError) as raised, transaction.atomic():
            Payout.objects.filter(pk=3).update(resolution='INSUFFICIENT_FUNDS')
        self.assertEqual(raised.exception.__cause__.diag.constraint_name, 'payout_fatal_resolution')
        self.assertEqual(raised.exception.__cause__.diag.message_hint,
                         'Set the status to "INVOKE_FAILED" in the same statement.')


@override_settings(PAYOUT_STAFF_ROLES=STAFF_ROLES)
class SaveTests(Grants, TestCase):
    def test_whole_save_of_a_stale_instance_holds_again(self):
        stale = make(4, 'INVOKING', 'CONNECTION_TIMEOUT_ERROR')
        with acting_as(User(username='alice')):
            Payout.objects.filter(pk=4).update(resolution='OK')
        stale.note = 'checked'
        stale.save()      # writes the stale resolution back
        self.assertEqual(Payout.objects.get(pk=4).resolution, 'CONNECTION_TIMEOUT_ERROR')

    def test_save_of_changed_fields_leaves_the_decision_alone(self):
        stale = make(5, 'INVOKING', 'CONNECTION_TIMEOUT_ERROR')
        with acting_as(User(username='alice')):
            Payout.objects.filter(pk=5).update(resolution='OK')
        stale.note = 'checked'
        stale.save(update_fields=['note'])
        self.assertEqual(Payout.objects.values_list('resolution', 'note').get(pk=5), ('OK', 'checked'))


class ClaimTests(TestCase):
    def test_claim_rows_gives_the_rows_after_the_claim(self):
        make(6)
        claimed = list(Payout.objects.raw('SELECT * FROM payout.claim_rows(NULL::payouts, 10)'))
        self.assertEqual([(p.pk, p.status) for p in claimed], [(6, 'INVOKING')])

    def test_claim_joined_to_the_table_reads_the_rows_before_it(self):
        make(7)
        joined = list(Payout.objects.raw(
            "SELECT p.* FROM payouts AS p JOIN payout.claim('payouts', 10) AS k ON p.id = k::bigint"))
        # The claim moved the payout, but the join read it from the
        # statement's snapshot, taken before.
        self.assertEqual([(p.pk, p.status) for p in joined], [(7, 'READY')])
        self.assertEqual(Payout.objects.get(pk=7).status, 'INVOKING')
        with self.assertRaises(IntegrityError), transaction.atomic():
            joined[0].save()  # INVOKING -> READY

    def test_processor_command(self):
        for pk in (11, 17, 21):
            make(pk)
        call_command('process_payouts', '--once', 'test-processor', stdout=StringIO())
        self.assertEqual(list(Payout.objects.order_by('pk').values_list('pk', 'status', 'resolution')),
                         [(11, 'PROCESSED', 'OK'), (17, 'INVOKE_FAILED', 'INSUFFICIENT_FUNDS'),
                          (21, 'PROCESSED', 'OK')])


@override_settings(PAYOUT_STAFF_ROLES=STAFF_ROLES)
class BackOfficeTests(Grants, TestCase):
    def setUp(self):
        for name in ('alice', 'bob', 'carol'):
            User.objects.create_user(name, is_staff=True)
        make(31, 'INVOKING', 'CONNECTION_TIMEOUT_ERROR')
        make(32, 'INVOKING', 'PROVIDER_INTERNAL_ERROR')
        make(33, 'READY', 'GENERAL_ERROR')
        make(34)

    def as_staff(self, name):
        self.client.force_login(User.objects.get(username=name))

    def test_queue_lists_the_held_payouts(self):
        self.as_staff('bob')
        response = self.client.get('/moderation/')
        self.assertEqual(response.status_code, 200)
        self.assertEqual([p.pk for p, _ in response.context['rows']], [32, 31, 33])

    def test_only_staff(self):
        User.objects.create_user('dave')
        self.client.force_login(User.objects.get(username='dave'))
        self.assertEqual(self.client.post('/moderation/31/', {'decision': 'release'}).status_code, 302)
        self.assertEqual(Payout.objects.get(pk=31).resolution, 'CONNECTION_TIMEOUT_ERROR')

    def test_release_by_shared_role_names_the_actor(self):
        self.as_staff('bob')
        self.assertRedirects(self.client.post('/moderation/31/', {'decision': 'release'}), '/moderation/')
        self.assertEqual(last_change(31), ('INVOKING', 'OK', 'payout_moderator',
                                           sql('SELECT session_user')[0][0], 'bob'))

    def test_end_by_own_role(self):
        self.as_staff('alice')
        self.assertRedirects(self.client.post('/moderation/32/', {'decision': 'end'}), '/moderation/')
        self.assertEqual(last_change(32), ('INVOKE_FAILED', 'GENERAL_FATAL_ERROR', 'payout_staff_alice',
                                           sql('SELECT session_user')[0][0], 'alice'))
        # Back to Django's own role after the decision.
        self.assertEqual(sql('SELECT current_user = session_user')[0][0], True)

    def test_end_checked_against_the_graph(self):
        self.as_staff('bob')
        response = self.client.post('/moderation/31/', {'decision': 'end', 'status': 'REVOKED'})
        self.assertEqual(response.status_code, 400)
        self.assertIn('from INVOKING it may go to', response.context['error'])
        response = self.client.post('/moderation/31/', {'decision': 'end', 'status': 'PROCESSING'})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(Payout.objects.get(pk=31).resolution, 'CONNECTION_TIMEOUT_ERROR')

    def test_end_in_another_final_status(self):
        self.as_staff('bob')
        response = self.client.post('/moderation/33/', {'decision': 'end', 'status': 'TERMINATED'})
        self.assertRedirects(response, '/moderation/')
        self.assertEqual(Payout.objects.values_list('status', 'resolution').get(pk=33),
                         ('TERMINATED', 'GENERAL_FATAL_ERROR'))

    def test_not_held_any_more(self):
        self.as_staff('bob')
        self.client.post('/moderation/31/', {'decision': 'release'})
        response = self.client.post('/moderation/31/', {'decision': 'release'})
        self.assertEqual(response.status_code, 409)
        response = self.client.post('/moderation/34/', {'decision': 'release'})
        self.assertEqual(response.status_code, 409)

    def test_role_that_is_no_moderator_meets_the_hold(self):
        self.as_staff('carol')
        response = self.client.post('/moderation/31/', {'decision': 'release'})
        self.assertEqual(response.status_code, 403)
        self.assertIn('Moderators are the members of role "payout_moderator"', response.context['error'])
        self.assertEqual(Payout.objects.get(pk=31).resolution, 'CONNECTION_TIMEOUT_ERROR')

    def test_admin_changes_only_what_the_form_changed(self):
        User.objects.filter(username='bob').update(is_superuser=True)
        self.as_staff('bob')
        url = '/admin/payouts/payout/31/change/'
        form = self.client.get(url).context['adminform'].form
        data = {name: form[name].value() or '' for name in form.fields}
        data['note'] = 'asked the provider'
        self.assertRedirects(self.client.post(url, data), '/admin/payouts/payout/')
        self.assertEqual(Payout.objects.values_list('resolution', 'note').get(pk=31),
                         ('CONNECTION_TIMEOUT_ERROR', 'asked the provider'))
