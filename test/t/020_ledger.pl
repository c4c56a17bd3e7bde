# 020_ledger.pl: the sealed history across a dump and restore, altered
# dumps, writers on several sessions while sealing runs, and sealing from
# pg_cron.
#
# Dump and restore.  A database keeps history in the default partition and
# in a partition a DBA added, of two tables, one of which was renamed and
# one dropped after their rows were sealed; it is sealed and its digest
# kept.  Restored with pg_restore into a fresh database of the same
# cluster and of a second cluster (regclass OIDs differ in both), the
# history verifies against that digest; it goes on being written, sealed
# and verified there, against the old digest and a new one, also after a
# rename in the restored database.  A plain dump altered by hand (a column
# of one history row, a row left out, a block's row count) and restored
# verifies as tampered, each alteration found at its block and row.
#
# Writers.  Four pgbench clients create payouts and move them along, one
# or two changes a transaction, while another session seals every 50 ms,
# and one sealer keeps its transaction open for a second: the server logs
# every lock wait of 10 ms or more, and none is a writer's (but waits to
# extend a table, which history has without the ledger); pgbench fails no
# transaction; the seals meanwhile seal most rows as they come; afterwards
# one more seal() seals every row, each exactly once, and the history
# verifies.
#
# Prepared transactions.  A prepared transaction that wrote history holds
# back sealing of every id after its own, across a restart, until it is
# committed.
#
# pg_cron.  payout.seal() scheduled every minute by a role that may only
# execute it, as doc/ledger.md recommends, seals the rows written before
# the job's next run.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $tempdir = PostgreSQL::Test::Utils::tempdir;

# verdict($node, $db, $digests): the findings of payout.verify(), one line
# each, "block|id|finding", in the order verify() gives them.
sub verdict
{
	my ($node, $db, $digests, $scope) = @_;
	my $args = defined $digests ? "'$digests'::jsonb" : 'NULL';
	$args .= ", $scope" if defined $scope;
	return $node->safe_psql($db,
		"SELECT format('%s|%s|%s', block, id, finding) FROM payout.verify($args)");
}

# digest($node, $db): the newest block's digest, as JSON.
sub digest
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		'SELECT row_to_json(d) FROM payout.digest() AS d');
}

#
# The source database.
#
my $node = PostgreSQL::Test::Cluster->new('source');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
log_lock_waits = on
deadlock_timeout = 10ms
max_prepared_transactions = 5
shared_preload_libraries = 'pg_cron'
cron.database_name = 'src'
cron.use_background_workers = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
	CREATE EXTENSION payout;
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		amount numeric NOT NULL DEFAULT 1,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
	SELECT payout.attach('payouts');
	CREATE TABLE refunds (id text PRIMARY KEY,
						  status payout.status NOT NULL DEFAULT 'CREATED');
	SELECT payout.attach('refunds', resolution_column => NULL);
	CREATE TABLE gone (id int PRIMARY KEY,
					   status payout.status NOT NULL DEFAULT 'CREATED');
	SELECT payout.attach('gone', resolution_column => NULL);
	INSERT INTO payouts (id) SELECT g FROM generate_series(1, 50) AS g;
	UPDATE payouts SET status = 'READY' WHERE id <= 30;
	INSERT INTO refunds (id) VALUES ('r1'), ('r2');
	INSERT INTO gone (id) VALUES (1), (2);
});
# A DBA's partition for the present, like the default one.
$node->safe_psql(
	'src', q{
	CREATE TABLE payout.history_recent (LIKE payout.history_catchall INCLUDING ALL);
	DO $$
	BEGIN
		EXECUTE format('ALTER TABLE payout.history ATTACH PARTITION payout.history_recent'
					   ' FOR VALUES FROM (%L) TO (%L)',
					   (SELECT max(clock_time) FROM payout.history) + interval '1 microsecond',
					   pg_catalog.now() + interval '1 day');
	END
	$$;
});
$node->safe_psql(
	'src', q{
	UPDATE payouts SET status = 'INVOKING' WHERE id <= 10;
	UPDATE refunds SET status = 'READY';
	UPDATE gone SET status = 'READY';
	SELECT payout.seal();
	-- renamed and dropped after their rows were sealed; seal() records it
	ALTER TABLE refunds RENAME TO refunds_2026;
	SELECT payout.detach('gone');
	DROP TABLE gone;
	UPDATE payouts SET status = 'PROCESSING' WHERE id <= 5;
	SELECT payout.seal();
});
is( $node->safe_psql(
		'src', q{
		SELECT tableoid::regclass, count(*) FROM payout.history
		GROUP BY 1 ORDER BY tableoid::regclass::text}),
	"payout.history_catchall|84\npayout.history_recent|19",
	'source: history in the default partition and in the DBA\'s');
