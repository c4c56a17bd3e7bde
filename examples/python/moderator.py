#!/usr/bin/env python3
"""A moderator's tool: works through the moderation queue, releasing held
payouts or ending them.

    PGHOST=... PGUSER=moderator PGPASSWORD=... examples/python/moderator.py [NAME]

The role must be a member of the role named by payout.moderator_role, with
the application's grants on the table.  Several people may share that
role: each decision names the person in payout.actor, which payout.history
records beside the role (the person is this tool's word, not something the
database checked; here NAME stands in for them).  A person decides in a
real back office; here a rule stands in for one: payouts whose key ends in
13 are ended (the recipient cannot be paid), the others released, to be
processed.
Several moderators may work at once: each decision is an UPDATE that only
changes a payout still held, so a payout another moderator decided first is
left alone.  Stop it with SIGTERM or SIGINT.
"""
import signal
import sys
import time

import psycopg2

name = sys.argv[1] if len(sys.argv) > 1 else 'moderator'
stopping = False

QUEUE = """
SELECT id::text, status, resolution, note
FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, created_at
LIMIT 50
"""

# Released with resolution OK; the processors pick the payout up again.
RELEASE = """
UPDATE payouts SET resolution = 'OK'
WHERE id = %s AND payout.requires_moderation(status, resolution)
"""

# Ended with a fatal resolution and the failure status of its stage.
END = """
UPDATE payouts
SET resolution = 'GENERAL_FATAL_ERROR', status = payout.failure_status(status)
WHERE id = %s AND payout.requires_moderation(status, resolution)
"""


def log(message):
    print(f'{name}: {message}', flush=True)


def stop(signum, frame):
    global stopping
    stopping = True


def moderate(conn):
    """Decides every payout of the queue once; returns how many it decided."""
    with conn.cursor() as cur:
        cur.execute(QUEUE)
        queue = cur.fetchall()
    conn.commit()
    decided = 0
    for key, status, resolution, note in queue:
        end = key.endswith('13')
        with conn.cursor() as cur:
            # Who decides, for this transaction only.
            cur.execute("SELECT set_config('payout.actor', %s, true)", (name,))
            cur.execute(END if end else RELEASE, (key,))
            mine = cur.rowcount == 1
        conn.commit()
        if mine:
            decided += 1
            log(f"{'ended' if end else 'released'} payout {key} ({status}, {resolution}"
                f"{', note: ' + note if note else ''})")
    return decided


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    conn = None
    while not stopping:
        try:
            if conn is None:
                conn = psycopg2.connect(application_name=name)
            # No channel announces holds: look at the queue now and then.
            if moderate(conn) == 0:
                time.sleep(0.3)
        except psycopg2.OperationalError as e:
            log(f'connection lost ({e.pgcode}): reconnecting')
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.5)
    if conn is not None:
        conn.close()
    log('stopped')


if __name__ == '__main__':
    main()
