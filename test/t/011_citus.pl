# 011_citus.pl: payout on a Citus cluster, a coordinator and two workers,
# and a third worker added later.
#
# Citus runs a distributed table's triggers on its shards, on the workers,
# so the rules are judged where the rows are, by the worker's copy of the
# graph.  The graph and the provider codes are made Citus reference tables:
# one placement on every node, edits committed on all or none, and copied
# to nodes added later; each node reads its own placement.  This checks:
#   - CREATE EXTENSION payout on the coordinator reaches the workers, and
#     payout.attach() on a distributed table puts the triggers on every
#     shard;
#   - every rule holds for writes sent to the coordinator, routed to one
#     shard or to all, and for writes sent to a worker, by the roles of the
#     README's security model; what the coordinator's client receives of
#     an error (SQLSTATE, message, DETAIL, HINT; the constraint name is
#     not passed on by Citus);
#   - edits of payout.transition and payout.provider_code reach every
#     placement, sessions that cached the old graph follow them, a failed
#     edit leaves every placement as it was, and a worker added later gets
#     them;
#   - history is kept on the worker that holds the payout, naming the
#     shard, and one query on the coordinator gathers it;
#   - after a shard moves to the new worker, the rules and history work
#     there.
#
# Citus comes from test/install-citus.  Without it the test is skipped,
# unless PAYOUT_REQUIRE_CITUS is set (test/run-suites sets it where Citus
# is installed or its source is at hand, and with CITUS=yes), when its
# absence is a failure.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $libdir = `pg_config --pkglibdir`;
chomp $libdir;
if (!-f "$libdir/citus.so")
{
	if ($ENV{PAYOUT_REQUIRE_CITUS})
	{
		fail("Citus is installed in $libdir");
		done_testing();
		exit 0;
	}
	plan skip_all => "Citus is not installed in $libdir (test/install-citus builds it from its source; see doc/testing.md)";
}

# citus_node($name): a node with Citus loaded, its extension created.
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
citus.background_task_queue_interval = 500ms
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

# err($node, $sql): what a client of $node is told when $sql fails, with
# the SQLSTATE, or '' when it succeeds.
sub err
{
	my ($node, $sql) = @_;
	my ($stdout, $stderr);
	$node->psql(
		'postgres', "\\set VERBOSITY verbose\n\\set ON_ERROR_STOP 1\n$sql",
		stdout => \$stdout,
		stderr => \$stderr);
	$stderr =~ s/^LOCATION:.*\n//mg;
	$stderr =~ s/^psql:<stdin>:[0-9]+: //mg;
	return $stderr;
}

# notice($node, $sql): the text of the first NOTICE $sql raises.
sub notice
{
	my ($node, $sql) = @_;
	my ($stdout, $stderr);
	$node->psql('postgres', $sql, stdout => \$stdout, stderr => \$stderr);
	return $stderr =~ /NOTICE:\s+(.*)$/m ? $1 : "no notice: $stderr";
}

# sqlstate($node, $sql): the SQLSTATE $sql fails with, or 'ok'.
sub sqlstate
{
	my ($node, $sql) = @_;
	my $e = err($node, $sql);
	return $e =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : ($e eq '' ? 'ok' : "?? $e");
}

#
# The extension, the reference tables, a distributed table, the roles.
#
$coord->safe_psql(
	'postgres', q{
	CREATE EXTENSION payout;
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		amount numeric NOT NULL DEFAULT 10,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution,
		autoprocess boolean NOT NULL DEFAULT true,
		created_at timestamptz NOT NULL DEFAULT now()
	);
	SELECT create_distributed_table('payouts', 'id', shard_count => 4);
});
my $e = err($coord, q{SELECT payout.attach('payouts')});
like($e, qr/^ERROR:  55000: table "payouts" is distributed by Citus, but payout.provider_code and payout.transition is not a reference table$/m,
	'attach() refuses a distributed table while the graph is a local table on each node');
like($e, qr/^HINT:  As a superuser, with SET citus.enable_unsafe_triggers = on: SELECT create_reference_table\('payout.transition'\); SELECT create_reference_table\('payout.provider_code'\);$/m,
	'... and its hint gives the statements that make it a reference table');
$coord->safe_psql(
	'postgres', q{
	SET citus.enable_unsafe_triggers = on;
	SELECT create_reference_table('payout.transition');
	SELECT create_reference_table('payout.provider_code');
	SELECT payout.attach('payouts');
	CREATE ROLE app LOGIN;
	CREATE ROLE processor LOGIN;
	CREATE ROLE payout_moderator;
	CREATE ROLE alice LOGIN IN ROLE payout_moderator;
	CREATE ROLE payout_operator;
	CREATE ROLE olga LOGIN IN ROLE payout_operator;
	CREATE ROLE auditor LOGIN;
	GRANT SELECT, INSERT, UPDATE, DELETE ON payouts TO app, alice;
	GRANT SELECT, UPDATE ON payouts TO processor, olga;
	GRANT SELECT ON payout.history TO auditor;
	ALTER DATABASE postgres SET payout.moderator_role = 'payout_moderator';
	ALTER DATABASE postgres SET payout.operator_role = 'payout_operator';
});
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(result, ',' ORDER BY nodeid)
		FROM run_command_on_all_nodes($$SELECT current_setting('payout.moderator_role') || '/' || current_setting('payout.operator_role')$$)}),
	join(',', ('payout_moderator/payout_operator') x 3),
	'ALTER DATABASE ... SET payout.moderator_role and operator_role on the coordinator reach every node');

