# 004_crash.pl: committed transitions and their history survive a crash,
# and enforcement works again after recovery.
#
# Two psql clients walk payouts along legal paths, one statement and one
# transaction per step, as the application role and as a moderator.  Each
# step is an INSERT or UPDATE ... RETURNING: psql prints its row only once
# the server has reported the command complete, which it does after the
# commit, so every line a client printed is a transition it saw committed.
# In the middle of the load the server is stopped in immediate mode (no
# shutdown checkpoint, backends killed: a crash), then started again, which
# runs crash recovery.  A third session has had a transaction open since
# before the load: it changed the status of payouts made before the load
# (several times for some), and inserted one, and never committed.
# Afterwards:
#   - every transition a client saw committed is in the table, and each has
#     its row in payout.history;
#   - no history row exists for a change the table does not have, and each
#     payout's history is one chain, from its insert to its current row;
#   - beyond what the clients saw, a payout has at most the one change that
#     was in flight in its client when the server went down;
#   - nothing of the open transaction is there: neither its changes, nor
#     its insert, nor any history row of them, and the trigger judges those
#     payouts by their committed status;
#   - the customized graph is still enforced, a held payout still held, and
#     new history rows get ids after every old one.
#
# The TAP cluster runs with fsync off; that loses nothing here, because a
# killed server leaves what it wrote to the operating system in place.
# synchronous_commit stays on, so a commit is written before it is
# reported.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $tempdir = PostgreSQL::Test::Utils::tempdir;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf',
	"synchronous_commit = on\npayout.moderator_role = 'payout_moderator'");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION payout;
	CREATE ROLE crash_app;
	CREATE ROLE payout_moderator NOLOGIN;
	CREATE ROLE crash_mod;
	GRANT payout_moderator TO crash_mod;

	CREATE TABLE crash_payouts (
		id bigint PRIMARY KEY,
		amount numeric NOT NULL DEFAULT 0,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
	GRANT SELECT, INSERT, UPDATE ON crash_payouts TO crash_app, payout_moderator;
	SELECT payout.attach('crash_payouts');

	-- A customized graph: one edge added, one default removed.
	INSERT INTO payout.transition VALUES ('READY', 'CANCELLING');
	DELETE FROM payout.transition
	WHERE from_status = 'PENDING' AND to_status = 'EXPIRED';

	-- Payouts for the checks after the restart, committed before the load.
	INSERT INTO crash_payouts (id) VALUES (1), (2), (3), (4), (5);
	UPDATE crash_payouts SET status = 'READY' WHERE id IN (2, 3, 4, 5);
	UPDATE crash_payouts SET status = 'INVOKING' WHERE id IN (3, 4, 5);
	UPDATE crash_payouts SET status = 'PENDING' WHERE id = 3;
	UPDATE crash_payouts SET status = 'PROCESSING', resolution = 'GENERAL_ERROR'
	WHERE id = 4;
	UPDATE crash_payouts SET status = 'INVOKE_FAILED', resolution = 'DECLINED_ERROR'
	WHERE id = 5;

	-- Payouts that the open transaction changes.
	INSERT INTO crash_payouts (id) VALUES (11), (12), (13);
	UPDATE crash_payouts SET status = 'READY' WHERE id IN (12, 13);
	UPDATE crash_payouts SET status = 'INVOKING' WHERE id = 13;
});
my $graph_query = q{SELECT coalesce(from_status::text, '-') || '>' || to_status
	FROM payout.transition ORDER BY 1};
my $graph_before = $node->safe_psql('postgres', $graph_query);

# The open transaction's payouts as committed, and their history.
my $open_query = q{SELECT id, status, coalesce(resolution::text, '')
	FROM crash_payouts WHERE id BETWEEN 11 AND 14 ORDER BY id};
my $open_history_query = q{SELECT key, coalesce(old_status::text, '-'), new_status,
		coalesce(new_resolution::text, '-')
	FROM payout.history
	WHERE tbl = 'crash_payouts'::regclass AND key IN ('11', '12', '13', '14')
	ORDER BY id};
my $open_before = $node->safe_psql('postgres', $open_query);
my $open_history_before = $node->safe_psql('postgres', $open_history_query);
is($open_before, "11|CREATED|\n12|READY|\n13|INVOKING|",
	'the payouts for the open transaction, as committed');

