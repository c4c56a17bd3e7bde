# 006_logical_replication.pl: payouts under logical replication.
#
# A subscriber's apply worker runs with session_replication_role = replica,
# so the payout triggers, created by payout.attach() in PostgreSQL's default
# mode (ENABLE, "origin"), do not fire for the rows it applies.  Local
# sessions on the subscriber are ordinary sessions: the triggers fire for
# them.  This checks the two ways to deploy the extension on a publisher and
# a subscriber, each in a database of its own on the same two clusters:
#
# deploy_a, "enforce on the publisher only": both sides attach with
# history; the subscriber leaves the triggers as they are.
#   - the initial copy and every replicated change land on the subscriber
#     unjudged: its rows equal the publisher's, also where the subscriber's
#     own graph forbids the change;
#   - an illegal change fails on the publisher and never reaches the
#     subscriber;
#   - a local write on the subscriber is judged by the subscriber's graph;
#   - the apply worker records no history on the subscriber.
# Publishing payout.history as well, inserts only and through the
# partitioned table, gives the subscriber the publisher's history row for
# row, and pruning on the publisher leaves the subscriber's copy alone.  The
# subscriber's own history sequence is not replicated, so a local write
# that would be recorded there collides with a replicated id and fails.
# A third database, deploy_h, shows two limits of publishing the history:
# tbl is a regclass and travels by name, so the copy fails until the
# subscriber has the table; and with deletes published (PostgreSQL's
# default), a DELETE of history on the publisher stalls the subscription.
#
# deploy_b, "enforce on both": the subscriber sets the four triggers to
# ENABLE ALWAYS.
#   - with ALWAYS triggers, the initial copy is judged like new payouts and
#     fails at a payout that is already PROCESSED; syncing with the
#     triggers in their default mode and switching to ALWAYS afterwards
#     works;
#   - replicated changes are judged and recorded on the subscriber, as the
#     role the apply worker runs triggers as: the subscription's owner on
#     PostgreSQL 15, the table's owner from 16;
#   - ALWAYS triggers fire in a local session with session_replication_role
#     = replica too;
#   - a subscriber that has diverged (a local change, or a graph that lacks
#     an edge the publisher used) rejects the replicated change; the apply
#     worker fails with the payout error, retries, and applies nothing after
#     it.  Three ways out are checked: ALTER SUBSCRIPTION ... SKIP, repairing
#     the row with the trigger disabled inside one transaction, and adding
#     the edge to the subscriber's graph;
#   - an edge added on the subscriber before the publisher uses it is
#     followed by the running apply worker, which has the graph cached.
#
# deploy_m, "enforce on both" with tables partitioned by region, published
# through the partitioned table: the apply worker applies an UPDATE that
# moves a payout to another partition as a DELETE from the old partition and
# an INSERT into the new one, with no BEFORE UPDATE and no mark of a move.
#   - a legal move from the publisher is judged as the UPDATE it is, and
#     recorded once, with its old key: replication goes on;
#   - an illegal one (the subscriber's graph lacks the edge) stalls it;
#   - a DELETE the subscriber's rules refuse still does, when no INSERT
#     makes it half of a move;
#   - a delete and an insert the publisher makes in one transaction are
#     two messages too: a move only if the payout keeps its key outside the
#     partition key and the move is legal; else a delete (refused as
#     such) and a new payout;
#   - a table the subscriber partitions and the publisher does not: the
#     apply worker moves the row itself, within one replicated UPDATE,
#     judged and recorded the same way.
#
# deploy_g publishes payout.transition itself: the subscriber's sessions
# and its removed-default tracking follow the applied edits.
#
# The apply worker is restarted wal_retrieve_retry_interval after each
# failure; the subscriber sets it to 200ms to keep the test short.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->start;

my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf(
	'postgresql.conf', q{
wal_retrieve_retry_interval = 200ms
max_logical_replication_workers = 8
max_worker_processes = 16
});
$sub->start;

# try($node, $db, $sql): "ok", or the SQLSTATE the statement failed with.
sub try
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

my $payouts_query = q{SELECT id, amount, status, resolution FROM payouts ORDER BY id};
my $history_query = q{SELECT id, tbl, key, old_status, new_status, old_resolution,
	new_resolution, xact_time, clock_time, user_name, session_user_name,
	application_name, xid
	FROM payout.history ORDER BY id};

# same_payouts($db, $what): the subscriber's payouts equal the publisher's.
sub same_payouts
{
	my ($db, $what) = @_;
	is($sub->safe_psql($db, $payouts_query),
		$pub->safe_psql($db, $payouts_query),
		"$db, $what: the subscriber's payouts equal the publisher's");
	return;
}

# status($node, $db, $id): the payout's status and resolution.
sub status
{
	my ($node, $db, $id) = @_;
	return $node->safe_psql($db,
		"SELECT status || coalesce(' ' || resolution, '') FROM payouts WHERE id = $id");
}

# wait_for_apply_error($regexp, $id): wait until the subscriber's log shows
# a replication worker failing with $regexp for payout $id; return the LSN
# at which the failed remote transaction finished, from the error's
# context ("copy" for a failure of the initial copy), or undef.
my $log_offset = 0;

sub wait_for_apply_error
{
	my ($regexp, $id) = @_;
	my $error = qr/ERROR:  $regexp\n.*DETAIL:  Key \(id\)=\($id\).*\n.*HINT:.*\n.*CONTEXT:  (?:processing remote data.* finished at ([0-9A-F]+\/[0-9A-F]+)|(COPY payouts))/;
	my $found = eval {
		$sub->wait_for_log($error, $log_offset);
		1;
	};
	return undef unless $found;
	my $log = slurp_file($sub->logfile, $log_offset);
	$log_offset += length($log);
	$log =~ $error or return undef;
	return defined($1) ? $1 : 'copy';
}