is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(result, ',' ORDER BY nodeid)
		FROM run_command_on_all_nodes($$SELECT extversion FROM pg_extension WHERE extname = 'payout'$$)}),
	'1.2,1.2,1.2',
	'CREATE EXTENSION payout on the coordinator reached both workers');
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(result, ',' ORDER BY shardid)
		FROM run_command_on_shards('payouts', $$SELECT count(*) FROM pg_trigger
			WHERE tgrelid = '%s'::regclass
			  AND tgfoid IN ('payout.enforce_transition'::regproc, 'payout.record_history'::regproc)$$)}),
	'4,4,4,4',
	'payout.attach() put the check and the three history triggers on every shard');

# Which worker holds which payout: ids 1..40 spread over the 4 shards.
$coord->safe_psql('postgres',
	q{INSERT INTO payouts (id, autoprocess) SELECT g, g % 10 <> 0 FROM generate_series(1, 40) g});
# holders($table, $n): for ids 1 .. $n of $table, the index in @workers of
# the worker that holds each, as Citus's catalog places it.
my %worker_of_port = map { $workers[$_]->port => $_ } 0 .. $#workers;
sub holders
{
	my ($table, $n) = @_;
	my %of;
	for my $row (split /\n/, $coord->safe_psql(
			'postgres', qq{SELECT p.id || ' ' || n.nodeport
			FROM generate_series(1, $n) p(id)
			JOIN pg_dist_placement pl ON pl.shardid = get_shard_id_for_distribution_column('$table', p.id)
			JOIN pg_dist_node n USING (groupid)}))
	{
		my ($id, $port) = split ' ', $row;
		$of{$id} = $worker_of_port{$port} if defined $worker_of_port{$port};
	}
	return %of;
}
my %holder = holders('payouts', 40);    # id => worker index
is(scalar(keys %holder), 40, 'every payout is on one of the two workers');

#
# Enforcement through the coordinator.
#
is( sqlstate(
		$coord, q{SET ROLE app;
		UPDATE payouts SET status = 'READY' WHERE id = 1;
		UPDATE payouts SET status = 'INVOKING' WHERE id = 1;
		UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
		UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;}),
	'ok',
	'the application walks a payout to PROCESSED through the coordinator');

$e = err($coord, q{SET ROLE app; UPDATE payouts SET status = 'PROCESSING' WHERE id = 1});
like($e, qr/^ERROR:  23514: illegal payout status transition from "PROCESSED" to "PROCESSING"$/m,
	'coordinator: a change back from PROCESSED fails with 23514 and the message');
like($e, qr/^DETAIL:  Key \(id\)=\(1\) is in status "PROCESSED", which may only change to "REVOKING"\.$/m,
	'coordinator: the DETAIL names the payout and its next statuses');
like($e, qr/^HINT:  Allowed transitions are the rows of table payout\.transition\.$/m,
	'coordinator: the HINT is passed on');
like($e, qr/^CONTEXT:  while executing command on /m,
	'coordinator: Citus adds the worker it ran on as CONTEXT');

# What PL/pgSQL on the coordinator can read of the error: the constraint
# name stays on the worker.
is( notice(
		$coord, q{
		DO $$
		DECLARE s text; c text; t text;
		BEGIN
			UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
		EXCEPTION WHEN check_violation THEN
			GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, c = CONSTRAINT_NAME, t = TABLE_NAME;
			RAISE NOTICE '%|%|%', s, c, t;
		END
		$$}),
	'23514||',
	'coordinator: SQLSTATE is passed on, constraint and table names are not');
is( notice(
		$workers[ $holder{1} ], sprintf(q{
		DO $$
		DECLARE c text; t text;
		BEGIN
			UPDATE payouts_%s SET status = 'PROCESSING' WHERE id = 1;
		EXCEPTION WHEN check_violation THEN
			GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME, t = TABLE_NAME;
			RAISE NOTICE '%%|%%', c, t;
		END
		$$}, $coord->safe_psql('postgres', q{SELECT get_shard_id_for_distribution_column('payouts', 1)})),
	),
	'payout_status_transition|payouts_'
	  . $coord->safe_psql('postgres', q{SELECT get_shard_id_for_distribution_column('payouts', 1)}),
	'worker: a write to the shard carries the constraint and the shard name');

# A multi-shard UPDATE that is illegal for every row is rejected as a whole.
my $before = $coord->safe_psql('postgres',
	q{SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM payouts});
is(sqlstate($coord, q{SET ROLE app; UPDATE payouts SET status = 'PROCESSED' WHERE id BETWEEN 2 AND 40}),
	'23514', 'coordinator: a multi-shard UPDATE skipping the graph is rejected');
is($coord->safe_psql('postgres', q{SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM payouts}),
	$before, '... and no shard kept any of its changes');
is(sqlstate($coord, q{SET ROLE app; UPDATE payouts SET status = 'READY' WHERE id BETWEEN 2 AND 40}),
	'ok', 'coordinator: a legal multi-shard UPDATE passes on every shard');

is(sqlstate($coord, q{SET ROLE app; INSERT INTO payouts (id, status) VALUES (100, 'PROCESSED')}),
	'23514', 'coordinator: a new payout may not start in PROCESSED');
is(sqlstate($coord, q{SET ROLE app; INSERT INTO payouts (id) VALUES (100)}),
	'ok', 'coordinator: a new payout starts in CREATED');

