# 010_soak.pl: the whole system at once, under load, on a plain payout
# table and on one partitioned by created_at, which its key includes.
#
# Workers, each a pgbench run as its own role with doc/security.md's grants:
# 2 API clients creating and readying payouts (a tenth manual); 6
# processors claiming with payout.claim(tbl, 20) and walking each payout to
# its end with payout.classify(), both as fast as they can; 1 operator
# taking manual payouts with claim(..., manual => true), more slowly than
# they come, so that some go stale and expire; 2 moderators releasing or
# ending held payouts from doc/workflow.md's moderation queue; 1 expirer
# every second; 1 role editing the graph every second.  On the plain
# table the expirer calls payout.expire_backlog(tbl, '2 seconds').  On the
# partitioned table payouts keep moving between the partitions, their
# created_at dated a day back or forth: the API clients move the newest
# READY payouts, the processors one in ten of theirs while they process
# it; and the expirer calls payout.expire(tbl, '2 seconds'), which meets
# rows moved after its snapshot and must try those batches again.  The
# expirer also tries one batch of expire() once and rolls it back, and
# counts how often a moved row stopped it.
#
# It fails on any error a worker is not documented to get (pgbench says
# so, serialization failures included), on a lock wait longer than
# $LOCK_BOUND_MS (log_lock_waits reports every wait past deadlock_timeout:
# one expire batch, the longest lock any worker holds, takes tens of
# milliseconds here, and a few hundred on a busy 2-core machine), and on a
# stalled expirer or processor (no transaction for 10 seconds).  Then it
# checks the invariants from the table and the history, each payout's life
# followed through its key changes (history's old_key) as
# payout.timeline() follows it: every history row belongs to one payout,
# whose rows chain from its INSERT to its current row and key; no payout
# claimed twice; no manual payout processed by a processor; only
# moderators changed held payouts; every change an edge of the graph; and
# timeline() of a moved payout's current key gives its whole life.  Last,
# it runs the same workload with the payout triggers disabled and reports
# the ratio of payouts processed per second.
#
# SOAK_SECONDS (default 40) is the length of each table's loaded run; the
# run without the triggers takes half as long.  make soak runs it longer.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use File::Basename;

my $seconds = $ENV{SOAK_SECONDS} // 40;
die "SOAK_SECONDS must be a positive integer\n" unless $seconds =~ /^[1-9]\d*$/;
my $LOCK_BOUND_MS = 2000;

my $node = PostgreSQL::Test::Cluster->new('soak');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
max_connections = 60
log_lock_waits = on
deadlock_timeout = '100ms'
payout.moderator_role = 'soak_moderators'
payout.operator_role = 'soak_operators'
log_line_prefix = '%m [%p] %e %u '
});
$node->start;

my $setup = dirname(__FILE__) . '/../soak/setup.sql';
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
	'-f', $setup ], 'the soak database is set up');

my $tempdir = PostgreSQL::Test::Utils::tempdir;

# The workers of one run on table $tbl: [name, role, clients, rate, SQL].
sub workers
{
	my ($tbl) = @_;
	my $dated = $tbl eq 'soak.dated';
	my @w = (
		[ 'api', 'soak_api', 2, 0,
			"SELECT soak.create('$tbl', 5);" . ($dated ? "\nSELECT soak.move('$tbl', 2);" : '') ],
		[ 'processor', 'soak_processor', 6, 0,
			"SELECT soak.process('$tbl', 20, false" . ($dated ? ', moving => true' : '') . ');' ],
		[ 'operator', 'soak_operator', 1, 1, "SELECT soak.process('$tbl', 5, true);" ],
		[ 'moderator', 'soak_moderator', 2, 5, "SELECT soak.moderate('$tbl', 5);" ],
		[ 'expirer', 'soak_expirer', 1, 1,
			$dated
			? "SELECT payout.expire('$tbl', interval '2 seconds');\nSELECT soak.expire_probe('$tbl');"
			: "CALL payout.expire_backlog('$tbl', '2 seconds', 'created_at', 200);" ],
		[ 'editor', 'soak_editor', 1, 1,
			"INSERT INTO payout.transition VALUES ('CREATED', 'CANCELLING');\n"
			  . "DELETE FROM payout.transition WHERE from_status = 'CREATED' AND to_status = 'CANCELLING';" ]);
	return @w;
}

