# 007_pg_cron.pl: payout.expire() scheduled with pg_cron.
#
# doc/workflow.md suggests expiring stale payouts from a pg_cron job.  A job runs
# as the role that scheduled it, in a session of its own, so this checks
# what such a session does:
#   - the job, scheduled by a role that may update the payouts table, expires
#     the stale CREATED, READY and PENDING payouts and nothing else: a held
#     payout, a final one and a new one are not written at all;
#   - each expiry is recorded in payout.history with the job's role as
#     user_name and session_user_name;
#   - the same command scheduled by a role without rights on the table fails
#     with "permission denied", and cron.job_run_details says so;
#   - scheduled by a role with the rights but without LOGIN (like doc/workflow.md's
#     app), it fails too: on PostgreSQL 15 a background worker cannot connect
#     as that role;
#   - the trigger enforces the graph in a job as anywhere else: a job that
#     moves a final payout back fails with the payout error, and changes
#     nothing.
#
# pg_cron 1.4 (Debian's postgresql-15-cron) runs jobs at most once a
# minute; schedules in seconds came with 1.5.  All four jobs are scheduled
# every minute and run together at the next full minute, so the test takes
# up to a minute and a bit.
#
# cron.use_background_workers = on: each run is a background worker
# connected as the job's role, so pg_cron needs no libpq connection, no
# cron.host and no password.  A background worker reports "succeeded" when
# its statement completes, before its transaction commits; the test waits
# until the worker has exited before it looks at the data.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
});
$node->start;

# as($role, $sql): $sql run in a session that logs in as $role.
sub as
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', $role ]);
}

#
# The table and its payouts, two days old unless said otherwise:
#   1 CREATED, 2 READY, 3 PENDING: stale, they expire;
#   4 PENDING, held (CONNECTION_TIMEOUT_ERROR): a moderator decides;
#   5 PROCESS_FAILED (DECLINED_ERROR): final;
#   6 CREATED, new.
# expirer may read and update payouts; intruder has no rights on it;
# nologin has the rights of expirer but cannot log in.
#
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION payout;
	CREATE ROLE expirer LOGIN;
	CREATE ROLE intruder LOGIN;
	CREATE ROLE nologin NOLOGIN;
	GRANT USAGE ON SCHEMA cron TO expirer, intruder, nologin;

	CREATE TABLE payouts (
		id bigint PRIMARY KEY,
		amount numeric NOT NULL,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution,
		created_at timestamptz NOT NULL DEFAULT now()
	);
	GRANT SELECT, UPDATE ON payouts TO expirer, nologin;
	SELECT payout.attach('payouts', history => true);

	INSERT INTO payouts (id, amount, created_at)
	SELECT g, 10 * g, now() - interval '2 days' FROM generate_series(1, 5) AS g;
	INSERT INTO payouts (id, amount) VALUES (6, 60);
	UPDATE payouts SET status = 'READY' WHERE id IN (2, 3, 4, 5);
	UPDATE payouts SET status = 'INVOKING' WHERE id IN (3, 4, 5);
	UPDATE payouts SET status = 'PROCESSING' WHERE id IN (3, 4, 5);
	UPDATE payouts SET status = 'PENDING' WHERE id = 3;
	UPDATE payouts SET status = 'PENDING', resolution = 'CONNECTION_TIMEOUT_ERROR' WHERE id = 4;
	UPDATE payouts SET status = 'PROCESS_FAILED', resolution = 'DECLINED_ERROR' WHERE id = 5;
});

is( $node->safe_psql(
		'postgres', q{
		SELECT id, status, resolution, payout.requires_moderation(status, resolution),
			   created_at < now() - interval '1 day'
		FROM payouts ORDER BY id}),
	"1|CREATED||f|t\n"
	  . "2|READY||f|t\n"
	  . "3|PENDING||f|t\n"
	  . "4|PENDING|CONNECTION_TIMEOUT_ERROR|t|t\n"
	  . "5|PROCESS_FAILED|DECLINED_ERROR|f|t\n"
	  . "6|CREATED||f|f",
	'before: three stale payouts to expire, a stale held one, a stale final one, a new one');

# The payouts that must not be written, with xmin: any UPDATE, even one
# that changes nothing, would give them a new one.
my $untouched_query = q{
	SELECT id, status, resolution, amount, created_at, xmin
	FROM payouts WHERE id IN (4, 5, 6) ORDER BY id};
my $untouched_before = $node->safe_psql('postgres', $untouched_query);
my $history_query = q{
	SELECT id, key, old_status, new_status, old_resolution, new_resolution,
		   xact_time, clock_time, user_name, session_user_name, application_name, xid
	FROM payout.history WHERE id <= %s ORDER BY id};
my $last_history = $node->safe_psql('postgres', 'SELECT max(id) FROM payout.history');
my $history_before = $node->safe_psql('postgres', sprintf($history_query, $last_history));

#
# The jobs, each scheduled by the role it runs as.
#
my $expire_command = q{CALL payout.expire_backlog('public.payouts', '1 day')};
my $expire_job = as('expirer',
	qq{SELECT cron.schedule('payout-expire', '* * * * *', \$\$$expire_command\$\$)});