# The moderation hold, fatal endings and frozen final payouts.
is( sqlstate(
		$coord, q{SET ROLE processor;
		UPDATE payouts SET status = 'INVOKING' WHERE id = 2;
		UPDATE payouts SET status = 'PROCESSING', resolution = 'CONNECTION_TIMEOUT_ERROR' WHERE id = 2;}),
	'ok', 'a processor records an ERROR resolution through the coordinator');
$e = err($coord, q{SET ROLE processor; UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 2});
like($e, qr/^ERROR:  42501: payout is held for moderation$/m, 'coordinator: the held payout is refused to the processor (42501)');
like($e, qr/^HINT:  Moderators are the members of role "payout_moderator"/m, '... with the hint naming the moderators');
is(sqlstate($workers[ $holder{2} ], q{SET ROLE app; UPDATE payouts SET resolution = 'OK' WHERE id = 2}),
	'42501', 'worker: the held payout is refused to the application there too');
is(sqlstate($coord, q{SET ROLE alice; UPDATE payouts SET resolution = 'OK' WHERE id = 2}),
	'ok', 'coordinator: a moderator releases it');
is(sqlstate($coord, q{SET ROLE processor; UPDATE payouts SET status = 'PROCESSED' WHERE id = 2}),
	'ok', 'the processor goes on after the release');

is(sqlstate($coord, q{SET ROLE processor; UPDATE payouts SET status = 'INVOKING' WHERE id = 3;
		UPDATE payouts SET resolution = 'INSUFFICIENT_FUNDS' WHERE id = 3}),
	'23514', 'coordinator: a FATAL resolution without a final status is refused');
is(sqlstate($coord, q{SET ROLE processor;
		UPDATE payouts SET resolution = 'INSUFFICIENT_FUNDS', status = 'INVOKE_FAILED' WHERE id = 3}),
	'ok', 'coordinator: a FATAL resolution with the failure status ends the payout');
is(sqlstate($coord, q{SET ROLE app; UPDATE payouts SET resolution = 'OK' WHERE id = 3}),
	'23514', 'coordinator: the resolution of a final payout is frozen');
is(sqlstate($coord, q{SET ROLE app; DELETE FROM payouts WHERE id = 4}),
	'23514', 'coordinator: an unfinished payout cannot be deleted');

# Manual payouts (autoprocess false): ids 10, 20, 30, 40.
is(sqlstate($coord, q{SET ROLE processor; UPDATE payouts SET status = 'INVOKING' WHERE id = 10}),
	'42501', 'coordinator: a processor cannot move a manual payout');
is(sqlstate($coord, q{SET ROLE processor; UPDATE payouts SET status = 'INVOKING' WHERE id IN (9, 10)}),
	'42501', '... nor in a statement that touches an automatic one too');
is(sqlstate($coord, q{SET ROLE olga; UPDATE payouts SET status = 'INVOKING' WHERE id = 10}),
	'ok', 'coordinator: an operator moves it');

#
# Writes sent straight to a worker.
#
for my $i (0 .. $#workers)
{
	my ($id) = grep { $holder{$_} == $i && $_ >= 11 && $_ % 10 } sort { $a <=> $b } keys %holder;
	my $shard = $coord->safe_psql('postgres',
		"SELECT get_shard_id_for_distribution_column('payouts', $id)");
	is(sqlstate($workers[$i], "UPDATE payouts_$shard SET status = 'PROCESSED' WHERE id = $id"),
		'23514', "worker" . ($i + 1) . ": an illegal UPDATE of its shard is rejected");
	is(sqlstate($workers[$i], "SET ROLE app; UPDATE payouts SET status = 'PROCESSED' WHERE id = $id"),
		'23514', "worker" . ($i + 1) . ": an illegal UPDATE of the distributed table there is rejected");
	is(sqlstate($workers[$i], "SET ROLE app; UPDATE payouts SET status = 'INVOKING' WHERE id = $id"),
		'ok', "worker" . ($i + 1) . ": a legal one passes");
}

#
# One graph for the cluster.
#
# placements(): each node's placement of the graph, as text.
my $graph_sql = q{SELECT md5(string_agg(concat(from_status, '>', to_status), ',' ORDER BY from_status NULLS FIRST, to_status)) FROM %s};
sub placements
{
	return $coord->safe_psql(
		'postgres', sprintf(
			q{SELECT count(DISTINCT result) || ' ' || count(*)
			  FROM run_command_on_placements('payout.transition', $$%s$$)}, $graph_sql));
}
is(placements(), '1 3', 'the graph has one placement on each node, all equal');

# A worker session that has the graph cached.
my $cached = $workers[0]->background_psql('postgres');
$cached->query_safe(q{SELECT payout.next_statuses('READY')});

$coord->safe_psql('postgres',
	q{DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'EXPIRED'});
is(placements(), '1 3', 'an edge deleted on the coordinator is gone from every placement');
is($cached->query_safe(q{SELECT payout.next_statuses('READY')}),
	'{TERMINATED,INVOKING}', 'a worker session that cached the graph follows the edit');
my ($ready) = grep { $holder{$_} == 0 && $_ > 11 && $_ % 10 } sort { $a <=> $b } keys %holder;
is(sqlstate($coord, "UPDATE payouts SET status = 'EXPIRED' WHERE id = $ready"),
	'23514', 'the worker rejects the deleted edge');
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(result, ',' ORDER BY nodeid)
		FROM run_command_on_all_nodes($$SELECT count(*) FROM payout.transition_removed
			WHERE from_status = 'READY' AND to_status = 'EXPIRED'$$)}),
	'1,1,1',
	'every node records the removed default for its dumps');

