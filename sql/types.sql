--
-- types: the extension's enum types, its schema, and the declared
-- properties of its functions.
--

-- The install script creates schema payout itself: a schema of that name
-- that already exists makes CREATE EXTENSION fail instead of being reused.
-- (PostgreSQL 18 adds the script line as CONTEXT: expected/types_1.out.)
CREATE SCHEMA payout;
CREATE EXTENSION payout;
SELECT count(*) AS payout_extensions FROM pg_extension WHERE extname = 'payout';
DROP SCHEMA payout;

-- The extension's objects live in schema payout; its own schema is
-- pg_catalog and cannot be chosen.
CREATE EXTENSION payout SCHEMA public;

CREATE EXTENSION payout;

-- Not relocatable; the schema payout is a member of the extension.
SELECT extname, extrelocatable, extnamespace::regnamespace AS extnamespace,
       extversion
FROM pg_extension
WHERE extname = 'payout';

SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS member
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.deptype = 'e'
  AND e.extname = 'payout'
  AND d.classid = 'pg_namespace'::regclass;

ALTER EXTENSION payout SET SCHEMA public;

-- The three enum types, their labels in declaration order.
SELECT t.oid::regtype AS type, t.typtype
FROM pg_type t
WHERE t.typnamespace = 'payout'::regnamespace
  AND t.typtype = 'e'
ORDER BY t.typname;

SELECT array_length(enum_range(NULL::payout.status), 1) AS statuses,
       (enum_range(NULL::payout.status))[1] AS first,
       (enum_range(NULL::payout.status))[18] AS last;
SELECT s.ord, s.label
FROM unnest(enum_range(NULL::payout.status)) WITH ORDINALITY AS s(label, ord)
ORDER BY s.ord;

SELECT array_length(enum_range(NULL::payout.resolution), 1) AS resolutions,
       (enum_range(NULL::payout.resolution))[1] AS first,
       (enum_range(NULL::payout.resolution))[27] AS last;
SELECT r.ord, r.label
FROM unnest(enum_range(NULL::payout.resolution)) WITH ORDINALITY AS r(label, ord)
ORDER BY r.ord;

SELECT enum_range(NULL::payout.resolution_group);

-- Enum order is declaration order.
SELECT 'CREATE_FAILED'::payout.status < 'CREATED'::payout.status AS ordered,
       'REVOKE_FAILED'::payout.status = enum_last(NULL::payout.status) AS last_status,
       'PROCESSING_ERROR'::payout.resolution = enum_last(NULL::payout.resolution) AS last_resolution;

-- Unknown labels: the standard enum input error.
SELECT 'BOGUS'::payout.status;
SELECT 'created'::payout.status;
SELECT 'BOGUS'::payout.resolution;
SELECT 'WARNING'::payout.resolution_group;

-- Declared volatility, strictness, parallel safety and security of every
-- function in schema payout.  A change of any of these must show here.
SELECT p.proname,
       pg_get_function_identity_arguments(p.oid) AS args,
       p.prorettype::regtype AS returns,
       l.lanname AS lang,
       p.provolatile AS vol,
       p.proisstrict AS strict,
       p.proparallel AS par,
       p.prosecdef AS secdef,
       p.proconfig
FROM pg_proc p
JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'payout'::regnamespace
ORDER BY p.proname, args;

DROP EXTENSION payout;

-- The schema went with the extension.
SELECT count(*) AS payout_schemas FROM pg_namespace WHERE nspname = 'payout';
