--
-- classify: finality, resolution groups, moderation and descriptions of
-- every status and resolution.
--

CREATE EXTENSION payout;

-- Every status: final or not, and what it means.
SELECT s AS status, payout.is_final(s) AS final, payout.description(s)
FROM unnest(enum_range(NULL::payout.status)) AS s
ORDER BY s;

-- Exactly nine final statuses.
SELECT count(*) AS final_statuses,
       string_agg(s::text, ', ' ORDER BY s) AS final
FROM unnest(enum_range(NULL::payout.status)) AS s
WHERE payout.is_final(s);

-- Every resolution: its group, whether it needs moderation or ends the
-- payout, and what it means.
SELECT r AS resolution, payout.resolution_group(r) AS "group",
       payout.requires_moderation(r) AS moderation,
       payout.is_final(r) AS final
FROM unnest(enum_range(NULL::payout.resolution)) AS r
ORDER BY r;

SELECT r AS resolution, payout.description(r)
FROM unnest(enum_range(NULL::payout.resolution)) AS r
ORDER BY r;

-- Group sizes; moderation is exactly the ERROR group and finality exactly
-- the FATAL_ERROR group.
SELECT payout.resolution_group(r) AS "group", count(*) AS resolutions,
       bool_and(payout.requires_moderation(r) = (payout.resolution_group(r) = 'ERROR')) AS moderation_is_error,
       bool_and(payout.is_final(r) = (payout.resolution_group(r) = 'FATAL_ERROR')) AS final_is_fatal
FROM unnest(enum_range(NULL::payout.resolution)) AS r
GROUP BY 1
ORDER BY 1;

-- The return type of resolution_group is the enum, not text.
SELECT pg_typeof(payout.resolution_group('OK'::payout.resolution)) AS type;

-- resolution_group is also the name of a type: called with an untyped
-- literal, payout.resolution_group('...') is a cast to that type, not a
-- call of the function (PostgreSQL's rule for one-argument calls named
-- like a type).  Cast the argument to get the function.
SELECT payout.resolution_group('INVALID_AMOUNT');
SELECT payout.resolution_group('INVALID_AMOUNT'::payout.resolution);

-- Every description is one capitalised sentence.
SELECT count(*) AS bad_descriptions
FROM (SELECT payout.description(s) AS d
      FROM unnest(enum_range(NULL::payout.status)) AS s
      UNION ALL
      SELECT payout.description(r)
      FROM unnest(enum_range(NULL::payout.resolution)) AS r) AS descriptions
WHERE d IS NULL OR d !~ '^[A-Z].*\.$';

-- The functions are STRICT: NULL in, NULL out.
SELECT payout.is_final(NULL::payout.status) IS NULL AS is_final_status,
       payout.is_final(NULL::payout.resolution) IS NULL AS is_final_resolution,
       payout.resolution_group(NULL::payout.resolution) IS NULL AS resolution_group,
       payout.requires_moderation(NULL::payout.resolution) IS NULL AS requires_moderation,
       payout.description(NULL::payout.status) IS NULL AS description_status,
       payout.description(NULL::payout.resolution) IS NULL AS description_resolution;

-- An untyped literal does not pick an overload by itself.
SELECT payout.is_final('OK');
SELECT payout.is_final('CREATED'::payout.status) AS created,
       payout.is_final('OK'::payout.resolution) AS ok;

-- IMMUTABLE lets the functions appear in index expressions and
-- partial-index predicates, and the planner uses such indexes.
CREATE TABLE classify_payouts (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL,
	resolution payout.resolution
);
INSERT INTO classify_payouts (id, status, resolution)
SELECT i,
       (enum_range(NULL::payout.status))[1 + i % 18],
       (enum_range(NULL::payout.resolution))[1 + i % 27]
FROM generate_series(1, 540) AS i;

CREATE INDEX classify_payouts_moderation_idx ON classify_payouts (id)
	WHERE payout.requires_moderation(resolution);
CREATE INDEX classify_payouts_final_idx ON classify_payouts (payout.is_final(status));
ANALYZE classify_payouts;

SET enable_seqscan = off;
SET enable_bitmapscan = off;

EXPLAIN (COSTS OFF)
SELECT id, resolution FROM classify_payouts
WHERE payout.requires_moderation(resolution)
ORDER BY id;
SELECT count(*) AS moderated, min(id), max(id),
       count(DISTINCT resolution) AS resolutions
FROM classify_payouts
WHERE payout.requires_moderation(resolution);

EXPLAIN (COSTS OFF)
SELECT id, status FROM classify_payouts
WHERE payout.is_final(status);
SELECT count(*) AS final, count(DISTINCT status) AS statuses
FROM classify_payouts
WHERE payout.is_final(status);

EXPLAIN (COSTS OFF)
SELECT id, status FROM classify_payouts
WHERE NOT payout.is_final(status);
SELECT count(*) AS not_final, count(DISTINCT status) AS statuses
FROM classify_payouts
WHERE NOT payout.is_final(status);

RESET enable_bitmapscan;
RESET enable_seqscan;

DROP TABLE classify_payouts;

-- A label added to the type after installation is one the extension does
-- not know: classifying it is an error, not a guess.  ADD VALUE must be
-- committed before the value is used, so it runs outside a transaction
-- block.  This comes last: the extension is dropped right after.
ALTER TYPE payout.status ADD VALUE 'BOGUS';
ALTER TYPE payout.resolution ADD VALUE 'BOGUS_RESOLUTION';
SELECT enum_last(NULL::payout.status) AS status,
       enum_last(NULL::payout.resolution) AS resolution;
SELECT payout.is_final('BOGUS'::payout.status);
SELECT payout.description('BOGUS'::payout.status);
SELECT payout.is_final('BOGUS_RESOLUTION'::payout.resolution);
SELECT payout.resolution_group('BOGUS_RESOLUTION'::payout.resolution);
SELECT payout.requires_moderation('BOGUS_RESOLUTION');
SELECT payout.description('BOGUS_RESOLUTION'::payout.resolution);
-- The SQLSTATE is invalid_parameter_value.
DO $$
BEGIN
	PERFORM payout.is_final('BOGUS'::payout.status);
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'SQLSTATE %', SQLSTATE;
END
$$;
-- The known labels still classify.
SELECT payout.is_final('REVOKED'::payout.status) AS revoked,
       payout.requires_moderation('UNKNOWN'::payout.resolution) AS unknown;

DROP EXTENSION payout;
