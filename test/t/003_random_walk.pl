# 003_random_walk.pl: a seeded random walk of inserts, updates and graph
# edits, each checked against a reference model of the documented rules.
#
# The model below is written from the rules as doc/workflow.md states them, not
# from the C code: the statuses and which are final, the resolution groups,
# the default graph, and the workflow (hold, fatal, final, processed, graph,
# initial status, NULL status).  It predicts, for every operation, whether
# it is accepted, and if not, its SQLSTATE and constraint name.  At the end
# the whole table and every payout's history must equal what the model
# accepted.
#
# Two tables: walk_payouts, a plain table, and walk_parts, partitioned by
# region with the region in its key, where an update may also move the
# payout to the other partition.
#
# Operations: inserts in a random status with a random resolution
# (NULL included) and a random autoprocess (true, false or NULL), as the
# application role or a superuser; updates of the status, the resolution
# and/or autoprocess of a random payout as the application role, as a
# member of payout_moderator, as a member of payout_operator (who mostly
# takes manual payouts on from READY, or turns them automatic), or as a
# superuser; updates of another
# column; a fifth of those updates written as INSERT ... ON CONFLICT DO
# UPDATE of the existing payout, which is judged as the update it becomes
# whatever the proposed row holds; graph edits (a random legal edge added,
# a random edge removed, the defaults restored, an illegal edge tried),
# made either in the session that runs the payouts or in a second session,
# so that the trigger's cached graph is invalidated from both sides;
# deletes, judged by the delete rules and recorded; moves between the
# partitions of walk_parts; and updates, moves and deletes rolled back to a
# savepoint after they ran, each now and then followed by an insert of the
# key the rolled-back move would have made.  Deleted payouts are inserted
# again now and then.  The graph is restored to the defaults at the end.
#
# The walk is reproducible: the operations depend only on the seed, never
# on what the server answers.  Environment:
#   PAYOUT_WALK_SEED  seed of the walk (default 20261124)
#   PAYOUT_WALK_OPS   number of operations (default 100000, about 20 seconds)
# A longer run, of 1000000 operations unless PAYOUT_WALK_OPS says otherwise,
# as root or with sudo: test/walk.
# A divergence prints the operation as SQL, what the model expected and
# what the server answered; rerun with the same seed to reproduce it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $seed = $ENV{PAYOUT_WALK_SEED} // 20261124;
my $nops = $ENV{PAYOUT_WALK_OPS} // 100000;
die "PAYOUT_WALK_SEED must be an integer\n" unless $seed =~ /^\d+$/;
die "PAYOUT_WALK_OPS must be a positive integer\n" unless $nops =~ /^[1-9]\d*$/;

#
# The rules, as documented.
#

# payout.status and payout.resolution, in enum order.
my @STATUSES = qw(
  CREATE_FAILED CREATED READY TERMINATED EXPIRED INVOKING INVOKE_FAILED
  PROCESSING PENDING PROCESSED PARTIALLY_PROCESSED PROCESS_FAILED
  CANCELLING CANCELLED CANCEL_FAILED REVOKING REVOKED REVOKE_FAILED);
my %FINAL = map { $_ => 1 } qw(
  CREATE_FAILED TERMINATED EXPIRED INVOKE_FAILED PROCESS_FAILED
  CANCELLED CANCEL_FAILED REVOKED REVOKE_FAILED);
my %PROCESSED = map { $_ => 1 } qw(PROCESSED PARTIALLY_PROCESSED);

my @OK_GROUP = qw(OK);
my @ERROR_GROUP = qw(
  CONNECTION_ERROR PROVIDER_INTERNAL_ERROR CONNECTION_TIMEOUT_ERROR
  GENERAL_ERROR UNKNOWN);
my @FATAL_GROUP = qw(
  INVALID_DETAILS INVALID_REQUEST REQUEST_ERROR INVALID_AMOUNT
  INVALID_METHOD INVALID_CREDENTIALS FORBIDDEN_IP SIGNATURE_ERROR
  DUPLICATED_ID INSUFFICIENT_FUNDS ANTIFRAUD_ERROR DECLINED_ERROR
  RECIPIENT_NOT_FOUND INVALID_RECIPIENT LIMIT_VIOLATION INTERNAL_ERROR
  ACCESS_ERROR ACCESS_DENIED GENERAL_FATAL_ERROR OPERATION_EXPIRED
  PROCESSING_ERROR);
my @RESOLUTIONS = (@OK_GROUP, @ERROR_GROUP, @FATAL_GROUP);
my %GROUP = (
	(map { $_ => 'OK' } @OK_GROUP),
	(map { $_ => 'ERROR' } @ERROR_GROUP),
	(map { $_ => 'FATAL_ERROR' } @FATAL_GROUP));

# The default graph; "-" is a new payout (from_status NULL).
my %DEFAULT_NEXT = (
	'-' => [qw(CREATED CREATE_FAILED)],
	CREATED => [qw(READY TERMINATED EXPIRED)],
	READY => [qw(INVOKING TERMINATED EXPIRED)],
	INVOKING => [qw(PROCESSING PENDING INVOKE_FAILED)],
	PROCESSING =>
	  [qw(PENDING PROCESSED PARTIALLY_PROCESSED PROCESS_FAILED CANCELLING)],
	PENDING => [
		qw(PROCESSING PROCESSED PARTIALLY_PROCESSED PROCESS_FAILED
		  CANCELLING EXPIRED)
	],
	PROCESSED => [qw(REVOKING)],
	PARTIALLY_PROCESSED => [qw(REVOKING)],
	CANCELLING => [qw(CANCELLED CANCEL_FAILED)],
	REVOKING => [qw(REVOKED REVOKE_FAILED)]);
my %DEFAULT_GRAPH;
foreach my $from (keys %DEFAULT_NEXT)
{
	$DEFAULT_GRAPH{"$from>$_"} = 1 foreach @{ $DEFAULT_NEXT{$from} };
}

# In the model, NULL (no status, no resolution) is "-".
sub held
{
	my ($status, $resolution) = @_;
	return $resolution ne '-'
	  && $GROUP{$resolution} eq 'ERROR'
	  && !$FINAL{$status};
}

