# 010_soak.pl: the whole system at once, under load, on a plain and on a
# partitioned payout table.
#
# Workers, each a pgbench run as its own role with doc/security.md's grants:
# 2 API clients creating and readying payouts (a tenth manual); 6
# processors claiming with payout.claim(tbl, 20) and walking each payout to
# its end with payout.classify(), both as fast as they can; 1 operator
# taking manual payouts with claim(..., manual => true), more slowly than
# they come, so that some go stale and expire; 2 moderators releasing or ending held payouts
# from doc/workflow.md's moderation queue; 1 expirer calling
# payout.expire_backlog(tbl, '2 seconds') every second; 1 role editing the
# graph every second; on the partitioned table, 1 mover moving READY
# payouts between partitions while they are claimed.
#
# It fails on any error a worker is not documented to get (pgbench stops a
# client at its first error, and says so), on a lock wait longer than
# $LOCK_BOUND_MS (log_lock_waits reports every wait past deadlock_timeout:
# one expire batch of 200 payouts, the longest lock any worker holds, takes
# tens of milliseconds here, and a few hundred on a busy 2-core machine),
# and on a stalled expirer or processor (no
# transaction for 10 seconds).  Then it checks the invariants from the table and the
# history: no payout claimed twice, no manual payout processed by a
# processor, only moderators changed held payouts, every history row an
# edge of the graph, every payout's history chained to its row.  Last, it
# runs the same workload with the payout triggers disabled and reports the
# ratio of payouts processed per second.
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
	my @w = (
		[ 'api', 'soak_api', 2, 0, "SELECT soak.create('$tbl', 5);" ],
		[ 'processor', 'soak_processor', 6, 0, "SELECT soak.process('$tbl', 20, false);" ],
		[ 'operator', 'soak_operator', 1, 1, "SELECT soak.process('$tbl', 5, true);" ],
		[ 'moderator', 'soak_moderator', 2, 5, "SELECT soak.moderate('$tbl', 5);" ],
		[ 'expirer', 'soak_expirer', 1, 1, "CALL payout.expire_backlog('$tbl', '2 seconds', 'created_at', 200);" ],
		[ 'editor', 'soak_editor', 1, 1,
			"INSERT INTO payout.transition VALUES ('CREATED', 'CANCELLING');\n"
			  . "DELETE FROM payout.transition WHERE from_status = 'CREATED' AND to_status = 'CANCELLING';" ]);
	push @w, [ 'mover', 'soak_mover', 1, 10, "SELECT soak.move(5);" ] if $tbl eq 'soak.parts';
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
foreach my $tbl ('soak.plain', 'soak.parts')
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

	# The invariants.
	my $history = "payout.history h WHERE h.tbl = '$tbl'::regclass";
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FROM (SELECT h.key FROM $history
								  AND h.old_status = 'READY' AND h.new_status = 'INVOKING'
								  GROUP BY h.key HAVING count(*) > 1) AS twice}),
		'0', "$tbl: no payout was claimed twice");
	is( $node->safe_psql(
			'postgres', qq{
			SELECT count(*) FROM $history
			  AND h.old_status = 'READY' AND h.new_status = 'INVOKING'
			  AND EXISTS (SELECT FROM $tbl p
						  WHERE p.id = soak.id_of(h.key) AND NOT p.autoprocess)
			  AND h.user_name <> 'soak_operator'}),
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
	# A payout's history, by id: a move between partitions changes the key
	# and, keeping the status, records nothing.
	is( $node->safe_psql(
			'postgres', qq{
			WITH chain AS (
				SELECT soak.id_of(h.key) AS pid, h.old_status, h.new_status,
					   lag(h.new_status) OVER w AS prev,
					   last_value(h.new_status) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING
													   AND UNBOUNDED FOLLOWING) AS last
				FROM $history
				WINDOW w AS (PARTITION BY soak.id_of(h.key) ORDER BY h.id))
			SELECT (SELECT count(*) FROM chain WHERE prev IS DISTINCT FROM old_status)
				 + (SELECT count(*) FROM $tbl p
					WHERE NOT EXISTS (SELECT FROM chain c WHERE c.pid = p.id AND c.last = p.status))}),
		'0', "$tbl: every payout's history chains to its current row");

	my $counts = $node->safe_psql('postgres',
		qq{SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
		   FROM (SELECT status, count(*) AS n FROM $tbl GROUP BY status) s});
	my $tx = 0;
	$tx += tx_of($out->{$_}) foreach keys %$out;
	$report{$tbl} = { loaded => $done / $seconds, tx => $tx / $seconds, counts => $counts, longest => $longest,
		errors => join(', ', map { "$_ $by_state{$_}" } sort keys %by_state) || 'none' };
}

# The same workload with the payout triggers disabled: what the extension
# costs, as a ratio.  claim(), expire() and the rest still run.
foreach my $tbl ('soak.plain', 'soak.parts')
{
	$node->safe_psql('postgres', "ALTER TABLE $tbl DISABLE TRIGGER USER");
	my $half = int(($seconds + 1) / 2);
	my $before = finished($tbl);
	run_workers($tbl, $half, "bare-$tbl");
	$report{$tbl}{bare} = (finished($tbl) - $before) / $half;
	$node->safe_psql('postgres', "ALTER TABLE $tbl ENABLE TRIGGER USER");
}

foreach my $tbl ('soak.plain', 'soak.parts')
{
	my $r = $report{$tbl};
	diag(sprintf(
		"soak %s, %d s: %.0f transactions/s; %.1f payouts processed/s with the triggers, %.1f without (ratio %.2f); "
		  . "longest lock wait %.0f ms; server errors by SQLSTATE: %s; payouts: %s",
		$tbl, $seconds, $r->{tx}, $r->{loaded}, $r->{bare},
		$r->{bare} ? $r->{loaded} / $r->{bare} : 0,
		$r->{longest}, $r->{errors}, $r->{counts}));
}

$node->stop;
done_testing();