# wait_for_sub_log($regexp): whether the subscriber's log shows $regexp
# after what the last wait read.
sub wait_for_sub_log
{
	my ($regexp) = @_;
	my $found = eval {
		$log_offset = $sub->wait_for_log($regexp, $log_offset);
		1;
	};
	return $found ? 1 : 0;
}

my $schema = q{
	CREATE EXTENSION payout;
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		amount numeric,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
	SELECT payout.attach('payouts');
};
my $triggers = q{SELECT string_agg(tgname || '=' || tgenabled::text, ' ' ORDER BY tgname)
	FROM pg_trigger WHERE tgrelid = 'payouts'::regclass};

foreach my $node ($pub, $sub)
{
	$node->safe_psql('postgres',
		'CREATE DATABASE deploy_a; CREATE DATABASE deploy_b');
	$node->safe_psql('deploy_a', $schema);
	$node->safe_psql('deploy_b', $schema);
}

###########################################################################
# Deployment A: enforce on the publisher only.
###########################################################################

# Payouts that exist before the subscription: 1 PROCESSED, 2 READY,
# 3 CREATED.
$pub->safe_psql(
	'deploy_a', q{
	INSERT INTO payouts (id, amount) VALUES (1, 10), (2, 20), (3, 30);
	UPDATE payouts SET status = 'READY' WHERE id IN (1, 2);
	UPDATE payouts SET status = 'INVOKING' WHERE id = 1;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
	UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;
	CREATE PUBLICATION payouts_a FOR TABLE payouts;
});
my $connstr_a = $pub->connstr . ' dbname=deploy_a';
$sub->safe_psql('deploy_a',
	"CREATE SUBSCRIPTION sub_a CONNECTION '$connstr_a' PUBLICATION payouts_a");
$sub->wait_for_subscription_sync($pub, 'sub_a', 'deploy_a');

is($sub->safe_psql('deploy_a', $triggers),
	'zz_payout_enforce=O zz_payout_history=O zz_payout_history_delete=O zz_payout_history_update=O',
	'deploy_a: the subscriber\'s triggers are in their default (origin) mode');
is($sub->safe_psql('deploy_a', $payouts_query),
	"1|10|PROCESSED|OK\n2|20|READY|\n3|30|CREATED|",
	'deploy_a: the initial copy brought the PROCESSED payout along');

# Legal changes replicate.
$pub->safe_psql(
	'deploy_a', q{
	UPDATE payouts SET status = 'INVOKING' WHERE id = 2;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 2;
	UPDATE payouts SET status = 'READY' WHERE id = 3;
	UPDATE payouts SET status = 'INVOKING' WHERE id = 3;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 3;
	INSERT INTO payouts (id, amount) VALUES (4, 40);
	UPDATE payouts SET amount = 41 WHERE id = 4;
});
$pub->wait_for_catchup('sub_a');
is($pub->safe_psql('deploy_a', $payouts_query),
	"1|10|PROCESSED|OK\n2|20|PROCESSING|\n3|30|PROCESSING|\n4|41|CREATED|",
	'deploy_a: the publisher has the legal changes');
same_payouts('deploy_a', 'after legal changes');

# Illegal changes fail on the publisher and never reach the subscriber.
is(try($pub, 'deploy_a', q{UPDATE payouts SET status = 'PROCESSING' WHERE id = 1}),
	'23514', 'deploy_a: publisher rejects PROCESSED -> PROCESSING');
is(try($pub, 'deploy_a', q{INSERT INTO payouts (id, amount, status) VALUES (5, 50, 'PROCESSED')}),
	'23514', 'deploy_a: publisher rejects a new payout in PROCESSED');
is(try($pub, 'deploy_a', q{UPDATE payouts SET status = 'READY' WHERE id = 4}),
	'ok', 'deploy_a: publisher accepts CREATED -> READY afterwards');
$pub->wait_for_catchup('sub_a');
is( $sub->safe_psql('deploy_a',
		q{SELECT string_agg(id || ' ' || status, ', ' ORDER BY id) FROM payouts}),
	'1 PROCESSED, 2 PROCESSING, 3 PROCESSING, 4 READY',
	'deploy_a: the subscriber has the later legal change, not the rejected ones');

# The subscriber's graph is not consulted for replicated changes, but it is
# for local writes: without PROCESSING -> PROCESSED on the subscriber, the
# publisher's change applies and the same change made locally fails.
$sub->safe_psql('deploy_a',
	q{DELETE FROM payout.transition WHERE from_status = 'PROCESSING' AND to_status = 'PROCESSED'});
$pub->safe_psql('deploy_a',
	q{UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 2});
$pub->wait_for_catchup('sub_a');
is(status($sub, 'deploy_a', 2), 'PROCESSED OK',
	'deploy_a: a change the subscriber\'s graph forbids is applied there all the same');
is(try($sub, 'deploy_a', q{UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 3}),
	'23514', 'deploy_a: the same change made locally on the subscriber is rejected');
is(try($sub, 'deploy_a', q{UPDATE payouts SET status = 'PROCESSING' WHERE id = 1}),
	'23514', 'deploy_a: a local PROCESSED -> PROCESSING on the subscriber is rejected');
$sub->safe_psql('deploy_a',
	q{INSERT INTO payout.transition VALUES ('PROCESSING', 'PROCESSED')});
same_payouts('deploy_a', 'after the local attempts');

# History: recorded on the publisher only.
is($pub->safe_psql('deploy_a', 'SELECT count(*) FROM payout.history'),
	'16', 'deploy_a: the publisher recorded its sixteen changes');
