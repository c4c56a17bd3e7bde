--
-- graph_picture: payout.graph_mermaid() and payout.graph_dot() draw the
-- live transition graph, follow edits of payout.transition, and are not
-- fooled by the caller's search_path.
--
CREATE EXTENSION payout;
\set SHOW_CONTEXT never

-- The full pictures are printed as they are, one line per line.
\pset format unaligned
\pset tuples_only on

------------------------------------------------------------------------------
-- The shipped graph.
------------------------------------------------------------------------------

SELECT payout.graph_mermaid();
SELECT payout.graph_dot();
SELECT payout.graph_mermaid() AS default_mermaid, payout.graph_dot() AS default_dot \gset

\pset format aligned
\pset tuples_only off

-- Mermaid: one line per edge, and one "--> [*]" per final status that an
-- edge leads to, each final status once.
SELECT count(*) FILTER (WHERE line LIKE '    % --> %' AND line NOT LIKE '% --> [*]') AS edges,
	   count(*) FILTER (WHERE line LIKE '    [*] --> %') AS initial,
	   count(*) FILTER (WHERE line LIKE '% --> [*]') AS final
FROM unnest(string_to_array(rtrim(:'default_mermaid', E'\n'), E'\n')) AS line;
SELECT count(*) AS edges FROM payout.transition;
SELECT count(DISTINCT to_status) AS final_targets FROM payout.transition
WHERE payout.is_final(to_status);
-- DOT: one node line per status in the graph, the final ones with a
-- double border, one edge line per edge.
SELECT count(*) FILTER (WHERE line LIKE '    % -> %;') AS edges,
	   count(*) FILTER (WHERE line LIKE '    % [peripheries=2];') AS final_nodes,
	   count(*) FILTER (WHERE line ~ '^    [A-Z_]+;$') AS other_nodes
FROM unnest(string_to_array(rtrim(:'default_dot', E'\n'), E'\n')) AS line;

------------------------------------------------------------------------------
-- An edited graph.
------------------------------------------------------------------------------

-- Add READY -> CANCELLING, remove PROCESSED -> REVOKING.
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
DELETE FROM payout.transition WHERE from_status = 'PROCESSED' AND to_status = 'REVOKING';

\pset format unaligned
\pset tuples_only on
SELECT payout.graph_mermaid();
SELECT payout.graph_dot();
\pset format aligned
\pset tuples_only off

SELECT strpos(payout.graph_mermaid(), E'    READY --> CANCELLING\n') > 0 AS mermaid_added,
	   strpos(payout.graph_mermaid(), E'    PROCESSED --> REVOKING\n') = 0 AS mermaid_removed,
	   strpos(payout.graph_dot(), E'    READY -> CANCELLING;\n') > 0 AS dot_added,
	   strpos(payout.graph_dot(), E'    PROCESSED -> REVOKING;\n') = 0 AS dot_removed;
-- REVOKING is still reached from PARTIALLY_PROCESSED, so REVOKED and
-- REVOKE_FAILED are still drawn as final.
SELECT strpos(payout.graph_mermaid(), E'    REVOKED --> [*]\n') > 0 AS mermaid_revoked,
	   strpos(payout.graph_dot(), E'    REVOKED [peripheries=2];\n') > 0 AS dot_revoked;

-- Remove the only edge into INVOKE_FAILED: that final status is no longer
-- reachable, and is drawn no more.
DELETE FROM payout.transition WHERE from_status = 'INVOKING' AND to_status = 'INVOKE_FAILED';
\pset format unaligned
\pset tuples_only on
SELECT payout.graph_mermaid();
SELECT payout.graph_dot();
\pset format aligned
\pset tuples_only off
SELECT strpos(payout.graph_mermaid(), 'INVOKE_FAILED') = 0 AS mermaid_gone,
	   strpos(payout.graph_dot(), 'INVOKE_FAILED') = 0 AS dot_gone,
	   strpos(payout.graph_mermaid(), E'    CANCELLED --> [*]\n') > 0 AS others_still_final;

