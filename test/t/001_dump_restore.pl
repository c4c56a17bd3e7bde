# 001_dump_restore.pl: a customized transition graph survives pg_dump and
# restore in both directions.
#
# The install script seeds payout.transition with the shipped defaults and
# marks it for dumping with a filter that keeps only rows which are not
# defaults; payout.transition_removed, kept up to date by triggers, records
# the defaults a DBA deleted and is dumped whole.  On restore, CREATE
# EXTENSION seeds the defaults again, the dumped rows add the DBA's edges,
# and loading payout.transition_removed deletes the removed defaults.  A
# dump that also held the defaults would fail with duplicate keys; a filter
# that only skipped defaults would silently bring deleted edges back.
#
# The audit history survives too.  payout.history is partitioned by
# clock_time; its default partition, payout.history_catchall, belongs to the
# extension and is marked for dumping, while a partition that a DBA added is
# an ordinary table, dumped whole and attached again on restore.  Both keep
# their rows, the partition keeps its indexes, the restore prints no error
# (which it would if the partitioned table had indexes of its own), and the
# id sequence goes on where it was.
#
# So do the provider codes: payout.provider_code is dumped whole, and
# payout.classify() answers with the restored mappings, from a cache that
# follows the table.  A session that is already connected while pg_restore
# loads the data (restored section by section) sees the rows without
# reconnecting.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tempdir = PostgreSQL::Test::Utils::tempdir;

# The graph as one line per edge, "-" standing for NULL (a new payout),
# sorted in enum order.
my $graph_query = q{
	SELECT coalesce(from_status::text, '-') || ' ' || to_status::text
	FROM payout.transition
	ORDER BY from_status NULLS FIRST, to_status};
my $removed_query = q{
	SELECT coalesce(from_status::text, '-') || ' ' || to_status::text
	FROM payout.transition_removed
	ORDER BY from_status NULLS FIRST, to_status};
my $default_query = q{
	SELECT coalesce(from_status::text, '-') || ' ' || to_status::text
	FROM payout.default_transition
	ORDER BY from_status NULLS FIRST, to_status};
my $rows_query = q{SELECT id, status FROM payouts ORDER BY id};
my $codes_query = q{
	SELECT provider, code, resolution FROM payout.provider_code
	ORDER BY provider COLLATE "C", code COLLATE "C"};
# classify() on the mapped pairs, named here rather than read from the table.
my $classify_query = q{
	SELECT p, c, payout.classify(p, c)
	FROM (VALUES ('acme', '0'), ('acme', 'E_BUSY'), ('acme', 'E_FUNDS'),
				 ('globex', '0'), ('globex', 'E_FUNDS'), ('initech', '051')) v(p, c)
	ORDER BY p COLLATE "C", c COLLATE "C"};
# The mappings of the source, in that order: OK, and resolutions of the
# ERROR group (GENERAL_ERROR, CONNECTION_TIMEOUT_ERROR) and of the
# FATAL_ERROR group (INSUFFICIENT_FUNDS, DECLINED_ERROR).
my $expected_codes = join("\n",
	'acme|0|OK', 'acme|E_BUSY|GENERAL_ERROR', 'acme|E_FUNDS|INSUFFICIENT_FUNDS',
	'globex|0|OK', 'globex|E_FUNDS|DECLINED_ERROR',
	'initech|051|CONNECTION_TIMEOUT_ERROR');
# Every history row with the partition that holds it.
my $history_query = q{
	SELECT tableoid::regclass, id, tbl, key, old_status, new_status,
		   old_resolution, new_resolution, xact_time, clock_time, xid
	FROM payout.history ORDER BY id};
# The partitions of payout.history, their bounds and their indexes.
my $partitions_query = q{
	SELECT c.oid::regclass, pg_get_expr(c.relpartbound, c.oid),
		   (SELECT string_agg(pg_get_indexdef(x.indexrelid), '; '
							   ORDER BY pg_get_indexdef(x.indexrelid))
			FROM pg_index x WHERE x.indrelid = c.oid)
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'payout.history'::regclass
	ORDER BY c.oid::regclass::text};