# Payouts that reached the end of processing so far.
sub finished
{
	my ($tbl) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT count(*) FROM $tbl WHERE status IN ('PROCESSED', 'PROCESS_FAILED')});
}

# run($tbl, $secs, $label): run the workers; their outputs by name.
sub run_workers
{
	my ($tbl, $secs, $label) = @_;
	my %out;
	my @runs;
	foreach my $w (workers($tbl))
	{
		my ($name, $role, $clients, $rate, $sql) = @$w;
		my $script = "$tempdir/$label-$name.sql";
		open my $fh, '>', $script or die "$script: $!";
		print $fh "$sql\n";
		close $fh;
		my ($stdout, $stderr) = ('', '');
		my $h = IPC::Run::start(
			[
				$node->installed_command('pgbench'), '-n', '-P', '1',
				'-T', $secs, '-c', $clients, '-j', 1, ($rate ? ('-R', $rate) : ()), '--verbose-errors',
				'-f', $script, '-U', $role,
				'-h', $node->host, '-p', $node->port, 'postgres'
			],
			'<', \undef, '>', \$stdout, '2>', \$stderr);
		push @runs, [ $name, $h, \$stdout, \$stderr ];
	}
	foreach my $r (@runs)
	{
		my ($name, $h, $stdout, $stderr) = @$r;
		$h->finish;
		$out{$name} = { rc => $h->result(0), stdout => $$stdout, stderr => $$stderr };
	}
	return \%out;
}

# Transactions in a pgbench output, and the 10-second windows of its
# progress reports without any (a worker throttled to 1 transaction a
# second schedules them at random, Poisson-distributed: a window of 5
# seconds goes without one now and then, one of 10 seconds once in 20,000).
sub tx_of { my ($o) = @_; return $o->{stdout} =~ /number of transactions actually processed: (\d+)/ ? $1 : 0; }