-- A status that only edges leave (no edge into it) is still drawn, as the
-- source of its edges: with every edge into PENDING gone, PENDING has no
-- way in, but its edges out remain.
DELETE FROM payout.transition WHERE to_status = 'PENDING';
SELECT strpos(payout.graph_mermaid(), E'    PENDING --> PROCESSING\n') > 0 AS mermaid_pending_out,
	   strpos(payout.graph_mermaid(), E' --> PENDING\n') = 0 AS mermaid_nothing_in,
	   strpos(payout.graph_dot(), E'    PENDING;\n') > 0 AS dot_pending_node;

-- A graph with no edges is still a picture: the headers alone, not NULL.
BEGIN;
DELETE FROM payout.transition;
SELECT payout.graph_mermaid() IS NOT DISTINCT FROM E'stateDiagram-v2\n' AS mermaid_header_only,
	   payout.graph_dot() IS NOT DISTINCT FROM
	   E'digraph payout {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n    start [shape=point];\n}\n'
	   AS dot_header_only;
ROLLBACK;

-- Back to the shipped graph: the pictures are those of the start again.
DELETE FROM payout.transition;
INSERT INTO payout.transition SELECT * FROM payout.default_transition;
SELECT payout.graph_mermaid() = :'default_mermaid' AS mermaid_restored,
	   payout.graph_dot() = :'default_dot' AS dot_restored;
SELECT count(*) AS removed FROM payout.transition_removed;

------------------------------------------------------------------------------
-- A hostile search_path.
------------------------------------------------------------------------------

-- A schema first in search_path, ahead of pg_catalog, with a "||" on text
-- that raises an error, an "=" on enums (so on payout.status) and a
-- string_agg function that do too.
CREATE ROLE regress_payout_hostile;
CREATE SCHEMA regress_payout_hostile AUTHORIZATION regress_payout_hostile;
SET ROLE regress_payout_hostile;
CREATE FUNCTION regress_payout_hostile.hostile_cat(text, text) RETURNS text
LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hostile || called'; END$$;
CREATE OPERATOR regress_payout_hostile.|| (
	LEFTARG = text, RIGHTARG = text, FUNCTION = regress_payout_hostile.hostile_cat);
CREATE FUNCTION regress_payout_hostile.hostile_eq(anyenum, anyenum) RETURNS boolean
LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hostile = called'; END$$;
CREATE OPERATOR regress_payout_hostile.= (
	LEFTARG = anyenum, RIGHTARG = anyenum, FUNCTION = regress_payout_hostile.hostile_eq);
CREATE FUNCTION regress_payout_hostile.string_agg(text, text) RETURNS text
LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hostile string_agg called'; END$$;
RESET ROLE;
SET search_path = regress_payout_hostile, pg_catalog, public;

-- The trap works for the session's own queries ...
SELECT 'a'::text || 'b'::text;
SELECT 'READY'::payout.status = 'READY'::payout.status;

-- ... but not for the functions, which give the same pictures.
SELECT payout.graph_mermaid() = :'default_mermaid' AS mermaid_same,
	   payout.graph_dot() = :'default_dot' AS dot_same;
-- Also on an edited graph, and from the hostile role itself.
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
SELECT strpos(payout.graph_mermaid(), E'    READY --> CANCELLING\n') > 0 AS mermaid_added,
	   strpos(payout.graph_dot(), E'    READY -> CANCELLING;\n') > 0 AS dot_added;
SET ROLE regress_payout_hostile;
SELECT strpos(payout.graph_mermaid(), E'    READY --> CANCELLING\n') > 0 AS mermaid_added,
	   strpos(payout.graph_dot(), E'    READY -> CANCELLING;\n') > 0 AS dot_added;
RESET ROLE;
RESET search_path;
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'CANCELLING';
SELECT payout.graph_mermaid() = :'default_mermaid' AS mermaid_restored,
	   payout.graph_dot() = :'default_dot' AS dot_restored;

SET client_min_messages = warning;
DROP SCHEMA regress_payout_hostile CASCADE;
RESET client_min_messages;
DROP ROLE regress_payout_hostile;
DROP EXTENSION payout;
