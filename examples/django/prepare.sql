-- What a superuser prepares, once per cluster, for the Django example:
-- the roles, and the template of manage.py test's databases.
--
--   psql -v django_role=shop -f examples/django/prepare.sql
--
-- The role django_role names must exist, and log in; it gets here what
-- manage.py migrate, the back office and manage.py test need.  The database
-- Django serves needs CREATE EXTENSION payout, EXECUTE on
-- payout.record_history() and SELECT on payout.history for django_role, as
-- the template below has them.
\set ON_ERROR_STOP on

-- The moderators' and operators' roles of payout.moderator_role and
-- payout.operator_role, and two members of staff with roles of their own:
-- alice is a moderator, carol is not.
CREATE ROLE payout_moderator NOLOGIN;
CREATE ROLE payout_operator NOLOGIN;
CREATE ROLE payout_staff_alice NOLOGIN IN ROLE payout_moderator;
CREATE ROLE payout_staff_carol NOLOGIN;

-- The roles the back office may take on, for one transaction, for the
-- member of staff who decides: Django's role is a member of each, through
-- payout_backoffice, which has none of their rights (NOINHERIT), so that
-- Django's role has none either until it takes one on with SET ROLE.
-- (NOINHERIT on Django's role itself would also cut it off from the rights
-- of pg_database_owner, which owns schema public: no CREATE TABLE in a
-- database of its own.)  NOINHERIT comes before the GRANTs: from
-- PostgreSQL 16 on, a grant takes its INHERIT option from the member's
-- attribute when it is made.
CREATE ROLE payout_backoffice NOLOGIN NOINHERIT;
GRANT payout_moderator, payout_staff_alice, payout_staff_carol TO payout_backoffice;
GRANT payout_backoffice TO :"django_role";

-- Django's role creates the test databases.
ALTER ROLE :"django_role" CREATEDB;

-- The settings follow the role into every database, test databases
-- included: a database's own (ALTER DATABASE ... SET) stay with it, and a
-- template does not pass them on.  Only a superuser sets them.
ALTER ROLE :"django_role" SET payout.moderator_role = 'payout_moderator';
ALTER ROLE :"django_role" SET payout.operator_role = 'payout_operator';

-- The template: everything in it is copied into each test database.
CREATE DATABASE payout_template;
\connect payout_template
CREATE EXTENSION payout;
GRANT EXECUTE ON FUNCTION payout.record_history() TO :"django_role";
GRANT SELECT ON payout.history TO :"django_role";
INSERT INTO payout.provider_code (provider, code, resolution) VALUES
    ('fakepay', '0', 'OK'),
    ('fakepay', 'E_FUNDS', 'INSUFFICIENT_FUNDS');
-- Any role with CREATEDB may copy a template database.
ALTER DATABASE payout_template IS_TEMPLATE true;