# judge_insert($graph, $status, $resolution): "ok", or "SQLSTATE constraint".
sub judge_insert
{
	my ($graph, $s, $r) = @_;

	return '23502 payout_status_not_null' if $s eq '-';
	return '23514 payout_initial_status' unless $graph->{"->$s"};
	return '23514 payout_fatal_resolution'
	  if $r ne '-' && $GROUP{$r} eq 'FATAL_ERROR' && !$FINAL{$s};
	return '23514 payout_processed_resolution'
	  if $PROCESSED{$s} && $r ne '-' && $r ne 'OK';
	return 'ok';
}

# A payout is automatic when its autoprocess is true; false and NULL ("-")
# are manual.
sub automatic { return $_[0] eq 't'; }

# judge_update($graph, $moderator, $operator, $old_status, $old_resolution,
# $new_status, $new_resolution, $old_autoprocess, $new_autoprocess): "ok",
# or "SQLSTATE constraint".  When several rules are broken, the first in
# this order is reported: NULL status, hold, manual processing, graph,
# final resolution, fatal resolution, processed.
sub judge_update
{
	my ($graph, $moderator, $operator, $os, $or, $ns, $nr, $oa, $na) = @_;
	my $auto_on = !automatic($oa) && automatic($na);

	# (f) neither status nor resolution changes, and autoprocess is not
	# turned on: always allowed
	return 'ok' if $os eq $ns && $or eq $nr && !$auto_on;
	# (g) a payout always has a status
	return '23502 payout_status_not_null' if $ns eq '-';
	# (a) a held payout's status and resolution change only by a moderator
	return '42501 payout_moderation_hold'
	  if held($os, $or) && !$moderator && ($os ne $ns || $or ne $nr);
	# (h) only an operator turns autoprocess on, moves a manual payout on
	# from READY other than to a final status, or changes the status or
	# resolution of a manual payout past READY (but a moderator's decision
	# on a held one)
	if (!$operator)
	{
		return '42501 payout_autoprocess_on' if $auto_on;
		return '42501 payout_manual_processing'
		  if !automatic($oa) && $os eq 'READY' && $ns ne $os && !$FINAL{$ns};
		return '42501 payout_manual_processing'
		  if !automatic($oa) && past_ready($os) && !(held($os, $or) && $moderator);
	}
	# (e), (c) status changes follow the graph; nothing leaves a final status
	return '23514 payout_status_transition'
	  if $os ne $ns && ($FINAL{$os} || !$graph->{"$os>$ns"});
	# (c) a final payout keeps its resolution
	return '23514 payout_final_resolution' if $FINAL{$os} && $or ne $nr;
	# (b) a fatal resolution needs a final status in the same row
	return '23514 payout_fatal_resolution'
	  if $nr ne '-' && $GROUP{$nr} eq 'FATAL_ERROR' && !$FINAL{$ns};
	# (d) processed payouts have OK or no resolution, on the way in and after
	return '23514 payout_processed_resolution'
	  if $PROCESSED{$ns} && $nr ne '-' && $nr ne 'OK';
	return 'ok';
}

# Whether a payout in this status has left READY and is not final: a
# manual one is then in an operator's hands.
sub past_ready
{
	my ($s) = @_;
	return $s ne '-' && $s ne 'CREATED' && $s ne 'READY' && !$FINAL{$s};
}

# judge_delete($moderator, $operator, $status, $resolution, $autoprocess):
# "ok", or "SQLSTATE constraint".  Both tables are attached with the
# default: only final payouts may be deleted (so the operator's rule for
# unfinished manual payouts never decides here).
sub judge_delete
{
	my ($moderator, $operator, $s, $r, $a) = @_;

	return '42501 payout_moderation_hold' if held($s, $r) && !$moderator;
	return '23514 payout_delete_unfinished' if $s ne '-' && !$FINAL{$s};
	return '42501 payout_manual_processing'
	  if !$operator && !automatic($a) && $s ne '-' && !$FINAL{$s};
	return 'ok';
}

# The model's key of a payout, "table|key": the key as payout.history
# records it, of walk_payouts (id) or walk_parts ((id,region)).
sub mkey
{
	my ($tbl, $id, $region) = @_;
	return $tbl eq 'walk_payouts' ? "$tbl|$id" : "$tbl|($id,$region)";
}

# The constraint a duplicate key breaks.
sub pkey_of
{
	my ($tbl, $region) = @_;
	return $tbl eq 'walk_payouts' ? 'walk_payouts_pkey' : "walk_parts_${region}_pkey";
}

# judge_edge_insert($graph, $from, $to): the table's own constraints.
sub judge_edge_insert
{
	my ($graph, $from, $to) = @_;

	return '23514 transition_no_self_edge' if $from eq $to;
	return '23514 transition_not_from_final' if $FINAL{$from};
	return '23505 transition_key' if $graph->{"$from>$to"};
	return 'ok';
}

#
# The model's state and how an operation changes it.
#

sub new_state
{
	return {
		graph => {%DEFAULT_GRAPH},
		rows => {},    # id => [status, resolution]
		log => [],     # accepted changes, in order
	};
}

# proposed($op): the status, resolution and autoprocess of an upsert's
# proposed row.
sub proposed
{
	my ($op) = @_;
	return (
		$op->{set_s} ? $op->{s} : $op->{v_s},
		$op->{set_r} ? $op->{r} : $op->{v_r},
		$op->{set_a} ? $op->{a} : $op->{v_a});
}

# Who may do what: moderators and operators are members of their roles;
# superusers are both.
sub is_moderator { return $_[0] eq 'mod' || $_[0] eq 'super'; }
sub is_operator { return $_[0] eq 'op' || $_[0] eq 'super'; }

