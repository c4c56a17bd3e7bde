# 020_ledger.pl: the sealed history across a dump and restore, altered
# dumps, writers on several sessions while sealing runs, and sealing from
# pg_cron.
#
# Dump and restore.  A database keeps history in the default partition and
# in a partition a DBA added, of several tables: one renamed and one
# dropped between two blocks, and, after the last block, one renamed and
# one dropped more, with nothing sealed since; one table's keys and one
# actor are not ASCII.  It is sealed and its digest kept.  Restored with
# pg_restore into a fresh database of the same cluster, of a second
# cluster (the auditor's server, where verify() is checked to be the
# extension's own), and of a LATIN1 database there (regclass OIDs differ
# in all of them), the history verifies against that digest; it goes on
# being written, sealed and verified there, against the old digest and a
# new one, also after a rename in the restored database.  Restored into a
# third cluster whose next OID is the dropped table's old one, so that
# the dropped table's rows name a new, unrelated table there, it still
# verifies, and verify() shows the table its rows now name.  A plain dump
# altered by hand (a column of one history row, a row left out, a block's
# row count) and restored verifies as tampered, each alteration found at
# its block and row.
#
# Writers.  Four pgbench clients create payouts (by INSERT and by COPY)
# and move them along, one or two changes a transaction, some in a
# subtransaction rolled back, while another session seals every 50 ms,
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
# pg_cron.  payout.seal_backlog() scheduled every minute by a role that may
# only execute it and payout.seal(), as doc/ledger.md recommends, seals
# the rows written before the job's next run.

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
	CREATE TABLE late (id int PRIMARY KEY,
					   status payout.status NOT NULL DEFAULT 'CREATED');
	SELECT payout.attach('late', resolution_column => NULL);
	CREATE TABLE late_gone (id int PRIMARY KEY,
							status payout.status NOT NULL DEFAULT 'CREATED');
	SELECT payout.attach('late_gone', resolution_column => NULL);
	INSERT INTO payouts (id) SELECT g FROM generate_series(1, 50) AS g;
	UPDATE payouts SET status = 'READY' WHERE id <= 30;
	INSERT INTO refunds (id) VALUES ('r1'), ('r2'), (U&'r\00E9');
	INSERT INTO gone (id) VALUES (1), (2);
	INSERT INTO late (id) VALUES (1);
	INSERT INTO late_gone (id) VALUES (1);
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
	BEGIN;
	SELECT set_config('payout.actor', U&'Jos\00E9', true);
	UPDATE refunds SET status = 'READY';
	COMMIT;
	UPDATE gone SET status = 'READY';
	SELECT payout.seal();
	-- renamed and dropped between two blocks
	ALTER TABLE refunds RENAME TO refunds_2026;
	SELECT payout.detach('gone');
	DROP TABLE gone;
	UPDATE payouts SET status = 'PROCESSING' WHERE id <= 5;
	SELECT payout.seal();
	-- renamed and dropped after the last block, nothing sealed since
	ALTER TABLE late RENAME TO late_renamed;
	SELECT payout.detach('late_gone');
	DROP TABLE late_gone;
});
is( $node->safe_psql(
		'src', q{
		SELECT tableoid::regclass, count(*) FROM payout.history
		GROUP BY 1 ORDER BY tableoid::regclass::text}),
	"payout.history_catchall|87\npayout.history_recent|20",
	'source: history in the default partition and in the DBA\'s');
is( $node->safe_psql(
		'src', q{
		SELECT string_agg(format('%s:%s', block, array_to_string(table_names, ',', 'dropped')), ' ' ORDER BY block)
		FROM payout.ledger}),
	'1:payouts,refunds,gone,late,late_gone 2:payouts',
	'source: each block names its tables as they were called when sealed');
like( $node->safe_psql(
		'src', q{
		SELECT string_agg(format('%s:%s', number, tbl), ' ' ORDER BY number)
		FROM payout.ledger_tables}),
	qr/^1:payouts 2:refunds_2026 3:\d+ 4:late_renamed 5:\d+$/,
	'source: payout.ledger_tables maps each table to its number, a dropped one by its old OID');
my $d1 = digest($node, 'src');
is( verdict($node, 'src', $d1),
	"1||table renamed\n1||table dropped\n1||table renamed\n1||table dropped\n2|107|intact",
	'source: the sealed history verifies against its digest; the renamed and dropped tables are shown');
my $gone_oid = $node->safe_psql('src',
	q{SELECT tbl::oid FROM payout.ledger_tables WHERE number = 3});
my $late_gone_oid = $node->safe_psql('src',
	q{SELECT tbl::oid FROM payout.ledger_tables WHERE number = 5});
my $payouts_oid = $node->safe_psql('src', q{SELECT 'payouts'::regclass::oid});

