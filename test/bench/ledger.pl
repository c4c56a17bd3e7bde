#!/usr/bin/perl
#
# ledger.pl: the ledger's part of the benchmark (doc/ledger.md, "Cost").
# bench.pl runs it last, against the cluster and with the settings it was
# given (PGHOST, PGPORT, PGUSER, PGDATABASE, BENCH_*); it also runs alone
# in a cluster that has the extension installed.
#
# What it compares, in the same run, variants interleaved, rounds repeated,
# medians of per-round figures:
#   - a batch UPDATE (status CREATED -> READY -> INVOKING) of a table that
#     keeps history, with and without sealing running meanwhile: a session
#     seals every 200 ms while the UPDATEs run, as pg_cron would every
#     minute but harder; cost per history row over a table without
#     triggers;
#   - pgbench, one payout one step a transaction, on a table with history,
#     with and without a session sealing every second meanwhile;
#   - payout.seal() of BENCH_LEDGER_ROWS history rows (default 10,000,000)
#     from scratch, payout.verify() of them, and of one payout;
#   - the bytes payout.ledger takes per sealed row, against the history's.
#
# Like bench.pl it exits non-zero only when something fails to run; a
# missed target is printed.

use strict;
use warnings;

use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time);

my $rows = $ENV{BENCH_ROWS} // 1000000;
my $repeat = $ENV{BENCH_REPEAT} // 5;
my @clients = split ' ', ($ENV{BENCH_CLIENTS} // '1 4 8');
my $seconds = $ENV{BENCH_SECONDS} // 10;
my $smoke = $rows < 100000;
my $ledger_rows = $ENV{BENCH_LEDGER_ROWS} // ($smoke ? 10000 : 10000000);
$repeat = 3 if $repeat < 3;

my $tmp = tempdir(CLEANUP => 1);
my $cores = `nproc 2>/dev/null` || 1;
chomp $cores;

sub psql
{
	my ($sql) = @_;
	my $file = "$tmp/in.sql";
	open my $fh, '>', $file or die "$file: $!";
	print $fh $sql;
	close $fh;
	my $out = `psql -X -q -At -v ON_ERROR_STOP=1 -f $file 2>&1`;
	die "psql failed:\n$sql\n$out" if $? != 0;
	chomp $out;
	return $out;
}

sub timed
{
	my ($stmt) = @_;
	my $out = psql("\\timing on\n$stmt \\g /dev/null\n");
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

# sealer($interval): a session that seals every $interval seconds, each
# seal() its own transaction, until stop_sealer(); returns its pid.
sub sealer
{
	my ($interval) = @_;
	psql('TRUNCATE bench_ledger_stop');
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		exec('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', qq{
			DO \$\$
			BEGIN
				LOOP
					PERFORM payout.seal();
					COMMIT;
					EXIT WHEN EXISTS (SELECT FROM bench_ledger_stop);
					PERFORM pg_sleep($interval);
				END LOOP;
			END
			\$\$}) or die "psql: $!";
	}
	return $pid;
}

sub stop_sealer
{
	my ($pid) = @_;
	psql('INSERT INTO bench_ledger_stop VALUES (true)');
	waitpid($pid, 0);
	die "the sealing session failed\n" if $? != 0;
}

my $table_columns = <<'SQL';
	id bigint PRIMARY KEY,
	amount numeric(12,2) NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT now()
SQL

psql(<<"SQL");
CREATE EXTENSION IF NOT EXISTS payout;
DROP TABLE IF EXISTS bench_ledger_stop, l_bare, l_history, l_ledger, lg_history, lg_ledger;
CREATE TABLE bench_ledger_stop (stop boolean);
CREATE TABLE l_bare (\n$table_columns) WITH (autovacuum_enabled = off);
CREATE TABLE l_history (\n$table_columns) WITH (autovacuum_enabled = off);
CREATE TABLE l_ledger (\n$table_columns) WITH (autovacuum_enabled = off);
SELECT payout.attach('l_history', indexes => false);
SELECT payout.attach('l_ledger', indexes => false);
TRUNCATE payout.history, payout.ledger, payout.ledger_tables, payout.ledger_pending;
SQL

print "9. Ledger: history sealed by payout.seal() (doc/ledger.md)\n";

# --------------------------------------------------------------------------
# Batch UPDATE with and without sealing running
# --------------------------------------------------------------------------

my @variants = qw(bare history ledger);
my %t;
for my $round (0 .. $repeat - 1)
{
	my $load = "SET session_replication_role = replica;\n";
	$load .= "TRUNCATE l_$_;\nINSERT INTO l_$_ (id, amount) SELECT g, g % 1000 + 0.5 FROM generate_series(1, $rows) g;\n"
	  for @variants;
	$load .= "RESET session_replication_role;\n";
	$load .= "TRUNCATE payout.history, payout.ledger, payout.ledger_tables, payout.ledger_pending;\n";
	psql($load);
	psql(join('', map { "VACUUM ANALYZE l_$_;\n" } @variants));
	for my $v (rotate($round, @variants))
	{
		# nothing left to seal from the variant before
		psql('SELECT payout.seal(); CHECKPOINT');
		my $pid = $v eq 'ledger' ? sealer(0.2) : undef;
		my $ms = timed("UPDATE l_$v SET status = 'READY'");
		$ms += timed("UPDATE l_$v SET status = 'INVOKING'");
		stop_sealer($pid) if $pid;
		push @{ $t{$v} }, $ms;
	}
}
my %cost;
for my $v (qw(history ledger))
{
	$cost{$v} = median(map { ($t{$v}[$_] - $t{bare}[$_]) * 1000 / (2 * $rows) } 0 .. $repeat - 1);
}
my $update_ratio = $cost{history} > 0 ? $cost{ledger} / $cost{history} : 0;
printf "   batch UPDATE of %d rows, 2 status steps; median ms, and us per history row over no trigger\n", $rows;
printf "   %-52s %10.1f\n", 'no trigger', median(@{ $t{bare} });
printf "   %-52s %10.1f %9.4f\n", 'history', median(@{ $t{history} }), $cost{history};
printf "   %-52s %10.1f %9.4f  (%.3f x history)\n", 'history, sealed every 200 ms meanwhile', median(@{ $t{ledger} }),
  $cost{ledger}, $update_ratio;
print "\n";

# --------------------------------------------------------------------------
# pgbench with and without sealing running
# --------------------------------------------------------------------------

psql(<<"SQL");
CREATE TABLE lg_history (\n$table_columns) WITH (autovacuum_enabled = off);
CREATE TABLE lg_ledger (\n$table_columns) WITH (autovacuum_enabled = off);
SELECT payout.attach('lg_history');
SELECT payout.attach('lg_ledger');
SET session_replication_role = replica;
INSERT INTO lg_history (id, amount) SELECT g, 1 FROM generate_series(1, $rows) g;
INSERT INTO lg_ledger (id, amount) SELECT g, 1 FROM generate_series(1, $rows) g;
RESET session_replication_role;
VACUUM ANALYZE lg_history;
VACUUM ANALYZE lg_ledger;
SQL
for my $v (qw(history ledger))
{
	open my $fh, '>', "$tmp/lg_$v.sql" or die $!;
	print $fh <<"SQL";
\\set id random(1, $rows)
UPDATE lg_$v SET status = CASE status
	WHEN 'CREATED' THEN 'READY' WHEN 'READY' THEN 'INVOKING'
	WHEN 'INVOKING' THEN 'PROCESSING' WHEN 'PROCESSING' THEN 'PROCESSED'
	WHEN 'PROCESSED' THEN 'REVOKING' WHEN 'REVOKING' THEN 'REVOKED'
	ELSE status END
WHERE id = :id;
SQL
	close $fh;
}
my %tps;
{
	local $ENV{PGOPTIONS} = '-c synchronous_commit=off';
	for my $round (0 .. $repeat - 1)
	{
		for my $c (@clients)
		{
			my $jobs = $c < $cores ? $c : $cores;
			for my $v (rotate($round, qw(history ledger)))
			{
				psql('SELECT payout.seal()');
				my $pid = $v eq 'ledger' ? sealer(1) : undef;
				my $out = `pgbench -n -M prepared -c $c -j $jobs -T $seconds -f $tmp/lg_$v.sql 2>&1`;
				die "pgbench failed:\n$out" if $? != 0;
				stop_sealer($pid) if $pid;
				my ($tps) = $out =~ /^tps = ([0-9.]+)/m;
				die "no tps in:\n$out" unless defined $tps;
				push @{ $tps{$c}{$v} }, $tps;
			}
		}
	}
}
my %pgb_ratio;
print "   pgbench, one random payout one step a transaction, $seconds s a run, synchronous_commit off; median tps\n";
printf "   %-8s %12s %22s %7s\n", 'clients', 'history', 'sealed every second', 'ratio';
for my $c (@clients)
{
	$pgb_ratio{$c} = median(map { $tps{$c}{ledger}[$_] / $tps{$c}{history}[$_] } 0 .. $repeat - 1);
	printf "   %-8d %12.0f %22.0f %7.3f\n", $c, median(@{ $tps{$c}{history} }),
	  median(@{ $tps{$c}{ledger} }), $pgb_ratio{$c};
}
print "\n";
psql('DROP TABLE l_bare, l_history, l_ledger, lg_history, lg_ledger');

# --------------------------------------------------------------------------
# Sealing and verifying BENCH_LEDGER_ROWS rows; storage
# --------------------------------------------------------------------------

# History rows as the trigger writes them, straight into payout.history:
# five changes a payout, a day of clock_time.
psql(<<"SQL");
TRUNCATE payout.history, payout.ledger, payout.ledger_tables, payout.ledger_pending;
CREATE TABLE lv_payouts (id bigint PRIMARY KEY, status payout.status NOT NULL);
INSERT INTO payout.history (tbl, key, old_status, new_status, xact_time, clock_time,
							user_name, session_user_name, application_name, xid)
SELECT 'lv_payouts', (g / 5)::text,
	   (ARRAY[NULL, 'CREATED', 'READY', 'INVOKING', 'PROCESSING'])[g % 5 + 1]::payout.status,
	   (ARRAY['CREATED', 'READY', 'INVOKING', 'PROCESSING', 'PROCESSED'])[g % 5 + 1]::payout.status,
	   now() - interval '1 day' + g * interval '8 microseconds',
	   now() - interval '1 day' + g * interval '8 microseconds',
	   'app', 'app', 'processor', (1000 + g / 3)::text::xid8
FROM generate_series(1, $ledger_rows) g;
VACUUM ANALYZE payout.history;
SQL
my (@seal_ms, @verify_ms, @payout_ms, $verdict);
for my $round (0 .. $repeat - 1)
{
	psql('TRUNCATE payout.ledger, payout.ledger_tables, payout.ledger_pending; CHECKPOINT');
	push @seal_ms, timed('SELECT payout.seal()');
	push @verify_ms, timed('SELECT * FROM payout.verify()');
	push @payout_ms, timed(q{SELECT * FROM payout.verify(tbl => 'lv_payouts', key => '4242')});
}
$verdict = psql(q{SELECT finding FROM payout.verify() WHERE finding IN ('intact', 'tampered')});
die "the benchmark's history does not verify: $verdict\n" unless $verdict eq 'intact';
my ($sealed, $blocks, $ledger_bytes, $history_bytes) = split /\|/, psql(<<'SQL');
SELECT (SELECT sum(row_count) FROM payout.ledger), (SELECT count(*) FROM payout.ledger),
	   pg_total_relation_size('payout.ledger'),
	   (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('payout.history') WHERE isleaf)
SQL
die "sealed $sealed of $ledger_rows rows\n" unless $sealed == $ledger_rows;
psql('DROP TABLE lv_payouts; TRUNCATE payout.history, payout.ledger, payout.ledger_tables, payout.ledger_pending');

my $seal_rate = $ledger_rows / (median(@seal_ms) / 1000);
my $verify_s = median(@verify_ms) / 1000;
my $verify_10m = $verify_s * 10000000 / $ledger_rows;
printf "   %d history rows: seal() %.1f s (%.0f rows a second, one backend), verify() %.1f s, verify() of one payout %.1f ms\n",
  $ledger_rows, median(@seal_ms) / 1000, $seal_rate, $verify_s, median(@payout_ms);
printf "   storage: payout.ledger %.1f bytes per sealed row (%d blocks), payout.history %.0f bytes per row with its indexes: +%.1f%%\n",
  $ledger_bytes / $ledger_rows, $blocks, $history_bytes / $ledger_rows,
  100 * $ledger_bytes / $history_bytes;
print "\n";

sub verdict
{
	my ($ok, $text) = @_;
	printf "%s %s\n", ($ok ? 'PASS' : 'MISS'), $text;
}

print "Ledger targets", ($smoke ? ' (smoke run: not meaningful)' : ''), ":\n";
verdict($update_ratio <= 1.2,
	sprintf('history per row with sealing running within 1.2 x history alone in a batch UPDATE (%.2f against %.2f us: %.3f x)',
		$cost{ledger}, $cost{history}, $update_ratio));
for my $c (@clients)
{
	verdict($pgb_ratio{$c} >= 0.9,
		sprintf('pgbench with sealing every second >= 0.9 x without at %d clients (%.3f x)', $c, $pgb_ratio{$c}));
}
verdict($seal_rate >= 100000,
	sprintf('seal() keeps up with >= 100,000 history rows a second on one core (%.0f)', $seal_rate));
verdict($verify_10m < 60,
	sprintf('verify() of 10,000,000 history rows in under a minute (%.1f s%s)', $verify_10m,
		$ledger_rows == 10000000 ? '' : sprintf(', from %d rows', $ledger_rows)));
