# 021_ledger_partman.pl: sealed history handed over to pg_partman, and
# pg_partman's retention.
#
# History is sealed while it is in payout.history_catchall; it is then
# handed over to pg_partman (doc/operations.md, "With pg_partman"), which
# moves the rows into monthly partitions it creates, some of them months
# old (rows loaded from an archive): the history still verifies, moved
# rows included.  pg_partman's retention, three months, drops the
# partitions older than that.  How long history is kept is the auditor's
# to say: verify() given a retention of three months reports the rows
# dropped as retained, not missing, and the history as intact; given
# none, or a retention longer than the age of the rows dropped (a policy
# that kept them), it finds them missing: tampered.  A partition of this
# month dropped by hand is missing rows whatever the retention: tampered.
# With pg_partman 4.7 (PostgreSQL 15) and 5.x (17 and 18).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('partman');
$node->init;
$node->start;

my $partman_major = $node->safe_psql('postgres',
	q{SELECT split_part(default_version, '.', 1) FROM pg_available_extensions WHERE name = 'pg_partman'});
plan skip_all => 'pg_partman is not installed' if $partman_major eq '';

# monthly(SQL): create_parent() as the pg_partman at hand takes it, and
# pg_partman 5's missing indexes (doc/operations.md, "pg_partman 5").
sub monthly
{
	my ($sql) = @_;
	$sql =~ s/'native', 'monthly'/p_interval := '1 month'/g if $partman_major >= 5;
	return $sql;
}

# findings($args): "block|id|finding" lines of payout.verify($args).
sub findings
{
	my ($args) = @_;
	$args //= '';
	return $node->safe_psql('postgres',
		"SELECT format('%s|%s|%s', block, id, finding) FROM payout.verify($args)");
}

$node->safe_psql(
	'postgres', q{
	CREATE SCHEMA partman;
	CREATE EXTENSION pg_partman SCHEMA partman;
	CREATE EXTENSION payout;
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
	SELECT payout.attach('payouts');
	-- Rows of five and four months ago, loaded from an archive; then today's.
	INSERT INTO payout.history (tbl, key, old_status, new_status, xact_time, clock_time,
								user_name, session_user_name, xid)
	SELECT 'payouts', g::text, NULL, 'CREATED', t, t, 'app', 'app', pg_current_xact_id()
	FROM generate_series(1001, 1020) AS g,
		 LATERAL (SELECT date_trunc('month', now()) - (4 + g % 2) * interval '1 month'
						 + interval '10 days') AS m(t);
	INSERT INTO payouts (id) SELECT g FROM generate_series(1, 20) AS g;
	UPDATE payouts SET status = 'READY';
});
is($node->safe_psql('postgres', 'SELECT blocks, sealed_rows FROM payout.seal()'),
	'1|60', 'the history in payout.history_catchall is sealed');
my $digest = $node->safe_psql('postgres', 'SELECT row_to_json(d) FROM payout.digest() d');

# The hand-over of doc/operations.md.
$node->safe_psql(
	'postgres', monthly q{
	CREATE TABLE partman.template_payout_history
		(LIKE payout.history_catchall INCLUDING INDEXES);
	BEGIN;
	ALTER TABLE payout.history DETACH PARTITION payout.history_catchall;
	SELECT partman.create_parent('payout.history', 'clock_time', 'native', 'monthly',
								 p_premake := 2,
								 p_template_table := 'partman.template_payout_history');
	DROP TABLE payout.history_default;
	SELECT partman.partition_data_time('payout.history', p_batch_count := 1000,
									   p_source_table := 'payout.history_catchall');
	ALTER TABLE payout.history ATTACH PARTITION payout.history_catchall DEFAULT;
	COMMIT;
	UPDATE partman.part_config
	SET retention = '3 months', retention_keep_table = false,
		infinite_time_partitions = true
	WHERE parent_table = 'payout.history';
});
is( $node->safe_psql(
		'postgres', q{
		SELECT count(DISTINCT tableoid), count(*) FILTER (WHERE tableoid = 'payout.history_catchall'::regclass)
		FROM payout.history}),
	'3|0', 'pg_partman moved the rows into three monthly partitions');
is(findings(), '1|60|intact',
	'the rows pg_partman moved verify as sealed');
is( $node->safe_psql(
		'postgres', qq{SELECT finding FROM payout.verify('$digest'::jsonb)}),
	'intact', '... also against the digest taken before the hand-over');

# More sealed; then pg_partman applies its retention.
$node->safe_psql('postgres', q{UPDATE payouts SET status = 'INVOKING' WHERE id <= 5});
is($node->safe_psql('postgres', 'SELECT blocks, sealed_rows FROM payout.seal()'),
	'1|5', 'a second block');
$digest = $node->safe_psql('postgres', 'SELECT row_to_json(d) FROM payout.digest() d');
$node->safe_psql('postgres', 'CALL partman.run_maintenance_proc()');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM payout.history
		WHERE clock_time < date_trunc('month', now()) - interval '3 months'}),
	'0', "pg_partman's retention dropped the partitions older than three months");
is(findings("retention => '3 months'"), "1||rows retained\n2|65|intact",
	'with the retention pg_partman applies, the rows it dropped are retained, not missing: the history is intact');
is(findings("'$digest'::jsonb, retention => '3 months'"), "1||rows retained\n2|65|intact",
	'... also against the digest, the retention counted back from its time');
like( $node->safe_psql(
		'postgres', qq{SELECT detail FROM payout.verify('$digest'::jsonb, retention => '3 months') WHERE finding = 'rows retained'}),
	qr/^20 sealed rows of block 1 are gone, each recorded before .*: the retention given, counted back from .*, allows it\.$/,
	'... and says how many rows are gone, and the cutoff');

# Without a retention, or with one longer than the age of the rows
# dropped, the partitions dropped are missing rows.
is(findings("'$digest'::jsonb"), "1|1|rows missing\n2|65|tampered",
	'without a retention, the rows dropped are missing: tampered');
is(findings("'$digest'::jsonb, retention => '6 months'"), "1|1|rows missing\n2|65|tampered",
	'with a retention of six months, rows four and five months old are missing: tampered');

# This month's partition dropped by hand: missing, young rows.
my $now_partition = $node->safe_psql('postgres',
	q{SELECT tableoid::regclass FROM payout.history WHERE key = '1' LIMIT 1});
$node->safe_psql('postgres', "DROP TABLE $now_partition");
my $found = findings("'$digest'::jsonb, retention => '3 months'");
like($found, qr/^1\|\|rows retained$/m,
	"a young partition dropped by hand: the old rows are still retained");
like($found, qr/^1\|21\|rows missing$/m,
	"... but the young partition's rows in block 1 are missing");
like($found, qr/^2\|61\|rows missing$/m, '... and those in block 2');
like($found, qr/^2\|65\|tampered$/m, '... and the history is tampered');
unlike($found, qr/intact/, '... and not intact');

$node->stop;
done_testing();
