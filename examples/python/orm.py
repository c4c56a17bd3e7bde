#!/usr/bin/env python3
"""A payout table mapped with SQLAlchemy over psycopg2, and what each of
the guide's driver advices does: prints "ok - ..." or "not ok - ..." for
each.

    PGHOST=... PGUSER=owner PGPASSWORD=... examples/python/orm.py

The role creates a table, so it needs CREATE on schema public and, for the
table to keep history, EXECUTE on payout.record_history(); it must not be a
moderator (nor a superuser), to meet the hold.
"""
import sys

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy import exc, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, declarative_base

failures = 0


def check(description, passed, got=None):
    global failures
    if not passed:
        failures += 1
    print(f"{'ok' if passed else 'not ok'} - sqlalchemy: {description}"
          f"{'' if passed else f' (got {got!r})'}", flush=True)


# create_engine() with no URL details: libpq reads the PG* variables.
engine = sa.create_engine('postgresql+psycopg2://', connect_args={'application_name': 'orm-example'})

# The labels, from the database: SQLAlchemy checks each value it reads
# against them.
with engine.connect() as conn:
    STATUSES = conn.execute(sa.text('SELECT unnest(enum_range(NULL::payout.status))::text')).scalars().all()
    RESOLUTIONS = conn.execute(sa.text('SELECT unnest(enum_range(NULL::payout.resolution))::text')).scalars().all()

# The extension owns the types: create_type=False keeps create_all() from
# creating them and drop_all() from dropping them.
Status = postgresql.ENUM(*STATUSES, name='status', schema='payout', create_type=False)
Resolution = postgresql.ENUM(*RESOLUTIONS, name='resolution', schema='payout', create_type=False)

Base = declarative_base()


class Payout(Base):
    __tablename__ = 'orm_payouts'
    id = sa.Column(sa.BigInteger, primary_key=True)
    amount = sa.Column(sa.Numeric, nullable=False)
    status = sa.Column(Status, nullable=False, server_default='CREATED')
    resolution = sa.Column(Resolution)
    created_at = sa.Column(sa.DateTime(timezone=True), nullable=False, server_default=func.now())


def expect_error(description, statement, cls, pgcode, constraint=None):
    with Session(engine) as session:
        try:
            session.execute(statement)
            session.commit()
            check(description, False, 'no error')
        except exc.DBAPIError as e:
            got = (type(e).__name__, e.orig.pgcode, e.orig.diag.constraint_name)
            check(description, isinstance(e, cls) and e.orig.pgcode == pgcode
                  and (constraint is None or e.orig.diag.constraint_name == constraint), got)


