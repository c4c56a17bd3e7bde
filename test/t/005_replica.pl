# 005_replica.pl: payouts, their history and the graph on a streaming
# replica.
#
# The primary enforces; the standby replays.  A standby is read-only, so it
# never judges a write, but it answers payout.can_transition() and
# payout.next_statuses() from its own per-backend copy of the graph.  That
# copy is dropped by the relcache invalidation that the statement trigger
# on payout.transition sends: on the primary it travels with the commit,
# and the standby replays it from the commit record.  This checks that a
# session on the standby that has already cached the graph follows edits
# made on the primary afterwards, both from its next transaction and from
# the next statement of a transaction it keeps open.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# try($node, $sql): "ok", or the SQLSTATE the statement failed with.
sub try
{
	my ($node, $sql) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql(
		'postgres', "\\set VERBOSITY sqlstate\n$sql",
		stdout => \$stdout,
		stderr => \$stderr);
	return 'ok' if $ret == 0;
	return $1 if $stderr =~ /ERROR:\s+([0-9A-Z]{5})/;
	return "failed: $stderr";
}

# Everything the comparison looks at, as text.
my %queries = (
	payouts => q{SELECT id, status, resolution, amount FROM payouts ORDER BY id},
	history => q{SELECT id, tbl, key, old_status, new_status, old_resolution,
		new_resolution, xact_time, clock_time, user_name, session_user_name,
		application_name, xid
		FROM payout.history ORDER BY id},
	transition => q{SELECT from_status, to_status FROM payout.transition
		ORDER BY from_status NULLS FIRST, to_status},
	transition_removed => q{SELECT from_status, to_status FROM payout.transition_removed
		ORDER BY from_status NULLS FIRST, to_status});

# same_on_both($what): the standby, caught up, shows what the primary has.
sub same_on_both
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	foreach my $name (sort keys %queries)
	{
		is($standby->safe_psql('postgres', $queries{$name}),
			$primary->safe_psql('postgres', $queries{$name}),
			"$what: $name is the same on the standby as on the primary");
	}
	return;
}

#
# The extension, a table and some history, made on the primary.
#
$primary->safe_psql(
	'postgres', q{
	CREATE EXTENSION payout;
	CREATE ROLE app;
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		amount numeric NOT NULL DEFAULT 0,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
	GRANT SELECT, INSERT, UPDATE ON payouts TO app;
	SELECT payout.attach('payouts');
	SET ROLE app;
	INSERT INTO payouts (id, amount) VALUES (1, 10), (2, 20), (3, 30);
	UPDATE payouts SET status = 'READY' WHERE id IN (1, 2, 3);
	UPDATE payouts SET status = 'INVOKING' WHERE id IN (1, 2);
	UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
	UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;
	UPDATE payouts SET status = 'PROCESSING', resolution = 'CONNECTION_ERROR' WHERE id = 2;
	UPDATE payouts SET amount = 31 WHERE id = 3;
});

is(try($primary, q{SET ROLE app; UPDATE payouts SET status = 'PROCESSING' WHERE id = 1}),
	'23514', 'primary: an illegal change (PROCESSED -> PROCESSING) is rejected');
is(try($primary, q{SET ROLE app; UPDATE payouts SET resolution = 'OK' WHERE id = 2}),
	'42501', 'primary: a held payout cannot be released by the application');
is(try($primary, q{UPDATE payouts SET resolution = 'OK' WHERE id = 2}),
	'ok', 'primary: a superuser releases it');

same_on_both('after the changes');
is( $standby->safe_psql(
		'postgres', q{SELECT count(*) FROM payout.history
		WHERE tbl = 'payouts'::regclass}),
	'12',
	'standby: the history has the twelve accepted changes, none of the rejected ones');
is( $standby->safe_psql(
		'postgres', q{SELECT string_agg(coalesce(old_status::text, '-') || '>' || new_status
		|| ' ' || coalesce(new_resolution::text, '-'), ', ' ORDER BY id)
		FROM payout.timeline('payouts', '2')}),
	'->CREATED -, CREATED>READY -, READY>INVOKING -, INVOKING>PROCESSING CONNECTION_ERROR, '
	  . 'PROCESSING>PROCESSING OK',
	'standby: payout.timeline() tells payout 2\'s story');

