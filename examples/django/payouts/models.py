"""The payouts table, as the README's and doc/applications.md's examples
have it, so that every example program shares it.

Write payouts with QuerySet.update() (or save(update_fields=[...])), never
with a whole Model.save() of an instance read earlier: save() writes every
column, and an instance read before a moderator released its payout writes
the old resolution back, which holds the payout again.
"""
from django.db import models
from django.db.models import BooleanField, F, Func
from django.utils import timezone

from .fields import ResolutionField, Status, StatusField


class PayoutQuerySet(models.QuerySet):
    def held(self, held=True):
        """Payouts held for moderation (held=False: the others), by
        payout.requires_moderation(), which the queue's partial index
        serves."""
        return self.annotate(
            held=Func(F('status'), F('resolution'), function='payout.requires_moderation',
                      output_field=BooleanField())
        ).filter(held=held)


class Payout(models.Model):
    id = models.BigIntegerField(primary_key=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = StatusField(default=Status.CREATED)
    resolution = ResolutionField(null=True, blank=True)
    autoprocess = models.BooleanField(default=True)
    note = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PayoutQuerySet.as_manager()

    class Meta:
        db_table = 'payouts'

    def __str__(self):
        return f'payout {self.pk} ({self.status}, {self.resolution})'


def failure_status():
    """payout.failure_status(status): the failure status of a payout's
    stage, for an update that ends it with a fatal resolution."""
    return Func(F('status'), function='payout.failure_status', output_field=StatusField())
