"""manage.py process_payouts: a payout processor on Django's ORM.

    PGUSER=processor PGPASSWORD=... manage.py process_payouts [--manual] [--once] [NAME]

Claims payouts and drives them through a payment provider, here a fake
one.  --manual makes it an operator's processor: it claims manual payouts
and listens on payout_manual; the role must be an operator.  --once drains
what there is and stops, without waiting for more.

Each payout is claimed and driven in one transaction, so the claim's row
lock covers the provider call, and a lost connection rolls the claim back.
payout.claim_rows() claims and returns the claimed rows as they are after
the claim, which Manager.raw() turns into instances: a query that joins
payout.claim() to the table in the same statement would read the rows as
they were before it.  Every change is a QuerySet.update() of the columns it
changes.  Stop it with SIGTERM or SIGINT.
"""
import select
import signal
import time

import psycopg2
from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError, ProgrammingError
from django.db import connection, transaction

from payouts.models import Payout, failure_status

PROVIDER = 'fakepay'           # a provider of payout.provider_code
HOLD = 'payout_moderation_hold'


class FakeProvider:
    """Answers by key, the same every time for the same key (an idempotent
    provider): keys ending in 7 lack funds, keys ending in 3 time out at
    the first call and are registered at the next one."""

    @staticmethod
    def register(key, retry):
        """Returns (code, http_status, timed_out), as payout.classify() takes them."""
        if key % 10 == 7:
            return 'E_FUNDS', 200, False
        if key % 10 == 3 and not retry:
            return None, None, True
        return '0', 200, False

    @staticmethod
    def confirms_late(key):
        """Whether the provider, after a timeout, calls back to say the
        payout went through after all."""
        return key % 20 == 3


class Command(BaseCommand):
    help = 'Claims payouts and drives them through the payment provider.'

    def add_arguments(self, parser):
        parser.add_argument('name', nargs='?', default='django-processor')
        parser.add_argument('--manual', action='store_true', help="an operator's processor: manual payouts")
        parser.add_argument('--once', action='store_true', help='drain what there is, and stop')

    def log(self, message):
        self.stdout.write(f'{self.name}: {message}')
        self.stdout.flush()

    def stop(self, signum, frame):
        self.stopping = True

    def drive(self, payout):
        """Moves a payout this transaction has locked on, until it is done
        or held.  Returns 'processed', 'failed' or 'held'."""
        mine = Payout.objects.filter(pk=payout.pk)
        if payout.status == 'INVOKING':
            # A payout released by a moderator has resolution OK: call again.
            code, http_status, timed_out = FakeProvider.register(payout.pk, retry=payout.resolution is not None)
            with connection.cursor() as cursor:
                # resolution_group_of(), not resolution_group(): psycopg2
                # writes the parameter as a quoted literal, which
                # payout.resolution_group('...') would read as a cast.
                cursor.execute('SELECT r, payout.resolution_group_of(r) FROM payout.classify(%s, %s, %s, %s) AS r',
                               [PROVIDER, code, http_status, timed_out])
                resolution, group = cursor.fetchone()
            if group == 'FATAL_ERROR':
                # A fatal resolution needs a final status in the same statement.
                mine.update(resolution=resolution, status=failure_status())
                return 'failed'
            if group == 'ERROR':
                # From the commit on, the payout is held for a moderator.
                mine.update(resolution=resolution)
                return 'held'
            mine.update(status='PROCESSING', resolution='OK')
        # PROCESSING or PENDING: the fake provider has always paid by now.
        mine.update(status='PROCESSED')
        return 'processed'

    def claim_one(self):
        """Claims one payout and drives it, in one transaction.  Returns
        (payout, outcome), or None when there is nothing to claim."""
        with transaction.atomic():
            claimed = list(Payout.objects.raw(
                'SELECT * FROM payout.claim_rows(NULL::payouts, 1, manual => %s)', [self.manual]))
            if not claimed:
                return None
            # The instance is the row after the claim: status INVOKING.
            return claimed[0], self.drive(claimed[0])

    def resume_one(self):
        """Drives on one payout that a moderator released (or that nobody
        works on for another reason): one in a processing status, not held,
        and not locked, since every payout being worked on is locked by its
        processor's transaction."""
        with transaction.atomic():
            payout = (Payout.objects.held(False)
                      .filter(status__in=['INVOKING', 'PROCESSING', 'PENDING'], autoprocess=not self.manual)
                      .order_by('id')
                      .select_for_update(skip_locked=True)
                      .first())
            if payout is None:
                return None
            return payout, self.drive(payout)

    def provider_callback(self, payout):
        """The provider says a payout that timed out went through.  Record
        it, unless the payout is held: then only a moderator may change it,
        so leave the news in a note (other columns of a held payout may
        change)."""
        try:
            with transaction.atomic():
                Payout.objects.filter(pk=payout.pk, status='INVOKING').update(status='PROCESSING', resolution='OK')
        except ProgrammingError as e:
            # Django raises 42501 as ProgrammingError, and it is also
            # "permission denied": only the hold is expected here.
            if getattr(e.__cause__, 'pgcode', None) != '42501' or e.__cause__.diag.constraint_name != HOLD:
                raise
            Payout.objects.filter(pk=payout.pk).update(note='the provider confirmed the payout after the timeout')
            self.log(f'payout {payout.pk} is held (42501 {HOLD}): left a note for the moderators')

    def drain(self):
        """Claims and resumes payouts until there are none left."""
        while not self.stopping:
            done = self.claim_one() or self.resume_one()
            if done is None:
                return
            payout, outcome = done
            if outcome == 'held' and FakeProvider.confirms_late(payout.pk):
                self.provider_callback(payout)

    def serve(self):
        connection.ensure_connection()
        self.log('connected')
        with connection.cursor() as cursor:
            cursor.execute('LISTEN payout_manual' if self.manual else 'LISTEN payout_ready')
        # Nothing was queued for us while we were not listening: look now.
        self.drain()
        raw = connection.connection   # psycopg2's connection, under Django's
        while not self.stopping:
            # Wake up for a notification, or every second anyway.  A
            # notification is a hint, which any role may send: it says when
            # to look, and this processor looks only at its own table,
            # whatever table a payload names.
            if not raw.notifies and select.select([raw], [], [], 1.0) != ([], [], []):
                raw.poll()
            raw.notifies.clear()
            self.drain()

    def handle(self, *args, name, manual, once, **options):
        self.name, self.manual, self.stopping = name, manual, False
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        connection.settings_dict['OPTIONS']['application_name'] = name
        if once:
            self.drain()
            return
        while not self.stopping:
            try:
                self.serve()
            except (OperationalError, InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                # A lost connection takes its transaction with it, claim
                # and all: close Django's, which connects again at the
                # next query.  (40001 and 40P01 are OperationalErrors too,
                # after which the transaction was rolled back: go on.)
                code = getattr(e.__cause__ or e, 'pgcode', None)
                if code in ('40001', '40P01'):
                    continue
                self.log(f'connection lost ({code or str(e).strip().splitlines()[0]}): reconnecting')
                connection.close()
                time.sleep(0.5)
        connection.close()
        self.log('stopped')