#
# The standby is read-only: no write reaches the trigger there.
#
is(try($standby, q{UPDATE payouts SET status = 'REVOKING' WHERE id = 1}),
	'25006', 'standby: an UPDATE of a payout fails as a read-only transaction');
is(try($standby, q{INSERT INTO payouts (id) VALUES (9)}),
	'25006', 'standby: an INSERT fails as a read-only transaction');
is(try($standby, q{INSERT INTO payout.transition VALUES ('READY', 'CANCELLING')}),
	'25006', 'standby: the graph cannot be edited there');

#
# Graph edits on the primary reach a standby session that has already
# cached the graph.
#
my $session = $standby->background_psql('postgres');
my $ask = q{SELECT payout.can_transition('READY', 'CANCELLING'),
	payout.can_transition('PROCESSED', 'REVOKING'),
	payout.next_statuses('READY')};

is($session->query_safe($ask), 'f|t|{TERMINATED,EXPIRED,INVOKING}',
	'standby session: the default graph, now cached');

$primary->safe_psql(
	'postgres', q{
	INSERT INTO payout.transition VALUES ('READY', 'CANCELLING');
	DELETE FROM payout.transition WHERE from_status = 'PROCESSED' AND to_status = 'REVOKING';
});
same_on_both('after two graph edits');
is($session->query_safe($ask), 't|f|{TERMINATED,EXPIRED,INVOKING,CANCELLING}',
	'standby session: its next transaction follows both edits');

# The same inside a transaction the standby session keeps open.
$session->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($session->query_safe($ask), 't|f|{TERMINATED,EXPIRED,INVOKING,CANCELLING}',
	'standby session: in an open transaction, the edited graph');
$primary->safe_psql(
	'postgres', q{
	DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'CANCELLING';
	INSERT INTO payout.transition VALUES ('PROCESSED', 'REVOKING');
});
$primary->wait_for_catchup($standby);
is($session->query_safe($ask), 'f|t|{TERMINATED,EXPIRED,INVOKING}',
	'standby session: the next statement of the open transaction follows the edits');
$session->query_safe('COMMIT');

# A reset to the defaults, through TRUNCATE.
$primary->safe_psql(
	'postgres', q{
	INSERT INTO payout.transition VALUES ('CREATED', 'CANCELLING');
});
$primary->wait_for_catchup($standby);
is($session->query_safe(q{SELECT payout.can_transition('CREATED', 'CANCELLING')}),
	't', 'standby session: an added edge');
$primary->safe_psql(
	'postgres', q{
	BEGIN;
	TRUNCATE payout.transition;
	INSERT INTO payout.transition SELECT * FROM payout.default_transition;
	COMMIT;
});
same_on_both('after a reset to the defaults');
is($session->query_safe(q{SELECT payout.can_transition('CREATED', 'CANCELLING')}),
	'f', 'standby session: the reset through TRUNCATE');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM payout.transition_removed}),
	'0', 'standby: no default edge is recorded as removed');

# The standby's answers match the primary's for every pair.
my $all_pairs = q{SELECT string_agg(coalesce(f::text, '-') || '>' || t
		|| '=' || payout.can_transition(f, t), ' ' ORDER BY f NULLS FIRST, t)
	FROM unnest(array_prepend(NULL, enum_range(NULL::payout.status))) f,
		unnest(enum_range(NULL::payout.status)) t};
is($session->query_safe($all_pairs), $primary->safe_psql('postgres', $all_pairs),
	'standby session: payout.can_transition() answers like the primary for every pair');

$session->quit;

#
# The primary still enforces the graph it replicated.
#
is(try($primary, q{SET ROLE app; UPDATE payouts SET status = 'REVOKING' WHERE id = 1}),
	'ok', 'primary: PROCESSED -> REVOKING, a default edge again, passes');
same_on_both('at the end');

$standby->stop;
$primary->stop;

done_testing();