# The application role, with the grants the security model recommends,
# cannot change the graph or write history: not through the coordinator,
# not in a worker's placement of the graph, not in a worker's history.
my $graph_shard = $coord->safe_psql('postgres',
	q{SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'payout.transition'::regclass});
is(sqlstate($coord, q{SET ROLE app; DELETE FROM payout.transition WHERE from_status = 'READY'}),
	'42501', 'app: deleting edges through the coordinator is refused');
for my $i (0 .. $#workers)
{
	my $w = 'worker' . ($i + 1);
	is( sqlstate(
			$workers[$i], qq{SET ROLE app;
			INSERT INTO payout.transition_$graph_shard VALUES ('PROCESSED', 'PROCESSING')}),
		'42501', "app on $w: adding an edge to the graph's placement is refused");
	is(sqlstate($workers[$i], qq{SET ROLE app; DELETE FROM payout.transition_$graph_shard}),
		'42501', "app on $w: deleting the graph's placement is refused");
	is(sqlstate($workers[$i], q{SET ROLE app; DELETE FROM payout.history}),
		'42501', "app on $w: deleting the worker's history is refused");
	is( sqlstate(
			$workers[$i], q{SET ROLE app;
			INSERT INTO payout.history (tbl, key, new_status) VALUES ('payouts', '1', 'CREATED')}),
		'42501', "app on $w: forging a history row is refused");
}
is( sqlstate(
		$coord, qq{SET ROLE app;
		SELECT payout.on_all_nodes('WITH d AS (DELETE FROM payout.transition_$graph_shard RETURNING 1) SELECT ''[]''::json')}),
	'42501', 'app: the coordinator\'s helper that asks every node runs nothing for a role without the right');
is(placements(), '1 3', '... and every placement of the graph is as it was');

# A failed edit: one statement of the transaction breaks a constraint.
my $graph = $coord->safe_psql('postgres', sprintf($graph_sql, 'payout.transition'));
is( sqlstate(
		$coord, q{BEGIN;
		INSERT INTO payout.transition VALUES ('READY', 'EXPIRED');
		INSERT INTO payout.transition VALUES ('CANCELLED', 'PROCESSING');
		COMMIT;}),
	'23514', 'an edit that adds an edge out of a final status fails');
is(placements(), '1 3', '... and every placement is as before');
is($coord->safe_psql('postgres', sprintf($graph_sql, 'payout.transition')),
	$graph, '... the graph the coordinator reads too');
is($cached->query_safe(q{SELECT payout.next_statuses('READY')}),
	'{TERMINATED,INVOKING}', '... and the worker session still follows the committed graph');

$coord->safe_psql('postgres', q{INSERT INTO payout.transition VALUES ('READY', 'EXPIRED')});
is($cached->query_safe(q{SELECT payout.next_statuses('READY')}),
	'{TERMINATED,EXPIRED,INVOKING}', 'an edge added back reaches the worker session');
$cached->quit;

# Provider codes.
$coord->safe_psql('postgres',
	q{INSERT INTO payout.provider_code (provider, code, resolution) VALUES ('acme', 'E42', 'DECLINED_ERROR')});
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(result, ',' ORDER BY nodeid)
		FROM run_command_on_all_nodes($$SELECT payout.classify('acme', 'E42')$$)}),
	'DECLINED_ERROR,DECLINED_ERROR,DECLINED_ERROR',
	'a provider code added on the coordinator classifies on every node');

#
# History.
#
my $changes = $coord->safe_psql(
	'postgres', q{SELECT string_agg(result, ',' ORDER BY nodeport)
	FROM run_command_on_workers($$SELECT count(*) FROM payout.history WHERE tbl = 'payouts'::regclass$$)});
my $total = 0;
$total += $_ for split /,/, $changes;
# 41 payouts created; payout 1's 4 steps; 39 made READY at once; payout 2's
# 4 changes, payout 3's 2, payout 10's 1; one step on each worker.
is($total, 41 + 4 + 39 + 4 + 2 + 1 + 2,
	'the workers recorded every change of their shards');
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(result, '' ORDER BY nodeport)
		FROM run_command_on_workers($$SELECT string_agg(concat(old_status, '>', new_status, ' ', old_resolution, '>', new_resolution), ', ' ORDER BY id)
			FROM payout.history WHERE key = '2'$$)}),
	'>CREATED >, CREATED>READY >, READY>INVOKING >, INVOKING>PROCESSING >CONNECTION_TIMEOUT_ERROR, '
	  . 'PROCESSING>PROCESSING CONNECTION_TIMEOUT_ERROR>OK, PROCESSING>PROCESSED OK>OK',
	"one query on the coordinator gathers a payout's history from the worker that holds it");
is( $workers[ $holder{2} ]->safe_psql(
		'postgres', q{SELECT DISTINCT tbl::text FROM payout.history WHERE key = '2'}),
	'payouts',
	'history on the worker names the distributed table, not the shard');
my $timeline_sql = q{SELECT string_agg(concat(old_status, '>', new_status, ' ', old_resolution, '>', new_resolution), ', ')
	FROM payout.timeline('payouts', '%s')};
