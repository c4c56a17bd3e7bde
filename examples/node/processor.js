'use strict';
// A payout processor: claims payouts and drives them through a payment
// provider, here a fake one.
//
//   PGHOST=... PGUSER=processor PGPASSWORD=... node examples/node/processor.js [--manual] [NAME]
//
// Connects with libpq's environment variables, which node-postgres reads
// too.  --manual makes it an operator's processor: it claims manual payouts
// (payout.claim(..., manual => true)) and listens on payout_manual; the role
// must be an operator.
//
// Each payout is claimed and driven in one transaction, so the claim's row
// lock covers the provider call: nobody else touches the payout meanwhile,
// and if the connection is lost, PostgreSQL rolls the claim back and the
// payout is READY for the next claim.  The provider is called with the
// payout's key as idempotency key, so a second call after such a rollback
// gets the first call's answer.  Stop it with SIGTERM or SIGINT.
const { Client } = require('pg');

const TABLE = 'public.payouts'; // the one table it claims from, as notifications name it
const PROVIDER = 'fakepay'; // a provider of payout.provider_code
const HOLD = 'payout_moderation_hold';

const args = process.argv.slice(2);
const manual = args.includes('--manual');
const name = args.find((a) => !a.startsWith('--')) || 'processor';
const channel = manual ? 'payout_manual' : 'payout_ready';
let stopping = false;
let pending = false; // a notification came since the last drain
let wake = () => {};

const log = (message) => console.log(`${name}: ${message}`);

// Answers by key, the same every time for the same key (an idempotent
// provider): keys ending in 7 lack funds, keys ending in 3 time out at the
// first call and are registered at the next one.
const provider = {
  // [code, httpStatus, timedOut], as payout.classify() takes them.
  register(key, retry) {
    if (Number(key) % 10 === 7) return ['E_FUNDS', 200, false];
    if (Number(key) % 10 === 3 && !retry) return [null, null, true];
    return ['0', 200, false];
  },
  // Whether the provider, after a timeout, calls back to say the payout
  // went through after all.
  confirmsLate: (key) => Number(key) % 20 === 3,
};

async function inTransaction(client, work) {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

// Moves one payout that this transaction has locked on, until it is done or
// held.  Returns 'processed', 'failed' or 'held'.
async function drive(client, key, status, resolution) {
  if (status === 'INVOKING') {
    // A payout released by a moderator has resolution OK: call again.
    const answer = provider.register(key, resolution !== null);
    const { rows } = await client.query(
      'SELECT r AS resolution, payout.resolution_group_of(r) AS group' +
        ' FROM payout.classify($1, $2, $3, $4) AS r',
      [PROVIDER, ...answer],
    );
    if (rows[0].group === 'FATAL_ERROR') {
      // A fatal resolution needs a final status in the same statement.
      await client.query(
        'UPDATE payouts SET resolution = $2, status = payout.failure_status(status) WHERE id = $1',
        [key, rows[0].resolution],
      );
      return 'failed';
    }
    if (rows[0].group === 'ERROR') {
      // From the commit on, the payout is held for a moderator.
      await client.query('UPDATE payouts SET resolution = $2 WHERE id = $1', [key, rows[0].resolution]);
      return 'held';
    }
    await client.query("UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = $1", [key]);
  }
  // PROCESSING or PENDING: the fake provider has always paid by now.
  await client.query("UPDATE payouts SET status = 'PROCESSED' WHERE id = $1", [key]);
  return 'processed';
}

// Claims one payout and drives it, in one transaction.  Returns
// [key, outcome], or null when there is nothing to claim.
function claimOne(client) {
  return inTransaction(client, async () => {
    const { rows } = await client.query('SELECT key FROM payout.claim($1, 1, manual => $2) AS key', [
      TABLE,
      manual,
    ]);
    if (rows.length === 0) return null;
    return [rows[0].key, await drive(client, rows[0].key, 'INVOKING', null)];
  });
}

// Drives on one payout that a moderator released (or that nobody works on
// for another reason): one in a processing status, not held, and not
// locked, since every payout being worked on is locked by its processor's
// transaction.  Returns [key, outcome] or null.
function resumeOne(client) {
  return inTransaction(client, async () => {
    const { rows } = await client.query(
      "SELECT id::text AS key, status, resolution FROM payouts WHERE status IN ('INVOKING', 'PROCESSING', 'PENDING')" +
        ' AND NOT payout.requires_moderation(status, resolution) AND autoprocess = $1' +
        ' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED',
      [!manual],
    );
    if (rows.length === 0) return null;
    const { key, status, resolution } = rows[0];
    return [key, await drive(client, key, status, resolution)];
  });
}

// The provider says a payout that timed out went through.  Record it,
// unless the payout is held: then only a moderator may change it, so leave
// the news in a note (other columns of a held payout may change).
async function providerCallback(client, key) {
  try {
    await client.query(
      "UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = $1 AND status = 'INVOKING'",
      [key],
    );
  } catch (err) {
    // 42501 is also "permission denied": only the hold is expected here.
    if (err.code !== '42501' || err.constraint !== HOLD) throw err;
    await client.query('UPDATE payouts SET note = $2 WHERE id = $1', [
      key,
      'the provider confirmed the payout after the timeout',
    ]);
    log(`payout ${key} is held (42501 ${HOLD}): left a note for the moderators`);
  }
}

// Claims and resumes payouts until there are none left.
async function drain(client) {
  while (!stopping) {
    const done = (await claimOne(client)) || (await resumeOne(client));
    if (done === null) return;
    const [key, outcome] = done;
    if (outcome === 'held' && provider.confirmsLate(key)) await providerCallback(client, key);
  }
}

// Waits for a notification, a lost connection or a stop, or a second.
function nap(ms) {
  if (pending || stopping) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

async function serve() {
  const client = new Client({ application_name: name });
  let lost = null;
  // Without this listener a connection lost while idle would crash the
  // process with an unhandled 'error' event.
  client.on('error', (err) => {
    lost = err;
    wake();
  });
  client.on('notification', (msg) => {
    // The payload names the table as 'schema.table', quoted where needed:
    // compare it whole with TABLE.  Anyone may send one, so it only says
    // when to look; claims name TABLE, never the payload's table.
    if (JSON.parse(msg.payload).table === TABLE) {
      pending = true;
      wake();
    }
  });
  try {
    await client.connect();
    log('connected');
    await client.query(`LISTEN ${channel}`);
    // Nothing was queued for us while we were not listening: look now.
    await drain(client);
    // Drain on a notification, or every second anyway: a release in another
    // status than READY, or one missed while reconnecting, is found by
    // looking.
    while (!stopping && !lost) {
      await nap(1000);
      pending = false;
      if (!lost) await drain(client);
    }
  } finally {
    await client.end().catch(() => {});
  }
  if (lost) throw lost;
}

async function main() {
  const stop = () => {
    stopping = true;
    wake();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  while (!stopping) {
    try {
      await serve();
    } catch (err) {
      if (stopping) break;
      // SQLSTATE class 08 and 57P01 (terminated by an administrator) mean
      // the connection is gone; node-postgres reports some losses with no
      // code at all.  Either way the transaction and its claim are gone:
      // start again on a fresh connection.
      const lostConnection = !err.code || err.code.startsWith('08') || err.code === '57P01';
      log(`${lostConnection ? 'connection lost' : 'unexpected error'} (${err.code || err.message}): reconnecting`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  log('stopped');
}

main();