is($sub->safe_psql('deploy_a', 'SELECT count(*) FROM payout.history'),
	'0', 'deploy_a: the subscriber\'s apply worker recorded nothing');

# Publishing payout.history too: inserts only, through the partitioned
# table, so that the subscriber routes rows into its own partitions.
$pub->safe_psql('deploy_a',
	q{CREATE PUBLICATION history_a FOR TABLE payout.history
	  WITH (publish = 'insert', publish_via_partition_root = true)});
$sub->safe_psql('deploy_a',
	"CREATE SUBSCRIPTION sub_a_history CONNECTION '$connstr_a' PUBLICATION history_a");
$sub->wait_for_subscription_sync($pub, 'sub_a_history', 'deploy_a');
is($sub->safe_psql('deploy_a', $history_query),
	$pub->safe_psql('deploy_a', $history_query),
	'deploy_a: the initial copy gives the subscriber the publisher\'s history');

$pub->safe_psql(
	'deploy_a', q{
	UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 3;
	UPDATE payouts SET status = 'INVOKING' WHERE id = 4;
	UPDATE payouts SET status = 'REVOKING' WHERE id = 1;
});
$pub->wait_for_catchup('sub_a');
$pub->wait_for_catchup('sub_a_history');
same_payouts('deploy_a', 'with history published');
is($pub->safe_psql('deploy_a', 'SELECT count(*) FROM payout.history'),
	'19', 'deploy_a: the publisher recorded three more changes');
is($sub->safe_psql('deploy_a', $history_query),
	$pub->safe_psql('deploy_a', $history_query),
	'deploy_a: the subscriber\'s history equals the publisher\'s, row for row');

# The subscriber's history sequence was not replicated: a local write that
# would be recorded takes id 1, which the publisher's history already has.
{
	my ($stdout, $stderr);
	$sub->psql(
		'deploy_a', q{UPDATE payouts SET status = 'REVOKED' WHERE id = 1},
		stdout => \$stdout,
		stderr => \$stderr);
	like($stderr,
		qr/duplicate key value violates unique constraint "history_catchall_pkey"/,
		'deploy_a: a recorded local write on the subscriber collides with the replicated history');
}
is(status($sub, 'deploy_a', 1), 'REVOKING OK',
	'deploy_a: and is rolled back');

# A second subscriber database, deploy_h, takes the history alone, from a
# publication with PostgreSQL's default actions, deletes included.  The
# column tbl is a regclass, which travels as the table's name: until
# deploy_h has a table of that name, the initial copy fails.
$sub->safe_psql('postgres', 'CREATE DATABASE deploy_h');
$sub->safe_psql('deploy_h', 'CREATE EXTENSION payout');
$pub->safe_psql('deploy_a',
	q{CREATE PUBLICATION history_all FOR TABLE payout.history
	  WITH (publish_via_partition_root = true)});
$sub->safe_psql('deploy_h',
	"CREATE SUBSCRIPTION sub_h CONNECTION '$connstr_a' PUBLICATION history_all");
ok( wait_for_sub_log(
		qr/ERROR:  relation "public.payouts" does not exist\n.*CONTEXT:  COPY history/),
	'deploy_h: the history cannot be copied to a database without the table it names');
$sub->safe_psql(
	'deploy_h', q{
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		amount numeric,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
});
$sub->wait_for_subscription_sync($pub, 'sub_h', 'deploy_h');
is($sub->safe_psql('deploy_h', $history_query),
	$pub->safe_psql('deploy_a', $history_query),
	'deploy_h: with the table created, it has the publisher\'s history');

# Pruning on the publisher: the subscription of inserts only keeps the
# pruned rows and goes on.  The one that takes deletes too stalls: the
# partitioned payout.history has no primary key, so the publisher sends the
# DELETE without the key that the subscriber's partition expects.
$pub->safe_psql('deploy_a', 'DELETE FROM payout.history WHERE id <= 5');
$pub->safe_psql('deploy_a', q{UPDATE payouts SET status = 'REVOKED' WHERE id = 1});
$pub->wait_for_catchup('sub_a_history');
is( $sub->safe_psql('deploy_a', 'SELECT count(*), min(id), max(id) FROM payout.history'),
	'20|1|20',
	'deploy_a: the subscriber keeps history the publisher pruned, and gets the new row');
ok( wait_for_sub_log(
		qr/ERROR:  publisher did not send replica identity column expected by the logical replication target relation "payout.history"/
	),
	'deploy_h: the published DELETE fails on the subscriber');
is( $sub->safe_psql('deploy_h', 'SELECT count(*), min(id), max(id) FROM payout.history'),
	'19|1|19',
	'deploy_h: nothing after it arrives');
$sub->safe_psql('deploy_h', 'DROP SUBSCRIPTION sub_h');

$sub->safe_psql('deploy_a', 'DROP SUBSCRIPTION sub_a; DROP SUBSCRIPTION sub_a_history');

###########################################################################
# Deployment B: enforce on both.
###########################################################################

my $always = q{
	ALTER TABLE payouts ENABLE ALWAYS TRIGGER zz_payout_enforce;
	ALTER TABLE payouts ENABLE ALWAYS TRIGGER zz_payout_history;
	ALTER TABLE payouts ENABLE ALWAYS TRIGGER zz_payout_history_update;
	ALTER TABLE payouts ENABLE ALWAYS TRIGGER zz_payout_history_delete;
};
my $origin = q{
	ALTER TABLE payouts ENABLE TRIGGER zz_payout_enforce;
	ALTER TABLE payouts ENABLE TRIGGER zz_payout_history;
	ALTER TABLE payouts ENABLE TRIGGER zz_payout_history_update;
	ALTER TABLE payouts ENABLE TRIGGER zz_payout_history_delete;
};