my $timeline2 = '>CREATED >, CREATED>READY >, READY>INVOKING >, INVOKING>PROCESSING >CONNECTION_TIMEOUT_ERROR, '
  . 'PROCESSING>PROCESSING CONNECTION_TIMEOUT_ERROR>OK, PROCESSING>PROCESSED OK>OK';
is($coord->safe_psql('postgres', sprintf($timeline_sql, 2)),
	$timeline2, 'payout.timeline() on the coordinator gives the whole history of a payout a worker holds');
$e = err($coord, "SET ROLE auditor; SELECT count(*) FROM payout.timeline('payouts', '2')");
like($e, qr/^ERROR:  38000: could not read payout.history on Citus node \d+\nDETAIL:  ERROR:  permission denied for table history/m,
	'an auditor granted SELECT on payout.history on the coordinator only cannot read the workers\' history');
like($e, qr/^HINT:  Citus does not pass on grants on the extension's tables/m, '... and is told why');
is(sqlstate($coord, "SET ROLE app; SELECT count(*) FROM payout.timeline('payouts', '2')"),
	'42501', 'a role without SELECT on payout.history is refused before any node is asked');
$coord->safe_psql('postgres', q{SELECT run_command_on_all_nodes('GRANT SELECT ON payout.history TO auditor')});
is($coord->safe_psql('postgres', "SET ROLE auditor; " . sprintf($timeline_sql, 2)),
	$timeline2, 'granted on every node, the auditor reads the whole history from the coordinator');
is( $coord->safe_psql(
		'postgres', q{SELECT string_agg(concat(from_status, '>', to_status, ' ', payouts, ' ', changes), ', ')
		FROM payout.transition_counts('payouts')}),
	'>CREATED 41 41, CREATED>READY 40 40, READY>INVOKING 6 6, INVOKING>INVOKE_FAILED 1 1, '
	  . 'INVOKING>PROCESSING 2 2, PROCESSING>PROCESSED 2 2',
	'payout.transition_counts() on the coordinator counts the changes of every worker');

#
# Notifications: sent where the row changes, on the worker.
#
$coord->safe_psql(
	'postgres', q{
	CREATE TABLE notified (LIKE payouts INCLUDING DEFAULTS, PRIMARY KEY (id));
	SELECT create_distributed_table('notified', 'id', shard_count => 4);
	SELECT payout.attach('notified');
	INSERT INTO notified (id) SELECT g FROM generate_series(1, 8) g;
});
is( $coord->safe_psql(
		'postgres', q{
		BEGIN;
		SELECT payout.detach('notified');
		SELECT payout.attach('notified', notify => true);
		COMMIT;
		SHOW citus.enable_unsafe_triggers;}),
	"\n\noff",
	'detach() and attach() on a distributed table, without citus.enable_unsafe_triggers, which they leave off');
my %holder_of_notified = holders('notified', 8);
my @listeners = map { $_->background_psql('postgres') } ($coord, @workers);
$_->query_safe('LISTEN payout_ready') for @listeners;
# One statement per payout: each touches one worker.
$coord->safe_psql('postgres', join('', map { "UPDATE notified SET status = 'READY' WHERE id = $_;\n" } 1 .. 6));
my @heard = map { [ $_->query_safe('SELECT 1') =~ /payload "(\{[^"]*"table": "public.notified"[^}]*\})"/g ] } @listeners;
is(scalar(@{ $heard[0] }), 0, 'a listener on the coordinator hears nothing');
is( join(' ', sort { $a <=> $b } map { /"key": "(\d+)"/ } @{ $heard[1] }, @{ $heard[2] }),
	'1 2 3 4 5 6',
	'listeners on the workers hear each payout that became READY once, naming the distributed table');
ok( !grep({ my $w = $_; grep { my ($k) = /"key": "(\d+)"/; $holder_of_notified{$k} != $w } @{ $heard[ $w + 1 ] } } 0 .. 1),
	'each from the worker that holds the payout');
$_->quit for @listeners;

# A transaction that writes on two workers commits them with two-phase
# commit, and PostgreSQL cannot prepare a transaction that notified.
my ($on0) = grep { $holder_of_notified{$_} == 0 } 7, 8, 1 .. 6;
my ($on1) = grep { $holder_of_notified{$_} == 1 } 7, 8, 1 .. 6;
$e = err($coord, "UPDATE notified SET status = 'READY' WHERE id IN ($on0, $on1) AND status = 'CREATED'");
like($e, qr/cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY/,
	'a statement that notifies on two workers fails: a prepared transaction cannot notify');
is($coord->safe_psql('postgres', "SELECT count(*) FROM notified WHERE id IN ($on0, $on1) AND status = 'READY'"),
	$coord->safe_psql('postgres', "SELECT count(*) FROM notified WHERE id IN ($on0, $on1) AND id <= 6"),
	'... and changes nothing');

#
# A worker added later, and a shard moved to it.
#
my $w3 = citus_node('worker3');
$coord->safe_psql('postgres', sprintf(q{SELECT citus_add_node('%s', %d)}, $w3->host, $w3->port));
is($w3->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'payout'}),
	'1.2', 'a worker added later gets the extension');
$e = err($w3, q{SELECT payout.next_statuses('READY')});
like($e, qr/^ERROR:  55000: Citus reference table "payout.transition" has no placement on this node$/m,
	'a worker without the graph\'s placement yet refuses to answer from an empty graph');
like($e, qr/^HINT:  Copy reference tables to every node with SELECT replicate_reference_tables\(\)/m,
	'... and says how to copy it');
