"""The payouts in Django's admin.

The stock ModelAdmin saves a whole instance: it would write the status and
the resolution of the form, which the trigger refuses (an illegal change,
a held payout: HTTP 500), or which are stale (a payout a moderator released
meanwhile, put back on hold).  Here they are read-only, decisions go
through the back office (views.py), and a change writes only the fields
the form changed.
"""
from django.contrib import admin

from .models import Payout


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    list_display = ('id', 'amount', 'status', 'resolution', 'autoprocess', 'created_at')
    list_filter = ('status',)
    readonly_fields = ('status', 'resolution', 'autoprocess', 'created_at')

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=form.changed_data)
        else:
            obj.save()