sub stalls
{
	my ($o) = @_;
	my @tps = $o->{stderr} =~ /^progress: [\d.]+ s, ([\d.]+) tps/mg;
	my $stalls = 0;
	for my $i (0 .. $#tps - 9)
	{
		my $sum = 0;
		$sum += $tps[$_] foreach $i .. $i + 9;
		$stalls++ if $sum == 0;
	}
	return $stalls;
}

my $log_offset = -s $node->logfile;
my %report;
foreach my $tbl ('soak.plain', 'soak.dated')
{
	my $before = finished($tbl);
	my $out = run_workers($tbl, $seconds, "loaded-$tbl");
	my $done = finished($tbl) - $before;
	my %errors;
	foreach my $name (sort keys %$out)
	{
		my $o = $out->{$name};
		# pgbench stops a client at its first error ("client N script 0
		# aborted in command M ...: ERROR:  ..."), except a serialization
		# failure or a deadlock (40001, 40P01): it counts that transaction
		# as failed and goes on, and only says so with --verbose-errors
		# ("client N got an error in command M ...").
		foreach my $line (split /\n/, $o->{stderr})
		{
			next unless $line =~ /aborted|ERROR|FATAL/;
			$errors{"$name: $line"}++;
		}
		$errors{"$name: $1 failed transactions"}++
		  if $o->{stdout} =~ /^number of failed transactions: ([1-9]\d*)/m;
		is($o->{rc}, 0, "$tbl: the $name workers ran to the end");
	}
	# The server log of this run: where the errors came from, and the lock
	# waits.
	my $log = slurp_file($node->logfile, $log_offset);
	$log_offset = -s $node->logfile;
	my @server_errors = $log =~ /^(\S+ \S+ \S+ \[\d+\] \S+ \S+ (?:ERROR|CONTEXT|STATEMENT):.*(?:\n\t.*)*)/mg;
	splice @server_errors, 30 if @server_errors > 30;
	is(join("\n", sort keys %errors), '', "$tbl: no worker got an error")
	  or diag(join("\n", 'the server log of the run:', @server_errors));
	foreach my $name ('expirer', 'processor')
	{
		is(stalls($out->{$name}), 0, "$tbl: the $name never stalled for 10 seconds");
	}

	my @waits = $log =~ /acquired \S+ on .*? after ([\d.]+) ms/g;
	my @still = $log =~ /still waiting for \S+ on .*? after ([\d.]+) ms/g;
	my $longest = 0;
	$longest = $_ > $longest ? $_ : $longest foreach (@waits, @still);
	cmp_ok($longest, '<', $LOCK_BOUND_MS,
		"$tbl: every lock wait was shorter than $LOCK_BOUND_MS ms");
	my @sqlstates = $log =~ /^\S+ \S+ \S+ \[\d+\] ([0-9A-Z]{5}) \S+ ERROR:/mg;
	my %by_state;
	$by_state{$_}++ foreach @sqlstates;

	# The invariants.  A payout's life is followed through its key changes
	# as payout.timeline() follows it: from the INSERT that made it, every
	# key a change linked to one of its keys (history's old_key), and the
	# history rows of those keys.  check_keys has each key with the
	# payout's first key (root), check_life each history row with its
	# payout's root, check_now each payout with the key history gives it.
	my $history = "payout.history h WHERE h.tbl = '$tbl'::regclass";
	my $key_text = $node->safe_psql('postgres', "SELECT (payout.primary_key('$tbl', 'p')).key_text");
	$node->safe_psql(
		'postgres', qq{
		DROP TABLE IF EXISTS soak.check_keys, soak.check_life, soak.check_now;
		CREATE TABLE soak.check_keys AS
		WITH RECURSIVE keys(root, key) AS (
			SELECT h.key, h.key FROM $history AND h.old_status IS NULL
			UNION
			SELECT k.root, h.key
			FROM keys k JOIN payout.history h ON h.tbl = '$tbl'::regclass AND h.old_key = k.key)
		SELECT * FROM keys;
		CREATE TABLE soak.check_life AS
		SELECT k.root, h.id, h.key, h.old_key, h.old_status, h.new_status, h.user_name
		FROM soak.check_keys k JOIN payout.history h ON h.tbl = '$tbl'::regclass AND h.key = k.key;
		CREATE INDEX ON soak.check_life (root, id);
		CREATE TABLE soak.check_now AS SELECT $key_text COLLATE "C" AS key, p.* FROM $tbl p;
		ANALYZE soak.check_keys, soak.check_life, soak.check_now;});
	my $last = 'SELECT DISTINCT ON (root) root, key, new_status FROM soak.check_life ORDER BY root, id DESC';
	is( $node->safe_psql(
			'postgres', qq{
			SELECT (SELECT count(*) FROM (SELECT key FROM soak.check_keys
										  GROUP BY key HAVING count(*) > 1) AS shared)
				 + abs((SELECT count(*) FROM $history) - (SELECT count(*) FROM soak.check_life))}),
		'0', "$tbl: every history row belongs to one payout, through its keys");
	is( $node->safe_psql(
			'postgres', qq{
			WITH chain AS (
				SELECT root, key, old_key, old_status, new_status,
					   row_number() OVER w AS n, lag(key) OVER w AS prev_key,
					   lag(new_status) OVER w AS prev_status
				FROM soak.check_life
				WINDOW w AS (PARTITION BY root ORDER BY id))
			SELECT (SELECT count(*) FROM chain
					WHERE CASE WHEN n = 1
							   THEN old_status IS NOT NULL OR old_key IS NOT NULL OR key <> root
							   ELSE old_status IS DISTINCT FROM prev_status
									OR coalesce(old_key, key) <> prev_key END)
				 + (SELECT count(*) FROM soak.check_now p
					WHERE NOT EXISTS (SELECT FROM ($last) l
									  WHERE l.key = p.key AND l.new_status = p.status))
				 + abs((SELECT count(*) FROM ($last) l) - (SELECT count(*) FROM soak.check_now))}),
		'0', "$tbl: every payout's history chains from its INSERT to its current row and key");
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*)
			FROM (SELECT root, array_agg(id ORDER BY id) AS ids,
						 (array_agg(key ORDER BY id DESC))[1] AS key
				  FROM soak.check_life GROUP BY root
				  HAVING bool_or(old_key IS NOT NULL)
				  ORDER BY count(*) FILTER (WHERE old_key IS NOT NULL) DESC, root
				  LIMIT 1000) m
			WHERE m.ids IS DISTINCT FROM
				  (SELECT array_agg(t.id ORDER BY t.id) FROM payout.timeline('$tbl', m.key) t)}),
		'0', "$tbl: timeline() of a moved payout's key gives its whole life (the 1000 that moved most)");
	my $moves = $node->safe_psql('postgres', "SELECT count(*) FROM $history AND h.old_key IS NOT NULL");
	cmp_ok($moves, '>', 0, "$tbl: payouts moved between partitions, each move recorded with its old key")
	  if $tbl eq 'soak.dated';
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FROM (SELECT root FROM soak.check_life
								  WHERE old_status = 'READY' AND new_status = 'INVOKING'
								  GROUP BY root HAVING count(*) > 1) AS twice}),
		'0', "$tbl: no payout was claimed twice");
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*)
			FROM soak.check_life h JOIN ($last) l USING (root) JOIN soak.check_now p ON p.key = l.key
			WHERE h.old_status = 'READY' AND h.new_status = 'INVOKING'
			  AND NOT p.autoprocess AND h.user_name <> 'soak_operator'}),
		'0', "$tbl: only the operator processed manual payouts");
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FROM $history
			  AND payout.requires_moderation(h.old_status, h.old_resolution)
			  AND h.old_status IS NOT NULL
			  AND (h.new_status IS DISTINCT FROM h.old_status
				   OR h.new_resolution IS DISTINCT FROM h.old_resolution)
			  AND h.user_name <> 'soak_moderator'}),
		'0', "$tbl: only moderators changed held payouts");
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FROM $history
			  AND h.old_status IS DISTINCT FROM h.new_status
			  AND NOT EXISTS (SELECT FROM payout.default_transition d
							  WHERE d.from_status IS NOT DISTINCT FROM h.old_status
								AND d.to_status = h.new_status)}),
		'0', "$tbl: every change in the history is an edge of the graph");

	# What expire() met: its calls, and how often one try of a batch was
	# stopped by a moved row.
	my ($probes, $stopped) = split /\|/,
	  $node->safe_psql('postgres', 'SELECT count(*), count(*) FILTER (WHERE moved) FROM soak.probes');
	my $expired = $node->safe_psql('postgres', "SELECT count(*) FROM $history AND h.new_status = 'EXPIRED'");

	my $counts = $node->safe_psql('postgres',
		qq{SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
		   FROM (SELECT status, count(*) AS n FROM $tbl GROUP BY status) s});
	my $tx = 0;
	$tx += tx_of($out->{$_}) foreach keys %$out;
	$report{$tbl} = { loaded => $done / $seconds, tx => $tx / $seconds, counts => $counts, longest => $longest,
		errors => join(', ', map { "$_ $by_state{$_}" } sort keys %by_state) || 'none',
		moves => $moves, expire => tx_of($out->{expirer}), expired => $expired,
		probes => $probes, stopped => $stopped };
}