$coord->safe_psql('postgres', q{SELECT replicate_reference_tables()});
is($w3->safe_psql('postgres', q{SELECT payout.next_statuses('READY')}),
	'{TERMINATED,EXPIRED,INVOKING}', 'after the copy, the new worker reads the cluster\'s graph');
is(placements(), '1 4', 'and, once reference tables are copied, the same graph');

my $id = (grep { $holder{$_} == 0 && $_ > 11 && $_ % 10 } sort { $a <=> $b } keys %holder)[1];
my $shard = $coord->safe_psql('postgres', "SELECT get_shard_id_for_distribution_column('payouts', $id)");
$coord->safe_psql(
	'postgres', sprintf(
		q{SELECT citus_move_shard_placement(%s, '%s', %d, '%s', %d, shard_transfer_mode => 'block_writes')},
		$shard, $workers[0]->host, $workers[0]->port, $w3->host, $w3->port));
is($w3->safe_psql('postgres', "SELECT status FROM payouts_$shard WHERE id = $id"),
	'READY', 'the moved shard is on the new worker, its payouts unchanged');
is( $w3->safe_psql(
		'postgres', qq{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'payouts_$shard'::regclass
		AND tgfoid IN ('payout.enforce_transition'::regproc, 'payout.record_history'::regproc)}),
	'4', 'the moved shard has the triggers on the new worker');
is(sqlstate($coord, "SET ROLE app; UPDATE payouts SET status = 'PROCESSED' WHERE id = $id"),
	'23514', 'after the move, an illegal change is rejected on the new worker');
is(sqlstate($coord, "SET ROLE app; UPDATE payouts SET status = 'INVOKING' WHERE id = $id"),
	'ok', 'after the move, a legal change passes');
is($w3->safe_psql('postgres', "SELECT concat(old_status, '>', new_status) FROM payout.history WHERE key = '$id'"),
	'READY>INVOKING', 'the new worker records the change, and the move recorded nothing');
is($coord->safe_psql('postgres', sprintf($timeline_sql, $id)),
	'>CREATED >, CREATED>READY >, READY>INVOKING >',
	'payout.timeline() joins the history the old worker kept and the new one records');

#
# Claiming and expiring through the coordinator.
#
# pgbench_start($node, $role, $clients, $limit, $sql): a pgbench run in the
# background, for $limit ('-T seconds' or '-t transactions per client');
# pgbench_finish() waits for it and returns its exit code and
# output.
my $tempdir = PostgreSQL::Test::Utils::tempdir;
my $scripts = 0;
sub pgbench_start
{
	my ($node, $role, $clients, $limit, $sql) = @_;
	my $script = "$tempdir/script" . $scripts++ . '.sql';
	open my $fh, '>', $script or die "$script: $!";
	print $fh "$sql\n";
	close $fh;
	my ($stdout, $stderr) = ('', '');
	my $h = IPC::Run::start(
		[
			$node->installed_command('pgbench'), '-n', split(' ', $limit),
			'-c', $clients, '-j', 1, '-f', $script, '-U', $role,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'<', \undef, '>', \$stdout, '2>', \$stderr);
	return [ $h, \$stdout, \$stderr ];
}
sub pgbench_finish
{
	my ($run) = @_;
	my ($h, $stdout, $stderr) = @$run;
	$h->finish;
	return ($h->result(0), $$stdout . $$stderr);
}

# 400 payouts 1001..1400 made READY: every 10th manual, every 7th held.
$coord->safe_psql(
	'postgres', q{
	INSERT INTO payouts (id, autoprocess) SELECT g, g % 10 <> 0 FROM generate_series(1001, 1400) g;
	UPDATE payouts SET status = 'READY' WHERE id > 1000;
	UPDATE payouts SET resolution = 'CONNECTION_TIMEOUT_ERROR' WHERE id > 1000 AND id % 7 = 0 AND id % 10 <> 0;
	CREATE TABLE claimed (key text, claimed_by text DEFAULT current_user);
	GRANT SELECT, INSERT ON claimed TO processor, olga;
});
# What may be claimed now, from this range and from the payouts before.
my $automatic = $coord->safe_psql('postgres',
	q{SELECT count(*) FROM payouts WHERE status = 'READY' AND autoprocess
	  AND NOT payout.requires_moderation(status, resolution)});
my $manual = $coord->safe_psql('postgres',
	q{SELECT count(*) FROM payouts WHERE status = 'READY' AND NOT autoprocess
	  AND NOT payout.requires_moderation(status, resolution)});
my $ready = $coord->safe_psql('postgres', q{SELECT count(*) FROM payouts WHERE status = 'READY'});

# A claim is part of the caller's transaction.
is( $coord->safe_psql(
		'postgres', q{BEGIN;
		SELECT count(*) FROM payout.claim('payouts', 5);
		ROLLBACK;
		SELECT count(*) FROM payouts WHERE status = 'READY' AND autoprocess
		  AND NOT payout.requires_moderation(status, resolution);}),
	"5\n$automatic", 'a claim rolled back with its transaction leaves the payouts READY');

# Four processors claim 7 at a time, concurrently, through the coordinator,
# 30 times each, more than there is; an operator claims manual payouts
# beside them.
my @runs = (
	pgbench_start($coord, 'processor', 4, '-t 30',
		q{INSERT INTO claimed (key) SELECT k FROM payout.claim('payouts', 7) k;}),
	pgbench_start($coord, 'olga', 1, '-t 30',
		q{INSERT INTO claimed (key) SELECT k FROM payout.claim('payouts', 3, manual => true) k;}));
my @results = map { [ pgbench_finish($_) ] } @runs;
is($results[0][0], 0, 'four concurrent processors claimed through the coordinator without an error')
  or diag($results[0][1]);
is($results[1][0], 0, 'an operator claimed manual payouts beside them without an error')
  or diag($results[1][1]);
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || ' ' || count(DISTINCT key) FROM claimed WHERE claimed_by = 'processor'}),
	"$automatic $automatic",
	'the processors got every automatic payout that is not held, each once');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM claimed c JOIN payouts p ON p.id = c.key::bigint
		WHERE c.claimed_by = 'processor' AND (NOT p.autoprocess OR p.resolution IS NOT NULL)}),
	'0', 'no processor got a manual or a held payout');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) || ' ' || count(DISTINCT key) || ' ' || bool_and(NOT p.autoprocess)
		FROM claimed c JOIN payouts p ON p.id = c.key::bigint WHERE c.claimed_by = 'olga'}),
	"$manual $manual true", 'the operator got every manual payout, each once');