# try_sql($node, $db, $sql): "ok" if the statement succeeds, else the
# SQLSTATE it failed with.
sub try_sql
{
	my ($node, $db, $sql) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql(
		$db, "\\set VERBOSITY sqlstate\n$sql",
		stdout => \$stdout,
		stderr => \$stderr);
	return 'ok' if $ret == 0;
	return $1 if $stderr =~ /ERROR:\s+([0-9A-Z]{5})/;
	return "failed: $stderr";
}

# restore_ok($node, $db, $cmd, $name): create $db on $node, run $cmd (an
# array) against it, and check that it succeeded without printing anything
# on stderr: duplicate keys or any other failed statement would show there.
sub restore_ok
{
	my ($node, $db, $cmd, $name) = @_;
	$node->safe_psql('postgres', qq{CREATE DATABASE "$db"});
	$node->command_checks_all([ @$cmd, '-d', $node->connstr($db) ],
		0, [], [qr/\A\z/], $name);
	return;
}

# dumped_rows($script, $table): the data rows of $table's COPY block in a
# plain-format dump, sorted.
sub dumped_rows
{
	my ($script, $table) = @_;
	my ($block) = $script =~ /^COPY \Q$table\E \([^)]*\) FROM stdin;\n(.*?)^\\\.$/ms;
	return undef unless defined $block;
	return join("\n", sort split /\n/, $block);
}

# check_restored($node, $db, $what): the restored database has the source's
# history, graph, removals, rows and provider codes, its trigger follows
# that graph, its history goes on, and classify() follows the codes.
my ($src_graph, $src_removed, $src_rows, $src_history, $src_partitions,
	$src_last_id, $src_codes);

sub check_restored
{
	my ($node, $db, $what) = @_;

	is($node->safe_psql($db, $history_query),
		$src_history,
		"$what: payout.history equals the source's, row by row and partition by partition");
	is($node->safe_psql($db, $partitions_query),
		$src_partitions,
		"$what: payout.history has the source's partitions, bounds and indexes");
	is($node->safe_psql($db, 'SELECT last_value FROM payout.history_id_seq'),
		$src_last_id, "$what: payout.history_id_seq is where the source's was");
	is($node->safe_psql($db, $graph_query),
		$src_graph, "$what: payout.transition equals the source's");
	is($node->safe_psql($db, $removed_query),
		$src_removed, "$what: payout.transition_removed equals the source's");
	is($node->safe_psql($db, $rows_query),
		$src_rows, "$what: the payouts rows equal the source's");
	is( $node->safe_psql(
			$db, q{SELECT count(*) FROM pg_trigger
			WHERE tgrelid = 'payouts'::regclass AND tgname = 'zz_payout_enforce'}),
		'1',
		"$what: the trigger is attached to the restored table");

	# Row 1 is CREATED, row 2 READY, row 3 PROCESSED (see the source).
	is(try_sql($node, $db, q{UPDATE payouts SET status = 'TERMINATED' WHERE id = 1}),
		'ok', "$what: a default edge (CREATED -> TERMINATED) is allowed");
	is(try_sql($node, $db, q{UPDATE payouts SET status = 'PROCESSING' WHERE id = 2}),
		'23514', "$what: an edge that never existed (READY -> PROCESSING) is rejected");
	is(try_sql($node, $db, q{UPDATE payouts SET status = 'REVOKING' WHERE id = 3}),
		'23514', "$what: a removed default edge (PROCESSED -> REVOKING) is rejected");
	is(try_sql($node, $db, q{UPDATE payouts SET status = 'CANCELLING' WHERE id = 2}),
		'ok', "$what: an added edge (READY -> CANCELLING) is allowed");
	is(try_sql($node, $db, q{INSERT INTO payouts (id, status) VALUES (4, 'READY')}),
		'ok', "$what: an added initial edge (new -> READY) is allowed");
	is( try_sql(
			$node, $db,
			q{INSERT INTO payouts (id, status) VALUES (5, 'CREATE_FAILED')}),
		'23514',
		"$what: a removed initial edge (new -> CREATE_FAILED) is rejected");
	is($node->safe_psql($db, $rows_query),
		"1|TERMINATED\n2|CANCELLING\n3|PROCESSED\n4|READY",
		"$what: only the allowed changes were stored");
	# The three accepted changes are recorded with new ids, after the
	# source's, in the DBA's partition, which covers the present.
	is( $node->safe_psql(
			$db, qq{
			SELECT tableoid::regclass, key, old_status, new_status
			FROM payout.history WHERE id > $src_last_id ORDER BY id}),
		"payout.history_recent|1|CREATED|TERMINATED\n"
		  . "payout.history_recent|2|READY|CANCELLING\n"
		  . "payout.history_recent|4||READY",
		"$what: new changes continue the id sequence in the DBA's partition");
	is( $node->safe_psql(
			$db, q{SELECT count(*) = count(DISTINCT id) FROM payout.history}),
		't', "$what: history ids are unique across partitions");

	is($node->safe_psql($db, $codes_query),
		$src_codes, "$what: payout.provider_code equals the source's");
	# One session loads its cache of the codes, another edits them: an
	# edited, an added and a deleted mapping reach the first session.
	my $session = $node->background_psql($db);
	is($session->query_safe($classify_query),
		$expected_codes, "$what: classify() returns the restored mappings");
	$node->safe_psql(
		$db, q{
		UPDATE payout.provider_code SET resolution = 'OK'
		WHERE provider = 'acme' AND code = 'E_BUSY';
		INSERT INTO payout.provider_code VALUES ('globex', 'E_LIMIT', 'LIMIT_VIOLATION');
		DELETE FROM payout.provider_code WHERE provider = 'globex' AND code = '0';
	});
	is( $session->query_safe(
			q{SELECT payout.classify('acme', 'E_BUSY'), payout.classify('globex', 'E_LIMIT'),
				payout.classify('globex', '0')}),
		'OK|LIMIT_VIOLATION|UNKNOWN',
		"$what: a session's classify() cache follows edits of the restored codes");
	$session->quit;
	return;
}

