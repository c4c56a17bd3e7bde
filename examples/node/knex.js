'use strict';
// A payout table with Knex over node-postgres, and what each of the
// guide's driver advices does: prints "ok - ..." or "not ok - ..." for each.
//
//   PGHOST=... PGUSER=owner PGPASSWORD=... node examples/node/knex.js
//
// The role creates a table, so it needs CREATE on schema public and, for
// the table to keep history, EXECUTE on payout.record_history().
const knexFactory = require('knex');
const { types } = require('pg');

let failures = 0;
function check(description, passed, got) {
  if (!passed) failures += 1;
  console.log(`${passed ? 'ok' : 'not ok'} - knex: ${description}${passed ? '' : ` (got ${JSON.stringify(got)})`}`);
}

async function expectError(description, promise, code, constraint) {
  try {
    await promise;
    check(description, false, 'no error');
  } catch (err) {
    check(description, err.code === code && (constraint === undefined || err.constraint === constraint), {
      code: err.code,
      constraint: err.constraint,
      message: err.message,
    });
  }
}

async function main() {
  const knex = knexFactory({ client: 'pg', connection: { application_name: 'knex-example' } });
  try {
    // The extension's types exist already: existingType keeps Knex from
    // creating them, and dropTable never drops a type.
    // Without existingType, Knex would create the type.
    const naive = knex.schema
      .createTable('knex_naive', (t) => {
        t.enu('status', ['CREATED'], { useNative: true, enumName: 'status', schemaName: 'payout' });
      })
      .toSQL();
    check(
      'enu() without existingType writes CREATE TYPE payout.status',
      naive.some((q) => q.sql.startsWith('create type "payout"."status"')),
      naive.map((q) => q.sql),
    );

    await knex.schema.dropTableIfExists('knex_payouts');
    await knex.schema.createTable('knex_payouts', (t) => {
      t.bigInteger('id').primary();
      t.decimal('amount').notNullable();
      t.enu('status', null, { useNative: true, existingType: true, enumName: 'status', schemaName: 'payout' })
        .notNullable()
        .defaultTo('CREATED');
      t.enu('resolution', null, {
        useNative: true,
        existingType: true,
        enumName: 'resolution',
        schemaName: 'payout',
      });
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });
    await knex.raw('SELECT payout.attach(?)', ['knex_payouts']);
    check('a table with existingType enums attaches', true);

    await knex('knex_payouts').insert([
      { id: 1, amount: 10 },
      { id: 2, amount: 20 },
    ]);
    await knex('knex_payouts').update({ status: 'READY' });
    const [{ status }] = await knex('knex_payouts').where({ id: 1 }).select('status');
    check('an enum column reads as a string', status === 'READY', status);

    await expectError(
      'an illegal change rejects with code 23514 and the rule in err.constraint',
      knex('knex_payouts').where({ id: 1 }).update({ status: 'PROCESSED' }),
      '23514',
      'payout_status_transition',
    );

    // Knex turns ? into $1: an untyped parameter.
    await expectError(
      'payout.is_final(?) is ambiguous (42725)',
      knex.raw('SELECT payout.is_final(?) AS final', ['PROCESSED']),
      '42725',
    );
    const final = await knex.raw('SELECT payout.status_is_final(?) AS final', ['REVOKED']);
    check('payout.status_is_final(?) takes an untyped parameter', final.rows[0].final === true, final.rows);
    const group = await knex.raw('SELECT payout.resolution_group_of(?) AS g', ['CONNECTION_ERROR']);
    check('payout.resolution_group_of(?) answers ERROR', group.rows[0].g === 'ERROR', group.rows);

    // An array of an enum the driver does not know comes as its text.
    const raw = await knex.raw('SELECT payout.next_statuses(?) AS next', ['CREATED']);
    check('payout.next_statuses() without a cast is a string', raw.rows[0].next === '{READY,TERMINATED,EXPIRED}', raw.rows);
    const cast = await knex.raw('SELECT payout.next_statuses(?)::text[] AS next', ['CREATED']);
    check(
      'payout.next_statuses()::text[] is an array',
      JSON.stringify(cast.rows[0].next) === '["READY","TERMINATED","EXPIRED"]',
      cast.rows,
    );
    // Or teach the driver the array type, by its OID in this database.
    const oid = await knex.raw("SELECT 'payout.status[]'::regtype::oid AS oid");
    types.setTypeParser(Number(oid.rows[0].oid), types.getTypeParser(1009)); // 1009: text[]
    const parsed = await knex.raw('SELECT payout.next_statuses(?) AS next', ['READY']);
    check(
      'a type parser for payout.status[] makes arrays',
      JSON.stringify(parsed.rows[0].next) === '["TERMINATED","EXPIRED","INVOKING"]',
      parsed.rows,
    );

    // bigint (count(*), payout.expire()) comes as a string.
    const [{ n }] = await knex('knex_payouts').count('* as n');
    check('count(*) is a string', n === '2', n);
    const [{ m }] = await knex('knex_payouts').select(knex.raw('count(*)::integer AS m'));
    check('count(*)::integer is a number', m === 2, m);

    types.setTypeParser(20, (text) => parseInt(text, 10)); // 20: bigint, for every query from here on
    const [{ p }] = await knex('knex_payouts').select(knex.raw('count(*) AS p'));
    check('count(*) with a parser for bigint is a number', p === 2, p);

    await knex.schema.dropTable('knex_payouts');
    const type = await knex.raw("SELECT to_regtype('payout.status') IS NOT NULL AS kept");
    check('dropTable leaves payout.status alone', type.rows[0].kept === true, type.rows);
  } catch (err) {
    check(`no unexpected error`, false, { code: err.code, message: err.message });
  } finally {
    await knex.destroy();
  }
  process.exitCode = failures === 0 ? 0 : 1;
}

main();