is( $coord->safe_psql('postgres', q{SELECT count(*) FROM payouts WHERE status = 'READY'}),
	$ready - $automatic - $manual,
	'only the held payouts are still READY');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM payout.transition_counts('payouts') t
		WHERE from_status = 'READY' AND to_status = 'INVOKING' AND payouts <> changes}),
	'0', 'no payout took READY -> INVOKING twice');

$coord->safe_psql('postgres',
	q{INSERT INTO payouts (id, created_at) SELECT g, now() - interval '2 days' FROM generate_series(2001, 2020) g});
is($coord->safe_psql('postgres', q{SELECT payout.expire('payouts', interval '1 day', batch_size => 5)}),
	'5', 'payout.expire() with a batch size expires one batch through the coordinator');
is($coord->safe_psql('postgres', q{SELECT payout.expire('payouts', interval '1 day')}),
	'15', 'payout.expire() expires the rest, from every shard');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM payouts WHERE status = 'EXPIRED'}),
	'20', 'and only the payouts older than a day');

# A shard moved with logical replication while processors work through
# the coordinator, then the rebalancer.
$coord->safe_psql(
	'postgres', q{
	INSERT INTO payouts (id) SELECT g FROM generate_series(3001, 3400) g;
	UPDATE payouts SET status = 'READY' WHERE id > 3000;
	TRUNCATE claimed;
});
my $walker = pgbench_start($coord, 'processor', 3, '-T 6', q{
	INSERT INTO claimed (key) SELECT k FROM payout.claim('payouts', 2) k;
	UPDATE payouts SET status = 'PROCESSING' WHERE status = 'INVOKING' AND id IN (SELECT key::bigint FROM claimed ORDER BY random() LIMIT 1);
});
my $moving = $coord->safe_psql('postgres', q{SELECT get_shard_id_for_distribution_column('payouts', 3001)});
my $from = $coord->safe_psql(
	'postgres', qq{SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $moving});
my ($src) = grep { $_->port == $from } (@workers, $w3);
my ($dst) = grep { $_->port != $from } @workers;
$coord->safe_psql(
	'postgres', sprintf(
		q{SELECT citus_move_shard_placement(%s, '%s', %d, '%s', %d, shard_transfer_mode => 'force_logical')},
		$moving, $src->host, $src->port, $dst->host, $dst->port));
my ($walk_rc, $walk_out) = pgbench_finish($walker);
is($walk_rc, 0, 'processors working through a shard move got no error') or diag($walk_out);
my ($walked) = $walk_out =~ /number of transactions actually processed: (\d+)/;
ok($walked > 0, "the processors worked during the move ($walked transactions)");
is( $coord->safe_psql(
		'postgres', qq{SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) WHERE p.shardid = $moving}),
	$dst->port, 'the shard moved');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM payouts WHERE id > 3000}),
	'400', 'no payout was lost');
is( $coord->safe_psql(
		'postgres', q{SELECT count(*) FROM (SELECT key FROM claimed GROUP BY key HAVING count(*) > 1) d}),
	'0', 'no payout was claimed twice across the move');
is( $coord->safe_psql(
		'postgres', q{WITH c AS MATERIALIZED (SELECT key::bigint AS id FROM claimed)
		SELECT count(*) FROM payouts p WHERE id > 3000 AND status <> 'READY'
		AND id NOT IN (SELECT id FROM c)}),
	'0', 'every payout that left READY was claimed');
my $broken = 0;
for my $row (split /\n/, $coord->safe_psql('postgres',
		q{SELECT id || ' ' || status FROM payouts WHERE id BETWEEN 3001 AND 3040}))
{
	my ($pid, $st) = split ' ', $row;
	my $n = $coord->safe_psql('postgres', "SELECT count(*) FROM payout.timeline('payouts', '$pid')");
	$broken++ if $n != { READY => 2, INVOKING => 3, PROCESSING => 4 }->{$st};
}
is($broken, 0, 'the history of payouts 3001 to 3040 is whole, before and after the move');

$coord->safe_psql('postgres', q{SELECT rebalance_table_shards('payouts', shard_transfer_mode => 'block_writes')});
is(sqlstate($coord, q{SET ROLE app; UPDATE payouts SET status = 'PROCESSED' WHERE id > 3000}),
	'23514', 'after the rebalancer, illegal changes are still rejected on every shard');
is(sqlstate($coord, q{SET ROLE processor; SELECT count(*) FROM payout.claim('payouts', 1000)}),
	'ok', 'and claims go on');