# predict($state, $op): what the model expects of $op.
sub predict
{
	my ($state, $op) = @_;
	my $k = $op->{kind};

	if ($k eq 'insert')
	{
		# the trigger fires before the key is checked; a row that would be
		# illegal as a new payout steps aside for an existing key, but a
		# NULL status is refused first
		return '23502 payout_status_not_null' if $op->{s} eq '-';
		return '23505 ' . pkey_of($op->{tbl}, $op->{region})
		  if $state->{rows}{ mkey(@$op{qw(tbl id region)}) };
		return judge_insert($state->{graph}, $op->{s}, $op->{r});
	}
	if ($k eq 'update' || $k eq 'other' || $k eq 'move')
	{
		my $row = $state->{rows}{ mkey(@$op{qw(tbl id region)}) };
		# an upsert of a payout that is gone inserts the proposed row
		return judge_insert($state->{graph}, (proposed($op))[ 0, 1 ])
		  if !$row && $op->{upsert};
		return 'norow' unless $row;
		return 'ok' if $k eq 'other';
		my ($os, $or, $oa) = @$row;
		my $verdict = judge_update(
			$state->{graph}, is_moderator($op->{who}), is_operator($op->{who}),
			$os, $or,
			$op->{set_s} ? $op->{s} : $os,
			$op->{set_r} ? $op->{r} : $or,
			$oa, $op->{set_a} ? $op->{a} : $oa);
		# the move's INSERT half then meets the key in the other partition
		return '23505 ' . pkey_of($op->{tbl}, $op->{to_region})
		  if $verdict eq 'ok' && $k eq 'move'
		  && $state->{rows}{ mkey($op->{tbl}, $op->{id}, $op->{to_region}) };
		return $verdict;
	}
	if ($k eq 'delete')
	{
		my $row = $state->{rows}{ mkey(@$op{qw(tbl id region)}) } or return 'norow';
		return judge_delete(is_moderator($op->{who}), is_operator($op->{who}),
			@$row[ 0, 1, 2 ]);
	}
	return judge_edge_insert($state->{graph}, $op->{from}, $op->{to})
	  if $k eq 'add_edge';
	return $state->{graph}{"$op->{from}>$op->{to}"} ? 'ok' : 'noedge'
	  if $k eq 'del_edge';
	return 'ok' if $k eq 'reset_graph';
	die "unknown operation $k";
}

# apply($state, $op, $user): carry out $op, which was accepted, as $user.
sub apply
{
	my ($state, $op, $user) = @_;
	my $k = $op->{kind};
	my $key = defined $op->{tbl} ? mkey(@$op{qw(tbl id region)}) : undef;

	# rolled back to a savepoint after it ran: nothing stays
	return if $op->{rollback};

	if ($k eq 'insert' || ($op->{upsert} && !$state->{rows}{$key}))
	{
		my ($s, $r, $a) = $k eq 'insert' ? ($op->{s}, $op->{r}, $op->{a}) : proposed($op);
		$state->{rows}{$key} = [ $s, $r, $a ];
		push @{ $state->{log} }, [ $key, '-', $s, '-', $r, $user, '-' ];
	}
	elsif ($k eq 'update' || $k eq 'move')
	{
		my $row = $state->{rows}{$key} or return;
		my ($os, $or) = @$row;
		my $ns = $op->{set_s} ? $op->{s} : $os;
		my $nr = $op->{set_r} ? $op->{r} : $or;
		my $old_key = '-';
		$row->[2] = $op->{a} if $op->{set_a};
		if ($k eq 'move')
		{
			# the region is part of the key: a move changes the key, which
			# history records even when status and resolution stay
			delete $state->{rows}{$key};
			($old_key) = $key =~ /\|(.*)$/;
			$key = mkey($op->{tbl}, $op->{id}, $op->{to_region});
			$state->{rows}{$key} = $row;
		}
		return if $os eq $ns && $or eq $nr && $old_key eq '-';
		@$row[ 0, 1 ] = ($ns, $nr);
		push @{ $state->{log} }, [ $key, $os, $ns, $or, $nr, $user, $old_key ];
	}
	elsif ($k eq 'delete')
	{
		my $row = delete $state->{rows}{$key} or return;
		push @{ $state->{log} }, [ $key, $row->[0], '-', $row->[1], '-', $user, '-' ];
	}
	elsif ($k eq 'add_edge')
	{
		$state->{graph}{"$op->{from}>$op->{to}"} = 1;
	}
	elsif ($k eq 'del_edge')
	{
		delete $state->{graph}{"$op->{from}>$op->{to}"};
	}
	elsif ($k eq 'reset_graph')
	{
		$state->{graph} = {%DEFAULT_GRAPH};
	}
	return;
}

#
# The walk: operations chosen from the seed and from the model's own
# predictions, never from the server's answers.
#

srand($seed);

sub pick { return $_[ int(rand(@_)) ]; }

sub chance { return rand() < $_[0]; }

# Next statuses of $from in $graph, in enum order.
sub next_of
{
	my ($graph, $from) = @_;
	return grep { $graph->{"$from>$_"} } @STATUSES;
}

sub random_autoprocess
{
	my $x = rand();
	return $x < 0.5 ? 't' : $x < 0.85 ? 'f' : '-';
}

sub random_resolution
{
	my $x = rand();
	return '-' if $x < 0.30;
	return 'OK' if $x < 0.50;
	return pick(@ERROR_GROUP) if $x < 0.75;
	return pick(@FATAL_GROUP);
}

my $gen = new_state();
my @ids;       # model keys of the payouts the generator expects to exist
my @active;    # of those, the ones that may not be final yet
my @deleted;   # model keys of deleted payouts, to insert again
my %where;     # model key => [table, id, region]
my $next_id = 1;
my $poison;    # the key a rolled-back move would have made
my @ops;

# A payout to update: mostly one that is not final yet; for moderators,
# preferably a held one; now and then any payout, final ones included.
# Deleted and moved payouts leave these lists lazily.
sub pick_payout
{
	my ($want_held) = @_;
	my $tries = $want_held ? 12 : 1;

	return $ids[ int(rand(@ids)) ] if !@active || chance(0.15);
	while (@active)
	{
		my $i = int(rand(@active));
		my $row = $gen->{rows}{ $active[$i] };
		if (!$row || $FINAL{ $row->[0] })
		{
			$active[$i] = $active[-1];
			pop @active;
			next;
		}
		return $active[$i] if !$want_held || held(@$row) || --$tries <= 0;
	}
	return $ids[ int(rand(@ids)) ];
}