is( $node->safe_psql(
		'src', q{
		SELECT string_agg(concat_ws(' -> ', f, coalesce(t, 'dropped')), ', ')
		FROM payout.ledger,
			 unnest(renamed_from_names, renamed_to_names, renamed_to_schemas) AS r(f, n, s),
			 LATERAL (SELECT CASE WHEN s IS NULL THEN NULL ELSE n END) AS x(t)}),
	'refunds -> refunds_2026, gone -> dropped',
	'source: the ledger records the rename and the drop');
my $d1 = digest($node, 'src');
is(verdict($node, 'src', $d1), '2|103|intact',
	'source: the sealed history verifies against its digest');

#
# Restored, from a custom-format archive, into a fresh database of the
# same cluster and of a second one.
#
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', "$tempdir/src.dump", '-d', $node->connstr('src') ],
	'pg_dump -Fc of the sealed history');
my $node2 = PostgreSQL::Test::Cluster->new('target');
$node2->init;
$node2->start;
foreach my $case ([ $node, 'same cluster' ], [ $node2, 'second cluster' ])
{
	my ($target, $where) = @$case;
	$target->safe_psql('postgres', 'CREATE DATABASE restored');
	$target->command_checks_all(
		[ 'pg_restore', '-d', $target->connstr('restored'), "$tempdir/src.dump" ],
		0, [], [qr/\A\z/], "$where: pg_restore prints nothing on stderr");
	is( $target->safe_psql(
			'restored', q{
			SELECT bool_and(t.oid <> 'payouts'::regclass::oid)
			FROM payout.ledger, unnest(table_oids, table_names) AS t(oid, name)
			WHERE t.name = 'payouts'}),
		't', "$where: the table has another OID than it was sealed under");
	is(verdict($target, 'restored', $d1), '2|103|intact',
		"$where: the restored history verifies against the digest taken before the dump");
	is(verdict($target, 'restored', $d1, q{tbl => 'refunds_2026', key => 'r1'}),
		'2|103|intact', "$where: the renamed table's payout verifies by its new name");
	# Life goes on: new changes, sealed here, verify against both digests.
	$target->safe_psql(
		'restored', q{
		UPDATE payouts SET status = 'READY' WHERE id BETWEEN 31 AND 35;
		UPDATE refunds_2026 SET status = 'INVOKING' WHERE id = 'r1';
		ALTER TABLE payouts RENAME TO payouts_eu;
		UPDATE payouts_eu SET status = 'INVOKING' WHERE id = 31;
	});
	is( $target->safe_psql(
			'restored', 'SELECT blocks, sealed_rows FROM payout.seal()'),
		'1|7', "$where: seal() seals the new rows");
	is( $target->safe_psql(
			'restored', q{
			SELECT renamed_from_names, renamed_to_names, table_names
			FROM payout.ledger WHERE block = 3}),
		'{payouts}|{payouts_eu}|{payouts_eu,refunds_2026}',
		"$where: the rename made after the restore is recorded under the table's new OID");
	my $d3 = digest($target, 'restored');
	is(verdict($target, 'restored', "[$d1, $d3]"), '3|110|intact',
		"$where: the history verifies against the old digest and the new one");
	is(verdict($target, 'restored', $d1, q{tbl => 'payouts_eu', key => '3'}),
		'3|110|intact',
		"$where: a payout sealed before the dump and the rename verifies by its newest name");
}

#
# An altered plain dump.
#
$node->command_ok(
	[ 'pg_dump', '-Fp', '-f', "$tempdir/src.sql", '-d', $node->connstr('src') ],
	'pg_dump -Fp of the sealed history');
