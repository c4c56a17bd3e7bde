#!/usr/bin/env python3
"""A payout processor: claims payouts and drives them through a payment
provider, here a fake one.

    PGHOST=... PGUSER=processor PGPASSWORD=... examples/python/processor.py [--manual] [NAME]

Connects with libpq's environment variables.  --manual makes it an
operator's processor: it claims manual payouts (payout.claim(..., manual =>
true)) and listens on payout_manual; the role must be an operator.

Each payout is claimed and driven in one transaction, so the claim's row
lock covers the provider call: nobody else touches the payout meanwhile,
and if the connection is lost, PostgreSQL rolls the claim back and the
payout is READY for the next claim.  The provider is called with the
payout's key as idempotency key, so a second call after such a rollback
gets the first call's answer.  Stop it with SIGTERM or SIGINT.
"""
import json
import select
import signal
import sys
import time

import psycopg2
import psycopg2.errors

TABLE = 'public.payouts'       # the one table it claims from, as notifications name it
PROVIDER = 'fakepay'           # a provider of payout.provider_code
HOLD = 'payout_moderation_hold'

manual = '--manual' in sys.argv[1:]
names = [a for a in sys.argv[1:] if not a.startswith('--')]
name = names[0] if names else 'processor'
channel = 'payout_manual' if manual else 'payout_ready'
stopping = False


def log(message):
    print(f'{name}: {message}', flush=True)


def stop(signum, frame):
    global stopping
    stopping = True


class FakeProvider:
    """Answers by key, the same every time for the same key (an idempotent
    provider): keys ending in 7 lack funds, keys ending in 3 time out at
    the first call and are registered at the next one."""

    @staticmethod
    def register(key, retry):
        """Returns (code, http_status, timed_out), as payout.classify() takes them."""
        if int(key) % 10 == 7:
            return 'E_FUNDS', 200, False
        if int(key) % 10 == 3 and not retry:
            return None, None, True
        return '0', 200, False

    @staticmethod
    def confirms_late(key):
        """Whether the provider, after a timeout, calls back to say the
        payout went through after all."""
        return int(key) % 20 == 3


def drive(cur, key, status, resolution):
    """Moves one payout that this transaction has locked on, until it is
    done or held.  Returns 'processed', 'failed' or 'held'."""
    if status == 'INVOKING':
        # A payout released by a moderator has resolution OK: call again.
        code, http_status, timed_out = FakeProvider.register(key, retry=resolution is not None)
        # resolution_group_of(), not resolution_group(): psycopg2 writes the
        # parameter into the statement as a quoted literal, which
        # payout.resolution_group('...') would read as a cast to the type.
        cur.execute('SELECT r, payout.resolution_group_of(r) FROM payout.classify(%s, %s, %s, %s) AS r',
                    (PROVIDER, code, http_status, timed_out))
        resolution, group = cur.fetchone()
        if group == 'FATAL_ERROR':
            # A fatal resolution needs a final status in the same statement.
            cur.execute('UPDATE payouts SET resolution = %s, status = payout.failure_status(status)'
                        ' WHERE id = %s', (resolution, key))
            return 'failed'
        if group == 'ERROR':
            # From the commit on, the payout is held for a moderator.
            cur.execute('UPDATE payouts SET resolution = %s WHERE id = %s', (resolution, key))
            return 'held'
        cur.execute("UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = %s", (key,))
    # PROCESSING or PENDING: the fake provider has always paid by now.
    cur.execute("UPDATE payouts SET status = 'PROCESSED' WHERE id = %s", (key,))
    return 'processed'


def claim_one(conn):
    """Claims one payout and drives it, in one transaction.  Returns
    (key, outcome), or None when there is nothing to claim."""
    with conn.cursor() as cur:
        cur.execute('SELECT key FROM payout.claim(%s, 1, manual => %s) AS key', (TABLE, manual))
        row = cur.fetchone()
        outcome = drive(cur, row[0], 'INVOKING', None) if row else None
    conn.commit()
    return (row[0], outcome) if row else None


def resume_one(conn):
    """Drives on one payout that a moderator released (or that nobody
    works on for another reason): one in a processing status, not held,
    and not locked, since every payout being worked on is locked by its
    processor's transaction.  Returns (key, outcome) or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT id::text, status, resolution FROM payouts"
                    " WHERE status IN ('INVOKING', 'PROCESSING', 'PENDING')"
                    "   AND NOT payout.requires_moderation(status, resolution)"
                    "   AND autoprocess = %s"
                    " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", (not manual,))
        row = cur.fetchone()
        outcome = drive(cur, *row) if row else None
    conn.commit()
    return (row[0], outcome) if row else None


def provider_callback(conn, key):
    """The provider says a payout that timed out went through.  Record it,
    unless the payout is held: then only a moderator may change it, so
    leave the news in a note (other columns of a held payout may change)."""
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE payouts SET status = 'PROCESSING', resolution = 'OK'"
                        " WHERE id = %s AND status = 'INVOKING'", (key,))
        conn.commit()
    except psycopg2.errors.InsufficientPrivilege as e:
        conn.rollback()
        # 42501 is also "permission denied": only the hold is expected here.
        if e.diag.constraint_name != HOLD:
            raise
        with conn.cursor() as cur:
            cur.execute('UPDATE payouts SET note = %s WHERE id = %s',
                        ('the provider confirmed the payout after the timeout', key))
        conn.commit()
        log(f'payout {key} is held (42501 {HOLD}): left a note for the moderators')


def drain(conn):
    """Claims and resumes payouts until there are none left."""
    while not stopping:
        done = claim_one(conn) or resume_one(conn)
        if done is None:
            return
        key, outcome = done
        if outcome == 'held' and FakeProvider.confirms_late(key):
            provider_callback(conn, key)


def serve(conn):
    with conn.cursor() as cur:
        cur.execute(f'LISTEN {channel}')
    conn.commit()
    # Nothing was queued for us while we were not listening: look now.
    drain(conn)
    while not stopping:
        # Wake up for a notification, or every second anyway: a release in
        # another status than READY, or one missed while reconnecting,
        # is found by looking.
        # Notifications that arrived with the results of the last
        # transactions are in conn.notifies already.
        if not conn.notifies and select.select([conn], [], [], 1.0) != ([], [], []):
            conn.poll()
        if conn.notifies:
            # The payload names the table as 'schema.table', quoted where
            # needed: compare it whole with TABLE.  Anyone may send one, so
            # it only says when to look; claims name TABLE, never the
            # payload's table.
            ours = any(json.loads(n.payload)['table'] == TABLE for n in conn.notifies)
            conn.notifies.clear()
            if not ours:
                continue
        drain(conn)


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    conn = None
    while not stopping:
        try:
            if conn is None:
                conn = psycopg2.connect(application_name=name)
                log('connected')
            serve(conn)
        except psycopg2.OperationalError as e:
            # psycopg2 reports 40001, 40P01 and other transient errors as
            # OperationalError too: for those, the connection is fine once
            # rolled back.  Otherwise it is lost, and the transaction with
            # it, claim and all: start again on a fresh connection.
            if conn is not None and not conn.closed:
                try:
                    conn.rollback()
                    continue
                except psycopg2.Error:
                    pass
            log(f'connection lost ({e.pgcode or str(e).strip().splitlines()[0]}): reconnecting')
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.5)
    if conn is not None:
        conn.close()
    log('stopped')


if __name__ == '__main__':
    main()
