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
# hits both.  It exits non-zero only when something fails to run; a missed
# target is printed, not fatal.

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

my %build = (
	old => { host => $ENV{BENCH_OLD_HOST}, port => $ENV{BENCH_OLD_PORT}, name => $ENV{BENCH_OLD_NAME} // 'old' },
	new => { host => $ENV{BENCH_NEW_HOST}, port => $ENV{BENCH_NEW_PORT}, name => $ENV{BENCH_NEW_NAME} // 'new' },);
for my $b (values %build)
{
	die "BENCH_OLD_HOST, BENCH_OLD_PORT, BENCH_NEW_HOST and BENCH_NEW_PORT must be set\n"
	  unless defined $b->{host} && defined $b->{port};
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
# \timing reports it.
sub timed
{
	my ($b, $stmt) = @_;
	my $out = psql($b, "\\timing on\n$stmt \\g /dev/null\n");
	my @t = $out =~ /^Time: ([0-9.]+) ms/mg;
	die "no timing in:\n$out" unless @t == 1;
	return $t[0];
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
my %t;    # $t{build}{variant}[round] = ms of both steps
my @pairs = map { my $b = $_; map { [ $b, $_ ] } @variants } @builds;
for my $round (0 .. $repeat - 1)
{
	load($_, map { "c_$_" } @variants) for @builds;
	my %ms;
	for my $step (@steps)
	{
		for my $p (rotate($round, @pairs))
		{
			my ($b, $v) = @$p;
			psql($b, 'CHECKPOINT');
			$ms{$b}{$v} += timed($b, sprintf($step, "c_$v"));
		}
		psql($_, join('', (map { "VACUUM c_$_;\n" } @variants), "VACUUM payout.history;\n")) for @builds;
	}
	for my $b (@builds)
	{
		push @{ $t{$b}{$_} }, $ms{$b}{$_} for @variants;
		my $n = psql($b, q{SELECT count(*) FROM payout.history WHERE tbl = 'c_history'::regclass});
		die "$build{$b}{name}: history has $n rows, expected " . 2 * $rows . "\n" unless $n == 2 * $rows;
	}
}

# us per row update: over bare, and history over enforcement alone, per
# round; the builds' ratio per round.
sub per_row
{
	my ($b, $v, $base) = @_;
	return median(map { ($t{$b}{$v}[$_] - $t{$b}{$base}[$_]) * 1000 / (2 * $rows) } 0 .. $repeat - 1);
}
my %over_bare = map { my $b = $_; ($b => { map { ($_ => per_row($b, $_, 'bare')) } qw(payout history) }) } @builds;
my %hist_only = map { ($_ => per_row($_, 'history', 'payout')) } @builds;
my $batch_ratio = median(map { $t{new}{history}[$_] / $t{old}{history}[$_] } 0 .. $repeat - 1);
my $bare_ratio = median(map { $t{new}{bare}[$_] / $t{old}{bare}[$_] } 0 .. $repeat - 1);
my $ovh_ratio = median(
	map {
		my $o = $t{old}{history}[$_] - $t{old}{bare}[$_];
		$o > 0 ? ($t{new}{history}[$_] - $t{new}{bare}[$_]) / $o : 0
	} 0 .. $repeat - 1);

printf "1. Batch UPDATE of %d rows: status CREATED -> READY -> INVOKING (2 statements); median ms, us per row update\n", $rows;
printf "   %-32s %12s %12s %14s %12s %14s %16s\n", 'build', 'bare ms', 'payout ms', 'history ms', 'payout us', 'history us', 'history alone us';
for my $b (@builds)
{
	printf "   %-32s %12.1f %12.1f %14.1f %12.4f %14.4f %16.4f\n", $build{$b}{name},
	  (map { median(@{ $t{$b}{$_} }) } @variants), $over_bare{$b}{payout}, $over_bare{$b}{history}, $hist_only{$b};
}
printf "   %s / %s: history statements %.3f x, their cost over bare %.3f x (bare statements %.3f x)\n\n",
  $build{new}{name}, $build{old}{name}, $batch_ratio, $ovh_ratio, $bare_ratio;

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
my %tps;    # $tps{clients}{build}{variant}[round]
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
				my $out = `pgbench -n -M prepared -c $c -j $jobs -T $seconds -f $tmp/g_$v.sql -U postgres postgres 2>&1`;
				die "pgbench ($build{$b}{name}) failed:\n$out" if $? != 0;
				my ($tps) = $out =~ /^tps = ([0-9.]+)/m;
				die "no tps in:\n$out" unless defined $tps;
				push @{ $tps{$c}{$b}{$v} }, $tps;
			}
			psql($_, join('', map { "VACUUM g_$_;\n" } @pgb_variants)) for @builds;
		}
	}
}

print "2. pgbench, one random payout one step per transaction, $seconds s per run, synchronous_commit off; median tps\n";
printf "   %-8s %-32s %10s %12s %8s\n", 'clients', 'build', 'bare tps', 'history tps', 'ratio';
my %pgb_ratio;
for my $c (@clients)
{
	for my $b (@builds)
	{
		printf "   %-8d %-32s %10.0f %12.0f %8.3f\n", $c, $build{$b}{name},
		  median(@{ $tps{$c}{$b}{bare} }), median(@{ $tps{$c}{$b}{history} }),
		  median(map { $tps{$c}{$b}{history}[$_] / $tps{$c}{$b}{bare}[$_] } 0 .. $repeat - 1);
	}
	$pgb_ratio{$c} = median(map { $tps{$c}{new}{history}[$_] / $tps{$c}{old}{history}[$_] } 0 .. $repeat - 1);
	printf "   %-8s %s / %s: history tps %.3f x (bare tps %.3f x)\n", '', $build{new}{name}, $build{old}{name},
	  $pgb_ratio{$c}, median(map { $tps{$c}{new}{bare}[$_] / $tps{$c}{old}{bare}[$_] } 0 .. $repeat - 1);
}
print "\n";

# --------------------------------------------------------------------------
# 3: bulk moves: one UPDATE moving n rows of a table with history to its
# other partition, once per round
# --------------------------------------------------------------------------

my %mv;    # $mv{n}{build}[round] = us per row
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
			push @{ $mv{$n}{$b} }, timed($b, "UPDATE v SET region = '$to' WHERE region = '$from'") * 1000 / $n;
			my $moved = psql($b, "SELECT count(*) FROM v_$to");
			die "$build{$b}{name}: $moved of $n rows moved\n" unless $moved == $n;
			psql($b, 'VACUUM v');
		}
	}
	psql($_, 'DROP TABLE v; TRUNCATE payout.history') for @builds;
}
if (@moves)
{
	print "3. Bulk moves: one UPDATE moving n rows of a table with history to its other partition; median us per row\n";
	printf "   %-32s" . (" %12s" x @moves) . " %18s\n", 'build', (map { "n=$_" } @moves), 'largest/smallest';
	for my $b (@builds)
	{
		my @m = map { median(@{ $mv{$_}{$b} }) } @moves;
		$build{$b}{move_growth} = $m[0] > 0 ? $m[-1] / $m[0] : 0;
		printf "   %-32s" . (" %12.3f" x @m) . " %18.2f\n", $build{$b}{name}, @m, $build{$b}{move_growth};
	}
	print "\n";
}

print "Targets", ($smoke ? ' (smoke run: not meaningful)' : ''), ":\n";
verdict($batch_ratio <= 1.05,
	sprintf('history in a batch no slower than %s\'s: %s\'s history statements take %.3f x its time (at most 1.05; cost over bare %.3f x)',
		$build{old}{name}, $build{new}{name}, $batch_ratio, $ovh_ratio));
for my $c (@clients)
{
	verdict($pgb_ratio{$c} >= 0.95,
		sprintf('single-row transactions with history no slower than %s\'s at %d clients: %.3f x its tps (at least 0.95)',
			$build{old}{name}, $c, $pgb_ratio{$c}));
}
if (@moves)
{
	printf "     bulk moves, us per row at n=%d over n=%d: %s %.2f x, %s %.2f x\n", $moves[-1], $moves[0],
	  map { ($build{$_}{name}, $build{$_}{move_growth}) } @builds;
}