my $node = PostgreSQL::Test::Cluster->new('source');
$node->init;
$node->start;

#
# A graph customized in both directions.
#
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql(
	'src', q{
	CREATE EXTENSION payout;

	INSERT INTO payout.provider_code (provider, code, resolution) VALUES
		('acme', '0', 'OK'),
		('acme', 'E_BUSY', 'GENERAL_ERROR'),
		('acme', 'E_FUNDS', 'INSUFFICIENT_FUNDS'),
		('globex', '0', 'OK'),
		('globex', 'E_FUNDS', 'DECLINED_ERROR'),
		('initech', '051', 'CONNECTION_TIMEOUT_ERROR');

	-- added: an edge and an initial status
	INSERT INTO payout.transition (from_status, to_status)
	VALUES ('READY', 'CANCELLING'), (NULL, 'READY');
	-- removed: a default edge and a default initial status
	DELETE FROM payout.transition
	WHERE from_status = 'PROCESSED' AND to_status = 'REVOKING';
	DELETE FROM payout.transition
	WHERE from_status IS NULL AND to_status = 'CREATE_FAILED';

	CREATE TABLE payouts (
		id integer PRIMARY KEY,
		status payout.status NOT NULL,
		resolution payout.resolution
	);
	SELECT payout.attach('payouts');
	INSERT INTO payouts (id, status) VALUES (1, 'CREATED'), (2, 'READY'), (3, 'CREATED');
	UPDATE payouts SET status = 'READY' WHERE id = 3;
	UPDATE payouts SET status = 'INVOKING' WHERE id = 3;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 3;
	UPDATE payouts SET status = 'PROCESSED' WHERE id = 3;
});

# The history so far is in the default partition.  A DBA adds a partition
# for the present (LIKE the default one, for its indexes), from just after
# the last recorded change on; the next changes land there.
$node->safe_psql(
	'src', q{
	CREATE TABLE ledger (
		id integer PRIMARY KEY,
		status payout.status NOT NULL
	);
	SELECT payout.attach('ledger');
	INSERT INTO ledger VALUES (1, 'CREATED'), (2, 'CREATED');
	UPDATE ledger SET status = 'READY' WHERE id = 1;

	CREATE TABLE payout.history_recent
		(LIKE payout.history_catchall INCLUDING ALL);
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
	UPDATE ledger SET status = 'INVOKING' WHERE id = 1;
	UPDATE ledger SET status = 'READY' WHERE id = 2;
});
is( $node->safe_psql(
		'src', q{
		SELECT tableoid::regclass, count(*) FROM payout.history
		GROUP BY 1 ORDER BY tableoid::regclass::text}),
	"payout.history_catchall|10\npayout.history_recent|2",
	"source: history rows in the default partition and in the DBA's partition");