# The transaction: five status changes of three payouts, and an insert.
# It sees its own changes and their history rows; it never commits.
my $open = $node->background_psql('postgres');
$open->query_safe(q{
	BEGIN;
	UPDATE crash_payouts SET status = 'READY' WHERE id = 11;
	UPDATE crash_payouts SET status = 'CANCELLING' WHERE id = 11;
	UPDATE crash_payouts SET status = 'INVOKING' WHERE id = 12;
	UPDATE crash_payouts SET status = 'PROCESSING' WHERE id = 13;
	UPDATE crash_payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 13;
	INSERT INTO crash_payouts (id, amount) VALUES (14, 14);
});
my @open_changes = (
	'11|CREATED|READY|-', '11|READY|CANCELLING|-',
	'12|READY|INVOKING|-', '13|INVOKING|PROCESSING|-',
	'13|PROCESSING|PROCESSED|OK', '14|-|CREATED|-');
is($open->query_safe($open_query),
	"11|CANCELLING|\n12|INVOKING|\n13|PROCESSED|OK\n14|CREATED|",
	'the open transaction sees its own changes');
is($open->query_safe($open_history_query),
	join("\n", $open_history_before, @open_changes),
	'the open transaction sees the history rows of its changes');
# The gate of the clients' loads (see make_load); the lock goes down with
# the server.
$open->query_safe('SELECT pg_advisory_lock(4004)');

#
# The load: for each client, a script of steps along legal paths, several
# payouts in progress at a time, interleaved at random (seeded).
#

# Paths after the insert (CREATED, no resolution): status, resolution
# ('' keeps it, '-' clears it).  The application's paths never need a
# moderator; the moderator's hold a payout and release or end it.
my @APP_PATHS = (
	[ [ 'READY', '' ], [ 'INVOKING', '' ], [ 'PROCESSING', '' ],
	  [ 'PROCESSED', 'OK' ], [ 'REVOKING', '' ], [ 'REVOKED', '' ] ],
	[ [ 'READY', '' ], [ 'INVOKING', '' ], [ 'PENDING', 'OK' ],
	  [ 'PROCESSING', '' ], [ 'PARTIALLY_PROCESSED', '' ],
	  [ 'REVOKING', '' ], [ 'REVOKE_FAILED', '' ] ],
	[ [ 'READY', '' ], [ 'CANCELLING', '' ], [ 'CANCELLED', '' ] ],
	[ [ 'READY', '' ], [ 'INVOKING', '' ],
	  [ 'INVOKE_FAILED', 'INSUFFICIENT_FUNDS' ] ],
	[ [ 'READY', '' ], [ 'INVOKING', '' ],
	  [ 'PROCESSING', 'CONNECTION_TIMEOUT_ERROR' ] ]);
my @MOD_PATHS = (
	[ [ 'READY', '' ], [ 'INVOKING', '' ], [ '', 'PROVIDER_INTERNAL_ERROR' ],
	  [ '', 'OK' ], [ 'PROCESSING', '' ], [ 'PROCESSED', '' ],
	  [ 'REVOKING', '' ], [ 'REVOKED', '' ] ],
	[ [ 'READY', '' ], [ 'INVOKING', '' ], [ 'PROCESSING', 'UNKNOWN' ],
	  [ 'PROCESS_FAILED', 'DECLINED_ERROR' ] ],
	[ [ 'READY', 'GENERAL_ERROR' ], [ 'READY', '-' ], [ 'INVOKING', '' ],
	  [ 'PENDING', '' ], [ 'CANCELLING', '' ], [ 'CANCEL_FAILED', '' ] ]);

srand(4004);

