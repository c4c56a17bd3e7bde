"""Who decides, in the database: the member of staff behind Django's one
database role.

Django connects as one role for everyone.  For a decision, the back office
takes on, for one transaction, the database role of the member of staff
who makes it (SET LOCAL ROLE, as set_config('role', ..., true)), and names
them in payout.actor, which payout.history records beside the role:

- a member of staff with a role of their own (settings.PAYOUT_STAFF_ROLES)
  acts as that role: payout.history.user_name names them, and the
  database applies that role's rights (a staff role that is no moderator's
  meets the hold like anyone else);
- everyone else acts as the moderators' role (settings.PAYOUT_MODERATOR_ROLE),
  and only payout.actor tells them apart.

Both are the back office's word: the database authenticated Django's role,
not the person, and Django's role may take on any role it is a member of.
payout.history.session_user_name is Django's role either way.
"""
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction


def role_of(user):
    """The database role this member of staff decides as."""
    return settings.PAYOUT_STAFF_ROLES.get(user.get_username(), settings.PAYOUT_MODERATOR_ROLE)


@contextmanager
def acting_as(user):
    """Runs the block in a transaction (a savepoint inside one) as the
    database role of this member of staff, with payout.actor naming them;
    yields the role.

    SET LOCAL lasts until the end of the transaction, and an enclosing
    transaction (ATOMIC_REQUESTS, a TestCase) outlives the block: the role
    and the actor are set back at the block's end.  When the block fails,
    rolling back its savepoint sets them back.
    """
    role = role_of(user)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('role', %s, true), set_config('payout.actor', %s, true)",
                           [role, user.get_username()])
        yield role
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('role', 'none', true), set_config('payout.actor', '', true)")