$src_graph = $node->safe_psql('src', $graph_query);
$src_removed = $node->safe_psql('src', $removed_query);
$src_rows = $node->safe_psql('src', $rows_query);
$src_history = $node->safe_psql('src', $history_query);
$src_partitions = $node->safe_psql('src', $partitions_query);
$src_last_id = $node->safe_psql('src', 'SELECT last_value FROM payout.history_id_seq');
$src_codes = $node->safe_psql('src', $codes_query);

my $defaults = $node->safe_psql('src', $default_query);
my @expected_graph = grep {
	$_ ne 'PROCESSED REVOKING' && $_ ne '- CREATE_FAILED'
} split /\n/, $defaults;
push @expected_graph, 'READY CANCELLING', '- READY';
is( join("\n", sort @expected_graph),
	join("\n", sort split /\n/, $src_graph),
	'source: the graph is the defaults plus the added and minus the removed edges');
is( $src_removed,
	"- CREATE_FAILED\nPROCESSED REVOKING",
	'source: payout.transition_removed lists the two removed defaults');
is($src_rows, "1|CREATED\n2|READY\n3|PROCESSED", 'source: the payouts rows');
is(try_sql($node, 'src', q{UPDATE payouts SET status = 'REVOKING' WHERE id = 3}),
	'23514', 'source: the removed edge PROCESSED -> REVOKING is rejected');
is($src_codes, $expected_codes, 'source: payout.provider_code holds the mappings');
is( $node->safe_psql(
		'src', q{
		SELECT string_agg(DISTINCT payout.resolution_group(resolution)::text, ' ')
		FROM payout.provider_code}),
	'ERROR FATAL_ERROR OK',
	'source: the mapped resolutions are of all three groups');
is($node->safe_psql('src', $classify_query),
	$expected_codes, 'source: classify() returns the mapped resolutions');

#
# What the dump holds: only the changes, never the seeded defaults.
#
$node->command_ok(
	[ 'pg_dump', '-Fp', '-f', "$tempdir/src.sql", '-d', $node->connstr('src') ],
	'pg_dump -Fp of the customized graph');
my $script = slurp_file("$tempdir/src.sql");
is(dumped_rows($script, 'payout.transition'),
	"READY\tCANCELLING\n\\N\tREADY",
	'plain dump: payout.transition holds the added edges only');
is(dumped_rows($script, 'payout.transition_removed'),
	"PROCESSED\tREVOKING\n\\N\tCREATE_FAILED",
	'plain dump: payout.transition_removed holds the removed defaults');
is(dumped_rows($script, 'payout.default_transition'),
	undef, 'plain dump: payout.default_transition has no data in the dump');