# make_load($first_id, $payouts, $role, $paths): the script, and the line
# each statement prints ("id|status|resolution").
sub make_load
{
	my ($first_id, $payouts, $role, $paths) = @_;
	my (@sql, @expect, @open);
	my $next = $first_id;
	my %state;

	push @sql, "SET ROLE $role;";
	while ($next < $first_id + $payouts || @open)
	{
		if (@open < 20 && $next < $first_id + $payouts)
		{
			my $id = $next++;
			push @sql,
			  "INSERT INTO crash_payouts (id, amount) VALUES ($id, $id) "
			  . "RETURNING id, status, resolution;";
			$state{$id} = [ 'CREATED', '' ];
			push @expect, "$id|CREATED|";
			push @open, [ $id, [ @{ $paths->[ int(rand(@$paths)) ] } ] ];
			next;
		}
		my $i = int(rand(@open));
		my ($id, $steps) = @{ $open[$i] };
		my ($s, $r) = @{ shift @$steps };
		my @set;
		if ($s ne '')
		{
			push @set, "status = '$s'";
			$state{$id}[0] = $s;
		}
		if ($r ne '')
		{
			push @set, $r eq '-' ? 'resolution = NULL' : "resolution = '$r'";
			$state{$id}[1] = $r eq '-' ? '' : $r;
		}
		push @sql,
		  'UPDATE crash_payouts SET '
		  . join(', ', @set)
		  . " WHERE id = $id RETURNING id, status, resolution;";
		push @expect, "$id|$state{$id}[0]|$state{$id}[1]";
		splice(@open, $i, 1) unless @$steps;
	}
	# A gate three quarters in, which prints nothing: the clients wait there
	# on the advisory lock the open transaction's session holds until the
	# crash, so no client can finish its load before the server goes down,
	# however fast the machine.
	splice(@sql, int(@sql * 3 / 4), 0,
		'DO $$BEGIN PERFORM pg_advisory_lock_shared(4004); END$$;');
	return (join("\n", @sql) . "\n", \@expect);
}

# About 3000 steps each: the paths of the moderator are longer.
my @clients = (
	{
		name => 'app',
		role => 'crash_app',
		first => 1000,
		payouts => 600,
		paths => \@APP_PATHS
	},
	{
		name => 'moderator',
		role => 'crash_mod',
		first => 100000,
		payouts => 430,
		paths => \@MOD_PATHS
	});
my $total = 0;
foreach my $c (@clients)
{
	my $script;
	($script, $c->{expect}) =
	  make_load($c->{first}, $c->{payouts}, $c->{role}, $c->{paths});
	$c->{script} = "$tempdir/load_$c->{name}.sql";
	$c->{out} = "$tempdir/load_$c->{name}.out";
	$c->{err} = "$tempdir/load_$c->{name}.err";
	open my $fh, '>', $c->{script} or die "could not write $c->{script}: $!";
	print $fh $script;
	close $fh;
	$total += @{ $c->{expect} };
}

foreach my $c (@clients)
{
	$c->{run} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq',
			'-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'),
			'-f', $c->{script}
		],
		'<', \undef, '>', $c->{out}, '2>', $c->{err});
}

# lines($file): the complete lines printed so far.
sub lines
{
	my ($file) = @_;
	open my $fh, '<', $file or return ();
	local $/;
	my $text = <$fh>;
	close $fh;
	$text =~ s/[^\n]*\z//;    # a line being written
	return split /\n/, $text;
}

# Crash once a client has reported half of its steps (psql's buffered
# output lags behind by a few hundred lines at most); none can have
# finished, since each waits at the gate three quarters in.
my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
my $seen;
while (time() < $deadline)
{
	my $half = 0;
	$seen = 0;
	foreach my $c (@clients)
	{
		my $n = scalar(lines($c->{out}));
		$seen += $n;
		$half++ if $n >= @{ $c->{expect} } / 2;
	}
	last if $half;
	last unless grep { $_->{run}->pumpable } @clients;
	usleep(20_000);
}
note("crashing with $seen of $total steps reported");
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM pg_stat_activity
		WHERE state = 'idle in transaction' AND backend_xid IS NOT NULL}),
	'1',
	'a transaction with changes is open when the server goes down');
$node->stop('immediate');
$open->quit;

foreach my $c (@clients)
{
	$c->{run}->finish;
	$c->{lines} = [ lines($c->{out}) ];
	my $stderr = slurp_file($c->{err});
	unlike($stderr, qr/ERROR:/,
		"$c->{name} client: no statement failed before the crash");
	my $n = @{ $c->{lines} };
	ok($n > 0 && $n < @{ $c->{expect} },
		"$c->{name} client: the crash came in the middle of its load ($n of "
		  . scalar(@{ $c->{expect} }) . ' steps)');
	is( join("\n", @{ $c->{lines} }),
		join("\n", @{ $c->{expect} }[ 0 .. $n - 1 ]),
		"$c->{name} client: every step it saw committed did what it meant to");
}

$node->start;

#
# What survived.
#

