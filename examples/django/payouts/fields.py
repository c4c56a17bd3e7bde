"""Model fields for the extension's enum types.

A CharField makes a varchar column, which payout.attach() refuses.  These
fields make a column of the extension's type, and keep everything else of
a CharField: a string in Python, choices for forms and the admin, and
validation.  Both methods matter:

- db_type() names the column's type, for CREATE TABLE and ALTER TABLE;
- get_internal_type() gives the field a type name of its own.  Inherited,
  it says 'CharField', and Django's schema editor then takes a change from
  a CharField to this field for a change between two varchar columns: it
  writes ALTER COLUMN ... TYPE payout.status without USING, which fails
  (column "status" cannot be cast automatically to type payout.status).
  With a name of its own, the types differ and Django adds
  USING status::payout.status.

The labels are the extension's, fixed per version of it; the tests check
them against the database.
"""
from django.db import models


class Status(models.TextChoices):
    CREATE_FAILED = 'CREATE_FAILED'
    CREATED = 'CREATED'
    READY = 'READY'
    TERMINATED = 'TERMINATED'
    EXPIRED = 'EXPIRED'
    INVOKING = 'INVOKING'
    INVOKE_FAILED = 'INVOKE_FAILED'
    PROCESSING = 'PROCESSING'
    PENDING = 'PENDING'
    PROCESSED = 'PROCESSED'
    PARTIALLY_PROCESSED = 'PARTIALLY_PROCESSED'
    PROCESS_FAILED = 'PROCESS_FAILED'
    CANCELLING = 'CANCELLING'
    CANCELLED = 'CANCELLED'
    CANCEL_FAILED = 'CANCEL_FAILED'
    REVOKING = 'REVOKING'
    REVOKED = 'REVOKED'
    REVOKE_FAILED = 'REVOKE_FAILED'


class Resolution(models.TextChoices):
    OK = 'OK'
    CONNECTION_ERROR = 'CONNECTION_ERROR'
    PROVIDER_INTERNAL_ERROR = 'PROVIDER_INTERNAL_ERROR'
    CONNECTION_TIMEOUT_ERROR = 'CONNECTION_TIMEOUT_ERROR'
    GENERAL_ERROR = 'GENERAL_ERROR'
    UNKNOWN = 'UNKNOWN'
    INVALID_DETAILS = 'INVALID_DETAILS'
    INVALID_REQUEST = 'INVALID_REQUEST'
    REQUEST_ERROR = 'REQUEST_ERROR'
    INVALID_AMOUNT = 'INVALID_AMOUNT'
    INVALID_METHOD = 'INVALID_METHOD'
    INVALID_CREDENTIALS = 'INVALID_CREDENTIALS'
    FORBIDDEN_IP = 'FORBIDDEN_IP'
    SIGNATURE_ERROR = 'SIGNATURE_ERROR'
    DUPLICATED_ID = 'DUPLICATED_ID'
    INSUFFICIENT_FUNDS = 'INSUFFICIENT_FUNDS'
    ANTIFRAUD_ERROR = 'ANTIFRAUD_ERROR'
    DECLINED_ERROR = 'DECLINED_ERROR'
    RECIPIENT_NOT_FOUND = 'RECIPIENT_NOT_FOUND'
    INVALID_RECIPIENT = 'INVALID_RECIPIENT'
    LIMIT_VIOLATION = 'LIMIT_VIOLATION'
    INTERNAL_ERROR = 'INTERNAL_ERROR'
    ACCESS_ERROR = 'ACCESS_ERROR'
    ACCESS_DENIED = 'ACCESS_DENIED'
    GENERAL_FATAL_ERROR = 'GENERAL_FATAL_ERROR'
    OPERATION_EXPIRED = 'OPERATION_EXPIRED'
    PROCESSING_ERROR = 'PROCESSING_ERROR'


class PayoutEnumField(models.CharField):
    """A column of one of the extension's enum types."""

    db_type_name = None
    labels = None

    def __init__(self, *args, **kwargs):
        kwargs.setdefault('max_length', max(len(label) for label in self.labels.values))
        kwargs.setdefault('choices', self.labels.choices)
        super().__init__(*args, **kwargs)

    def db_type(self, connection):
        return self.db_type_name

    def get_internal_type(self):
        return type(self).__name__

    def deconstruct(self):
        # The defaults above are the field's own: keep them out of
        # migrations, which then change only when the field does.
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get('max_length') == max(len(label) for label in self.labels.values):
            del kwargs['max_length']
        if kwargs.get('choices') == self.labels.choices:
            del kwargs['choices']
        return name, path, args, kwargs


class StatusField(PayoutEnumField):
    """A payout.status column."""

    db_type_name = 'payout.status'
    labels = Status


class ResolutionField(PayoutEnumField):
    """A payout.resolution column."""

    db_type_name = 'payout.resolution'
    labels = Resolution
