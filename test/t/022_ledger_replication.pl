# 022_ledger_replication.pl: the ledger on a streaming standby and on a
# logical replication subscriber.
#
# A streaming standby receives the blocks with the WAL: its history
# verifies against the primary's digest, and seal() refuses to run there.
#
# The publisher seals its history; payout.history (through the
# partitioned table) and payout.ledger are published together, inserts
# only, and payout.ledger_tables, inserts and updates (seal() records there
# the number it gives a table, and later the name its rows were last
# sealed under), in a second publication of the same subscription, so that
# a block and the table numbers it uses reach the subscriber in one
# transaction, after the rows it seals.  The subscriber's copy then
# verifies against the publisher's digests, before and after more is
# written and sealed on the publisher: it proves that the subscriber holds,
# row for row, what the publisher sealed.  A table renamed on both sides is
# reported as renamed until the publisher seals its rows under the new
# name, which reaches the subscriber.  A row changed on the subscriber is
# found there.  The subscriber cannot seal: its sequence never gave out the
# ids it holds, and seal() says so.

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
$sub->start;

# findings($node, $digests): "block|id|finding" lines of payout.verify().
sub findings
{
	my ($node, $digests) = @_;
	my $arg = defined $digests ? "'$digests'::jsonb" : 'NULL';
	return $node->safe_psql('postgres',
		"SELECT format('%s|%s|%s', block, id, finding) FROM payout.verify($arg)");
}

my $setup = q{
	CREATE EXTENSION payout;
	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
	);
	SELECT payout.attach('payouts');
};
$pub->safe_psql('postgres', $setup);
$sub->safe_psql('postgres', $setup);

$pub->safe_psql(
	'postgres', q{
	INSERT INTO payouts (id) SELECT g FROM generate_series(1, 20) AS g;
	UPDATE payouts SET status = 'READY' WHERE id <= 10;
	SELECT payout.seal();
	CREATE PUBLICATION payouts_pub FOR TABLE payouts;
	CREATE PUBLICATION history_pub FOR TABLE payout.history, payout.ledger
		WITH (publish = 'insert', publish_via_partition_root = true);
	CREATE PUBLICATION ledger_tables_pub FOR TABLE payout.ledger_tables
		WITH (publish = 'insert, update');
});
my $d1 = $pub->safe_psql('postgres', 'SELECT row_to_json(d) FROM payout.digest() d');

my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql(
	'postgres', qq{
	CREATE SUBSCRIPTION payouts_sub CONNECTION '$connstr' PUBLICATION payouts_pub;
	CREATE SUBSCRIPTION history_sub CONNECTION '$connstr'
		PUBLICATION history_pub, ledger_tables_pub;
});
$sub->wait_for_subscription_sync($pub, 'history_sub');
$sub->wait_for_subscription_sync($pub, 'payouts_sub');

is(findings($sub, $d1), '1|30|intact',
	'after the initial copy, the subscriber\'s history verifies against the publisher\'s digest');

# More written and sealed on the publisher, sealed in two blocks.
$pub->safe_psql(
	'postgres', q{
	UPDATE payouts SET status = 'INVOKING' WHERE id <= 5;
	SELECT payout.seal();
	UPDATE payouts SET status = 'READY' WHERE id > 10;
	SELECT payout.seal();
	UPDATE payouts SET status = 'TERMINATED' WHERE id > 15;
});
my $d3 = $pub->safe_psql('postgres', 'SELECT row_to_json(d) FROM payout.digest() d');
$pub->wait_for_catchup('history_sub');
is( $sub->safe_psql(
		'postgres', q{SELECT (SELECT count(*) FROM payout.history), (SELECT max(block) FROM payout.ledger)}),
	'50|3', 'the subscriber has the publisher\'s rows and blocks');
is( $sub->safe_psql(
		'postgres', q{SELECT format('%s|%s|%s.%s', number, tbl, schema_name, table_name) FROM payout.ledger_tables}),
	'1|payouts|public.payouts', '... and the number of the table they name');
is(findings($sub, "[$d1, $d3]"), "3|46|rows unsealed\n3|45|intact",
	'the subscriber verifies against both digests; the rows the publisher has not sealed are not sealed there either');
is(findings($pub, "[$d1, $d3]"), "3|46|rows unsealed\n3|45|intact",
	'... as on the publisher');

# The subscriber does not seal.
my ($ret, $stdout, $stderr) = $sub->psql('postgres', 'SELECT payout.seal()');
like($stderr,
	qr/ERROR:  payout\.ledger has sealed ids beyond the last one its sequence gave out$/m,
	'seal() on the subscriber refuses: its sequence gave out none of the ids');
like($stderr,
	qr/^DETAIL:  The ledger has sealed ids up to 45; the sequence of payout\.history's ids gave out ids up to 0\. /m,
	'... and says how far each went');

# The table renamed, on the subscriber first (the publisher's changes name
# it), then on the publisher: the subscriber reports the rename until the
# publisher seals its rows under the new name, which reaches the
# subscriber's payout.ledger_tables with the block.
$sub->safe_psql('postgres', 'ALTER TABLE payouts RENAME TO payouts_renamed');
$pub->safe_psql('postgres', 'ALTER TABLE payouts RENAME TO payouts_renamed');
my $found = findings($sub, $d3);
like($found, qr/^3\|\|table renamed$/m,
	'a table renamed on both sides is reported as renamed on the subscriber');
like($found, qr/^3\|45\|intact$/m, '... and is not a difference');
$pub->safe_psql(
	'postgres', q{
	UPDATE payouts_renamed SET status = 'INVOKING' WHERE id = 6;
	SELECT payout.seal();
});
my $d4 = $pub->safe_psql('postgres', 'SELECT row_to_json(d) FROM payout.digest() d');
$pub->wait_for_catchup('history_sub');
is( $sub->safe_psql(
		'postgres', q{SELECT format('%s|%s|%s.%s', number, tbl, schema_name, table_name) FROM payout.ledger_tables}),
	'1|payouts_renamed|public.payouts_renamed',
	'the name the publisher sealed the rows under reaches the subscriber');
is(findings($sub, "[$d1, $d3, $d4]"), '4|51|intact',
	'the subscriber verifies against the three digests, renamed table included');
is(findings($pub, "[$d1, $d3, $d4]"), '4|51|intact', '... as the publisher does');

# A row changed on the subscriber is found there.
$sub->safe_psql('postgres',
	q{UPDATE payout.history SET new_status = 'PROCESSED' WHERE id = 33});
like(findings($sub, $d4), qr/^2\|33\|row changed\n.*\|tampered$/ms,
	'a row changed on the subscriber is found');

# A streaming standby of the publisher.
$pub->backup('standby_backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($pub, 'standby_backup', has_streaming => 1);
$standby->start;
$pub->wait_for_catchup($standby);
is(findings($standby, $d4), '4|51|intact',
	'a streaming standby\'s history verifies against the primary\'s digest');
($ret, $stdout, $stderr) = $standby->psql('postgres',
	"\\set VERBOSITY sqlstate\nSELECT payout.seal()");
like($stderr, qr/ERROR:\s+25006/, 'seal() refuses to run on a standby');

$standby->stop;
$sub->stop;
$pub->stop;
done_testing();