# A new payout's key: a fresh one, the key a rolled-back move would have
# made, or a deleted payout's.
sub new_payout
{
	my ($tbl, $id, $region);
	if (defined $poison && chance(0.7))
	{
		($tbl, $id, $region) = @{ $where{$poison} };
	}
	elsif (@deleted && chance(0.1))
	{
		($tbl, $id, $region) = @{ $where{ splice(@deleted, int(rand(@deleted)), 1) } };
	}
	else
	{
		$tbl = chance(0.35) ? 'walk_parts' : 'walk_payouts';
		$id = $next_id++;
		$region = $tbl eq 'walk_parts' ? pick(qw(a b)) : undef;
	}
	undef $poison;
	my $key = mkey($tbl, $id, $region);
	$where{$key} = [ $tbl, $id, $region ];
	return (tbl => $tbl, id => $id, region => $region);
}

for my $seq (1 .. $nops)
{
	my %op = (seq => $seq);
	my $x = rand();
	if (!@ids || $x < 0.12)
	{
		%op = (
			%op,
			kind => 'insert',
			who => chance(0.85) ? 'app' : 'super',
			new_payout());
		my @start = next_of($gen->{graph}, '-');
		$op{s} =
			chance(0.03) ? '-'
		  : ($gen->{graph}{'->CREATED'} && chance(0.6)) ? 'CREATED'
		  : (@start && chance(0.6)) ? pick(@start)
		  : pick(@STATUSES);
		$op{r} = random_resolution();
		$op{a} = random_autoprocess();
	}
	elsif ($x < 0.82)
	{
		my $who =
			$x < 0.52 ? 'app'
		  : chance(0.6) ? 'mod'
		  : chance(0.7) ? 'op'
		  : 'super';
		my $key = pick_payout(is_moderator($who));
		my ($os, $or, $oa) = @{ $gen->{rows}{$key} // [ 'CREATED', '-', 't' ] };
		my @next = next_of($gen->{graph}, $os);
		my @final_next = grep { $FINAL{$_} } @next;
		my ($tbl, $id, $region) = @{ $where{$key} };
		%op = (%op, kind => 'update', who => $who, tbl => $tbl, id => $id,
			region => $region);

		if ($who eq 'op' && $os eq 'READY' && !automatic($oa) && chance(0.6))
		{
			# an operator processes a manual payout, or hands it over
			if (chance(0.7)) { @op{qw(set_s s)} = (1, 'INVOKING'); }
			else { @op{qw(set_a a)} = (1, 't'); }
		}
		elsif (is_moderator($who) && held($os, $or) && chance(0.5))
		{
			# a moderator's decision: release, or end with a fatal resolution
			if (chance(0.6))
			{
				@op{qw(set_r r)} = (1, chance(0.8) ? 'OK' : '-');
				@op{qw(set_s s)} = (1, pick(@next)) if @next && chance(0.3);
			}
			else
			{
				@op{qw(set_r r)} = (1, pick(@FATAL_GROUP));
				@op{qw(set_s s)} =
				  (1, @final_next ? pick(@final_next) : pick(@STATUSES));
			}
		}
		elsif ($PROCESSED{$os} && chance(0.3))
		{
			# a processed payout keeps an OK resolution, or none
			@op{qw(set_r r)} = (1, pick(@RESOLUTIONS, '-'));
		}
		elsif (!held($os, $or) && chance(0.45))
		{
			# the way forward, which takes payouts deep into the graph
			my @forward = grep { !$FINAL{$_} } @next;
			@op{qw(set_s s)} = (1, pick(@forward ? @forward : @next))
			  if @next;
			@op{qw(set_r r)} = (1, 'OK') if chance(0.3);
		}
		else
		{
			my $y = rand();
			if ($y < 0.30) { }
			elsif ($y < 0.35) { @op{qw(set_s s)} = (1, $os); }
			elsif ($y < 0.77 && @next) { @op{qw(set_s s)} = (1, pick(@next)); }
			elsif ($y < 0.96) { @op{qw(set_s s)} = (1, pick(@STATUSES)); }
			else { @op{qw(set_s s)} = (1, '-'); }

			my $z = rand();
			if ($z < 0.38) { }
			elsif ($z < 0.43) { @op{qw(set_r r)} = (1, $or); }
			elsif ($z < 0.62) { @op{qw(set_r r)} = (1, 'OK'); }
			elsif ($z < 0.67) { @op{qw(set_r r)} = (1, '-'); }
			elsif ($z < 0.82) { @op{qw(set_r r)} = (1, pick(@ERROR_GROUP)); }
			else
			{
				@op{qw(set_r r)} = (1, pick(@FATAL_GROUP));
				# fatal endings mostly come with a final status
				@op{qw(set_s s)} = (1, pick(@final_next))
				  if @final_next && chance(0.6);
			}
		}
		# now and then autoprocess changes too, whoever makes the change
		@op{qw(set_a a)} = (1, random_autoprocess()) if !$op{set_a} && chance(0.12);
		# an UPDATE that sets nothing we track changes another column
		$op{kind} = 'other' unless $op{set_s} || $op{set_r} || $op{set_a};
		# on walk_parts, a quarter move the payout to the other partition
		if ($tbl eq 'walk_parts' && chance(0.25))
		{
			$op{kind} = 'move';
			$op{to_region} = $region eq 'a' ? 'b' : 'a';
		}
	}
	elsif ($x < 0.88)
	{
		my ($tbl, $id, $region) = @{ $where{ pick_payout(0) } };
		%op = (
			%op,
			kind => 'other',
			who => pick(qw(app app mod op super)),
			tbl => $tbl, id => $id, region => $region);
	}
	elsif ($x < 0.92)
	{
		# deletes, mostly of payouts that are final or held
		my $who = pick(qw(app app mod super));
		my $key = pick_payout(is_moderator($who));
		if (chance(0.5))
		{
			my @recent = @ids > 50 ? @ids[ -50 .. -1 ] : @ids;
			my @final = grep { $gen->{rows}{$_} && $FINAL{ $gen->{rows}{$_}[0] } } @recent;
			$key = pick(@final) if @final;
		}
		my ($tbl, $id, $region) = @{ $where{$key} };
		%op = (%op, kind => 'delete', who => $who, tbl => $tbl, id => $id,
			region => $region);
	}
	else
	{
		# graph edits, by a superuser, in this session or in the other one
		%op = (%op, who => 'super', session => chance(0.3) ? 'A' : 'B');
		my $y = rand();
		my @edges = sort keys %{ $gen->{graph} };
		my @froms = ('-', grep { !$FINAL{$_} } @STATUSES);
		if ($y < 0.47 || !@edges)
		{
			my ($from, $to);
			for (1 .. 100)
			{
				($from, $to) = (pick(@froms), pick(@STATUSES));
				last if $from ne $to && !$gen->{graph}{"$from>$to"};
			}
			%op = (%op, kind => 'add_edge', from => $from, to => $to);
		}
		elsif ($y < 0.88)
		{
			my ($from, $to) = split />/, pick(@edges);
			%op = (%op, kind => 'del_edge', from => $from, to => $to);
		}
		elsif ($y < 0.93)
		{
			%op = (%op, kind => 'reset_graph');
		}
		else
		{
			# an edge the table refuses: a self edge, one out of a final
			# status, or one it has already
			my $z = rand();
			my ($from, $to);
			if ($z < 0.4)
			{
				$from = $to = pick(grep { !$FINAL{$_} } @STATUSES);
			}
			elsif ($z < 0.7)
			{
				$from = pick(sort keys %FINAL);
				$to = pick(grep { $_ ne $from } @STATUSES);
			}
			elsif (@edges)
			{
				($from, $to) = split />/, pick(@edges);
			}
			else
			{
				$from = $to = 'READY';
			}
			%op = (%op, kind => 'add_edge', from => $from, to => $to);
		}
	}
	# some updates are upserts of the existing payout, with a proposed row
	# whose other columns are random: judged as the UPDATE they become
	if (($op{kind} eq 'update' || $op{kind} eq 'other') && chance(0.2))
	{
		$op{upsert} = 1;
		$op{v_s} = pick(@STATUSES);
		$op{v_r} = random_resolution();
		$op{v_a} = random_autoprocess();
	}
	# some updates, moves and deletes are rolled back to a savepoint after
	# they ran; a rolled-back move is mostly followed by an insert of the
	# key it would have made
	$op{rollback} = 1
	  if ($op{kind} eq 'update' || $op{kind} eq 'move' || $op{kind} eq 'delete')
	  && !$op{upsert} && chance(0.08);
	$op{session} //= 'A';

	my $expect = predict($gen, \%op);
	if ($expect eq 'ok' && $op{rollback} && $op{kind} eq 'move')
	{
		$poison = mkey($op{tbl}, $op{id}, $op{to_region});
		$where{$poison} = [ $op{tbl}, $op{id}, $op{to_region} ];
		undef $poison if $gen->{rows}{$poison};
	}
	if ($expect eq 'ok' && !$op{rollback})
	{
		apply($gen, \%op, '');
		my $key = defined $op{tbl} ? mkey(@op{qw(tbl id region)}) : undef;
		if ($op{kind} eq 'insert')
		{
			push @ids, $key;
			push @active, $key unless $FINAL{ $op{s} };
		}
		elsif ($op{kind} eq 'move')
		{
			my $moved = mkey($op{tbl}, $op{id}, $op{to_region});
			$where{$moved} = [ $op{tbl}, $op{id}, $op{to_region} ];
			push @ids, $moved;
			push @active, $moved unless $FINAL{ $gen->{rows}{$moved}[0] };
		}
		elsif ($op{kind} eq 'delete')
		{
			push @deleted, $key;
		}
	}
	push @ops, \%op;
}

#
# Running the operations.
#

sub lit
{
	my ($v) = @_;
	return (!defined $v || $v eq '-') ? 'NULL' : "'$v'";
}

my %ROLE = (app => 'walk_app', mod => 'walk_mod', op => 'walk_op', super => '');

# The call that runs $op and returns "seq result".
sub op_call
{
	my ($op) = @_;
	return sprintf(
		"SELECT walk_apply(%d, '%s', '%s', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);",
		$op->{seq}, $op->{upsert} ? 'upsert' : $op->{kind},
		$ROLE{ $op->{who} }, lit($op->{tbl}), $op->{id} // 'NULL',
		lit($op->{region}), lit($op->{to_region}),
		$op->{rollback} ? 'true' : 'false',
		$op->{set_s} ? 'true' : 'false', lit($op->{s}),
		$op->{set_r} ? 'true' : 'false', lit($op->{r}),
		$op->{set_a} ? 'true' : 'false', lit($op->{a}),
		lit($op->{from}), lit($op->{to}),
		lit($op->{v_s}), lit($op->{v_r}), lit($op->{v_a}));
}

# $op as the SQL a person would type, for messages.
sub op_sql
{
	my ($op) = @_;
	my $k = $op->{kind};
	my $role = $ROLE{ $op->{who} } ? "SET ROLE $ROLE{$op->{who}}; " : '';
	my $parts = ($op->{tbl} // '') eq 'walk_parts';
	my $where = "WHERE id = $op->{id}" . ($parts ? " AND region = '$op->{region}'" : '');
	my $cols = $parts ? 'id, region, status, resolution, autoprocess' : 'id, status, resolution, autoprocess';
	my $vals = $parts ? "$op->{id}, '$op->{region}'" : $op->{id};
	my ($begin, $end) = $op->{rollback} ? ('BEGIN; SAVEPOINT s; ', ' ROLLBACK TO s; COMMIT;') : ('', '');

	return "${role}INSERT INTO $op->{tbl} ($cols) VALUES ($vals, "
	  . lit($op->{s}) . ', '
	  . lit($op->{r}) . ', '
	  . lit($op->{a}) . ');'
	  if $k eq 'insert';
	if ($op->{upsert})
	{
		my @set;
		push @set, 'status = EXCLUDED.status' if $op->{set_s};
		push @set, 'resolution = EXCLUDED.resolution' if $op->{set_r};
		push @set, 'autoprocess = EXCLUDED.autoprocess' if $op->{set_a};
		push @set, "amount = $op->{tbl}.amount + 1" unless @set;
		return "${role}INSERT INTO $op->{tbl} ($cols) VALUES ($vals, "
		  . join(', ', map { lit($_) } proposed($op))
		  . ') ON CONFLICT (' . ($parts ? 'id, region' : 'id') . ') DO UPDATE SET '
		  . join(', ', @set) . ';';
	}
	if ($k eq 'update' || $k eq 'move' || $k eq 'other')
	{
		my @set;
		push @set, 'status = ' . lit($op->{s}) if $op->{set_s};
		push @set, 'resolution = ' . lit($op->{r}) if $op->{set_r};
		push @set, 'autoprocess = ' . lit($op->{a}) if $op->{set_a};
		push @set, "region = '$op->{to_region}'" if $k eq 'move';
		push @set, 'amount = amount + 1' unless @set;
		return "$role$begin" . "UPDATE $op->{tbl} SET " . join(', ', @set) . " $where;$end";
	}
	return "$role${begin}DELETE FROM $op->{tbl} $where;$end" if $k eq 'delete';
	return 'INSERT INTO payout.transition VALUES ('
	  . lit($op->{from}) . ', '
	  . lit($op->{to}) . ');'
	  if $k eq 'add_edge';
	return 'DELETE FROM payout.transition WHERE from_status IS NOT DISTINCT FROM '
	  . lit($op->{from})
	  . " AND to_status = '$op->{to}';"
	  if $k eq 'del_edge';
	return 'DELETE FROM payout.transition; INSERT INTO payout.transition '
	  . 'SELECT * FROM payout.default_transition;';
}

my $start_time = time();

my $node = PostgreSQL::Test::Cluster->new('walk');
$node->init;
$node->append_conf('postgresql.conf',
	"payout.moderator_role = 'payout_moderator'\npayout.operator_role = 'payout_operator'");
$node->start;

$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION payout;
	CREATE ROLE walk_app;
	CREATE ROLE payout_moderator NOLOGIN;
	CREATE ROLE walk_mod;
	GRANT payout_moderator TO walk_mod;
	CREATE ROLE payout_operator NOLOGIN;
	CREATE ROLE walk_op;
	GRANT payout_operator TO walk_op;

	-- The status column allows NULL on purpose: the trigger's own rule,
	-- not the column's constraint, must reject a NULL status.
	CREATE TABLE walk_payouts (
		id bigint PRIMARY KEY,
		amount numeric NOT NULL DEFAULT 0,
		status payout.status,
		resolution payout.resolution,
		autoprocess boolean
	);
	CREATE TABLE walk_parts (
		id bigint NOT NULL,
		region text NOT NULL,
		amount numeric NOT NULL DEFAULT 0,
		status payout.status,
		resolution payout.resolution,
		autoprocess boolean,
		PRIMARY KEY (id, region)
	) PARTITION BY LIST (region);
	CREATE TABLE walk_parts_a PARTITION OF walk_parts FOR VALUES IN ('a');
	CREATE TABLE walk_parts_b PARTITION OF walk_parts FOR VALUES IN ('b');
	-- INSERT for the moderator too, for upserts
	GRANT SELECT, INSERT, UPDATE, DELETE ON walk_payouts, walk_parts
		TO walk_app, payout_moderator, payout_operator;
	SELECT payout.attach('walk_payouts');
	SELECT payout.attach('walk_parts');

	-- One operation, in its own subtransaction, as role "who" ('' for the
	-- caller): 'ok', or the SQLSTATE and the constraint name it failed
	-- with; 'norow'/'noedge' when the row or edge to change is missing.
	-- With rollback, an operation that succeeded is rolled back to the
	-- subtransaction's start, as ROLLBACK TO SAVEPOINT does, and still
	-- answers 'ok'.
	CREATE FUNCTION walk_apply(seq int, kind text, who text, tbl text,
		pid bigint, region text, to_region text, rollback bool,
		set_s bool, s payout.status, set_r bool, r payout.resolution,
		set_a bool, a bool,
		e_from payout.status, e_to payout.status,
		v_s payout.status, v_r payout.resolution, v_a bool)
	RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
		n bigint;
		result text := 'ok';
		state text;
		cname text;
		parts bool := tbl = 'walk_parts';
		cols text := CASE WHEN tbl = 'walk_parts' THEN 'id, region, status, resolution, autoprocess'
						  ELSE 'id, status, resolution, autoprocess' END;
		vals text := CASE WHEN tbl = 'walk_parts' THEN '$1, $2, $3, $4, $6'
						  ELSE '$1, $3, $4, $6' END;
		key text := CASE WHEN tbl = 'walk_parts' THEN 'id, region' ELSE 'id' END;
		row_of text := CASE WHEN tbl = 'walk_parts' THEN 'id = $1 AND region = $2'
							ELSE 'id = $1' END;
		sets text[] := '{}';
	BEGIN
		BEGIN
			IF who <> '' THEN
				PERFORM set_config('role', who, true);
			END IF;
			IF set_s THEN sets := sets || 'status = $3'::text; END IF;
			IF set_r THEN sets := sets || 'resolution = $4'::text; END IF;
			IF set_a THEN sets := sets || 'autoprocess = $6'::text; END IF;
			IF kind = 'move' THEN sets := sets || 'region = $5'::text; END IF;
			IF tbl IS NOT NULL AND (kind = 'other' OR sets = '{}') THEN
				sets := sets || format('amount = %I.amount + 1', tbl);
			END IF;
			IF kind = 'insert' THEN
				EXECUTE format('INSERT INTO %I (%s) VALUES (%s)', tbl, cols, vals)
				USING pid, region, s, r, NULL::text, a;
			ELSIF kind IN ('other', 'update', 'move') THEN
				EXECUTE format('UPDATE %I SET %s WHERE %s', tbl,
							   array_to_string(sets, ', '), row_of)
				USING pid, region, s, r, to_region, a;
				GET DIAGNOSTICS n = ROW_COUNT;
				IF n = 0 THEN result := 'norow'; END IF;
			ELSIF kind = 'delete' THEN
				EXECUTE format('DELETE FROM %I WHERE %s', tbl, row_of)
				USING pid, region;
				GET DIAGNOSTICS n = ROW_COUNT;
				IF n = 0 THEN result := 'norow'; END IF;
			ELSIF kind = 'upsert' THEN
				-- the proposed row has the new values of the columns the
				-- update sets, and v_s, v_r in the others
				EXECUTE format('INSERT INTO %I AS %I (%s) VALUES (%s)'
							   ' ON CONFLICT (%s) DO UPDATE SET %s', tbl, tbl,
							   cols, vals, key,
							   replace(replace(replace(array_to_string(sets, ', '),
													   '$3', 'EXCLUDED.status'),
											   '$4', 'EXCLUDED.resolution'),
									   '$6', 'EXCLUDED.autoprocess'))
				USING pid, region, CASE WHEN set_s THEN s ELSE v_s END,
					  CASE WHEN set_r THEN r ELSE v_r END, NULL::text,
					  CASE WHEN set_a THEN a ELSE v_a END;
			ELSIF kind = 'add_edge' THEN
				INSERT INTO payout.transition (from_status, to_status)
				VALUES (e_from, e_to);
			ELSIF kind = 'del_edge' THEN
				DELETE FROM payout.transition
				WHERE from_status IS NOT DISTINCT FROM e_from AND to_status = e_to;
				GET DIAGNOSTICS n = ROW_COUNT;
				IF n = 0 THEN result := 'noedge'; END IF;
			ELSIF kind = 'reset_graph' THEN
				DELETE FROM payout.transition;
				INSERT INTO payout.transition (from_status, to_status)
				SELECT from_status, to_status FROM payout.default_transition;
			ELSE
				RAISE EXCEPTION 'unknown operation %', kind;
			END IF;
			IF rollback AND result = 'ok' THEN
				RAISE EXCEPTION 'rolled back' USING ERRCODE = 'P0R01';
			END IF;
			IF who <> '' THEN
				PERFORM set_config('role', 'none', true);
			END IF;
		EXCEPTION
			WHEN SQLSTATE 'P0R01' THEN
				NULL;
			WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
					cname = CONSTRAINT_NAME;
				result := state || ' ' || coalesce(cname, '');
		END;
		RETURN seq || ' ' || rtrim(result);
	END
	$$;
});