#
# History names a distributed table only for its shards, proved from
# Citus's metadata: a table named like a shard, made beside a distributed
# table whose name Citus shortens, by a role that may keep history, is a
# table of its own.
#
my $long = 'payouts_with_a_name_long_enough_for_citus_to_shorten_it_now';
$coord->safe_psql(
	'postgres', qq{
	CREATE ROLE keeper;
	CREATE ROLE spoofer LOGIN;
	CREATE TABLE $long (id bigint PRIMARY KEY, status payout.status NOT NULL DEFAULT 'CREATED');
	ALTER TABLE $long OWNER TO keeper;
	SELECT create_distributed_table('$long', 'id', shard_count => 4);
	SELECT run_command_on_all_nodes('GRANT EXECUTE ON FUNCTION payout.record_history() TO keeper, spoofer');
	SELECT run_command_on_all_nodes('GRANT CREATE ON SCHEMA public TO spoofer');
	SELECT payout.attach('$long');
	INSERT INTO $long (id) SELECT g FROM generate_series(1, 8) g;
});
is( $coord->safe_psql(
		'postgres', qq{SELECT count(*) FROM shard_name('$long'::regclass, get_shard_id_for_distribution_column('$long', 1)) AS n
		WHERE NOT starts_with(n, '$long')}),
	'1', 'Citus shortens the shard names of the long table');
is( $coord->safe_psql(
		'postgres', qq{SELECT string_agg(n::text, ',') FROM generate_series(1, 8) g,
		LATERAL (SELECT count(*) FROM payout.timeline('$long', g::text)) AS t(n)}),
	'1,1,1,1,1,1,1,1', 'the history of its shards names the long table');
my %long_holder = holders($long, 8);
my ($on_worker) = grep { defined $long_holder{$_} } 1 .. 8;
my $spoofed = $coord->safe_psql('postgres', "SELECT get_shard_id_for_distribution_column('$long', $on_worker)");
my $exact = $coord->safe_psql('postgres', "SELECT shard_name('$long'::regclass, $spoofed)");
# spoof($node, $name): history of a payout in table $name, made and
# written by the spoofer on $node with the history trigger (made by hand:
# Citus hides a table with a shard's very name from queries of pg_class,
# which attach() makes), names that table.
sub spoof
{
	my ($node, $name) = @_;
	$node->safe_psql(
		'postgres', qq{SET ROLE spoofer;
		CREATE TABLE $name (id bigint PRIMARY KEY, status payout.status NOT NULL);
		CREATE TRIGGER zz_payout_history AFTER INSERT ON $name
			FOR EACH ROW EXECUTE FUNCTION payout.record_history('status', '');
		INSERT INTO $name VALUES (999, 'CREATED');});
	return $node->safe_psql('postgres',
		qq{SELECT string_agg(tbl::text, ',') FROM payout.history WHERE key = '999'});
}
is(spoof($workers[ $long_holder{$on_worker} ], "public.spoof_$spoofed"), "spoof_$spoofed",
	'worker: a table named *_<shardid> for a shard of the long table there is no shard of it');
is(spoof($coord, "public.spoof_$spoofed"), "spoof_$spoofed",
	'coordinator: nor is one where the shard has no placement');
$coord->safe_psql('postgres', "DELETE FROM payout.history WHERE key = '999'");
is(spoof($coord, $exact), $exact,
	'coordinator: nor one with the very name of the shard, which has no placement there');
is( $coord->safe_psql(
		'postgres', qq{SELECT count(*) FROM payout.timeline('$long', '999')}),
	'0', 'the long table\'s history holds none of the spoofer\'s changes');

#
# The rows of claims, and the functions of moderators and operators,
# through the coordinator.
#
$coord->safe_psql(
	'postgres', q{
	INSERT INTO payouts (id) SELECT g FROM generate_series(5001, 5006) g;
	UPDATE payouts SET status = 'READY' WHERE id BETWEEN 5001 AND 5006;
	UPDATE payouts SET autoprocess = false WHERE id = 5006;
});
is( $coord->safe_psql(
		'postgres', q{SET ROLE processor;
		SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM payout.claim_rows(NULL::payouts, 3)}),
	'5001:INVOKING,5002:INVOKING,5003:INVOKING',
	'payout.claim_rows() claims and returns the claimed rows, shard by shard');
is( $coord->safe_psql(
		'postgres', q{SET ROLE app; UPDATE payouts SET resolution = 'CONNECTION_ERROR' WHERE id = 5004;
		SET ROLE alice;
		SELECT string_agg(id::text, ',') FROM payout.moderation_queue(NULL::payouts) WHERE id > 5000;
		SELECT id || ':' || resolution FROM payout.release(NULL::payouts, '5004');}),
	"5004\n5004:OK", 'a moderator lists the queue and releases a payout with payout\'s functions');
is( $coord->safe_psql(
		'postgres', q{SET ROLE olga;
		SELECT string_agg(id::text, ',') FROM payout.manual_queue(NULL::payouts) WHERE id > 5000;
		SELECT id || ':' || status FROM payout.claim_rows(NULL::payouts, 1, manual => true);
		SELECT id || ':' || status FROM payout.advance(NULL::payouts, '5006', 'INVOKING', 'PROCESSING', 'OK');}),
	"5006\n5006:INVOKING\n5006:PROCESSING", 'an operator lists, claims and processes a manual payout');

done_testing();
