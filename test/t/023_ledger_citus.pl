# 023_ledger_citus.pl: a ledger per node of a Citus cluster.
#
# Each worker keeps the history of its shards in its own payout.history
# (doc/citus.md), written by the trigger on the shard; each node seals its
# own, with its own chain and digest.  The coordinator seals and collects
# the digests of every node with run_command_on_all_nodes(); each node's
# history verifies against its own digest, also after a shard moved to the
# other worker (its history stays behind, and is sealed where it is).  A
# row changed on one worker is found there and nowhere else.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $libdir = `pg_config --pkglibdir`;
chomp $libdir;
plan skip_all => "Citus is not installed in $libdir" unless -f "$libdir/citus.so";

sub citus_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 'logical');
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'citus'
max_connections = 60
max_prepared_transactions = 50
max_wal_senders = 20
max_replication_slots = 20
citus.local_hostname = '@{[ $node->host ]}'
citus.shard_replication_factor = 1
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION citus');
	return $node;
}

my $coord = citus_node('coordinator');
my @workers = (citus_node('worker1'), citus_node('worker2'));
$coord->safe_psql('postgres',
	sprintf(q{SELECT citus_set_coordinator_host('%s', %d)}, $coord->host, $coord->port));
$coord->safe_psql('postgres',
	sprintf(q{SELECT citus_add_node('%s', %d)}, $_->host, $_->port))
  for @workers;

$coord->safe_psql(
	'postgres', q{
	CREATE EXTENSION payout;
	SET citus.enable_unsafe_triggers = on;
	SELECT create_reference_table('payout.transition');
	SELECT create_reference_table('payout.provider_code');
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
	SELECT create_distributed_table('payouts', 'id', shard_count => 4);
	SELECT payout.attach('payouts');
	INSERT INTO payouts (id) SELECT g FROM generate_series(1, 40) AS g;
	UPDATE payouts SET status = 'READY' WHERE id <= 20;
});

# all_nodes($sql): what $sql returns on each node, coordinator first.
sub all_nodes
{
	my ($sql) = @_;
	$sql =~ s/'/''/g;
	return $coord->safe_psql('postgres',
		"SELECT string_agg(result, ',' ORDER BY nodeid) FROM run_command_on_all_nodes('$sql')");
}

is(all_nodes('SELECT count(*) FROM payout.history'), '0,' . join(',', map {
		$_->safe_psql('postgres', 'SELECT count(*) FROM payout.history') } @workers),
	'the workers keep the history of their shards');
is( $coord->safe_psql(
		'postgres', q{SELECT sum(result::bigint) FROM run_command_on_all_nodes(
			'SELECT sealed_rows FROM payout.seal()')}),
	'60', 'seal() run on every node from the coordinator seals every row once');

# Each node's digest, kept by the coordinator's caller.
my @digests = split /\n/, $coord->safe_psql(
	'postgres', q{SELECT result FROM run_command_on_all_nodes(
		'SELECT coalesce((SELECT row_to_json(d)::text FROM payout.digest() d), ''[]'')')
		ORDER BY nodeid});
is(scalar(@digests), 3, 'a digest for each node (the coordinator\'s chain is empty)');

# verdicts(): each worker's verdict against its own digest.
sub verdicts
{
	return join(',', map {
		$workers[$_]->safe_psql('postgres',
			"SELECT finding FROM payout.verify('$digests[$_ + 1]'::jsonb)
			 WHERE finding IN ('intact', 'tampered')")
	} 0 .. $#workers);
}
is(verdicts(), 'intact,intact', 'each worker\'s history verifies against its own digest');

# A shard moves; its history stays on the old worker, new rows go to the new one.
my ($shard, $from_port) = split /\|/, $coord->safe_psql(
	'postgres', q{
	SELECT shardid, nodeport FROM citus_shards
	WHERE table_name = 'payouts'::regclass ORDER BY shardid LIMIT 1});
my $to = $from_port == $workers[0]->port ? $workers[1] : $workers[0];
$coord->safe_psql('postgres',
	sprintf(q{SELECT citus_move_shard_placement(%d, '%s', %d, '%s', %d, 'block_writes')},
		$shard, $coord->host, $from_port, $to->host, $to->port));
$coord->safe_psql('postgres', q{UPDATE payouts SET status = 'INVOKING' WHERE id <= 10});
is( $coord->safe_psql(
		'postgres', q{SELECT sum(result::bigint) FROM run_command_on_all_nodes(
			'SELECT sealed_rows FROM payout.seal()')}),
	'10', 'after the move, the new rows are sealed where they were written');
is(verdicts(), 'intact,intact', '... and every node verifies against its digest taken before the move');

# Tampering on one worker is found there.
$workers[0]->safe_psql('postgres',
	q{UPDATE payout.history SET user_name = 'mallory' WHERE id = (SELECT min(id) FROM payout.history)});
is(verdicts(), 'tampered,intact', 'a row changed on worker 1 is found on worker 1 only');

$_->stop for ($coord, @workers);
done_testing();