my $illegal_job = as('expirer',
	q{SELECT cron.schedule('payout-illegal', '* * * * *',
		$$UPDATE payouts SET status = 'PROCESSING' WHERE id = 5$$)});
my $intruder_job = as('intruder',
	qq{SELECT cron.schedule('payout-expire', '* * * * *', \$\$$expire_command\$\$)});
my $nologin_job = $node->safe_psql('postgres',
	qq{SET ROLE nologin;
	SELECT cron.schedule('payout-expire', '* * * * *', \$\$$expire_command\$\$)});

is( $node->safe_psql(
		'postgres', qq{
		SELECT jobid = $expire_job, jobid = $illegal_job, jobid = $intruder_job,
			   jobid = $nologin_job, jobname, username, command
		FROM cron.job ORDER BY jobid}),
	"t|f|f|f|payout-expire|expirer|$expire_command\n"
	  . "f|t|f|f|payout-illegal|expirer|UPDATE payouts SET status = 'PROCESSING' WHERE id = 5\n"
	  . "f|f|t|f|payout-expire|intruder|$expire_command\n"
	  . "f|f|f|t|payout-expire|nologin|$expire_command",
	'cron.job: each job belongs to the role that scheduled it');

# No run has begun that has not ended, and the worker of every run has
# exited (so its transaction is over).
my $quiet_query = q{
	SELECT NOT EXISTS (SELECT FROM cron.job_run_details
					   WHERE status NOT IN ('succeeded', 'failed'))
	   AND NOT EXISTS (SELECT FROM cron.job_run_details d
					   JOIN pg_stat_activity a ON a.pid = d.job_pid)};

my $start = time();
ok( $node->poll_query_until(
		'postgres', qq{
		SELECT count(DISTINCT jobid) = 4 AND ($quiet_query)
		FROM cron.job_run_details
		WHERE jobid IN ($expire_job, $illegal_job, $intruder_job, $nologin_job)}),
	'every job has run');
note 'waited ', time() - $start, ' s for the jobs to run';

# The jobs go before anything else is looked at (a superuser could
# unschedule them all by id; each role unschedules its own by name here).  Should one have started
# again at the next minute meanwhile, it has nothing left to do: it
# changes no payout.
as('expirer',
	q{SELECT cron.unschedule('payout-expire'); SELECT cron.unschedule('payout-illegal')});
as('intruder', q{SELECT cron.unschedule('payout-expire')});
$node->safe_psql('postgres',
	q{SET ROLE nologin; SELECT cron.unschedule('payout-expire')});
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'),
	'0', 'unscheduled: cron.job is empty');
ok($node->poll_query_until('postgres', $quiet_query),
	'no run is left in progress');

# The first run of a job: "status|return_message".
sub first_run
{
	my ($jobid) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT status || '|' || return_message FROM cron.job_run_details
		WHERE jobid = $jobid ORDER BY runid LIMIT 1});
}

#
# The expiry.
#
is(first_run($expire_job), 'succeeded|CALL',
	'cron.job_run_details: the expiry job succeeded');
is( $node->safe_psql(
		'postgres', q{SELECT id, status, resolution FROM payouts ORDER BY id}),
	"1|EXPIRED|\n"
	  . "2|EXPIRED|\n"
	  . "3|EXPIRED|\n"
	  . "4|PENDING|CONNECTION_TIMEOUT_ERROR\n"
	  . "5|PROCESS_FAILED|DECLINED_ERROR\n"
	  . "6|CREATED|",
	'the stale CREATED, READY and PENDING payouts are EXPIRED, the others kept their status');
is($node->safe_psql('postgres', $untouched_query),
	$untouched_before,
	'the held, the final and the new payout were not written at all');
is( $node->safe_psql(
		'postgres', qq{
		SELECT key, old_status, new_status, old_resolution, new_resolution,
			   user_name, session_user_name
		FROM payout.history WHERE id > $last_history ORDER BY id}),
	"1|CREATED|EXPIRED|||expirer|expirer\n"
	  . "2|READY|EXPIRED|||expirer|expirer\n"
	  . "3|PENDING|EXPIRED|||expirer|expirer",
	'history: one row for each expired payout, made by the job\'s role, and no other new row');
is($node->safe_psql('postgres', sprintf($history_query, $last_history)),
	$history_before, 'history: the earlier rows are unchanged');

#
# The failures.
#
like(
	first_run($intruder_job),
	qr/^failed\|ERROR: permission denied for table payouts\n/,
	'cron.job_run_details: the same job of a role without rights on payouts failed: permission denied');
like(
	first_run($nologin_job),
	qr/^failed\|FATAL: role "nologin" is not permitted to log in/,
	'cron.job_run_details: the same job of a role with the rights but without LOGIN failed: it cannot log in');
like(
	first_run($illegal_job),
	qr/^failed\|ERROR: illegal payout status transition from "PROCESS_FAILED" to "PROCESSING"\n/,
	'cron.job_run_details: a job moving a final payout back failed with the payout error');

$node->stop;

done_testing();
