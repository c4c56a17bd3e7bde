'use strict';
// A moderator's tool: works through the moderation queue, releasing held
// payouts or ending them.
//
//   PGHOST=... PGUSER=moderator PGPASSWORD=... node examples/node/moderator.js [NAME]
//
// The role must be a member of the role named by payout.moderator_role,
// with the application's grants on the table.  Several people may share
// that role: each decision names the person in payout.actor, which
// payout.history records beside the role (the person is this tool's word,
// not something the database checked; here NAME stands in for them).  A
// person decides in a real back office; here a rule stands in for one:
// payouts whose key ends in 13 are ended (the recipient cannot be paid),
// the others released, to be processed.  Several moderators may work at once: each decision is an
// UPDATE that only changes a payout still held, so a payout another
// moderator decided first is left alone.  Stop it with SIGTERM or SIGINT.
const { Pool } = require('pg');

const name = process.argv[2] || 'moderator';
let stopping = false;

const QUEUE = `
SELECT id::text AS key, status, resolution, note
FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, created_at
LIMIT 50`;

// Released with resolution OK; the processors pick the payout up again.
const RELEASE = `
UPDATE payouts SET resolution = 'OK'
WHERE id = $1 AND payout.requires_moderation(status, resolution)`;

// Ended with a fatal resolution and the failure status of its stage.
const END = `
UPDATE payouts
SET resolution = 'GENERAL_FATAL_ERROR', status = payout.failure_status(status)
WHERE id = $1 AND payout.requires_moderation(status, resolution)`;

const log = (message) => console.log(`${name}: ${message}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Runs a decision in a transaction of its own, with payout.actor naming
// who decides: set_config(..., true) lasts until the transaction ends, so
// the pooled connection goes back without it.
async function decide(pool, sql, key) {
  const client = await pool.connect();
  let failed;
  try {
    await client.query('BEGIN');
    await client.query("SELECT set_config('payout.actor', $1, true)", [name]);
    const result = await client.query(sql, [key]);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failed = err;
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    // A client that failed goes, rather than back to the pool.
    client.release(failed);
  }
}

// Decides every payout of the queue once; returns how many it decided.
async function moderate(pool) {
  const { rows } = await pool.query(QUEUE);
  let decided = 0;
  for (const { key, status, resolution, note } of rows) {
    const end = key.endsWith('13');
    // A decision is one UPDATE, in a transaction that names who decides.
    const { rowCount } = await decide(pool, end ? END : RELEASE, key);
    if (rowCount === 1) {
      decided += 1;
      log(`${end ? 'ended' : 'released'} payout ${key} (${status}, ${resolution}${note ? ', note: ' + note : ''})`);
    }
  }
  return decided;
}

async function main() {
  process.on('SIGTERM', () => (stopping = true));
  process.on('SIGINT', () => (stopping = true));
  // A pool replaces a connection that was lost; an idle one that breaks
  // emits 'error' on the pool, which must be listened to.
  const pool = new Pool({ application_name: name, max: 1 });
  pool.on('error', (err) => log(`connection lost (${err.code || err.message}): the pool reconnects`));
  while (!stopping) {
    try {
      // No channel announces holds: look at the queue now and then.
      if ((await moderate(pool)) === 0) await sleep(300);
    } catch (err) {
      log(`connection lost (${err.code || err.message}): retrying`);
      await sleep(500);
    }
  }
  await pool.end();
  log('stopped');
}

main();
