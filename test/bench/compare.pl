#!/usr/bin/perl
#
# compare.pl: the measurements behind test/bench/compare: payout's history
# as this tree builds it against another build's (the released 1.1), each
# in a cluster of its own, from the same PostgreSQL with the same settings
# (BENCH_OLD_HOST/BENCH_OLD_PORT and BENCH_NEW_HOST/BENCH_NEW_PORT, named
# BENCH_OLD_NAME and BENCH_NEW_NAME): only the extension differs.
#
# The same workloads run in both clusters, interleaved (each round starts
# with another build and variant), and every ratio between the builds is
# taken per round before the median, so that a slow moment of the machine
# hits both.  Besides the time each takes, it reads the CPU time the server
# spent on it from /proc (the backend's for a statement, every process of
# the cluster's for a pgbench run): on a machine that other work shares,
# the time a statement takes depends on what else runs; the CPU time it
# needs much less.  The targets are judged on CPU time.  It exits non-zero
# only when something fails to run; a missed target is printed, not
# fatal.

use strict;
use warnings;

use File::Temp qw(tempdir);

my $rows = $ENV{BENCH_ROWS} // 300000;
my $repeat = $ENV{BENCH_REPEAT} // 5;
my @clients = split ' ', ($ENV{BENCH_CLIENTS} // '1 4');
my $seconds = $ENV{BENCH_SECONDS} // 10;
my $smoke = $rows < 100000;
my @moves = split ' ', ($ENV{BENCH_MOVES} // ($smoke ? '1000 3000' : '100000 300000'));

die "BENCH_ROWS must be a positive integer\n" unless $rows =~ /^[1-9][0-9]*$/;
die "BENCH_REPEAT must be an integer\n" unless $repeat =~ /^[0-9]+$/;
$repeat = 3 if $repeat < 3;

my %build = map {
	my $u = uc $_;
	($_ => { host => $ENV{"BENCH_${u}_HOST"}, port => $ENV{"BENCH_${u}_PORT"},
			 data => $ENV{"BENCH_${u}_DATA"}, name => $ENV{"BENCH_${u}_NAME"} // $_ })
} qw(old new);
for my $b (values %build)
{
	die "BENCH_OLD_HOST, BENCH_OLD_PORT, BENCH_OLD_DATA and the same of BENCH_NEW must be set\n"
	  unless defined $b->{host} && defined $b->{port} && defined $b->{data};
}
my @builds = qw(old new);

my $tmp = tempdir(CLEANUP => 1);

# psql($build, $sql): run $sql in a new session of that build's cluster,
# return its output (unaligned, tuples only); die if any statement fails.
sub psql
{
	my ($b, $sql) = @_;
	my $file = "$tmp/in.sql";
	open my $fh, '>', $file or die "$file: $!";
	print $fh $sql;
	close $fh;
	local $ENV{PGHOST} = $build{$b}{host};
	local $ENV{PGPORT} = $build{$b}{port};
	my $out = `psql -X -q -At -v ON_ERROR_STOP=1 -d postgres -U postgres -f $file 2>&1`;
	die "psql ($build{$b}{name}) failed:\n$sql\n$out" if $? != 0;
	chomp $out;
	return $out;
}

# timed($build, $statement): milliseconds the statement took, as psql's
# \timing reports it, and milliseconds of CPU its backend spent meanwhile
# (the first field of /proc/PID/schedstat, in nanoseconds).
sub timed
{
	my ($b, $stmt) = @_;
	my $cpu = q{SELECT split_part(pg_read_file('/proc/' || pg_backend_pid() || '/schedstat'), ' ', 1)::bigint};
	my $out = psql($b, <<"SQL");
$cpu AS before \\gset
\\timing on
$stmt \\g /dev/null
\\timing off
SELECT ($cpu - :before) / 1e6;
SQL
	my @t = $out =~ /^Time: ([0-9.]+) ms/mg;
	my ($cpu_ms) = $out =~ /^([0-9.]+)\s*\z/m;
	die "no timing in:\n$out" unless @t == 1 && defined $cpu_ms;
	return ($t[0], $cpu_ms);
}

# cluster_cpu($build): CPU seconds the build's cluster has used so far:
# its postmaster's and every living child's, and what the children that
# ended (the backends of finished sessions) left to the postmaster
# (utime, stime, cutime and cstime of /proc/PID/stat).
my $ticks = `getconf CLK_TCK 2>/dev/null` || 100;
chomp $ticks;

sub cluster_cpu
{
	my ($b) = @_;
	my $pidfile = "$build{$b}{data}/postmaster.pid";
	open my $fh, '<', $pidfile or die "$pidfile: $!";
	my $pm = <$fh>;
	close $fh;
	chomp $pm;
	my $total = 0;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $sf, '<', $stat or next;
		my $line = <$sf>;
		close $sf;
		next unless defined $line;
		# pid (comm) state ppid ... ; comm may hold spaces and parentheses
		my @f = split ' ', substr($line, rindex($line, ')') + 2);
		my ($pid) = $stat =~ m{/proc/(\d+)/};
		next unless $pid == $pm || $f[1] == $pm;
		$total += $f[11] + $f[12];                     # utime, stime
		$total += $f[13] + $f[14] if $pid == $pm;      # cutime, cstime
	}
	return $total / $ticks;
}

sub median
{
	my @s = sort { $a <=> $b } @_;
	my $n = @s;
	return $n % 2 ? $s[ ($n - 1) / 2 ] : ($s[ $n / 2 - 1 ] + $s[ $n / 2 ]) / 2;
}

sub rotate
{
	my ($round, @list) = @_;
	my $k = $round % @list;
	return (@list[ $k .. $#list ], @list[ 0 .. $k - 1 ]);
}

sub verdict
{
	my ($ok, $text) = @_;
	printf "%s %s\n", ($ok ? 'PASS' : 'MISS'), $text;
}

my $table_columns = <<'SQL';
	id bigint PRIMARY KEY,
	amount numeric(12,2) NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT now()
SQL

# The variants, in each build: no trigger; enforcement alone; enforcement
# and history (payout.attach()'s default but for the indexes of claim and
# expire, which cost the same in both builds).
my @variants = qw(bare payout history);
my %attach = (
	bare => '',
	payout => "SELECT payout.attach('%s', history => false, indexes => false)",
	history => "SELECT payout.attach('%s', indexes => false)",);

my $cores = `nproc 2>/dev/null` || '?';
chomp $cores;
my $cpu = 'unknown CPU';
if (open my $fh, '<', '/proc/cpuinfo')
{
	while (<$fh>) { if (/^model name\s*:\s*(.*)/) { $cpu = $1; last; } }
	close $fh;
}

for my $b (@builds)
{
	psql($b, 'CREATE EXTENSION payout');
	$build{$b}{version} = psql($b, q{SELECT extversion FROM pg_extension WHERE extname = 'payout'});
	$build{$b}{name} = "$build{$b}{version} ($build{$b}{name})";
	my $sql = '';
	for my $v (@variants)
	{
		for my $t ("c_$v", "g_$v")
		{
			$sql .= "CREATE TABLE $t (\n$table_columns) WITH (autovacuum_enabled = off);\n";
			$sql .= sprintf($attach{$v}, $t) . ";\n" if $attach{$v};
		}
	}
	psql($b, $sql);
}
my $pg = psql('new', 'SHOW server_version');

print "payout history against another build: $rows rows, median of $repeat, builds and variants interleaved\n";
print "machine: $cpu, $cores cores; PostgreSQL $pg, one cluster per build, the same settings\n";
printf "builds: payout %s and payout %s\n", $build{old}{name}, $build{new}{name};
print "BENCH_ROWS=$rows is a smoke run: it checks that the harness works; its numbers are noise\n" if $smoke;
print "\n";

# Fill a build's tables without firing any trigger, and empty its history.
sub load
{
	my ($b, @tables) = @_;
	my $sql = "SET session_replication_role = replica;\nTRUNCATE payout.history;\n";
	$sql .= "TRUNCATE $_;\nINSERT INTO $_ (id, amount) SELECT g, g % 1000 + 0.5 FROM generate_series(1, $rows) g;\n"
	  for @tables;
	$sql .= "RESET session_replication_role;\n";
	psql($b, $sql);
	psql($b, join('', map { "VACUUM ANALYZE $_;\n" } @tables));
}

# --------------------------------------------------------------------------
# 1: a batch UPDATE: status CREATED -> READY -> INVOKING, two statements
# --------------------------------------------------------------------------

my @steps = ("UPDATE %s SET status = 'READY'", "UPDATE %s SET status = 'INVOKING'");
my (%t, %c);    # $t{build}{variant}[round] = ms of both steps; %c: CPU ms
my @pairs = map { my $b = $_; map { [ $b, $_ ] } @variants } @builds;
for my $round (0 .. $repeat - 1)
{
	load($_, map { "c_$_" } @variants) for @builds;
	my (%ms, %cpu);
	for my $step (@steps)
	{
		for my $p (rotate($round, @pairs))
		{
			my ($b, $v) = @$p;
			psql($b, 'CHECKPOINT');
			my ($ms, $cpu) = timed($b, sprintf($step, "c_$v"));
			$ms{$b}{$v} += $ms;
			$cpu{$b}{$v} += $cpu;
		}
		psql($_, join('', (map { "VACUUM c_$_;\n" } @variants), "VACUUM payout.history;\n")) for @builds;
	}
	for my $b (@builds)
	{
		push @{ $t{$b}{$_} }, $ms{$b}{$_} for @variants;
		push @{ $c{$b}{$_} }, $cpu{$b}{$_} for @variants;
		my $n = psql($b, q{SELECT count(*) FROM payout.history WHERE tbl = 'c_history'::regclass});
		die "$build{$b}{name}: history has $n rows, expected " . 2 * $rows . "\n" unless $n == 2 * $rows;
	}
}

# us per row update: over bare, and history over enforcement alone, per
# round; the builds' ratios per round.  %$m is %t (time) or %c (CPU).
sub per_row
{
	my ($m, $b, $v, $base) = @_;
	return median(map { ($m->{$b}{$v}[$_] - $m->{$b}{$base}[$_]) * 1000 / (2 * $rows) } 0 .. $repeat - 1);
}

sub builds_ratio
{
	my ($m, $v) = @_;
	return median(map { $m->{new}{$v}[$_] / $m->{old}{$v}[$_] } 0 .. $repeat - 1);
}

sub cost_ratio
{
	my ($m) = @_;
	return median(
		map {
			my $o = $m->{old}{history}[$_] - $m->{old}{bare}[$_];
			$o > 0 ? ($m->{new}{history}[$_] - $m->{new}{bare}[$_]) / $o : 0
		} 0 .. $repeat - 1);
}

printf "1. Batch UPDATE of %d rows: status CREATED -> READY -> INVOKING (2 statements); median ms, us per row update over bare\n", $rows;
printf "   %-32s %-5s %10s %10s %10s %10s %10s %14s\n", 'build', '', 'bare ms', 'payout ms', 'history ms', 'payout us', 'history us', 'history alone';
for my $m ([ 'time', \%t ], [ 'CPU', \%c ])
{
	for my $b (@builds)
	{
		printf "   %-32s %-5s %10.1f %10.1f %10.1f %10.4f %10.4f %14.4f\n", $build{$b}{name}, $m->[0],
		  (map { median(@{ $m->[1]{$b}{$_} }) } @variants),
		  per_row($m->[1], $b, 'payout', 'bare'), per_row($m->[1], $b, 'history', 'bare'),
		  per_row($m->[1], $b, 'history', 'payout');
	}
}
my $batch_ratio = builds_ratio(\%c, 'history');
my $batch_cost_ratio = cost_ratio(\%c);
printf "   %s / %s, history statements: CPU %.3f x, time %.3f x; their cost over bare: CPU %.3f x, time %.3f x\n",
  $build{new}{name}, $build{old}{name}, $batch_ratio, builds_ratio(\%t, 'history'), $batch_cost_ratio, cost_ratio(\%t);
printf "   (bare statements: CPU %.3f x, time %.3f x)\n\n", builds_ratio(\%c, 'bare'), builds_ratio(\%t, 'bare');

# --------------------------------------------------------------------------
# 2: single-row transactions (pgbench), one random payout one step each
# --------------------------------------------------------------------------

my @pgb_variants = qw(bare history);
for my $v (@pgb_variants)
{
	open my $fh, '>', "$tmp/g_$v.sql" or die $!;
	print $fh <<"SQL";
\\set id random(1, $rows)
UPDATE g_$v SET status = CASE status
	WHEN 'CREATED' THEN 'READY' WHEN 'READY' THEN 'INVOKING'
	WHEN 'INVOKING' THEN 'PROCESSING' WHEN 'PROCESSING' THEN 'PROCESSED'
	WHEN 'PROCESSED' THEN 'REVOKING' WHEN 'REVOKING' THEN 'REVOKED'
	ELSE status END
WHERE id = :id;
SQL
	close $fh;
}
load($_, map { "g_$_" } @pgb_variants) for @builds;
my @pgb_pairs = map { my $b = $_; map { [ $b, $_ ] } @pgb_variants } @builds;
my (%tps, %cpt);    # $tps{clients}{build}{variant}[round]; %cpt: server CPU us per transaction
{
	local $ENV{PGOPTIONS} = '-c synchronous_commit=off';
	for my $round (0 .. $repeat - 1)
	{
		for my $c (@clients)
		{
			my $jobs = $c < $cores ? $c : $cores;
			for my $p (rotate($round, @pgb_pairs))
			{
				my ($b, $v) = @$p;
				local $ENV{PGHOST} = $build{$b}{host};
				local $ENV{PGPORT} = $build{$b}{port};
				my $cpu = cluster_cpu($b);
				my $out = `pgbench -n -M prepared -c $c -j $jobs -T $seconds -f $tmp/g_$v.sql -U postgres postgres 2>&1`;
				die "pgbench ($build{$b}{name}) failed:\n$out" if $? != 0;
				$cpu = cluster_cpu($b) - $cpu;
				my ($tps) = $out =~ /^tps = ([0-9.]+)/m;
				my ($n) = $out =~ /^number of transactions actually processed: (\d+)/m;
				die "no tps in:\n$out" unless defined $tps && $n;
				push @{ $tps{$c}{$b}{$v} }, $tps;
				push @{ $cpt{$c}{$b}{$v} }, $cpu * 1e6 / $n;
			}
			psql($_, join('', map { "VACUUM g_$_;\n" } @pgb_variants)) for @builds;
		}
	}
}

print "2. pgbench, one random payout one step per transaction, $seconds s per run, synchronous_commit off;\n";
print "   median tps, and the cluster's CPU us per transaction (server processes)\n";
printf "   %-8s %-32s %10s %12s %8s %10s %12s\n", 'clients', 'build', 'bare tps', 'history tps', 'ratio', 'bare CPU', 'history CPU';
my %pgb_ratio;
for my $c (@clients)
{
	for my $b (@builds)
	{
		printf "   %-8d %-32s %10.0f %12.0f %8.3f %10.1f %12.1f\n", $c, $build{$b}{name},
		  median(@{ $tps{$c}{$b}{bare} }), median(@{ $tps{$c}{$b}{history} }),
		  median(map { $tps{$c}{$b}{history}[$_] / $tps{$c}{$b}{bare}[$_] } 0 .. $repeat - 1),
		  median(@{ $cpt{$c}{$b}{bare} }), median(@{ $cpt{$c}{$b}{history} });
	}
	$pgb_ratio{$c} = median(map { $cpt{$c}{new}{history}[$_] / $cpt{$c}{old}{history}[$_] } 0 .. $repeat - 1);
	printf "   %-8s %s / %s, history: CPU per transaction %.3f x, tps %.3f x (bare: CPU %.3f x, tps %.3f x)\n", '',
	  $build{new}{name}, $build{old}{name}, $pgb_ratio{$c},
	  median(map { $tps{$c}{new}{history}[$_] / $tps{$c}{old}{history}[$_] } 0 .. $repeat - 1),
	  median(map { $cpt{$c}{new}{bare}[$_] / $cpt{$c}{old}{bare}[$_] } 0 .. $repeat - 1),
	  median(map { $tps{$c}{new}{bare}[$_] / $tps{$c}{old}{bare}[$_] } 0 .. $repeat - 1);
}
print "\n";

# --------------------------------------------------------------------------
# 3: bulk moves: one UPDATE moving n rows of a table with history to its
# other partition, once per round
# --------------------------------------------------------------------------

my (%mv, %mvc);    # $mv{n}{build}[round] = us per row; %mvc: CPU us per row
for my $n (@moves)
{
	for my $b (@builds)
	{
		psql($b, <<"SQL");
CREATE TABLE v (
	id bigint NOT NULL,
	region text NOT NULL,
	amount numeric(12,2) NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (id, region)
) PARTITION BY LIST (region);
CREATE TABLE v_a PARTITION OF v FOR VALUES IN ('a') WITH (autovacuum_enabled = off);
CREATE TABLE v_b PARTITION OF v FOR VALUES IN ('b') WITH (autovacuum_enabled = off);
INSERT INTO v (id, region, amount) SELECT g, 'a', 1 FROM generate_series(1, $n) g;
VACUUM ANALYZE v;
SELECT payout.attach('v', indexes => false);
SQL
	}
	for my $round (0 .. $repeat - 1)
	{
		my ($from, $to) = $round % 2 ? ('b', 'a') : ('a', 'b');
		for my $b (rotate($round, @builds))
		{
			psql($b, 'TRUNCATE payout.history; CHECKPOINT');
			my ($ms, $cpu) = timed($b, "UPDATE v SET region = '$to' WHERE region = '$from'");
			push @{ $mv{$n}{$b} }, $ms * 1000 / $n;
			push @{ $mvc{$n}{$b} }, $cpu * 1000 / $n;
			my $moved = psql($b, "SELECT count(*) FROM v_$to");
			die "$build{$b}{name}: $moved of $n rows moved\n" unless $moved == $n;
			psql($b, 'VACUUM v');
		}
	}
	psql($_, 'DROP TABLE v; TRUNCATE payout.history') for @builds;
}
if (@moves)
{
	print "3. Bulk moves: one UPDATE moving n rows of a table with history to its other partition; median us per row, time and CPU\n";
	printf "   %-32s" . (" %17s" x @moves) . " %18s\n", 'build', (map { "n=$_" } @moves), 'largest/smallest';
	for my $b (@builds)
	{
		my @m = map { median(@{ $mv{$_}{$b} }) } @moves;
		my @c = map { median(@{ $mvc{$_}{$b} }) } @moves;
		$build{$b}{move_growth} = $c[0] > 0 ? $c[-1] / $c[0] : 0;
		printf "   %-32s" . (" %8.3f %8.3f" x @moves) . " %18.2f\n", $build{$b}{name},
		  (map { ($m[$_], $c[$_]) } 0 .. $#moves), $build{$b}{move_growth};
	}
	print "   (largest/smallest: of the CPU per row)\n\n";
}

print "Targets", ($smoke ? ' (smoke run: not meaningful)' : ''), ":\n";
verdict($batch_ratio <= 1.05,
	sprintf('history in a batch no slower than %s\'s: %s\'s history statements take %.3f x its CPU time (at most 1.05; their cost over bare %.3f x)',
		$build{old}{name}, $build{new}{name}, $batch_ratio, $batch_cost_ratio));
for my $c (@clients)
{
	verdict($pgb_ratio{$c} <= 1.05,
		sprintf('single-row transactions with history no slower than %s\'s at %d clients: %.3f x its CPU per transaction (at most 1.05)',
			$build{old}{name}, $c, $pgb_ratio{$c}));
}
if (@moves)
{
	printf "     bulk moves, CPU per row at n=%d over n=%d: %s %.2f x, %s %.2f x\n", $moves[-1], $moves[0],
	  map { ($build{$_}{name}, $build{$_}{move_growth}) } @builds;
}