# Before the subscription: 1 PROCESSED, 2 CREATED.
$pub->safe_psql(
	'deploy_b', q{
	INSERT INTO payouts (id, amount) VALUES (1, 10), (2, 20);
	UPDATE payouts SET status = 'READY' WHERE id = 1;
	UPDATE payouts SET status = 'INVOKING' WHERE id = 1;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
	UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;
	CREATE PUBLICATION payouts_b FOR TABLE payouts;
});

# The subscription belongs to its own role (a superuser, as PostgreSQL 15
# requires), which the apply worker runs as.
$sub->safe_psql('postgres', 'CREATE ROLE sub_owner SUPERUSER LOGIN');
$sub->safe_psql('deploy_b', $always);
is($sub->safe_psql('deploy_b', $triggers),
	'zz_payout_enforce=A zz_payout_history=A zz_payout_history_delete=A zz_payout_history_update=A',
	'deploy_b: the subscriber\'s triggers fire always');

my $connstr_b = $pub->connstr . ' dbname=deploy_b';
$sub->safe_psql('deploy_b',
	"SET SESSION AUTHORIZATION sub_owner;
	 CREATE SUBSCRIPTION sub_b CONNECTION '$connstr_b' PUBLICATION payouts_b");

# The initial copy fires ALWAYS triggers and judges every row as a new
# payout.
is(wait_for_apply_error(qr/illegal initial payout status "PROCESSED"/, 1), 'copy',
	'deploy_b: with ALWAYS triggers, the initial copy fails at the PROCESSED payout');
ok( $sub->poll_query_until('deploy_b',
		q{SELECT sync_error_count > 0 FROM pg_stat_subscription_stats WHERE subname = 'sub_b'}),
	'deploy_b: the failure counts as a table sync error');
is($sub->safe_psql('deploy_b', 'SELECT count(*) FROM payouts'),
	'0', 'deploy_b: nothing was copied');

# Sync with the triggers in their default mode, then switch to ALWAYS.
$sub->safe_psql('deploy_b', $origin);
$sub->wait_for_subscription_sync($pub, 'sub_b', 'deploy_b');
$sub->safe_psql('deploy_b', $always);
same_payouts('deploy_b', 'after the initial copy');
is($sub->safe_psql('deploy_b', 'SELECT count(*) FROM payout.history'),
	'0', 'deploy_b: the initial copy, made in origin mode, was not recorded');

# Replicated legal changes are judged, pass and are recorded on the
# subscriber, under the subscription's owner.
my $pub_history_start =
  $pub->safe_psql('deploy_b', 'SELECT max(id) FROM payout.history');
$pub->safe_psql(
	'deploy_b', q{
	UPDATE payouts SET status = 'READY' WHERE id = 2;
	UPDATE payouts SET status = 'INVOKING' WHERE id = 2;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 2;
	UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 2;
	INSERT INTO payouts (id, amount) VALUES (3, 30), (4, 40);
	UPDATE payouts SET status = 'READY' WHERE id IN (3, 4);
	UPDATE payouts SET status = 'REVOKING' WHERE id = 1;
});
$pub->wait_for_catchup('sub_b');
same_payouts('deploy_b', 'after legal changes');
my $changes = q{SELECT string_agg(key || ':' || coalesce(old_status::text, '-') || '>' || new_status
	|| coalesce(' ' || new_resolution, ''), ', ' ORDER BY id) FROM payout.history};
is($sub->safe_psql('deploy_b', $changes),
	'2:CREATED>READY, 2:READY>INVOKING, 2:INVOKING>PROCESSING, 2:PROCESSING>PROCESSED OK, '
	  . '3:->CREATED, 4:->CREATED, 3:CREATED>READY, 4:CREATED>READY, 1:PROCESSED>REVOKING OK',
	'deploy_b: the subscriber recorded each replicated change');
is( $sub->safe_psql('deploy_b', $changes),
	$pub->safe_psql('deploy_b', $changes . " WHERE id > $pub_history_start"),
	'deploy_b: the same changes the publisher recorded, in the same order');
# From PostgreSQL 16 the apply worker runs each table's triggers as the
# table's owner (unless the subscription says run_as_owner = true): the
# history then shows the table's owner as user_name and the subscription's
# owner as session_user_name.
my $table_owner = $sub->safe_psql('postgres', 'SELECT current_user');
my $applier = $sub->safe_psql('postgres', 'SHOW server_version_num') >= 160000 ? $table_owner : 'sub_owner';
is( $sub->safe_psql('deploy_b',
		q{SELECT string_agg(DISTINCT user_name || '/' || session_user_name, ',') FROM payout.history}),
	"$applier/sub_owner",
	'deploy_b: recorded as the role the apply worker runs triggers as, in the subscription\'s session');

# A local change that conflicts with the replicated state is rejected.
is(try($sub, 'deploy_b', q{UPDATE payouts SET status = 'PROCESSING' WHERE id = 2}),
	'23514', 'deploy_b: a local PROCESSED -> PROCESSING on the subscriber is rejected');
is(try($sub, 'deploy_b', q{SET session_replication_role = replica;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 2}),
	'23514', 'deploy_b: also in a session with session_replication_role = replica');

# Diverged, then skipped.  Payout 3 is PROCESSING on both sides; the
# subscriber cancels it locally, the publisher processes it.
$pub->safe_psql(
	'deploy_b', q{
	UPDATE payouts SET status = 'INVOKING' WHERE id IN (3, 4);
	UPDATE payouts SET status = 'PROCESSING' WHERE id IN (3, 4);
});
$pub->wait_for_catchup('sub_b');
is(try($sub, 'deploy_b', q{UPDATE payouts SET status = 'CANCELLING' WHERE id = 3}),
	'ok', 'deploy_b: the subscriber cancels payout 3 locally');
$pub->safe_psql('deploy_b',
	q{UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 3});
$pub->safe_psql('deploy_b', q{INSERT INTO payouts (id, amount) VALUES (5, 50)});

my $lsn = wait_for_apply_error(
	qr/illegal payout status transition from "CANCELLING" to "PROCESSED"/, 3);
like($lsn, qr{^[0-9A-F]+/[0-9A-F]+$},
	'deploy_b: the apply worker fails with the payout error, naming the transaction\'s LSN');
ok( $sub->poll_query_until('deploy_b',
		q{SELECT apply_error_count > 0 FROM pg_stat_subscription_stats WHERE subname = 'sub_b'}),
	'deploy_b: the failure counts as an apply error');
is($sub->safe_psql('deploy_b', 'SELECT count(*) FROM payouts WHERE id = 5'),
	'0', 'deploy_b: the later transaction is not applied: replication has stalled');
is(status($sub, 'deploy_b', 3), 'CANCELLING',
	'deploy_b: the subscriber\'s payout 3 is still CANCELLING');

$sub->safe_psql('deploy_b', "ALTER SUBSCRIPTION sub_b SKIP (lsn = '$lsn')");
$pub->wait_for_catchup('sub_b');
is($sub->safe_psql('deploy_b', q{SELECT subskiplsn FROM pg_subscription WHERE subname = 'sub_b'}),
	'0/0', 'deploy_b: the transaction was skipped');
is($sub->safe_psql('deploy_b', 'SELECT status FROM payouts WHERE id = 5'),
	'CREATED', 'deploy_b: after the skip, the later transaction is applied');
is(status($sub, 'deploy_b', 3) . ' / ' . status($pub, 'deploy_b', 3),
	'CANCELLING / PROCESSED OK',
	'deploy_b: payout 3 stays diverged: CANCELLING on the subscriber, PROCESSED on the publisher');

# Diverged, then repaired.  Payout 4: same story, but the subscriber's row
# is set back to the publisher's status before the failed change, with the
# enforcement trigger disabled inside one transaction; the apply worker's
# next attempt then succeeds.
my $sub_history_before =
  $sub->safe_psql('deploy_b', 'SELECT max(id) FROM payout.history');
is(try($sub, 'deploy_b', q{UPDATE payouts SET status = 'CANCELLING' WHERE id = 4}),
	'ok', 'deploy_b: the subscriber cancels payout 4 locally');
$pub->safe_psql('deploy_b',
	q{UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 4});
$pub->safe_psql('deploy_b', q{UPDATE payouts SET status = 'READY' WHERE id = 5});
like(wait_for_apply_error(qr/illegal payout status transition from "CANCELLING" to "PROCESSED"/, 4),
	qr{/}, 'deploy_b: payout 4 stalls the apply worker');
is(status($sub, 'deploy_b', 5), 'CREATED', 'deploy_b: payout 5 waits behind it');
is(try($sub, 'deploy_b', q{UPDATE payouts SET status = 'PROCESSING' WHERE id = 4}),
	'23514', 'deploy_b: the repair is itself an illegal change');
is( try(
		$sub, 'deploy_b', q{
	BEGIN;
	ALTER TABLE payouts DISABLE TRIGGER zz_payout_enforce;
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 4;
	ALTER TABLE payouts ENABLE ALWAYS TRIGGER zz_payout_enforce;
	COMMIT;
}), 'ok', 'deploy_b: repaired with the trigger disabled inside one transaction');
$pub->wait_for_catchup('sub_b');
is($sub->safe_psql('deploy_b', $triggers),
	'zz_payout_enforce=A zz_payout_history=A zz_payout_history_delete=A zz_payout_history_update=A',
	'deploy_b: the trigger fires always again');
is(status($sub, 'deploy_b', 4) . ' / ' . status($sub, 'deploy_b', 5),
	'PROCESSED OK / READY', 'deploy_b: the apply worker went on by itself');
my $superuser = $sub->safe_psql('postgres', 'SELECT current_user');
is( $sub->safe_psql('deploy_b',
		qq{SELECT string_agg(old_status || '>' || new_status || ' ' || user_name, ', ' ORDER BY id)
		  FROM payout.history WHERE key = '4' AND id > $sub_history_before}),
	"PROCESSING>CANCELLING $superuser, CANCELLING>PROCESSING $superuser, "
	  . "PROCESSING>PROCESSED $applier",
	'deploy_b: the subscriber\'s history shows the local change, the repair and the replicated change');

# A graph that lacks an edge the publisher uses.  The publisher lets a
# READY payout be cancelled; the subscriber does not, until it gets the
# same edge.
$pub->safe_psql('deploy_b', q{INSERT INTO payout.transition VALUES ('READY', 'CANCELLING')});
$pub->safe_psql('deploy_b', q{UPDATE payouts SET status = 'CANCELLING' WHERE id = 5});
$pub->safe_psql('deploy_b', q{INSERT INTO payouts (id, amount) VALUES (6, 60)});
like(wait_for_apply_error(qr/illegal payout status transition from "READY" to "CANCELLING"/, 5),
	qr{/}, 'deploy_b: an edge missing on the subscriber stalls the apply worker');
is($sub->safe_psql('deploy_b', 'SELECT count(*) FROM payouts WHERE id = 6'),
	'0', 'deploy_b: payout 6 waits behind it');
$sub->safe_psql('deploy_b', q{INSERT INTO payout.transition VALUES ('READY', 'CANCELLING')});
$pub->wait_for_catchup('sub_b');
is(status($sub, 'deploy_b', 5) . ' / ' . status($sub, 'deploy_b', 6),
	'CANCELLING / CREATED',
	'deploy_b: with the edge added on the subscriber, the apply worker goes on');

# The same edit in the right order, subscriber first: the running apply
# worker, which has the graph cached since it last started, follows the
# edit at once.  (Had it kept its old copy, the change would fail and
# wait_for_catchup would time out.)
my $apply_pid = q{SELECT pid FROM pg_stat_subscription
	WHERE subname = 'sub_b' AND relid IS NULL};
my $pid_before = $sub->safe_psql('deploy_b', $apply_pid);
$sub->safe_psql('deploy_b', q{INSERT INTO payout.transition VALUES ('CREATED', 'CANCELLING')});
$pub->safe_psql('deploy_b', q{INSERT INTO payout.transition VALUES ('CREATED', 'CANCELLING')});
$pub->safe_psql('deploy_b', q{UPDATE payouts SET status = 'CANCELLING' WHERE id = 6});
$pub->wait_for_catchup('sub_b');
is(status($sub, 'deploy_b', 6), 'CANCELLING',
	'deploy_b: an edge added on the subscriber first is used by the apply worker');
my $pid_after = $sub->safe_psql('deploy_b', $apply_pid);
ok($pid_before =~ /^[0-9]+$/ && $pid_after eq $pid_before,
	'deploy_b: by the same apply worker, without a failure in between')
  or diag("apply worker before: '$pid_before', after: '$pid_after'");

# Converge payout 3, the skipped one, the same way as the repair.
$sub->safe_psql(
	'deploy_b', q{
	BEGIN;
	ALTER TABLE payouts DISABLE TRIGGER zz_payout_enforce;
	UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 3;
	ALTER TABLE payouts ENABLE ALWAYS TRIGGER zz_payout_enforce;
	COMMIT;
});
same_payouts('deploy_b', 'at the end');

$sub->safe_psql('deploy_b', 'DROP SUBSCRIPTION sub_b');

###########################################################################
# Deployment M: enforce on both, payouts moving between partitions.
###########################################################################

my $parted = q{
	CREATE EXTENSION payout;
	CREATE TABLE moving (
		id bigint,
		region text,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution,
		PRIMARY KEY (id, region)
	) PARTITION BY LIST (region);
	CREATE TABLE moving_a PARTITION OF moving FOR VALUES IN ('a');
	CREATE TABLE moving_b PARTITION OF moving FOR VALUES IN ('b');
};
foreach my $node ($pub, $sub)
{
	$node->safe_psql('postgres', 'CREATE DATABASE deploy_m');
	$node->safe_psql('deploy_m', $parted);
}
# flat: partitioned by region on the subscriber only.
$pub->safe_psql('deploy_m', q{CREATE TABLE flat (id bigint, region text,
	status payout.status NOT NULL DEFAULT 'CREATED', PRIMARY KEY (id, region));
	SELECT payout.attach('flat')});
$sub->safe_psql('deploy_m', q{CREATE TABLE flat (id bigint, region text,
	status payout.status NOT NULL DEFAULT 'CREATED', PRIMARY KEY (id, region))
	PARTITION BY LIST (region);
	CREATE TABLE flat_a PARTITION OF flat FOR VALUES IN ('a');
	CREATE TABLE flat_b PARTITION OF flat FOR VALUES IN ('b');
	SELECT payout.attach('flat')});
# The publisher lets unfinished payouts be deleted, the subscriber does not.
$pub->safe_psql('deploy_m', q{SELECT payout.attach('moving', delete_unfinished => true)});
$sub->safe_psql('deploy_m', q{SELECT payout.attach('moving')});
$pub->safe_psql(
	'deploy_m', q{
	INSERT INTO moving (id, region) VALUES (1, 'a'), (2, 'a'), (3, 'a');
	UPDATE moving SET status = 'READY';
	INSERT INTO flat (id, region) VALUES (1, 'a');
	UPDATE flat SET status = 'READY';
	CREATE PUBLICATION moving_pub FOR TABLE moving, flat WITH (publish_via_partition_root = true);
});
my $connstr_m = $pub->connstr . ' dbname=deploy_m';
$sub->safe_psql('deploy_m',
	"CREATE SUBSCRIPTION sub_m CONNECTION '$connstr_m' PUBLICATION moving_pub");
$sub->wait_for_subscription_sync($pub, 'sub_m', 'deploy_m');
$sub->safe_psql(
	'deploy_m', q{
	ALTER TABLE moving ENABLE ALWAYS TRIGGER zz_payout_enforce;
	ALTER TABLE moving ENABLE ALWAYS TRIGGER zz_payout_history;
	ALTER TABLE moving ENABLE ALWAYS TRIGGER zz_payout_history_update;
	ALTER TABLE moving ENABLE ALWAYS TRIGGER zz_payout_history_delete;
	ALTER TABLE flat ENABLE ALWAYS TRIGGER zz_payout_enforce;
	ALTER TABLE flat ENABLE ALWAYS TRIGGER zz_payout_history;
	ALTER TABLE flat ENABLE ALWAYS TRIGGER zz_payout_history_update;
	ALTER TABLE flat ENABLE ALWAYS TRIGGER zz_payout_history_delete;
});
my $moving_query = q{SELECT tableoid::regclass || ' ' || id || ' ' || status
	FROM moving ORDER BY id};

# Legal moves: with a change of status, and alone.  A later transaction
# shows that nothing stalls.
$pub->safe_psql('deploy_m', q{UPDATE moving SET region = 'b', status = 'INVOKING' WHERE id = 1});
$pub->safe_psql('deploy_m', q{UPDATE moving SET region = 'b' WHERE id = 2});
$pub->safe_psql('deploy_m', q{INSERT INTO moving (id, region) VALUES (4, 'a')});
$pub->wait_for_catchup('sub_m');
is($sub->safe_psql('deploy_m', $moving_query),
	"moving_b 1 INVOKING\nmoving_b 2 READY\nmoving_a 3 READY\nmoving_a 4 CREATED",
	'deploy_m: legal moves from the publisher apply on the subscriber, and replication goes on');
is( $sub->safe_psql(
		'deploy_m', q{SELECT string_agg(key || ' ' || coalesce(old_key, '-') || ' '
			|| coalesce(old_status::text, '-') || '>' || coalesce(new_status::text, '-'), ', ' ORDER BY id)
		FROM payout.history WHERE tbl = 'moving'::regclass}),
	'(1,b) (1,a) READY>INVOKING, (2,b) (2,a) READY>READY, (4,a) - ->CREATED',
	'deploy_m: each move is recorded once on the subscriber, as the update it was, with its old key');

# The publisher's plain UPDATE, a move on the subscriber.
$pub->safe_psql('deploy_m', q{UPDATE flat SET region = 'b', status = 'INVOKING' WHERE id = 1});
$pub->wait_for_catchup('sub_m');
is( $sub->safe_psql(
		'deploy_m', q{SELECT tableoid::regclass || ' ' || status FROM flat;
		SELECT string_agg(key || ' ' || coalesce(old_key, '-') || ' '
			|| coalesce(old_status::text, '-') || '>' || coalesce(new_status::text, '-'), ', ' ORDER BY id)
		FROM payout.history WHERE tbl = 'flat'::regclass}),
	"flat_b INVOKING\n(1,b) (1,a) READY>INVOKING",
	'deploy_m: a move the subscriber makes of a replicated UPDATE is judged and recorded as that update');

# An illegal move: the subscriber's graph lacks the edge the publisher
# uses.  The apply worker fails with the payout error, naming the row by
# its new key, and nothing after it applies; with the edge, it goes on.
$pub->safe_psql('deploy_m', q{INSERT INTO payout.transition VALUES ('READY', 'CANCELLING')});
$pub->safe_psql('deploy_m', q{UPDATE moving SET region = 'b', status = 'CANCELLING' WHERE id = 3});
$pub->safe_psql('deploy_m', q{INSERT INTO moving (id, region) VALUES (5, 'a')});
ok(wait_for_sub_log(qr/ERROR:  illegal payout status transition from "READY" to "CANCELLING"\n.*DETAIL:  Key \(id, region\)=\(3, b\)/),
	'deploy_m: a move the subscriber\'s graph forbids stalls the apply worker');
is($sub->safe_psql('deploy_m', 'SELECT count(*) FROM moving WHERE id = 5'),
	'0', 'deploy_m: the later transaction waits behind it');
$sub->safe_psql('deploy_m', q{INSERT INTO payout.transition VALUES ('READY', 'CANCELLING')});
$pub->wait_for_catchup('sub_m');
is($sub->safe_psql('deploy_m', $moving_query),
	"moving_b 1 INVOKING\nmoving_b 2 READY\nmoving_b 3 CANCELLING\nmoving_a 4 CREATED\nmoving_a 5 CREATED",
	'deploy_m: with the edge, the move and what came after it apply');

# A DELETE of an unfinished payout, which the publisher allows and the
# subscriber does not: no INSERT follows it, so it is refused, and the
# apply worker stalls until the transaction is skipped.
$pub->safe_psql('deploy_m', q{DELETE FROM moving WHERE id = 4});
$pub->safe_psql('deploy_m', q{INSERT INTO moving (id, region) VALUES (6, 'a')});
ok(wait_for_sub_log(qr/ERROR:  payout in status "CREATED" cannot be deleted\n.*DETAIL:  Key \(id, region\)=\(4, a\)[^\n]*\n.*HINT:[^\n]*\n.*CONTEXT:  processing remote data.* finished at ([0-9A-F]+\/[0-9A-F]+)/),
	'deploy_m: a refused delete stalls the apply worker');
my ($skip) = slurp_file($sub->logfile) =~ /cannot be deleted\n.*DETAIL:  Key \(id, region\)=\(4, a\)[^\n]*\n.*HINT:[^\n]*\n.*CONTEXT:  processing remote data.* finished at ([0-9A-F]+\/[0-9A-F]+)/;
is($sub->safe_psql('deploy_m', 'SELECT count(*) FROM moving WHERE id IN (4, 6)'),
	'1', 'deploy_m: the payout is still there, and the later transaction waits');
$sub->safe_psql('deploy_m', "ALTER SUBSCRIPTION sub_m SKIP (lsn = '$skip')");
$pub->wait_for_catchup('sub_m');
is($sub->safe_psql('deploy_m', 'SELECT count(*) FROM moving WHERE id IN (4, 6)'),
	'2', 'deploy_m: after the skip, the later transaction applies');

# A delete and an insert in one publisher transaction are two messages,
# like the halves of a move; they are a move only if the payout keeps its
# key outside the partition key.  The delete of a finished payout and the
# insert of a new one, or of a new payout under the deleted one's key
# (illegal as a move), are the delete and the new payout they are.
my $mark = $sub->safe_psql('deploy_m', q{SELECT coalesce(max(id), 0) FROM payout.history});
$pub->safe_psql('deploy_m', q{UPDATE moving SET status = 'TERMINATED' WHERE id IN (5, 6)});
$pub->safe_psql('deploy_m', q{BEGIN;
	DELETE FROM moving WHERE id = 5;
	INSERT INTO moving (id, region) VALUES (8, 'a');
	COMMIT;
	BEGIN;
	DELETE FROM moving WHERE id = 6;
	INSERT INTO moving (id, region) VALUES (6, 'a');
	COMMIT});
$pub->wait_for_catchup('sub_m');
is($sub->safe_psql('deploy_m', 'SELECT string_agg(id::text || status::text, \' \' ORDER BY id) FROM moving WHERE id >= 5'),
	'6CREATED 8CREATED',
	'deploy_m: a finished payout deleted and a new one inserted in one transaction apply');
is( $sub->safe_psql(
		'deploy_m', qq{SELECT string_agg(key || ' ' || coalesce(old_key, '-') || ' '
			|| coalesce(old_status::text, '-') || '>' || coalesce(new_status::text, '-'), ', ' ORDER BY id)
		FROM payout.history WHERE tbl = 'moving'::regclass AND id > $mark}),
	'(5,a) - CREATED>TERMINATED, (6,a) - CREATED>TERMINATED, (5,a) - TERMINATED>-, (8,a) - ->CREATED, (6,a) - TERMINATED>-, (6,a) - ->CREATED',
	'deploy_m: they are recorded as a delete and a new payout, not as a move');

# An unfinished payout deleted and another inserted in one transaction:
# the insert is no move, and the delete the subscriber refuses stays
# refused.
$pub->safe_psql('deploy_m', q{BEGIN;
	DELETE FROM moving WHERE id = 8;
	INSERT INTO moving (id, region) VALUES (9, 'a');
	COMMIT});
ok(wait_for_sub_log(qr/ERROR:  payout in status "CREATED" cannot be deleted\n.*DETAIL:  Key \(id, region\)=\(8, a\)/),
	'deploy_m: a refused delete followed by the insert of another payout stalls the apply worker');
($skip) = slurp_file($sub->logfile) =~ /cannot be deleted\n.*DETAIL:  Key \(id, region\)=\(8, a\)[^\n]*\n.*HINT:[^\n]*\n.*CONTEXT:  processing remote data.* finished at ([0-9A-F]+\/[0-9A-F]+)/;
is($sub->safe_psql('deploy_m', 'SELECT string_agg(id::text, \' \' ORDER BY id) FROM moving WHERE id IN (8, 9)'),
	'8', 'deploy_m: the payout is still there, and the new one was not inserted');
$sub->safe_psql('deploy_m', "ALTER SUBSCRIPTION sub_m SKIP (lsn = '$skip')");
$pub->safe_psql('deploy_m', q{INSERT INTO moving (id, region) VALUES (10, 'a')});
$pub->wait_for_catchup('sub_m');
is($sub->safe_psql('deploy_m', 'SELECT string_agg(id::text, \' \' ORDER BY id) FROM moving WHERE id >= 8'),
	'8 10', 'deploy_m: after the skip, replication goes on');
$sub->safe_psql('deploy_m', 'DROP SUBSCRIPTION sub_m');

###########################################################################
# The graph itself, published: the apply worker applies row changes to
# payout.transition as session_replication_role = replica, and fires no
# statement trigger.  The subscriber's removed-default tracking and its
# sessions' cached graphs follow anyway: both triggers fire always, and
# the invalidation is a row trigger.
###########################################################################

foreach my $node ($pub, $sub)
{
	$node->safe_psql('postgres', 'CREATE DATABASE deploy_g');
	$node->safe_psql('deploy_g', 'CREATE EXTENSION payout');
}
$pub->safe_psql('deploy_g',
	'CREATE PUBLICATION graph FOR TABLE payout.transition');
my $connstr_g = $pub->connstr . ' dbname=deploy_g';
# Both sides start from the shipped graph: no initial copy.
$sub->safe_psql('deploy_g',
	"CREATE SUBSCRIPTION graph CONNECTION '$connstr_g' PUBLICATION graph WITH (copy_data = false)"
);
$sub->wait_for_subscription_sync($pub, 'graph', 'deploy_g');

# A session on the subscriber with the graph in its cache.
my $reader = $sub->background_psql('deploy_g');
is($reader->query_safe(q{SELECT payout.can_transition('CREATED', 'READY')}),
	't', 'deploy_g: a subscriber session has the default edge cached');

$pub->safe_psql('deploy_g',
	q{DELETE FROM payout.transition WHERE from_status = 'CREATED' AND to_status = 'READY'});
$pub->wait_for_catchup('graph');
is($reader->query_safe(q{SELECT payout.can_transition('CREATED', 'READY')}),
	'f', 'deploy_g: the applied removal reaches the cached graph of a running session');
is( $sub->safe_psql(
		'deploy_g', q{SELECT from_status || '>' || to_status FROM payout.transition_removed}),
	'CREATED>READY',
	'deploy_g: the apply worker\'s removal of a default edge is tracked for dumps');

$pub->safe_psql('deploy_g',
	q{INSERT INTO payout.transition VALUES ('CREATED', 'READY')});
$pub->wait_for_catchup('graph');
is($reader->query_safe(q{SELECT payout.can_transition('CREATED', 'READY')}),
	't', 'deploy_g: the applied addition reaches it too');
is($sub->safe_psql('deploy_g', q{SELECT count(*) FROM payout.transition_removed}),
	'0', 'deploy_g: and the edge is no longer recorded as removed');
$reader->quit;
$sub->safe_psql('deploy_g', 'DROP SUBSCRIPTION graph');

$sub->stop;
$pub->stop;

done_testing();
