# 012_history_writes.pl: how history rows are written, where only a
# server configured for it shows it.
#
# - History rows are written as COPY writes them, without an SQL statement:
#   pg_stat_statements (track = top, loaded before payout) counts the
#   application's statements and nothing of payout's, also for a history
#   partition with a trigger, which 1.1 wrote through an INSERT that was
#   counted as a top-level statement of its own.
# - Two-phase commit: rows are written in the statement that recorded them,
#   so PREPARE TRANSACTION finds nothing to write, and a history
#   partition's trigger fires in the statement, before the transaction is
#   prepared.
# - Preloaded (shared_preload_libraries), the library's hooks see every
#   statement from the start: a COPY's rows are written when it ends.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('writes');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_stat_statements, payout'
pg_stat_statements.track = top
max_prepared_transactions = 5
});
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION payout;
	CREATE EXTENSION pg_stat_statements;
	CREATE TABLE payouts (id int PRIMARY KEY, status payout.status NOT NULL DEFAULT 'CREATED');
	SELECT payout.attach('payouts');
	-- A partition of the DBA's for everything from now on, with a trigger
	-- that counts its rows.
	CREATE TABLE public.seen (n int);
	INSERT INTO public.seen VALUES (0);
	CREATE TABLE payout.history_now (LIKE payout.history_catchall INCLUDING DEFAULTS INCLUDING INDEXES);
	CREATE FUNCTION public.count_row() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN UPDATE public.seen SET n = n + 1; RETURN NEW; END$$;
	CREATE TRIGGER counted BEFORE INSERT ON payout.history_now
		FOR EACH ROW EXECUTE FUNCTION public.count_row();
});
my $boundary = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->safe_psql('postgres',
	"ALTER TABLE payout.history ATTACH PARTITION payout.history_now FOR VALUES FROM ('$boundary') TO (MAXVALUE)");

# pg_stat_statements: the application's statements only.
$node->safe_psql('postgres', 'SELECT pg_stat_statements_reset()');
$node->safe_psql(
	'postgres', q{
	INSERT INTO payouts (id) SELECT g FROM generate_series(1, 5) g;
	UPDATE payouts SET status = 'READY';
});
is($node->safe_psql('postgres', 'SELECT n FROM public.seen'),
	'10', 'the partition\'s trigger saw each history row');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_stat_statements
		WHERE query ~* 'payout\.history' OR query ~* 'unnest'}),
	'0', 'pg_stat_statements counts no statement of payout\'s');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_stat_statements
		WHERE query ~* '^(INSERT INTO|UPDATE) payouts'}),
	'2', 'and counts the application\'s two statements');

# Two-phase commit.
$node->safe_psql(
	'postgres', q{
	BEGIN;
	UPDATE payouts SET status = 'INVOKING' WHERE id <= 2;
	PREPARE TRANSACTION 'writes';
});
is($node->safe_psql('postgres', 'SELECT n FROM public.seen'),
	'10', 'nothing of the prepared transaction is visible before it commits');
$node->safe_psql('postgres', q{COMMIT PREPARED 'writes'});
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM payout.history
		WHERE old_status = 'READY' AND new_status = 'INVOKING'}),
	'2', 'the prepared transaction\'s history is there after COMMIT PREPARED');
is($node->safe_psql('postgres', 'SELECT n FROM public.seen'),
	'12', 'and the partition\'s trigger ran for it, in the statement');

# A prepared transaction whose history partition refuses a row fails at
# the statement, before PREPARE: nothing is prepared.
$node->safe_psql('postgres',
	q{ALTER TABLE payout.history_now ADD CONSTRAINT no_expiry CHECK (new_status IS DISTINCT FROM 'EXPIRED')});
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{
	BEGIN;
	UPDATE payouts SET status = 'EXPIRED' WHERE id = 3;
	PREPARE TRANSACTION 'refused';
});
like($stderr, qr/violates check constraint "no_expiry"/,
	'a row the partition refuses fails the statement');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	'0', 'and no transaction is prepared');
is($node->safe_psql('postgres', 'SELECT status FROM payouts WHERE id = 3'),
	'READY', 'and the payout is unchanged');

# COPY, preloaded: written when it ends, seen by the next statement of the
# transaction.
is( $node->safe_psql(
		'postgres', q{
	BEGIN;
	COPY payouts (id) FROM PROGRAM 'printf "10\n11\n"';
	SELECT count(*) FROM payout.history WHERE key IN ('10', '11');
	COMMIT;
}), '2', 'a COPY\'s rows are in history for the next statement');

$node->stop;
done_testing();