# The same workload with the payout triggers disabled: what the extension
# costs, as a ratio.  claim(), expire() and the rest still run.
foreach my $tbl ('soak.plain', 'soak.dated')
{
	$node->safe_psql('postgres', "ALTER TABLE $tbl DISABLE TRIGGER USER");
	my $half = int(($seconds + 1) / 2);
	my $before = finished($tbl);
	run_workers($tbl, $half, "bare-$tbl");
	$report{$tbl}{bare} = (finished($tbl) - $before) / $half;
	$node->safe_psql('postgres', "ALTER TABLE $tbl ENABLE TRIGGER USER");
}

foreach my $tbl ('soak.plain', 'soak.dated')
{
	my $r = $report{$tbl};
	diag(sprintf(
		"soak %s, %d s: %.0f transactions/s; %.1f payouts processed/s with the triggers, %.1f without (ratio %.2f); "
		  . "longest lock wait %.0f ms; server errors by SQLSTATE: %s; payouts: %s",
		$tbl, $seconds, $r->{tx}, $r->{loaded}, $r->{bare},
		$r->{bare} ? $r->{loaded} / $r->{bare} : 0,
		$r->{longest}, $r->{errors}, $r->{counts}));
	diag(sprintf(
		"soak %s: %d key changes recorded; expire() called %d times, %d payouts expired; "
		  . "one try of a batch was stopped by a moved row %d times in %d",
		$tbl, $r->{moves}, $r->{expire}, $r->{expired}, $r->{stopped}, $r->{probes}))
	  if $tbl eq 'soak.dated';
}

$node->stop;
done_testing();