my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
my %USER = (app => 'walk_app', mod => 'walk_mod', op => 'walk_op', super => $superuser);

# The model's constants against the extension's own view of them.
is($node->safe_psql('postgres', q{SELECT array_to_string(enum_range(NULL::payout.status), ' ')}),
	join(' ', @STATUSES), 'the model knows the statuses in enum order');
is($node->safe_psql('postgres', q{SELECT array_to_string(enum_range(NULL::payout.resolution), ' ')}),
	join(' ', @RESOLUTIONS), 'the model knows the resolutions in enum order');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(s::text, ' ' ORDER BY s)
		FROM unnest(enum_range(NULL::payout.status)) s WHERE payout.is_final(s)}),
	join(' ', grep { $FINAL{$_} } @STATUSES),
	'the model and payout.is_final() agree on the final statuses');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(r::text || '=' || payout.resolution_group(r), ' ' ORDER BY r)
		FROM unnest(enum_range(NULL::payout.resolution)) r}),
	join(' ', map { "$_=$GROUP{$_}" } @RESOLUTIONS),
	'the model and payout.resolution_group() agree on the groups');

my $graph_query = q{SELECT coalesce(from_status::text, '-') || '>' || to_status
	FROM payout.transition ORDER BY 1};
my $removed_query = q{SELECT coalesce(from_status::text, '-') || '>' || to_status
	FROM payout.transition_removed ORDER BY 1};