my $script = slurp_file("$tempdir/src.sql");
my ($changed_id, $left_out_id) = (12, 90);
# id 12 (in the default partition): its user_name becomes mallory.
my $n = ($script =~ s/^($changed_id\t(?:[^\t\n]*\t){8})[^\t\n]*\t/$1mallory\t/m);
is($n, 1, 'altered dump: a history row\'s user_name changed');
# id 90 (in the DBA's partition): left out.
$n = ($script =~ s/^$left_out_id\t[^\n]*\n//m);
is($n, 1, 'altered dump: a history row left out');
# block 2: its row count changed.
$n = ($script =~ s/^(2\t1\t\\\\x[0-9a-f]{64}\t\d+\t\d+\t)(\d+)\t/$1 . ($2 + 1) . "\t"/me);
is($n, 1, 'altered dump: a block\'s row count changed');
open my $fh, '>', "$tempdir/altered.sql" or die;
print $fh $script;
close $fh;
$node2->safe_psql('postgres', 'CREATE DATABASE altered');
$node2->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', $node2->connstr('altered'), '-f', "$tempdir/altered.sql"
	],
	'the altered dump restores without an error');
my $found = verdict($node2, 'altered', $d1);
like($found, qr/^1\|$changed_id\|row changed$/m,
	'altered dump: the changed row is found at its block and id');
like($found, qr/^1\|$left_out_id\|row missing$/m,
	'altered dump: the row left out is found at its block and id');
like($found, qr/^2\|\|block altered$/m,
	'altered dump: the block whose row count changed is found');
like($found, qr/^2\|\|digest mismatch$/m,
	'altered dump: ... and it no longer matches its digest');
like($found, qr/\|tampered$/, 'altered dump: the verdict is tampered');
like(verdict($node2, 'altered', $d1, qq{tbl => 'payouts', key => '$changed_id'}),
	qr/^1\|$changed_id\|row changed$/m,
	'altered dump: the payout\'s own verification finds its changed row');

#
# Writers on four sessions while sealing runs: nobody waits for a lock.
#
$node->safe_psql(
	'src', q{
	CREATE SEQUENCE payout_ids START 1000;
	CREATE ROLE app LOGIN;
	GRANT SELECT, INSERT, UPDATE ON payouts TO app;
	GRANT USAGE ON SEQUENCE payout_ids TO app;
});
my $log_start = -s $node->logfile;
my $rows_before = $node->safe_psql('src', 'SELECT count(*) FROM payout.history');
append_to_file("$tempdir/writer.sql", q{
\set two random(0, 1)
BEGIN;
INSERT INTO payouts (id) VALUES (nextval('payout_ids'));
UPDATE payouts SET status = 'READY' WHERE id = currval('payout_ids') AND :two = 1;
COMMIT;
UPDATE payouts SET status = 'INVOKING' WHERE id = currval('payout_ids') AND status = 'READY';
});
my $sealer = $node->background_psql('src');
my $holder = $node->background_psql('src');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', '6',
		'-f', "$tempdir/writer.sql", '-U', 'app', '-d', $node->connstr('src')
	],
	'>', "$tempdir/pgbench.out", '2>', "$tempdir/pgbench.err");
my ($seals, $sealed) = (0, 0);
my $t0 = time;
while (time - $t0 < 6)
{
	if ($seals == 20)
	{
		# a sealer whose transaction stays open a second
		$holder->query_safe('BEGIN; SELECT payout.seal()');
		usleep(1_000_000);
		$holder->query_safe('COMMIT');
	}
	$sealed += (split /\|/, $sealer->query_safe('SELECT sealed_rows FROM payout.seal()'))[0];
	$seals++;
	usleep(50_000);
}
$pgbench->finish;
$sealer->quit;
$holder->quit;
my $pgbench_out = slurp_file("$tempdir/pgbench.out");
my $pgbench_err = slurp_file("$tempdir/pgbench.err");
note($pgbench_out);
like($pgbench_out, qr/number of failed transactions: 0 /,
	'writers: pgbench fails no transaction')
  or diag($pgbench_err);
my $written = $node->safe_psql('src', 'SELECT count(*) FROM payout.history') - $rows_before;
cmp_ok($seals, '>', 20, "writers: seal() ran $seals times meanwhile");
# The writers' rows are sealed as they go, each seal() up to the horizon
# the one before saw, not all at the end.
cmp_ok($sealed, '>=', $written / 2,
	"writers: those seals sealed $sealed of the $written rows written meanwhile");