is(scalar(split /\n/, dumped_rows($script, 'payout.history_catchall') // ''),
	10, 'plain dump: the default partition of payout.history holds its 10 rows');
is(scalar(split /\n/, dumped_rows($script, 'payout.history_recent') // ''),
	2, "plain dump: the DBA's partition of payout.history holds its 2 rows");
unlike($script, qr/^COPY payout\.history \(/m,
	'plain dump: nothing is copied into the partitioned table itself');
like(
	$script,
	qr/^ALTER TABLE ONLY payout\.history ATTACH PARTITION payout\.history_recent FOR VALUES FROM /m,
	"plain dump: the DBA's partition is attached again on restore");
is( dumped_rows($script, 'payout.provider_code'),
	join("\n", sort map { join("\t", split /\|/) } split /\n/, $expected_codes),
	'plain dump: payout.provider_code holds every mapping');

#
# pg_dump -Fc, pg_restore into a fresh database on the same node.
#
$node->command_ok(
	[ 'pg_dump', '-Fc', '-f', "$tempdir/src.dump", '-d', $node->connstr('src') ],
	'pg_dump -Fc of the customized graph');
restore_ok($node, 'restored', [ 'pg_restore', "$tempdir/src.dump" ],
	'pg_restore into a fresh database on the same node');
check_restored($node, 'restored', 'pg_restore, same node');

#
# The same archive on a second, fresh node.
#
my $node2 = PostgreSQL::Test::Cluster->new('target');
$node2->init;
$node2->start;
restore_ok($node2, 'restored', [ 'pg_restore', "$tempdir/src.dump" ],
	'pg_restore into a fresh database on a second node');
check_restored($node2, 'restored', 'pg_restore, second node');

#
# The plain-format dump, restored with psql.
#
restore_ok(
	$node2, 'restored_plain',
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$tempdir/src.sql" ],
	'psql restores the plain-format dump into a fresh database');
check_restored($node2, 'restored_plain', 'plain dump restored with psql');

#
# The archive restored section by section, with a session connected from
# the start: it loads its cache of the provider codes while the table is
# still empty, and sees the codes once the data section has been loaded.
#
restore_ok($node2, 'restored_sections',
	[ 'pg_restore', '--section=pre-data', "$tempdir/src.dump" ],
	'pg_restore --section=pre-data into a fresh database');
my $early = $node2->background_psql('restored_sections', on_error_stop => 0);
$early->query(
	"\\set VERBOSITY sqlstate\nSELECT payout.classify('acme', '0')");
like($early->{stderr}, qr/ERROR:\s+22023/,
	'pg_restore by sections, before the data: classify() knows no provider');
$early->{stderr} = '';
$node2->command_checks_all(
	[
		'pg_restore', '--section=data', "$tempdir/src.dump",
		'-d', $node2->connstr('restored_sections')
	],
	0, [], [qr/\A\z/],
	'pg_restore --section=data');
is(scalar($early->query($classify_query)),
	$expected_codes,
	'pg_restore by sections: a session connected before the data sees the restored codes');
$early->quit;
$node2->command_checks_all(
	[
		'pg_restore', '--section=post-data', "$tempdir/src.dump",
		'-d', $node2->connstr('restored_sections')
	],
	0, [], [qr/\A\z/],
	'pg_restore --section=post-data');
check_restored($node2, 'restored_sections', 'pg_restore by sections');

#
# An unmodified graph: nothing of it is dumped, and it comes back as the
# defaults, with no duplicate keys.
#
$node->safe_psql('postgres', 'CREATE DATABASE pristine');
$node->safe_psql('pristine', 'CREATE EXTENSION payout');
is($node->safe_psql('pristine', $graph_query),
	$defaults, 'pristine: a new install has the default graph');
$node->command_ok(
	[
		'pg_dump', '-Fc', '-f', "$tempdir/pristine.dump",
		'-d', $node->connstr('pristine')
	],
	'pg_dump -Fc of an unmodified graph');
$node->command_ok(
	[
		'pg_dump', '-Fp', '-f', "$tempdir/pristine.sql",
		'-d', $node->connstr('pristine')
	],
	'pg_dump -Fp of an unmodified graph');
$script = slurp_file("$tempdir/pristine.sql");
is(dumped_rows($script, 'payout.transition'),
	'', 'pristine plain dump: no rows of payout.transition');
is(dumped_rows($script, 'payout.transition_removed'),
	'', 'pristine plain dump: no rows of payout.transition_removed');
is(dumped_rows($script, 'payout.provider_code'),
	'', 'pristine plain dump: no rows of payout.provider_code');

foreach my $case ([ $node, 'same node' ], [ $node2, 'second node' ])
{
	my ($target, $where) = @$case;
	restore_ok($target, 'pristine_restored',
		[ 'pg_restore', "$tempdir/pristine.dump" ],
		"pg_restore of an unmodified graph, $where");
	is($target->safe_psql('pristine_restored', $graph_query),
		$defaults,
		"pristine restored, $where: payout.transition equals the defaults");
	is( $target->safe_psql(
			'pristine_restored', q{
			SELECT count(*) FROM (
				(SELECT * FROM payout.transition
				 EXCEPT SELECT * FROM payout.default_transition)
				UNION ALL
				(SELECT * FROM payout.default_transition
				 EXCEPT SELECT * FROM payout.transition)) d}),
		'0',
		"pristine restored, $where: payout.transition equals payout.default_transition");
	is($target->safe_psql('pristine_restored', $removed_query),
		'',
		"pristine restored, $where: payout.transition_removed is empty");
}

restore_ok(
	$node2, 'pristine_plain',
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$tempdir/pristine.sql" ],
	'psql restores the plain dump of an unmodified graph');
is($node2->safe_psql('pristine_plain', $graph_query),
	$defaults, 'pristine plain restore: payout.transition equals the defaults');
is($node2->safe_psql('pristine_plain', $removed_query),
	'', 'pristine plain restore: payout.transition_removed is empty');

$node->stop;
$node2->stop;

done_testing();