#
# Restored, from a custom-format archive, into a fresh database of the
# same cluster, of a second one (the auditor's server) and of a LATIN1
# database there.
#
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', "$tempdir/src.dump", '-d', $node->connstr('src') ],
	'pg_dump -Fc of the sealed history');
my $node2 = PostgreSQL::Test::Cluster->new('target');
$node2->init;
$node2->start;
$node2->safe_psql('postgres',
	q{CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0});
foreach my $case ([ $node, 'restored', 'same cluster' ],
	[ $node2, 'restored', 'second cluster' ],
	[ $node2, 'latin', 'LATIN1 database' ])
{
	my ($target, $db, $where) = @$case;
	$target->safe_psql('postgres', "CREATE DATABASE $db") if $db eq 'restored';
	$target->command_checks_all(
		[ 'pg_restore', '-d', $target->connstr($db), "$tempdir/src.dump" ],
		0, [], [qr/\A\z/], "$where: pg_restore prints nothing on stderr");
	isnt($target->safe_psql($db, q{SELECT 'payouts'::regclass::oid}),
		$payouts_oid, "$where: the table has another OID than it was sealed under");
	# What the auditor checks first, in a server of their own: verify() is
	# the function of the payout package installed there.
	is( $target->safe_psql(
			$db, q{
			SELECT p.probin, p.prosrc, e.extversion
			FROM pg_proc p, pg_extension e
			WHERE p.oid = 'payout.verify(jsonb, regclass, text, interval)'::regprocedure
			  AND e.extname = 'payout'}),
		'$libdir/payout|payout_verify|1.2',
		"$where: payout.verify() is the extension's own");
	# The dropped tables' rows keep their old OIDs, which may name another
	# relation here; verify() then lists those table numbers as renamed,
	# else as dropped.
	my ($gone, $late_gone) = map {
		$target->safe_psql($db, "SELECT count(*) FROM pg_class WHERE oid = $_")
		  ? '1||table renamed' : '1||table dropped'
	} ($gone_oid, $late_gone_oid);
	is( verdict($target, $db, $d1),
		"1||table renamed\n$gone\n1||table renamed\n$late_gone\n2|107|intact",
		"$where: the restored history verifies against the digest taken before the dump");
	is(verdict($target, $db, $d1, q{tbl => 'refunds_2026', key => 'r1'}),
		'1||table renamed' . "\n" . '2|107|intact',
		"$where: the renamed table's payout verifies by its new name");
	is(verdict($target, $db, $d1, q{tbl => 'late_renamed', retention => '1 year'}),
		'1||table renamed' . "\n" . '2|107|intact',
		"$where: the table renamed after the last block verifies by its new name");
	is( $target->safe_psql(
			$db, q{SELECT key, actor FROM payout.history WHERE key LIKE 'r_' AND actor IS NOT NULL ORDER BY id DESC LIMIT 1}),
		"r\x{e9}|Jos\x{e9}", "$where: keys and actors that are not ASCII are restored")
	  if $db eq 'latin';
	# Life goes on: new changes, sealed here, verify against both digests.
	$target->safe_psql(
		$db, q{
		UPDATE payouts SET status = 'READY' WHERE id BETWEEN 31 AND 35;
		UPDATE refunds_2026 SET status = 'INVOKING' WHERE id = 'r1';
		ALTER TABLE payouts RENAME TO payouts_eu;
		UPDATE payouts_eu SET status = 'INVOKING' WHERE id = 31;
	});
	is($target->safe_psql($db, 'SELECT blocks, sealed_rows FROM payout.seal()'),
		'1|7', "$where: seal() seals the new rows");
	is( $target->safe_psql(
			$db, q{SELECT table_numbers, table_names FROM payout.ledger WHERE block = 3}),
		'{1,2}|{payouts_eu,refunds_2026}',
		"$where: the new block names the tables by their numbers, as they are called now");
	my $d3 = digest($target, $db);
	is( verdict($target, $db, "[$d1, $d3]"),
		"$gone\n1||table renamed\n$late_gone\n3|114|intact",
		"$where: the history verifies against the old digest and the new one");
	is(verdict($target, $db, $d1, q{tbl => 'payouts_eu', key => '3'}),
		'3|114|intact',
		"$where: a payout sealed before the dump and the rename verifies by its newest name");
}

#
# A third cluster whose next OID is the dropped table's old one: its rows,
# restored with that number, name a new table there.
#
my $node3 = PostgreSQL::Test::Cluster->new('collide');
$node3->init;
$node3->start;
$node3->safe_psql('postgres', 'CREATE DATABASE restored');
$node3->stop;
$node3->command_ok([ 'pg_resetwal', '-o', $gone_oid, $node3->data_dir ],
	'collision: the next OID is the dropped table\'s old one');
$node3->start;
$node3->safe_psql('restored', 'CREATE TABLE unrelated (id int PRIMARY KEY)');
$node3->command_ok(
	[ 'pg_restore', '-d', $node3->connstr('restored'), "$tempdir/src.dump" ],
	'collision: pg_restore');