my $log = slurp_file($node->logfile, $log_start);
my @waits = $log =~ /^.*still waiting for.*$/mg;
# (waits to extend a table are history's own, with or without the ledger)
is(scalar(grep { !/ShareRowExclusiveLock on relation \d+ |on extension of relation/ } @waits), 0,
	'writers: no lock wait of 10 ms or more but a sealer\'s for another sealer')
  or diag(join("\n", @waits));
$node->safe_psql('src', 'SELECT payout.seal()');
is( $node->safe_psql(
		'src', q{
		SELECT count(*) = (SELECT sum(row_count) FROM payout.ledger),
			   max(id) <= (SELECT max(last_id) FROM payout.ledger),
			   count(*) > 1000
		FROM payout.history}),
	't|t|t',
	'writers: afterwards every row is sealed, each once');
like(verdict($node, 'src', $d1), qr/\|intact$/,
	'writers: the history verifies against the digest taken before them');

#
# A prepared transaction that wrote history holds back sealing until it is
# committed, also across a restart, which it survives.
#
$node->safe_psql(
	'src', q{
	BEGIN;
	UPDATE payouts SET status = 'READY' WHERE id = 41;
	PREPARE TRANSACTION 'p1';
});
$node->safe_psql('src', q{UPDATE payouts SET status = 'READY' WHERE id = 42});
my $prepared_id = $node->safe_psql('src',
	q{SELECT max(id) FROM payout.history}) - 1;
is( $node->safe_psql('src', 'SELECT sealed_rows, waiting FROM payout.seal()'),
	'0|1', 'prepared: seal() seals nothing after its id, and waits for it');
$node->restart;
is( $node->safe_psql('src', 'SELECT sealed_rows, waiting FROM payout.seal()'),
	'0|1', 'prepared: after a restart, too');
$node->safe_psql('src', q{COMMIT PREPARED 'p1'});
is($node->safe_psql('src', 'SELECT sealed_rows FROM payout.seal()'),
	'2', 'prepared: once committed, its row and the row after it are sealed');
is( $node->safe_psql(
		'src', qq{
		SELECT count(*) FROM payout.history
		WHERE id >= $prepared_id AND id <= (SELECT max(last_id) FROM payout.ledger)}),
	'2', '... they are the two rows');
like(verdict($node, 'src', $d1), qr/\|intact$/,
	'prepared: the history verifies');

#
# pg_cron: a role that may only execute payout.seal() schedules it.
#
$node->safe_psql(
	'src', q{
	CREATE EXTENSION pg_cron;
	CREATE ROLE sealer LOGIN;
	GRANT EXECUTE ON FUNCTION payout.seal(bigint) TO sealer;
	GRANT USAGE ON SCHEMA cron TO sealer;
	UPDATE payouts SET status = 'READY' WHERE id BETWEEN 36 AND 40;
});
my $before = $node->safe_psql('src', 'SELECT max(block) FROM payout.ledger');
$node->safe_psql('src', q{SELECT cron.schedule('seal', '* * * * *', 'SELECT payout.seal()')},
	extra_params => [ '-U', 'sealer' ]);
my $deadline = time + 90;
while (time < $deadline
	&& $node->safe_psql(
		'src', q{
		SELECT count(*) FROM cron.job_run_details
		WHERE status IN ('succeeded', 'failed')}) == 0)
{
	usleep(500_000);
}
isnt($node->safe_psql('src', 'SELECT max(block) FROM payout.ledger'),
	$before, 'pg_cron: the job sealed a block');
is( $node->safe_psql(
		'src', q{
		SELECT d.status, j.username FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		ORDER BY d.runid LIMIT 1}),
	'succeeded|sealer', 'pg_cron: the job ran as the sealing role and succeeded');
is( $node->safe_psql(
		'src', q{
		SELECT count(*) FROM payout.history
		WHERE id > (SELECT max(last_id) FROM payout.ledger)}),
	'0', 'pg_cron: every row written before the run is sealed');

$node->stop;
$node2->stop;
done_testing();