my %table;
foreach (split /\n/,
	$node->safe_psql('postgres',
		q{SELECT id, status, coalesce(resolution::text, '') FROM crash_payouts}))
{
	my ($id, $s, $r) = split /\|/, $_, -1;
	$table{$id} = "$s|$r";
}
my %history;
my $max_history_id = 0;
foreach (split /\n/,
	$node->safe_psql(
		'postgres', q{
	SELECT id, key, coalesce(old_status::text, ''), new_status,
		coalesce(old_resolution::text, ''), coalesce(new_resolution::text, '')
	FROM payout.history WHERE tbl = 'crash_payouts'::regclass ORDER BY id}))
{
	my ($hid, $key, @change) = split /\|/, $_, -1;
	push @{ $history{$key} }, \@change;
	$max_history_id = $hid if $hid > $max_history_id;
}

# Each payout's history is one chain, from its insert to its current row.
my $broken = 0;
foreach my $id (sort { $a <=> $b } keys %{ { %table, %history } })
{
	my $chain = $history{$id} // [];
	my $prev = '|';    # no status, no resolution before the insert
	my $ok = @$chain > 0;
	foreach my $change (@$chain)
	{
		my ($os, $ns, $or, $nr) = @$change;
		$ok &&= "$os|$or" eq $prev;
		$prev = "$ns|$nr";
	}
	$ok &&= defined $table{$id} && $prev eq $table{$id};
	next if $ok;
	diag("payout $id: history "
		  . join(', ', map { "$_->[0]/$_->[2] -> $_->[1]/$_->[3]" } @$chain)
		  . ', table '
		  . ($table{$id} // 'no row'))
	  if $broken++ < 10;
}
is($broken, 0,
	"each payout's history runs from its insert to its row in the table, without gaps");

# What each client saw committed is there; anything more is the one step
# that was in flight in a client when the server went down.
my ($committed, $found, $unseen, $unexplained) = (0, 0, 0, 0);
foreach my $c (@clients)
{
	my $n = @{ $c->{lines} };
	my %seen_of;
	push @{ $seen_of{ (split /\|/, $_)[0] } }, $_ foreach @{ $c->{lines} };
	my $in_flight = $c->{expect}[$n];
	my ($flight_id) = split /\|/, $in_flight // '';
	foreach my $id (sort { $a <=> $b } keys %seen_of)
	{
		my @seen = @{ $seen_of{$id} };
		my @stored =
		  map { "$id|$_->[1]|$_->[3]" } @{ $history{$id} // [] };
		$committed += @seen;
		my $k = 0;
		$k++ while $k < @seen && $k < @stored && $seen[$k] eq $stored[$k];
		$found += $k;
		diag("payout $id: the $c->{name} client saw "
			  . join(', ', @seen)
			  . ' committed; history has '
			  . join(', ', @stored))
		  if $k < @seen;
		my @extra = @stored[ $k .. $#stored ];
		next unless @extra;
		if (   @extra == 1
			&& $k == @seen
			&& defined $in_flight
			&& $extra[0] eq $in_flight)
		{
			$unseen++;
		}
		else
		{
			$unexplained++;
			diag("payout $id: history has changes nobody saw committed: @extra");
		}
	}
	# an insert in flight is a payout the client never printed
	if (defined $flight_id && !$seen_of{$flight_id} && $history{$flight_id})
	{
		if (   @{ $history{$flight_id} } == 1
			&& "$flight_id|$history{$flight_id}[0][1]|$history{$flight_id}[0][3]" eq $in_flight)
		{
			$unseen++;
		}
		else
		{
			$unexplained++;
			diag("payout $flight_id: stored but never seen, with more than its insert");
		}
	}
}
is($found, $committed,
	"all $committed transitions the clients saw committed are in the table and its history");
is($unexplained, 0,
	'every change in the history that no client saw committed was the step in flight in its client');
ok($unseen <= scalar(@clients),
	"at most one change per client was committed without the client seeing it ($unseen)");
my %known = map { $_ => 1 } 1 .. 5, 11 .. 13;    # made before the load
foreach my $c (@clients)
{
	my $n = @{ $c->{lines} };
	foreach (@{ $c->{lines} }, $c->{expect}[$n] // ())
	{
		$known{ (split /\|/)[0] } = 1;
	}
}
my @strangers = grep { !$known{$_} } keys %table;
is(scalar(@strangers), 0, 'no payout exists that no client inserted or had in flight');

#
# Enforcement after recovery.
#

is($node->safe_psql('postgres', $graph_query), $graph_before,
	'the customized graph survived the crash');

# try($sql): "ok", or the SQLSTATE the statement failed with.
sub try
{
	my ($sql) = @_;
	my ($stdout, $stderr);
	my $ret = $node->psql(
		'postgres', "\\set VERBOSITY sqlstate\n$sql",
		stdout => \$stdout,
		stderr => \$stderr);
	return 'ok' if $ret == 0;
	return $1 if $stderr =~ /ERROR:\s+([0-9A-Z]{5})/;
	return "failed: $stderr";
}

is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'READY' WHERE id = 1}),
	'ok', 'after recovery, a legal change passes (CREATED -> READY)');
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'PROCESSED' WHERE id = 2}),
	'23514', 'after recovery, an illegal change is rejected (READY -> PROCESSED)');
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'CANCELLING' WHERE id = 2}),
	'ok', 'after recovery, the added edge READY -> CANCELLING is allowed');
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'EXPIRED' WHERE id = 3}),
	'23514', 'after recovery, the removed edge PENDING -> EXPIRED is rejected');
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET resolution = 'OK' WHERE id = 4}),
	'42501', 'after recovery, a held payout is still held for the application');