def main():
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.select(func.payout.attach('orm_payouts')))
    check('create_all() with create_type=False, and attach', True)

    with Session(engine) as session:
        session.add_all([Payout(id=1, amount=10), Payout(id=2, amount=20)])
        session.commit()
        session.execute(sa.update(Payout).values(status='READY'))
        session.commit()
        check('an enum column reads as a string', session.get(Payout, 1).status == 'READY')
        count = session.scalar(sa.select(func.count()).select_from(Payout))
        check('count(*) is an int', count == 2 and isinstance(count, int), count)

    expect_error('an illegal change raises IntegrityError (23514, the rule in diag.constraint_name)',
                 sa.update(Payout).where(Payout.id == 1).values(status='PROCESSED'),
                 exc.IntegrityError, '23514', 'payout_status_transition')

    # An ERROR resolution holds payout 2; then only a moderator may change
    # it.  42501 is a ProgrammingError: code that catches IntegrityError
    # for the rules misses the hold.
    with engine.begin() as conn:
        conn.execute(sa.update(Payout).where(Payout.id == 2).values(status='INVOKING'))
        conn.execute(sa.update(Payout).where(Payout.id == 2).values(resolution='GENERAL_ERROR'))
    expect_error('the hold raises ProgrammingError (42501, payout_moderation_hold in diag.constraint_name)',
                 sa.update(Payout).where(Payout.id == 2).values(status='PROCESSING'),
                 exc.ProgrammingError, '42501', 'payout_moderation_hold')

    # The class follows the SQLSTATE, whoever raises it: each class of
    # the guide's table, raised with its SQLSTATE.
    for sqlstate, raw, wrapped in (('23514', psycopg2.errors.CheckViolation, exc.IntegrityError),
                                   ('23502', psycopg2.errors.NotNullViolation, exc.IntegrityError),
                                   ('42501', psycopg2.errors.InsufficientPrivilege, exc.ProgrammingError),
                                   ('40001', psycopg2.errors.SerializationFailure, exc.OperationalError)):
        with Session(engine) as session:
            try:
                session.execute(sa.text(f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{sqlstate}'; END $$"))
                check(f'{sqlstate} raises', False, 'no error')
            except exc.DBAPIError as e:
                check(f'{sqlstate} is psycopg2.errors.{raw.__name__} in SQLAlchemy\'s {wrapped.__name__}',
                      isinstance(e, wrapped) and isinstance(e.orig, raw), (type(e), type(e.orig)))

    # func renders a bound parameter, which psycopg2 writes as a quoted
    # literal: an overloaded name is ambiguous, the 1.1 names are not.
    expect_error('func.payout.is_final() is ambiguous (42725)',
                 sa.select(func.payout.is_final('PROCESSED')), exc.ProgrammingError, '42725')
    expect_error("func.payout.resolution_group() reads '...' as a cast (22P02)",
                 sa.select(func.payout.resolution_group('CONNECTION_ERROR')), exc.DataError, '22P02')
    with Session(engine) as session:
        final = session.scalar(sa.select(func.payout.status_is_final('REVOKED')))
        check('func.payout.status_is_final() takes a parameter', final is True, final)
        group = session.scalar(sa.select(func.payout.resolution_group_of('CONNECTION_ERROR')))
        check('func.payout.resolution_group_of() answers ERROR', group == 'ERROR', group)
        raw = session.scalar(sa.select(func.payout.next_statuses('CREATED')))
        check('payout.next_statuses() without a cast is a string', raw == '{READY,TERMINATED,EXPIRED}', raw)
        cast = session.scalar(sa.select(sa.cast(func.payout.next_statuses('CREATED'),
                                                postgresql.ARRAY(sa.Text))))
        check('cast(payout.next_statuses(), ARRAY(Text)) is a list',
              cast == ['READY', 'TERMINATED', 'EXPIRED'], cast)

    # Or teach psycopg2 the array type, by its OID in this database.
    with psycopg2.connect('') as conn, conn.cursor() as cur:
        cur.execute("SELECT 'payout.status[]'::regtype::oid")
        array = psycopg2.extensions.new_array_type((cur.fetchone()[0],), 'PAYOUT_STATUS[]', psycopg2.STRING)
        psycopg2.extensions.register_type(array, conn)
        cur.execute('SELECT payout.next_statuses(%s)', ('READY',))
        got = cur.fetchone()[0]
        check('psycopg2 with payout.status[] registered reads a list', got == ['TERMINATED', 'EXPIRED', 'INVOKING'], got)
    conn.close()

    Base.metadata.drop_all(engine)
    with engine.connect() as conn:
        kept = conn.scalar(sa.text("SELECT to_regtype('payout.status') IS NOT NULL"))
    check('drop_all() with create_type=False leaves payout.status alone', kept is True, kept)

    # The generic Enum owns its type: drop_all() drops it, which fails (the
    # type's owner gets 2BP01, the extension requires it; anyone else 42501,
    # must be owner), and the whole drop_all() rolls back.
    generic = sa.MetaData()
    sa.Table('orm_generic', generic, sa.Column('id', sa.Integer, primary_key=True),
             sa.Column('status', sa.Enum(*STATUSES, name='status', schema='payout')))
    generic.create_all(engine)
    try:
        generic.drop_all(engine)
        check('drop_all() of a generic Enum tries DROP TYPE payout.status', False, 'no error')
    except exc.DBAPIError as e:
        check('drop_all() of a generic Enum tries DROP TYPE payout.status, and fails',
              e.orig.pgcode in ('2BP01', '42501') and 'DROP TYPE payout.status' in str(e.statement),
              (e.orig.pgcode, e.statement))
    with engine.begin() as conn:
        conn.execute(sa.text('DROP TABLE orm_generic'))
    return 1 if failures else 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as e:  # report, so that the runner counts it
        check('no unexpected error', False, repr(e))
        sys.exit(1)
