"""The moderators' back office: the queue of held payouts, and a decision
on one of them.

A decision is checked against the graph before anything is written
(payout.can_transition(), payout.next_statuses()), and written as one
UPDATE that changes the payout only while it is still held, as the member
of staff's database role (backoffice.py).  What the database still refuses
is answered as what it is, never as a server error:

- 23514 (IntegrityError): the change breaks a rule of the workflow, which
  the payout moved into since the page was shown: 409;
- 42501 with the constraint name payout_moderation_hold (ProgrammingError):
  the member of staff's role is no moderator: 403, with the database's
  hint, which names the moderators' role;
- a payout no longer held (another moderator decided first): 409.

Any other error is a bug or a missing grant, and stays a server error.
"""
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import IntegrityError, ProgrammingError, connection
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .backoffice import acting_as
from .fields import Resolution, Status
from .models import Payout

HOLD = 'payout_moderation_hold'


def graph(sql, *params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def render_queue(request, status=200, error=None):
    held = Payout.objects.held().order_by('resolution', 'created_at', 'id')[:50]
    rows = [(p, graph('SELECT payout.failure_status(%s)', p.status)) for p in held]
    return render(request, 'payouts/moderation.html',
                  {'rows': rows, 'error': error, 'final_statuses': final_statuses()}, status=status)


def final_statuses():
    with connection.cursor() as cursor:
        cursor.execute('SELECT s::text FROM unnest(enum_range(NULL::payout.status)) AS s'
                       ' WHERE payout.status_is_final(s) ORDER BY s')
        return [row[0] for row in cursor.fetchall()]


@staff_member_required
def queue(request):
    return render_queue(request)


@staff_member_required
@require_POST
def decide(request, pk):
    """Releases a held payout (decision=release: resolution OK) or ends it
    (decision=end: a fatal resolution and a final status, by default the
    failure status of its stage)."""
    payout = get_object_or_404(Payout, pk=pk)
    decision = request.POST.get('decision')
    if decision not in ('release', 'end'):
        return render_queue(request, 400, 'Choose to release the payout or to end it.')
    if not Payout.objects.held().filter(pk=pk).exists():
        return render_queue(request, 409, f'{payout} is not held: someone decided it already.')

    changes = {'resolution': Resolution.OK}
    if decision == 'end':
        status = request.POST.get('status') or graph('SELECT payout.failure_status(%s)', payout.status)
        if status not in Status.values or not graph('SELECT payout.status_is_final(%s)', status):
            return render_queue(request, 400, f'{status} is not a final status.')
        if status != payout.status and not graph('SELECT payout.can_transition(%s, %s)', payout.status, status):
            allowed = graph('SELECT payout.next_statuses(%s)::text[]', payout.status)
            return render_queue(request, 400, f'{payout} cannot go to {status}: from {payout.status} it may go to '
                                              f'{", ".join(allowed) or "nothing"}.')
        changes = {'resolution': Resolution.GENERAL_FATAL_ERROR, 'status': status}

    try:
        with acting_as(request.user) as role:
            # Only while it is still held, and still where it was shown.
            decided = Payout.objects.held().filter(pk=pk, status=payout.status).update(**changes)
    except IntegrityError as e:
        return render_queue(request, 409, f'{payout}: {e.__cause__.diag.message_primary}.'
                                          f' {e.__cause__.diag.message_detail or ""}')
    except ProgrammingError as e:
        if getattr(e.__cause__, 'pgcode', None) != '42501' or e.__cause__.diag.constraint_name != HOLD:
            raise
        return render_queue(request, 403, f'{request.user.get_username()} decides as the database role {role},'
                                          f' which is no moderator. {e.__cause__.diag.message_hint}')
    if not decided:
        return render_queue(request, 409, f'{payout} is not held any more: someone decided it first.')
    messages.success(request, f"{'Released' if decision == 'release' else 'Ended'} payout {pk} as {role}.")
    return redirect('moderation')