is(try(q{SET ROLE crash_mod; UPDATE crash_payouts SET resolution = 'OK' WHERE id = 4}),
	'ok', 'after recovery, a moderator releases it');
is(try(q{UPDATE crash_payouts SET resolution = 'OK' WHERE id = 5}),
	'23514', 'after recovery, a final payout keeps its resolution');
is(try(q{INSERT INTO crash_payouts (id, status) VALUES (6, 'READY')}),
	'23514', 'after recovery, a new payout cannot start in READY');

is( $node->safe_psql(
		'postgres', qq{
		SELECT string_agg(key || ' ' || coalesce(old_status::text, '-') || ' ' || new_status
			|| ' ' || coalesce(new_resolution::text, '-'), ', ' ORDER BY id)
		FROM payout.history
		WHERE tbl = 'crash_payouts'::regclass AND id > $max_history_id}),
	'1 CREATED READY -, 2 READY CANCELLING -, 4 PROCESSING PROCESSING OK',
	'after recovery, the accepted changes are recorded, after every older history row');

#
# The transaction that was open: none of it survived.
#

# Its changes that are in the table or in the history after recovery.
my $open_after = $node->safe_psql('postgres', $open_query);
my $open_history_after = $node->safe_psql('postgres', $open_history_query);
my %committed = map { $_ => 1 } split(/\n/, $open_before),
  split(/\n/, $open_history_before);
my $uncommitted = grep { !$committed{$_} } split(/\n/, $open_after),
  split(/\n/, $open_history_after);
is($open_after, $open_before,
	'after recovery, the open transaction left its payouts as they were committed, and no new one');
is($open_history_after, $open_history_before,
	'after recovery, payout.history has no row of the open transaction');
is($uncommitted, 0, 'after recovery, no change of the open transaction is found');

# The trigger judges these payouts by their committed status: each change
# below is rejected from the status the open transaction had given the
# payout, or allowed from it, and the trigger decides the other way.
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'CANCELLED' WHERE id = 11}),
	'23514', 'after recovery, payout 11 is CREATED again: CREATED -> CANCELLED is rejected');
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'PROCESSING' WHERE id = 12}),
	'23514', 'after recovery, payout 12 is READY again: READY -> PROCESSING is rejected');
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'READY' WHERE id = 11}),
	'ok', 'after recovery, payout 11 moves on from CREATED (CREATED -> READY)');
is(try(q{SET ROLE crash_app; UPDATE crash_payouts SET status = 'PROCESSING' WHERE id = 13}),
	'ok', 'after recovery, payout 13 moves on from INVOKING (INVOKING -> PROCESSING)');
is(try(q{SET ROLE crash_app; INSERT INTO crash_payouts (id, status) VALUES (14, 'READY')}),
	'23514', 'after recovery, the lost insert cannot be made again in READY');
is(try(q{SET ROLE crash_app; INSERT INTO crash_payouts (id) VALUES (14)}),
	'ok', 'after recovery, the id of the lost insert is free again');
is($node->safe_psql('postgres', $open_history_query),
	join("\n", $open_history_before,
		'11|CREATED|READY|-', '13|INVOKING|PROCESSING|-', '14|-|CREATED|-'),
	'after recovery, the accepted changes of those payouts are recorded');

note(sprintf(
	'crash: %d steps planned, %d seen committed before the crash, %d found after it, '
	  . '%d committed unseen; %d uncommitted changes open at the crash, %d uncommitted found',
	$total, $committed, $found, $unseen, scalar(@open_changes), $uncommitted));

$node->stop;

done_testing();