is( $node->safe_psql('postgres', q{SELECT coalesce(from_status::text, '-') || '>' || to_status
		FROM payout.default_transition ORDER BY 1}),
	join("\n", sort keys %DEFAULT_GRAPH),
	'the model and payout.default_transition agree on the default graph');

# Session A runs the payouts and some graph edits; session B edits the
# graph while A keeps its cached copy.  BackgroundPsql notes every query
# it sends, which would print the whole walk; keep it quiet.
my $session_a = $node->background_psql('postgres', on_error_stop => 0);
my $session_b = $node->background_psql('postgres', on_error_stop => 0);
# The timeout applies to each query, not to the whole walk, however long.
$_->set_query_timer_restart() foreach ($session_a, $session_b);

sub run_quietly
{
	my ($session, $sql) = @_;
	no warnings 'redefine';
	local *PostgreSQL::Test::BackgroundPsql::note = sub { };
	my ($out, $err) = $session->query($sql);
	die "walk session failed: $session->{stderr}" if $err;
	return $out;
}

my $ver = new_state();    # the model that judges the server
my $divergences = 0;
my %outcome;    # "ok" or SQLSTATE => count
my %constraint; # constraint name => rejections
my %kinds;
my $shown = 0;

# check($op, $actual): compare one answer with the model, then carry out
# what the server did, so that one divergence is reported once.
sub check
{
	my ($op, $actual) = @_;
	my $expect = predict($ver, $op);
	my $row = defined $op->{tbl} ? $ver->{rows}{ mkey(@$op{qw(tbl id region)}) } : undef;
	my $before = $row ? "$row->[0]/$row->[1]" : 'none';

	$kinds{ $op->{kind} }++;
	$kinds{'updates written as upserts'}++ if $op->{upsert};
	$kinds{"rolled back to a savepoint"}++ if $op->{rollback};
	$kinds{"on walk_parts"}++ if ($op->{tbl} // '') eq 'walk_parts';
	my ($state, $cname) = split / /, $actual, 2;
	$outcome{$state}++;
	$constraint{$cname}++ if defined $cname;
	if ($actual ne $expect)
	{
		$divergences++;
		diag("divergence at operation $op->{seq}: "
			  . op_sql($op)
			  . "\n  payout before: $before\n  model: $expect\n  server: $actual")
		  if $shown++ < 20;
	}
	apply($ver, $op, $USER{ $op->{who} }) if $actual eq 'ok';
	return;
}

# Graph of the model as the query above prints it.
sub model_graph { return join("\n", sort keys %{ $ver->{graph} }); }

sub model_removed
{
	return join("\n",
		sort grep { !$ver->{graph}{$_} } keys %DEFAULT_GRAPH);
}

my $graph_mismatches = 0;
my @batch;

sub flush_batch
{
	return unless @batch;
	my $out = run_quietly($session_a, join("\n", map { op_call($_) } @batch));
	my @lines = split /\n/, $out;
	for my $i (0 .. $#batch)
	{
		my ($seq, $actual) = split / /, $lines[$i] // '', 2;
		die "walk out of step at operation $batch[$i]{seq}: got "
		  . ($lines[$i] // 'nothing')
		  unless defined $seq && $seq eq $batch[$i]{seq};
		check($batch[$i], $actual);
	}
	@batch = ();
	return;
}

for my $op (@ops)
{
	if ($op->{session} eq 'B')
	{
		flush_batch();
		my $out = run_quietly($session_b, op_call($op));
		my ($seq, $actual) = split / /, $out, 2;
		check($op, $actual);
	}
	else
	{
		push @batch, $op;
		flush_batch() if @batch >= 500;
	}
	# now and then, the graph as stored against the model's
	if ($op->{seq} % 1000 == 0 || $op->{seq} == $nops)
	{
		flush_batch();
		if (run_quietly($session_b, $graph_query) ne model_graph())
		{
			$graph_mismatches++;
			diag("after operation $op->{seq}, payout.transition differs from the model");
		}
	}
}
flush_batch();

is($graph_mismatches, 0,
	'payout.transition always equalled the model graph when compared');
is(run_quietly($session_b, $removed_query),
	model_removed(),
	'payout.transition_removed lists the default edges the model removed');

#
# The whole table and the history against the model.
#

my %table;
foreach my $line (split /\n/,
	$node->safe_psql('postgres',
		q{SELECT 'walk_payouts|' || id, status, coalesce(resolution::text, '-'),
				 coalesce(left(autoprocess::text, 1), '-')
		  FROM walk_payouts
		  UNION ALL
		  SELECT 'walk_parts|(' || id || ',' || region || ')', status,
				 coalesce(resolution::text, '-'), coalesce(left(autoprocess::text, 1), '-')
		  FROM walk_parts}))
{
	my ($k1, $k2, $s, $r, $a) = split /\|/, $line;
	$table{"$k1|$k2"} = "$s/$r/$a";
}
my %model_table =
  map { $_ => join('/', @{ $ver->{rows}{$_} }) } keys %{ $ver->{rows} };
my $table_mismatches = 0;
foreach my $id (sort keys %{ { %table, %model_table } })
{
	my ($got, $want) = ($table{$id} // 'missing', $model_table{$id} // 'missing');
	next if $got eq $want;
	diag("payout $id is $got in the table, $want in the model")
	  if $table_mismatches++ < 20;
}
is($table_mismatches, 0, 'every payout has the status and resolution the model says');

my @history = map { [ split /\|/ ] } split /\n/,
  $node->safe_psql(
	'postgres', q{
	SELECT tbl::text || '|' || key, coalesce(old_status::text, '-'),
		coalesce(new_status::text, '-'),
		coalesce(old_resolution::text, '-'), coalesce(new_resolution::text, '-'),
		user_name, coalesce(old_key, '-')
	FROM payout.history
	WHERE tbl IN ('walk_payouts'::regclass, 'walk_parts'::regclass)
	ORDER BY id});
# "table|key" holds the separator itself
@history = map { [ "$_->[0]|$_->[1]", @$_[ 2 .. $#$_ ] ] } @history;
my (%hist_of, %log_of);
push @{ $hist_of{ $_->[0] } }, join(' ', @$_[ 1 .. 6 ]) foreach @history;
push @{ $log_of{ $_->[0] } }, join(' ', @$_[ 1 .. 6 ]) foreach @{ $ver->{log} };
my $history_mismatches = 0;
foreach my $id (sort keys %{ { %hist_of, %log_of } })
{
	my $got = join("\n    ", @{ $hist_of{$id} // [] });
	my $want = join("\n    ", @{ $log_of{$id} // [] });
	next if $got eq $want;
	diag("payout $id: history\n    $got\n  model\n    $want")
	  if $history_mismatches++ < 10;
}
is($history_mismatches, 0,
	"every payout's history is the model's sequence of accepted changes");
is(scalar(@history), scalar(@{ $ver->{log} }),
	'payout.history has one row per accepted change, no more');
is( join("\n", map { join(' ', @$_) } @history),
	join("\n", map { join(' ', @$_) } @{ $ver->{log} }),
	'payout.history records the changes in the order they were made');

#
# The default graph again.
#
run_quietly($session_b, op_call({ seq => 0, kind => 'reset_graph', who => 'super' }));
is(run_quietly($session_a, $graph_query), join("\n", sort keys %DEFAULT_GRAPH),
	'after the walk, payout.transition is the default graph again');
is(run_quietly($session_a, $removed_query), '',
	'after the walk, payout.transition_removed is empty');

$session_a->quit;
$session_b->quit;

#
# What the walk did.
#
my $accepted = $outcome{ok} // 0;
my $rejected = $nops - $accepted;
my $elapsed = time() - $start_time;
diag(sprintf(
	"random walk, seed %d: %d operations (%s), %d accepted, %d rejected (%s); "
	  . "rejections by constraint: %s; %d divergences; %d payouts, %d history rows; %.1f s",
	$seed, $nops,
	join(', ', map { "$_ $kinds{$_}" } sort keys %kinds),
	$accepted, $rejected,
	join(', ', map { "$_ $outcome{$_}" } sort grep { $_ ne 'ok' } keys %outcome),
	join(', ', map { "$_ $constraint{$_}" } sort grep { $_ ne '' } keys %constraint),
	$divergences, scalar(keys %table), scalar(@history), $elapsed));

my %reached;
$reached{ $_->[2] }{ $_->[0] } = 1 foreach @{ $ver->{log} };
diag('payouts that reached each status: '
	  . join(', ', map { "$_ " . scalar(keys %{ $reached{$_} // {} }) } @STATUSES));

is($divergences, 0, 'the server answered every operation as the model predicted');

# A walk of 3000 operations or more reaches every rule.
SKIP:
{
	skip 'walk too short to reach every rule', 1 if $nops < 3000;
	my @missing = grep { !$constraint{$_} } qw(
	  payout_status_not_null payout_moderation_hold payout_status_transition
	  payout_initial_status payout_final_resolution payout_fatal_resolution
	  payout_processed_resolution payout_delete_unfinished payout_manual_processing
	  payout_autoprocess_on transition_no_self_edge
	  transition_not_from_final transition_key);
	is("@missing", '', 'the walk broke every rule at least once');
}

$node->stop;

done_testing();
