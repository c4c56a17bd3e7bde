#!/usr/bin/perl
#
# bench.pl: the measurements behind test/bench/run, which starts the
# cluster this script talks to (PGHOST, PGPORT, PGUSER, PGDATABASE).
#
# Every comparison is made in one run, on identical tables, with the
# variants interleaved and each measurement repeated; the medians and the
# ratios between variants are what it reports, never an absolute time
# against a fixed threshold.  Overheads are taken per repetition (variant
# minus bare, from the same round) before the median, so that a drift of
# the machine over the run cancels out.
#
# It exits non-zero only when something fails to run or two forms of the
# same question give different answers; a missed target is printed, not
# fatal.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use POSIX qw(floor);

my $rows = $ENV{BENCH_ROWS} // 1000000;
my $repeat = $ENV{BENCH_REPEAT} // 5;
my @clients = split ' ', ($ENV{BENCH_CLIENTS} // '1 4 8');
my $seconds = $ENV{BENCH_SECONDS} // 10;
my $smoke = $rows < 100000;

die "BENCH_ROWS must be a positive integer\n" unless $rows =~ /^[1-9][0-9]*$/;
die "BENCH_REPEAT must be an integer\n" unless $repeat =~ /^[0-9]+$/;
$repeat = 3 if $repeat < 3;

my $tmp = tempdir(CLEANUP => 1);

# psql($sql): run $sql in a new session, return its output (unaligned,
# tuples only); die if any statement fails.
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

# timed($setup, $statement, $warm): milliseconds the statement took, as
# psql's \timing reports it (server round trip, no connection set-up).
# With $warm, a query runs once untimed first, so that a new session's
# catalog caches are not part of a time counted in milliseconds.
sub timed
{
	my ($setup, $stmt, $warm) = @_;
	my $first = $warm ? "$stmt \\g /dev/null\n" : '';
	my $out = psql("$setup\n$first\\timing on\n$stmt \\g /dev/null\n");
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

# rotate($round, @list): @list started at a different element each round,
# so that no variant always runs first or last.
sub rotate
{
	my ($round, @list) = @_;
	my $k = $round % @list;
	return (@list[ $k .. $#list ], @list[ 0 .. $k - 1 ]);
}

my @scales = split ' ', ($ENV{BENCH_SCALES} // ($smoke ? '1000 10000' : '100000 1000000 10000000'));

my $table_columns = <<'SQL';
	id bigint PRIMARY KEY,
	amount numeric(12,2) NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT now()
SQL

# Fill tables without firing any trigger: what is measured is the UPDATE.
sub load
{
	my (@tables) = @_;
	my $sql = "SET session_replication_role = replica;\n";
	$sql .= "TRUNCATE $_;\n" for @tables;
	$sql .= "TRUNCATE payout.history, bench_audit, bench_history_copy;\n";
	$sql .= "INSERT INTO $_ (id, amount) SELECT g, g % 1000 + 0.5 FROM generate_series(1, $rows) g;\n"
	  for @tables;
	$sql .= "RESET session_replication_role;\n";
	psql($sql);
	psql(join('', map { "VACUUM ANALYZE $_;\n" } @tables));
}

# --------------------------------------------------------------------------
# Machine and set-up
# --------------------------------------------------------------------------

my $cpu = 'unknown CPU';
if (open my $fh, '<', '/proc/cpuinfo')
{
	while (<$fh>) { if (/^model name\s*:\s*(.*)/) { $cpu = $1; last; } }
	close $fh;
}
my $cores = `nproc 2>/dev/null` || '?';
chomp $cores;
my $mem = '?';
if (open my $fh, '<', '/proc/meminfo')
{
	while (<$fh>) { if (/^MemTotal:\s*(\d+)/) { $mem = sprintf('%.0f GiB', $1 / 1048576); last; } }
	close $fh;
}

psql(<<'SQL');
CREATE EXTENSION payout;

-- The anchor: what a DBA writes by hand today, a table of allowed
-- transitions and a PL/pgSQL trigger that looks each change up.
CREATE TABLE bench_transition (
	from_status payout.status NOT NULL,
	to_status payout.status NOT NULL,
	PRIMARY KEY (from_status, to_status)
);
INSERT INTO bench_transition
SELECT from_status, to_status FROM payout.transition WHERE from_status IS NOT NULL;

-- The history anchor: what a DBA writes by hand, an audit table with a
-- bigserial key and defaults, and a PL/pgSQL AFTER ROW trigger writing it.
CREATE TABLE bench_audit (
	id bigserial PRIMARY KEY,
	tbl text NOT NULL,
	key text NOT NULL,
	old_status payout.status,
	new_status payout.status,
	at timestamptz NOT NULL DEFAULT clock_timestamp(),
	who text NOT NULL DEFAULT current_user
);
CREATE FUNCTION bench_audit_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO bench_audit (tbl, key, old_status, new_status)
	VALUES (TG_TABLE_NAME, NEW.id::text, OLD.status, NEW.status);
	RETURN NULL;
END
$$;
-- A table shaped like the history's default partition, with its indexes,
-- for the INSERT ... SELECT that the history is measured against.
CREATE TABLE bench_history_copy (LIKE payout.history_catchall INCLUDING ALL);

CREATE FUNCTION bench_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.status IS DISTINCT FROM OLD.status
	   AND NOT EXISTS (SELECT FROM bench_transition
					   WHERE from_status = OLD.status AND to_status = NEW.status) THEN
		RAISE EXCEPTION 'illegal transition from % to %', OLD.status, NEW.status
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END
$$;
SQL

# payout_when and payout_of are the trigger restricted to status changes,
# by a WHEN clause and by UPDATE OF: they show what such a restriction
# saves on updates of other columns (payout.attach() uses neither).
# payout_idx is payout.attach()'s default without history: enforcement plus
# the partial indexes of claim, expire and the moderation queue, whose
# predicates name the status, so that every status update is a non-HOT one.
# plaudit is the PL/pgSQL pair: the check trigger and an AFTER ROW trigger
# writing an audit table, what history is measured against.
my @variants = qw(bare floor plpgsql payout payout_idx payout_when payout_of history plaudit);
my %attach = (
	bare => '',
	floor => 'CREATE TRIGGER zz_floor BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()',
	plpgsql => 'CREATE TRIGGER zz_check BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION bench_check_transition()',
	payout => "SELECT payout.attach('%s', history => false, indexes => false)",
	payout_idx => "SELECT payout.attach('%s', history => false)",
	payout_when => 'CREATE TRIGGER zz_payout_enforce BEFORE UPDATE ON %s FOR EACH ROW '
	  . 'WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.resolution IS DISTINCT FROM NEW.resolution) '
	  . 'EXECUTE FUNCTION payout.enforce_transition()',
	payout_of => 'CREATE TRIGGER zz_payout_enforce BEFORE UPDATE OF status, resolution ON %s FOR EACH ROW '
	  . 'EXECUTE FUNCTION payout.enforce_transition()',
	history => "SELECT payout.attach('%s', indexes => false)",
	plaudit => 'CREATE TRIGGER zz_check BEFORE UPDATE ON %1$s FOR EACH ROW EXECUTE FUNCTION bench_check_transition(); '
	  . 'CREATE TRIGGER zz_audit AFTER UPDATE ON %1$s FOR EACH ROW '
	  . 'WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION bench_audit_row()',);
my %describe = (
	bare => 'no trigger',
	floor => 'suppress_redundant_updates_trigger() (built-in C)',
	plpgsql => 'PL/pgSQL trigger + transitions table',
	payout => 'payout.enforce_transition()',
	payout_idx => '  the same, with the indexes attach() makes',
	payout_when => '  the same, WHEN status or resolution changes',
	payout_of => '  the same, BEFORE UPDATE OF status, resolution',
	history => 'payout.enforce_transition() + history',
	plaudit => 'PL/pgSQL trigger + PL/pgSQL audit-table trigger',);

for my $v (@variants)
{
	my $sql = "CREATE TABLE b_$v (\n$table_columns) WITH (autovacuum_enabled = off);\n";
	$sql .= sprintf($attach{$v}, "b_$v") . ";\n" if $attach{$v};
	psql($sql);
}

my $version = psql('SHOW server_version');
print "payout benchmark: $rows rows, median of $repeat, variants interleaved\n";
print "machine: $cpu, $cores cores, $mem RAM; PostgreSQL $version\n";
print "BENCH_ROWS=$rows is a smoke run: it checks that the harness works; its numbers are noise\n"
  if $smoke;
print "\n";

# --------------------------------------------------------------------------
# 1 and 2: batch updates
# --------------------------------------------------------------------------

my @steps = (
	[ ready => "UPDATE %s SET status = 'READY'" ],
	[ invoking => "UPDATE %s SET status = 'INVOKING'" ],
	[ amount => 'UPDATE %s SET amount = amount + 1' ],);
my %t;    # $t{step}{variant}[round] = ms

my @tables = map { "b_$_" } @variants;
my ($payout_heap, $payout_index);
for my $round (0 .. $repeat - 1)
{
	load(@tables);
	($payout_heap, $payout_index) = split /\|/,
	  psql("SELECT pg_relation_size('b_bare'), pg_indexes_size('b_bare')")
	  if $round == 0;
	for my $step (@steps)
	{
		my ($name, $stmt) = @$step;
		for my $v (rotate($round, @variants))
		{
			psql('CHECKPOINT');
			push @{ $t{$name}{$v} }, timed('', sprintf($stmt, "b_$v"));
		}
		psql(join('', map { "VACUUM $_;\n" } @tables, 'payout.history'));
	}
	# The history rows b_history got, written again into a table with the
	# same indexes by one INSERT ... SELECT, nextval and clock_timestamp()
	# per row: what the executor's row-at-a-time path costs for them.
	psql('TRUNCATE bench_history_copy; CHECKPOINT');
	push @{ $t{insert_select} }, timed('', q{INSERT INTO bench_history_copy
		(id, tbl, key, old_status, new_status, old_resolution, new_resolution,
		 xact_time, clock_time, user_name, session_user_name, application_name, xid)
		SELECT nextval('payout.history_id_seq'), tbl, key, old_status, new_status,
			   old_resolution, new_resolution, xact_time, clock_timestamp(),
			   user_name, session_user_name, application_name, xid
		FROM payout.history WHERE tbl = 'b_history'::regclass});
	# Every row took both steps, whatever trigger it went through.
	for my $v (@variants)
	{
		my $n = psql("SELECT count(*) FROM b_$v WHERE status = 'INVOKING'");
		die "b_$v: $n of $rows rows reached INVOKING\n" unless $n == $rows;
	}
}
my $hist = psql(q{SELECT count(*) FROM payout.history WHERE tbl = 'b_history'::regclass});
die "history has $hist rows, expected " . 2 * $rows . "\n" unless $hist == 2 * $rows;

# Storage of what the last round wrote, over however many partitions the
# history has.
my ($hist_heap, $hist_index) = split /\|/, psql(<<'SQL');
SELECT sum(pg_relation_size(relid)), sum(pg_indexes_size(relid))
FROM (SELECT relid FROM pg_partition_tree('payout.history') WHERE isleaf
	  UNION SELECT 'payout.history'::regclass) t
SQL
# ... and each kind of history index, over all partitions.
my %hist_index_of = map { split /\|/ } split /\n/, psql(<<'SQL');
SELECT substring(i.indexrelid::regclass::text FROM '(pkey|tbl_key_id_idx|clock_time_idx)$'),
	   sum(pg_relation_size(i.indexrelid))
FROM pg_index i
WHERE i.indrelid IN (SELECT relid FROM pg_partition_tree('payout.history') WHERE isleaf)
GROUP BY 1
SQL

# 9: what bounds history against the PL/pgSQL pair.  The pair's audit table
# has one index, its primary key; history has three, one of them on
# (tbl, key, id), the index timeline() and the moderators' look-ups read.
# The same status steps again, with that index dropped for the rounds and
# made again after them, on the variants the pair is compared with.  After
# the storage figures, so that they are those of the shipped layout.
my @nokey = qw(bare payout history plaudit);
my @key_index = split /\n/, psql(q{SELECT i.indexrelid::regclass || '|' || pg_get_indexdef(i.indexrelid)
	FROM pg_index i
	WHERE i.indrelid IN (SELECT relid FROM pg_partition_tree('payout.history') WHERE isleaf)
	  AND i.indexrelid::regclass::text ~ 'tbl_key_id_idx$'});
die "no (tbl, key, id) index on payout.history\n" unless @key_index;
psql(join('', map { 'DROP INDEX ' . (split /\|/)[0] . ";\n" } @key_index));
my %nokey;    # $nokey{variant}[round] = ms, both status steps
for my $round (0 .. $repeat - 1)
{
	load(map { "b_$_" } @nokey);
	for my $v (rotate($round, @nokey))
	{
		my $ms = 0;
		for my $step (@steps[ 0 .. 1 ])
		{
			psql('CHECKPOINT');
			$ms += timed('', sprintf($step->[1], "b_$v"));
		}
		push @{ $nokey{$v} }, $ms;
	}
	psql(join('', (map { "VACUUM b_$_;\n" } @nokey), "VACUUM payout.history;\n"));
}
psql(join('', map { (split /\|/, $_, 2)[1] . ";\n" } @key_index));
my %nokey_ovh;
for my $v (@nokey)
{
	$nokey_ovh{$v} = median(map { ($nokey{$v}[$_] - $nokey{bare}[$_]) * 1000 / (2 * $rows) } 0 .. $repeat - 1);
}

# status: both status steps of a round together (2 row updates per row)
for my $v (@variants)
{
	$t{status}{$v} = [ map { $t{ready}{$v}[$_] + $t{invoking}{$v}[$_] } 0 .. $repeat - 1 ];
}

# Per-row overhead over bare in microseconds, per round, then the median.
sub overhead_us
{
	my ($step, $v, $updates) = @_;
	return median(map { ($t{$step}{$v}[$_] - $t{$step}{bare}[$_]) * 1000 / $updates } 0 .. $repeat - 1);
}

sub ratio_to
{
	my ($step, $v, $base) = @_;
	return median(map { $t{$step}{$v}[$_] / $t{$step}{$base}[$_] } 0 .. $repeat - 1);
}

my %ovh;
$ovh{$_} = overhead_us('status', $_, 2 * $rows) for @variants;
# History per history row: the history variant over enforcement alone, per
# round; the INSERT ... SELECT of the same rows; the PL/pgSQL pair over bare.
my $hist_us = median(map { ($t{status}{history}[$_] - $t{status}{payout}[$_]) * 1000 / (2 * $rows) } 0 .. $repeat - 1);
my $insert_select_us = median(map { $_ * 1000 / (2 * $rows) } @{ $t{insert_select} });
my %ovh_amount;
$ovh_amount{$_} = overhead_us('amount', $_, $rows) for @variants;

printf "1. Batch UPDATE of %d rows: status CREATED -> READY -> INVOKING (2 statements)\n", $rows;
printf "   and 2. UPDATE of amount only (1 statement); median ms, ratio to bare, us per row update over bare and over the floor\n";
printf "   %-48s %10s %6s %9s %9s | %10s %6s %9s %9s\n", 'variant', 'status ms', 'ratio', 'us/row', 'vs floor', 'amount ms', 'ratio', 'us/row', 'vs floor';
for my $v (@variants)
{
	printf "   %-48s %10.1f %6.3f %9.4f %9.4f | %10.1f %6.3f %9.4f %9.4f\n",
	  $describe{$v},
	  median(@{ $t{status}{$v} }), ratio_to('status', $v, 'bare'), $ovh{$v}, $ovh{$v} - $ovh{floor},
	  median(@{ $t{amount}{$v} }), ratio_to('amount', $v, 'bare'), $ovh_amount{$v}, $ovh_amount{$v} - $ovh_amount{floor};
}
print "\n";

printf "   without history's (tbl, key, id) index (the same status steps, %d more rounds): us per row update over bare\n", $repeat;
printf "   %-48s %9.4f\n", $describe{$_}, $nokey_ovh{$_} for qw(payout history plaudit);
print "\n";

# --------------------------------------------------------------------------
# 3: single-row transitions under concurrency (pgbench)
# --------------------------------------------------------------------------

# audit: the hand-written transaction, the same UPDATE of a bare table and
# one INSERT of an audit row, what single-row history is measured against.
my @pgb_variants = qw(bare floor payout history audit);
$attach{audit} = '';
for my $v (@pgb_variants)
{
	my $sql = "CREATE TABLE g_$v (\n$table_columns) WITH (autovacuum_enabled = off);\n";
	$sql .= sprintf($attach{$v}, "g_$v") . ";\n" if $attach{$v};
	psql($sql);
	open my $fh, '>', "$tmp/g_$v.sql" or die $!;
	# the audit transaction: the UPDATE and the INSERT, one transaction
	print $fh "BEGIN;\n" if $v eq 'audit';
	print $fh <<"SQL";
\\set id random(1, $rows)
UPDATE g_$v SET status = CASE status
	WHEN 'CREATED' THEN 'READY' WHEN 'READY' THEN 'INVOKING'
	WHEN 'INVOKING' THEN 'PROCESSING' WHEN 'PROCESSING' THEN 'PROCESSED'
	WHEN 'PROCESSED' THEN 'REVOKING' WHEN 'REVOKING' THEN 'REVOKED'
	ELSE status END
WHERE id = :id;
SQL
	print $fh "INSERT INTO bench_audit (tbl, key, new_status) VALUES ('g_audit', :id, 'READY');\nCOMMIT;\n"
	  if $v eq 'audit';
	close $fh;
}
load(map { "g_$_" } @pgb_variants);

my %tps;    # $tps{clients}{variant}[round]
{
	# Commits do not wait for the disk: what is left is CPU, where a
	# trigger's cost shows most.
	local $ENV{PGOPTIONS} = '-c synchronous_commit=off';
	for my $round (0 .. $repeat - 1)
	{
		for my $c (@clients)
		{
			my $jobs = $c < $cores ? $c : $cores;
			for my $v (rotate($round, @pgb_variants))
			{
				my $out = `pgbench -n -M prepared -c $c -j $jobs -T $seconds -f $tmp/g_$v.sql 2>&1`;
				die "pgbench failed:\n$out" if $? != 0;
				my ($tps) = $out =~ /^tps = ([0-9.]+)/m;
				die "no tps in:\n$out" unless defined $tps;
				push @{ $tps{$c}{$v} }, $tps;
			}
			psql(join('', map { "VACUUM g_$_;\n" } @pgb_variants));
		}
	}
}

print "3. pgbench, one random payout one step per transaction, $seconds s per run, synchronous_commit off\n";
print "   median tps, and its ratio to bare; floor: suppress_redundant_updates_trigger()\n";
printf "   %-8s %10s %10s %7s %11s %7s %12s %7s %10s %8s\n", 'clients', 'bare tps', 'floor tps', 'ratio', 'payout tps', 'ratio', 'history tps', 'ratio', 'audit tps', 'hist/aud';
my (%pgb_ratio, %pgb_floor_ratio, %pgb_audit_ratio);
for my $c (@clients)
{
	my %r = map { my $v = $_; ($v => median(map { $tps{$c}{$v}[$_] / $tps{$c}{bare}[$_] } 0 .. $repeat - 1)) }
	  qw(floor payout history audit);
	$pgb_audit_ratio{$c} = median(map { $tps{$c}{history}[$_] / $tps{$c}{audit}[$_] } 0 .. $repeat - 1);
	$pgb_ratio{$c} = $r{payout};
	$pgb_floor_ratio{$c} = $r{floor};
	printf "   %-8d %10.0f %10.0f %7.3f %11.0f %7.3f %12.0f %7.3f %10.0f %8.3f\n", $c,
	  median(@{ $tps{$c}{bare} }),
	  median(@{ $tps{$c}{floor} }), $r{floor},
	  median(@{ $tps{$c}{payout} }), $r{payout},
	  median(@{ $tps{$c}{history} }), $r{history},
	  median(@{ $tps{$c}{audit} }), $pgb_audit_ratio{$c};
}
print "\n";

# --------------------------------------------------------------------------
# 4: classification in C against the same predicate as = ANY
# --------------------------------------------------------------------------

psql(<<"SQL");
CREATE TABLE m_mix (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL,
	resolution payout.resolution
);
INSERT INTO m_mix
SELECT g, e.s[1 + g % 18], CASE WHEN g % 4 = 0 THEN NULL ELSE e.r[1 + g % 27] END
FROM generate_series(1, $rows) g,
	 (SELECT enum_range(NULL::payout.status) AS s, enum_range(NULL::payout.resolution) AS r) e;
VACUUM ANALYZE m_mix;
SQL
my $final = psql(q{SELECT array_agg(s)::text FROM unnest(enum_range(NULL::payout.status)) s WHERE payout.is_final(s)});
my $errors = psql(q{SELECT array_agg(r)::text FROM unnest(enum_range(NULL::payout.resolution)) r WHERE payout.resolution_group(r) = 'ERROR'});

my %cls = (
	is_final => [
		'WHERE payout.is_final(status)',
		"WHERE status = ANY ('$final'::payout.status[])" ],
	requires_moderation => [
		'WHERE payout.requires_moderation(status, resolution)',
		"WHERE resolution = ANY ('$errors'::payout.resolution[]) AND NOT status = ANY ('$final'::payout.status[])" ],);

my %ct;
for my $q (sort keys %cls)
{
	my ($c_form, $any_form) = @{ $cls{$q} };
	my $a = psql("SELECT count(*) FROM m_mix $c_form");
	my $b = psql("SELECT count(*) FROM m_mix $any_form");
	die "$q: $a rows in C, $b rows with = ANY\n" unless $a == $b;
	for my $round (0 .. $repeat - 1)
	{
		for my $form (rotate($round, 0, 1))
		{
			push @{ $ct{$q}[$form] }, timed('', "SELECT count(*) FROM m_mix $cls{$q}[$form]", 1);
		}
	}
}
my %cls_ratio;
print "4. Classification: count(*) over $rows rows, sequential scan; median ms\n";
printf "   %-22s %10s %10s %7s\n", 'predicate', 'C', '= ANY', 'ratio';
for my $q (sort keys %cls)
{
	$cls_ratio{$q} = median(map { $ct{$q}[0][$_] / $ct{$q}[1][$_] } 0 .. $repeat - 1);
	printf "   %-22s %10.1f %10.1f %7.3f\n", $q, median(@{ $ct{$q}[0] }), median(@{ $ct{$q}[1] }), $cls_ratio{$q};
}
print "\n";

# --------------------------------------------------------------------------
# 5: the moderation queue through its partial index
# --------------------------------------------------------------------------

psql(<<"SQL");
CREATE TABLE q_queue (\n$table_columns);
INSERT INTO q_queue (id, amount, status, resolution, created_at)
SELECT g, 1,
	   CASE WHEN g % 1000 = 0 THEN 'PENDING' ELSE e.s[1 + g % 18] END,
	   (CASE WHEN g % 1000 = 0 THEN 'PROVIDER_INTERNAL_ERROR' ELSE 'OK' END)::payout.resolution,
	   now() - g * interval '1 second'
FROM generate_series(1, $rows) g, (SELECT enum_range(NULL::payout.status) AS s) e;
CREATE INDEX q_queue_held ON q_queue (resolution, created_at)
WHERE payout.requires_moderation(status, resolution);
VACUUM ANALYZE q_queue;
SQL
my $held = psql('SELECT count(*) FROM q_queue WHERE payout.requires_moderation(status, resolution)');
my $queue = 'SELECT id, status, resolution FROM q_queue WHERE payout.requires_moderation(status, resolution) ORDER BY resolution, created_at';
my $plan = psql("EXPLAIN $queue");
my $planner_uses_index = $plan =~ /q_queue_held/ ? 'yes' : 'no';
my %queue_setup = (
	index => 'SET enable_seqscan = off;',
	seqscan => 'SET enable_indexscan = off; SET enable_bitmapscan = off;',);
my %qt;
for my $round (0 .. $repeat - 1)
{
	for my $how (rotate($round, qw(index seqscan)))
	{
		push @{ $qt{$how} }, timed($queue_setup{$how}, $queue, 1);
	}
}
my $queue_speedup = median(map { $qt{seqscan}[$_] / $qt{index}[$_] } 0 .. $repeat - 1);
print "5. Moderation queue: $held held of $rows payouts, ordered by resolution and age; median ms\n";
printf "   partial index %.2f, sequential scan %.2f: the index is %.0f x faster (planner picks the index unforced: %s)\n\n",
  median(@{ $qt{index} }), median(@{ $qt{seqscan} }), $queue_speedup, $planner_uses_index;

print "6. Storage: bytes per row, freshly written (heap, then all indexes)\n";
printf "   payout row (5 columns, primary key)   %6.0f + %4.0f\n", $payout_heap / $rows, $payout_index / $rows;
printf "   history row (status change)           %6.0f + %4.0f\n", $hist_heap / $hist, $hist_index / $hist;
printf "   history indexes: primary key %.0f, (tbl, key, id) %.0f, BRIN on clock_time %.2f\n\n",
  map { ($hist_index_of{$_} // 0) / $hist } qw(pkey tbl_key_id_idx clock_time_idx);

# --------------------------------------------------------------------------
# 8 (run first of the large ones): the memory of one huge status UPDATE
# with history, against the same UPDATE of a bare table and of a table
# with a BEFORE and an AFTER ROW trigger that do nothing (the floor trigger
# and an empty PL/pgSQL one): PostgreSQL queues an event for every row an
# AFTER ROW trigger fires on until the statement ends, and keeps some
# memory for every row a BEFORE ROW UPDATE trigger returns, the part of the
# memory no pair of such triggers can avoid.  The backend's peak private
# memory, which the backend reads from /proc itself.
# --------------------------------------------------------------------------

my $memrows = $ENV{BENCH_MEMROWS} // ($smoke ? 10000 : 10000000);
my %peak;
psql(q{CREATE FUNCTION bench_nothing() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'});
for my $v (qw(bare queue history))
{
	psql(<<"SQL");
CREATE TABLE m_$v (\n$table_columns) WITH (autovacuum_enabled = off);
SET session_replication_role = replica;
INSERT INTO m_$v (id, amount) SELECT g, 1 FROM generate_series(1, $memrows) g;
RESET session_replication_role;
SQL
	psql("SELECT payout.attach('m_$v', indexes => false)") if $v eq 'history';
	psql("CREATE TRIGGER floor BEFORE UPDATE ON m_$v FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger(); "
		  . "CREATE TRIGGER nothing AFTER UPDATE ON m_$v FOR EACH ROW EXECUTE FUNCTION bench_nothing()")
	  if $v eq 'queue';
	# VmHWM counts the shared buffers the backend touched too; they stay
	# mapped, so RssShmem at the end takes them out again.
	my $kb = psql(<<"SQL");
UPDATE m_$v SET status = 'READY';
SELECT (regexp_match(s, 'VmHWM:\\s+(\\d+)'))[1]::bigint
	   - (regexp_match(s, 'RssShmem:\\s+(\\d+)'))[1]::bigint
	   - (regexp_match(s, 'RssFile:\\s+(\\d+)'))[1]::bigint
FROM pg_read_file('/proc/' || pg_backend_pid() || '/status', 0, 100000) AS s;
SQL
	$peak{$v} = $kb =~ /(\d+)\s*$/ ? $1 : 0;
	psql("DROP TABLE m_$v; TRUNCATE payout.history");
}
printf "8. Memory: UPDATE of %d rows, status CREATED -> READY; peak private memory of the backend\n", $memrows;
printf "   bare %.0f MB, BEFORE and AFTER ROW triggers doing nothing %.0f MB, with history %.0f MB (%.2f x the triggers')\n\n",
  $peak{bare} / 1024, $peak{queue} / 1024, $peak{history} / 1024,
  $peak{queue} ? $peak{history} / $peak{queue} : 0;

# --------------------------------------------------------------------------
# 10: bulk moves: one UPDATE that moves every row of a partitioned table to
# its other partition, for growing numbers of rows.  PostgreSQL carries a
# move out as a DELETE and an INSERT, and fires BEFORE UPDATE, BEFORE
# DELETE and BEFORE INSERT on each row, and AFTER DELETE and AFTER INSERT
# at the statement's end; payout judges each move as one update and records
# it once in the history, with the old key (the key includes the partition
# key).  Its time per row must not grow with the rows (the pairing of the
# halves was O(N^2) in 1.1), and its memory must be PostgreSQL's own: the
# same move with a BEFORE and an AFTER ROW trigger on the same events that
# do nothing (PL/pgSQL), and without any trigger.  The rows move back and
# forth, a round each way, so that no round reloads them.
# --------------------------------------------------------------------------

my @moves = split ' ', ($ENV{BENCH_MOVES} // ($smoke ? '1000 3000 10000' : '100000 300000 1000000'));
my @move_variants = qw(bare queue history);
my $move_columns = <<'SQL';
	id bigint NOT NULL,
	region text NOT NULL,
	amount numeric(12,2) NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (id, region)
SQL
my %move_describe = (
	bare => 'no trigger',
	queue => 'BEFORE and AFTER ROW triggers doing nothing',
	history => 'payout.enforce_transition() + history',);
psql(<<'SQL');
CREATE FUNCTION bench_pass() RETURNS trigger LANGUAGE plpgsql AS
'BEGIN IF TG_OP = ''DELETE'' THEN RETURN OLD; END IF; RETURN NEW; END';
SQL

# timed_peak($statement): milliseconds the statement took and the peak
# private memory of its session, in kB (as section 8 reads it).
sub timed_peak
{
	my ($stmt) = @_;
	my $out = psql(<<"SQL");
\\timing on
$stmt \\g /dev/null
\\timing off
SELECT (regexp_match(s, 'VmHWM:\\s+(\\d+)'))[1]::bigint
	   - (regexp_match(s, 'RssShmem:\\s+(\\d+)'))[1]::bigint
	   - (regexp_match(s, 'RssFile:\\s+(\\d+)'))[1]::bigint
FROM pg_read_file('/proc/' || pg_backend_pid() || '/status', 0, 100000) AS s;
SQL
	my ($ms) = $out =~ /^Time: ([0-9.]+) ms/m;
	my ($kb) = $out =~ /(\d+)\s*$/;
	die "no timing or memory in:\n$out" unless defined $ms && defined $kb;
	return ($ms, $kb);
}

my (%mv_ms, %mv_kb);    # {n}{variant}[round]
for my $n (@moves)
{
	for my $v (@move_variants)
	{
		my $sql = "CREATE TABLE v_$v (\n$move_columns) PARTITION BY LIST (region);\n"
		  . "CREATE TABLE v_${v}_a PARTITION OF v_$v FOR VALUES IN ('a') WITH (autovacuum_enabled = off);\n"
		  . "CREATE TABLE v_${v}_b PARTITION OF v_$v FOR VALUES IN ('b') WITH (autovacuum_enabled = off);\n";
		$sql .= "SET session_replication_role = replica;\n"
		  . "INSERT INTO v_$v (id, region, amount) SELECT g, 'a', 1 FROM generate_series(1, $n) g;\n"
		  . "RESET session_replication_role;\n"
		  . "VACUUM ANALYZE v_$v;\n";
		$sql .= "SELECT payout.attach('v_$v', indexes => false);\n" if $v eq 'history';
		$sql .= "CREATE TRIGGER pass BEFORE INSERT OR UPDATE OR DELETE ON v_$v FOR EACH ROW EXECUTE FUNCTION bench_pass();\n"
		  . "CREATE TRIGGER nothing AFTER INSERT OR UPDATE OR DELETE ON v_$v FOR EACH ROW EXECUTE FUNCTION bench_nothing();\n"
		  if $v eq 'queue';
		psql($sql);
	}
	for my $round (0 .. $repeat - 1)
	{
		my ($from, $to) = $round % 2 ? ('b', 'a') : ('a', 'b');
		for my $v (rotate($round, @move_variants))
		{
			psql('CHECKPOINT');
			my ($ms, $kb) = timed_peak("UPDATE v_$v SET region = '$to' WHERE region = '$from'");
			push @{ $mv_ms{$n}{$v} }, $ms;
			push @{ $mv_kb{$n}{$v} }, $kb;
		}
		for my $v (@move_variants)
		{
			my $moved = psql("SELECT count(*) FROM v_${v}_$to");
			die "v_$v: $moved of $n rows moved to partition $to\n" unless $moved == $n;
		}
		my $recorded = psql(q{SELECT count(*) FROM payout.history WHERE tbl = 'v_history'::regclass AND old_key IS NOT NULL});
		die "history recorded $recorded of $n moves\n" unless $recorded == $n;
		psql(join('', (map { "VACUUM v_$_;\n" } @move_variants), "TRUNCATE payout.history;\n"));
	}
	psql(join('', map { "DROP TABLE v_$_;\n" } @move_variants));
}

my (%mv_us, %mv_peak);
for my $n (@moves)
{
	for my $v (@move_variants)
	{
		$mv_us{$n}{$v} = median(map { $_ * 1000 / $n } @{ $mv_ms{$n}{$v} });
		$mv_peak{$n}{$v} = median(@{ $mv_kb{$n}{$v} });
	}
}
my %mv_growth = map { my $v = $_; ($v => $mv_us{ $moves[0] }{$v} > 0 ? $mv_us{ $moves[-1] }{$v} / $mv_us{ $moves[0] }{$v} : 0) }
  @move_variants;
printf "10. Bulk moves: one UPDATE moving n rows to the other partition (key (id, region)); median us per row and peak private memory (MB)\n";
printf "   %-46s" . (" %19s" x @moves) . " %16s\n", 'variant', (map { "n=$_" } @moves), 'us/row largest/smallest';
for my $v (@move_variants)
{
	printf "   %-46s" . (" %9.3f us %5.0f MB" x @moves) . " %16.2f\n", $move_describe{$v},
	  (map { ($mv_us{$_}{$v}, $mv_peak{$_}{$v} / 1024) } @moves), $mv_growth{$v};
}
print "\n";

# --------------------------------------------------------------------------
# 7: scale curves: what the extension's own functions cost as the table
# grows, with the default attach (history and indexes)
# --------------------------------------------------------------------------

# A table of $n payouts as years of traffic leave it: all final but the
# newest 2,000, which are READY (a tenth held), and a history row for each
# payout, written straight into payout.history rather than through the
# triggers, which would take hours at 10,000,000.
my %scale;
for my $n (@scales)
{
	my $ready = $n < 4000 ? int($n / 2) : 2000;
	psql(<<"SQL");
CREATE TABLE s_$n (\n$table_columns) WITH (autovacuum_enabled = off);
SET session_replication_role = replica;
INSERT INTO s_$n (id, amount, status, resolution, created_at)
SELECT g, 1,
	   CASE WHEN g > $n - $ready THEN 'READY' ELSE 'PROCESSED' END::payout.status,
	   CASE WHEN g > $n - $ready AND g % 10 = 0 THEN 'UNKNOWN'
			WHEN g <= $n - $ready THEN 'OK' END::payout.resolution,
	   now() - ($n - g) * interval '1 second'
FROM generate_series(1, $n) g;
RESET session_replication_role;
SELECT payout.attach('s_$n');
INSERT INTO payout.history (tbl, key, old_status, new_status, xact_time, clock_time,
							user_name, session_user_name, xid)
SELECT 's_$n', g::text, 'PROCESSING', 'PROCESSED', now(), now() - ($n - g) * interval '1 second',
	   current_user, current_user, pg_current_xact_id()
FROM generate_series(1, $n) g;
VACUUM ANALYZE s_$n;
VACUUM ANALYZE payout.history;
SQL
	my $mid = int($n / 2);
	# claim() and expire() run in a transaction that the session's end
	# rolls back, so that every measurement finds the same table.
	my %setup = ('claim(100)' => 'BEGIN;', 'expire()' => 'BEGIN;');
	my %q = (
		'claim(100)' => "SELECT count(*) FROM payout.claim('s_$n', 100)",
		'expire()' => "SELECT payout.expire('s_$n', '100 years')",
		'moderation queue' =>
		  "SELECT id FROM s_$n WHERE payout.requires_moderation(status, resolution) ORDER BY resolution, created_at LIMIT 20",
		'timeline()' => "SELECT count(*) FROM payout.timeline('s_$n', '$mid')",
		'transition_counts(10 min)' =>
		  "SELECT count(*) FROM payout.transition_counts('s_$n', now() - interval '10 minutes')",);
	for my $round (0 .. $repeat - 1)
	{
		for my $name (rotate($round, sort keys %q))
		{
			push @{ $scale{$name}{$n} }, timed($setup{$name} // '', $q{$name}, 1);
		}
	}
	psql("DROP TABLE s_$n; DELETE FROM payout.history WHERE tbl IS NULL OR tbl::text = 's_$n'");
}
print "7. Scale: median ms of each function on tables of n payouts (n history rows), default attach\n";
printf "   %-28s" . (" %12s" x @scales) . " %14s\n", 'function', (map { "n=$_" } @scales), 'largest/smallest';
my %scale_ratio;
for my $name (sort keys %scale)
{
	my @m = map { median(@{ $scale{$name}{$_} }) } @scales;
	$scale_ratio{$name} = $m[0] > 0 ? $m[-1] / $m[0] : 0;
	printf "   %-28s" . (" %12.2f" x @m) . " %14.2f\n", $name, @m, $scale_ratio{$name};
}
print "\n";

# --------------------------------------------------------------------------
# 9: the ledger, which prints its own targets (test/bench/ledger.pl)
# --------------------------------------------------------------------------

system('perl', dirname(__FILE__) . '/ledger.pl') == 0
  or die "test/bench/ledger.pl failed\n";
print "\n";

# --------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------

sub verdict
{
	my ($ok, $text) = @_;
	printf "%s %s\n", ($ok ? 'PASS' : 'MISS'), $text;
}

print "Targets", ($smoke ? ' (smoke run: not meaningful)' : ''), ":\n";
printf "     a %d-row UPDATE with history peaks at %.0f MB of private memory, the bare UPDATE at %.0f MB:\n"
  . "     %.0f bytes per row; payout's own buffer holds 8,192 rows at most\n",
  $memrows, $peak{history} / 1024, $peak{bare} / 1024,
  $memrows ? ($peak{history} - $peak{bare}) * 1024 / $memrows : 0;
verdict($peak{queue} > 0 && $peak{history} <= 1.1 * $peak{queue},
	sprintf('history peaks within 1.1 x a BEFORE and an AFTER ROW trigger that do nothing (%.0f MB against %.0f MB): payout keeps no memory per row of its own',
		$peak{history} / 1024, $peak{queue} / 1024));
verdict($hist_us <= $insert_select_us,
	sprintf('history %.2f us per row <= one INSERT ... SELECT of the same rows, %.2f us per row', $hist_us, $insert_select_us));
verdict($ovh{history} > 0 && $ovh{plaudit} / $ovh{history} >= 2,
	sprintf('enforcement + history >= 2 x cheaper per row than the PL/pgSQL pair (%.2f us against %.2f us: %.2f x)',
		$ovh{history}, $ovh{plaudit}, $ovh{history} > 0 ? $ovh{plaudit} / $ovh{history} : 0));
printf "     bound: without history's (tbl, key, id) index, %.2f us against %.2f us: %.2f x\n",
  $nokey_ovh{history}, $nokey_ovh{plaudit}, $nokey_ovh{history} > 0 ? $nokey_ovh{plaudit} / $nokey_ovh{history} : 0;
for my $c (@clients)
{
	verdict($pgb_audit_ratio{$c} >= 0.9,
		sprintf('single-row transactions with history >= 0.9 x the UPDATE + audit INSERT transaction at %d clients (%.3f x)',
			$c, $pgb_audit_ratio{$c}));
}
for my $name (sort keys %scale_ratio)
{
	verdict($scale_ratio{$name} <= 2,
		sprintf('%s at n=%d within 2 x n=%d (%.2f x)', $name, $scales[-1], $scales[0], $scale_ratio{$name}));
}
my ($nm, $n0) = ($moves[-1], $moves[0]);
printf "     a %d-row move with history: %.2f us per row, %.2f over the move without triggers; "
  . "%.0f bytes per row over it in memory, the triggers doing nothing %.0f\n",
  $nm, $mv_us{$nm}{history}, $mv_us{$nm}{history} - $mv_us{$nm}{bare},
  ($mv_peak{$nm}{history} - $mv_peak{$nm}{bare}) * 1024 / $nm, ($mv_peak{$nm}{queue} - $mv_peak{$nm}{bare}) * 1024 / $nm;
verdict($mv_growth{history} <= 1.25,
	sprintf('bulk moves with history linear: us per row at n=%d within 1.25 x n=%d (%.2f x; without triggers %.2f x)',
		$nm, $n0, $mv_growth{history}, $mv_growth{bare}));
verdict($mv_peak{$nm}{queue} > 0 && $mv_peak{$nm}{history} <= 1.1 * $mv_peak{$nm}{queue},
	sprintf('a %d-row move with history peaks within 1.1 x BEFORE and AFTER ROW triggers that do nothing (%.0f MB against %.0f MB): no memory per row of payout\'s own',
		$nm, $mv_peak{$nm}{history} / 1024, $mv_peak{$nm}{queue} / 1024));
printf "     the indexes attach() makes cost status updates %.3f x enforcement alone (%.4f us per row update)\n",
  ratio_to('status', 'payout_idx', 'payout'), $ovh{payout_idx} - $ovh{payout};
verdict($ovh{payout} <= 1.10 * $ovh{floor},
	sprintf('enforcement per-row overhead %.4f us <= 1.10 x the floor\'s %.4f us (%.2f x)',
		$ovh{payout}, $ovh{floor}, $ovh{floor} > 0 ? $ovh{payout} / $ovh{floor} : 0));
verdict($ovh{payout} > 0 ? $ovh{plpgsql} / $ovh{payout} >= 3 : 1,
	sprintf('enforcement is >= 3 x cheaper per row than the PL/pgSQL anchor (%.4f us against %.4f us: %.1f x)',
		$ovh{payout}, $ovh{plpgsql}, $ovh{payout} > 0 ? $ovh{plpgsql} / $ovh{payout} : 0));
my $amount_ratio = ratio_to('amount', 'payout', 'bare');
verdict($amount_ratio <= 1.10,
	sprintf('non-status updates with enforcement within 1.10 x bare (%.3f x)', $amount_ratio));
printf "     bound: the floor trigger alone is %.3f x bare; restricted by WHEN %.3f x, by UPDATE OF %.3f x\n",
  map { ratio_to('amount', $_, 'bare') } qw(floor payout_when payout_of);
for my $c (@clients)
{
	verdict($pgb_ratio{$c} >= 0.95,
		sprintf('pgbench with enforcement >= 0.95 x bare tps at %d clients (%.3f x; the floor trigger alone %.3f x)',
			$c, $pgb_ratio{$c}, $pgb_floor_ratio{$c}));
}
for my $q (sort keys %cls)
{
	verdict($cls_ratio{$q} <= 1.2,
		sprintf('%s within 1.2 x the = ANY form (%.3f x)', $q, $cls_ratio{$q}));
}