is($node3->safe_psql('restored', q{SELECT 'unrelated'::regclass::oid}),
	$gone_oid, 'collision: an unrelated table has the dropped table\'s old OID');
is( $node3->safe_psql('restored',
		q{SELECT count(*) FROM payout.history WHERE tbl = 'unrelated'::regclass}),
	'4', 'collision: the dropped table\'s rows name it');
like( $node3->safe_psql('restored',
		"SELECT string_agg(format('%s|%s|%s', block, finding, detail), E'\\n') FROM payout.verify('$d1'::jsonb)"),
	qr/^1\|table renamed\|Table number 3, whose rows were last sealed in block 1 under the name public\.gone, is public\.unrelated now/m,
	'collision: verify() shows that the dropped table\'s number maps to the unrelated table');
like(verdict($node3, 'restored', $d1), qr/\n2\|107\|intact$/,
	'collision: the history verifies against the digest taken before the dump');
$node3->safe_psql('restored', q{UPDATE payouts SET status = 'READY' WHERE id = 40});
is( $node3->safe_psql('restored', 'SELECT blocks, sealed_rows FROM payout.seal()'),
	'1|1', 'collision: seal() seals a new row');
is( $node3->safe_psql('restored', 'SELECT table_names FROM payout.ledger WHERE block = 3'),
	'{payouts}', '... and records nothing of the unrelated table');
like(verdict($node3, 'restored', digest($node3, 'restored')), qr/\n3\|108\|intact$/,
	'collision: the history verifies against the new digest');
$node3->stop;

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
	ALTER TABLE payouts ALTER COLUMN id SET DEFAULT nextval('payout_ids');
	CREATE ROLE app LOGIN;
	GRANT SELECT, INSERT, UPDATE ON payouts TO app;
	GRANT USAGE ON SEQUENCE payout_ids TO app;
	GRANT pg_execute_server_program TO app;
});
my $log_start = -s $node->logfile;
my $rows_before = $node->safe_psql('src', 'SELECT count(*) FROM payout.history');
# One or two changes a transaction, one of them sometimes undone by a
# rollback to a savepoint (its history id is a hole); and payouts loaded
# by COPY, three at a time.
append_to_file("$tempdir/writer.sql", q{
\set two random(0, 1)
BEGIN;
INSERT INTO payouts (id) VALUES (nextval('payout_ids'));
SAVEPOINT undo;
UPDATE payouts SET status = 'READY' WHERE id = currval('payout_ids');
ROLLBACK TO SAVEPOINT undo;
UPDATE payouts SET status = 'READY' WHERE id = currval('payout_ids') AND :two = 1;
COMMIT;
UPDATE payouts SET status = 'INVOKING' WHERE id = currval('payout_ids') AND status = 'READY';
});
append_to_file("$tempdir/copy.sql", q{
COPY payouts (amount) FROM PROGRAM 'seq 1 3';
UPDATE payouts SET status = 'READY' WHERE id = currval('payout_ids');
});
my $sealer = $node->background_psql('src');
my $holder = $node->background_psql('src');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '4', '-j', '2', '-T', '6',
		'-f', "$tempdir/writer.sql\@3", '-f', "$tempdir/copy.sql\@1",
		'-U', 'app', '-d', $node->connstr('src')
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
cmp_ok( $node->safe_psql(
		'src', q{
		SELECT count(*) FROM generate_series((SELECT min(id) FROM payout.history WHERE tbl = 'payouts'::regclass AND key::bigint >= 1000),
											 (SELECT max(last_id) FROM payout.ledger)) AS g(id)
		WHERE NOT EXISTS (SELECT FROM payout.history h WHERE h.id = g.id)}),
	'>', 0, 'writers: the rolled-back subtransactions left holes in the sealed ranges');
cmp_ok( $node->safe_psql(
		'src', q{SELECT count(*) FROM payouts WHERE id >= 1000 AND amount IN (2, 3)}),
	'>', 0, 'writers: payouts were loaded by COPY meanwhile');

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
# pg_cron: a role that may only execute payout.seal() and
# payout.seal_backlog() schedules the latter.
#
$node->safe_psql(
	'src', q{
	CREATE EXTENSION pg_cron;
	CREATE ROLE sealer LOGIN;
	GRANT EXECUTE ON FUNCTION payout.seal(bigint) TO sealer;
	GRANT EXECUTE ON PROCEDURE payout.seal_backlog(bigint) TO sealer;
	GRANT USAGE ON SCHEMA cron TO sealer;
	UPDATE payouts SET status = 'READY' WHERE id BETWEEN 36 AND 40;
});
my $before = $node->safe_psql('src', 'SELECT max(block) FROM payout.ledger');
$node->safe_psql('src', q{SELECT cron.schedule('seal', '* * * * *', 'CALL payout.seal_backlog()')},
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
