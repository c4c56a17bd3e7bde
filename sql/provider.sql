-- payout.classify(): provider answers to resolutions, and its precedence.
CREATE EXTENSION payout;

INSERT INTO payout.provider_code (provider, code, resolution) VALUES
	('acme', '0', 'OK'),
	('acme', 'E_FUNDS', 'INSUFFICIENT_FUNDS'),
	('acme', 'E_BUSY', 'GENERAL_ERROR'),
	('globex', '0', 'OK'),
	('globex', 'E_FUNDS', 'DECLINED_ERROR');

-- The precedence, one row per case doc/workflow.md documents.
SELECT provider, code, http_status, timed_out,
	   payout.classify(provider, code, http_status, timed_out) AS resolution
FROM (VALUES
	(1, 'acme', 'E_FUNDS', NULL::int, false),	-- mapped code
	(2, 'acme', 'E_FUNDS', 500, true),			-- mapped code wins over all else
	(3, 'globex', 'E_FUNDS', NULL, false),		-- the same code, another provider
	(4, 'acme', 'E_NEW', NULL, true),			-- unmapped, timed out
	(5, 'acme', NULL, NULL, true),				-- no answer, timed out
	(6, 'acme', 'E_NEW', 500, false),			-- unmapped, HTTP 500
	(7, 'acme', 'E_NEW', 502, false),			-- unmapped, other 5xx
	(8, 'acme', 'E_NEW', 404, false),			-- unmapped, 4xx
	(9, 'acme', 'E_NEW', 302, false),			-- unmapped, 3xx
	(10, 'acme', NULL, 0, false),				-- no HTTP answer at all
	(11, 'acme', 'E_NEW', 200, false),			-- unmapped, HTTP 200
	(12, 'acme', 'E_NEW', NULL, false),			-- unmapped, no status given
	(13, 'acme', 'E_NEW', 201, NULL)			-- timed_out NULL counts as false
) AS t(n, provider, code, http_status, timed_out)
ORDER BY n;

-- Defaults: http_status NULL, timed_out false.
SELECT payout.classify('acme', 'E_BUSY') AS mapped, payout.classify('acme', 'x') AS unmapped;

-- The groups that follow: an unmapped answer is held, never processed.
SELECT payout.requires_moderation(payout.classify('acme', 'x')) AS unmapped_held,
	   payout.is_final(payout.classify('acme', 'E_FUNDS')) AS funds_final;

-- Codes are matched exactly (case and white space count).
SELECT payout.classify('acme', 'e_funds') AS lower_case_code;
SELECT payout.classify('ACME', '0') AS upper_case_provider;

-- Bad input: a clear error each.
SELECT payout.classify('initech', '0');
SELECT payout.classify(NULL, '0');
SELECT payout.classify('acme', NULL);
SELECT payout.classify('acme', NULL, NULL, false);
SELECT payout.classify('acme', '0', -1);
SELECT payout.classify('acme', '0', 1000);
SELECT payout.classify('acme', '0', 50);
SELECT payout.classify('acme', '0', 99);
SELECT payout.classify('acme', '0', 100) AS lowest, payout.classify('acme', 'x', 999) AS highest;

-- Edits take effect at the next statement.
UPDATE payout.provider_code SET resolution = 'OK' WHERE provider = 'acme' AND code = 'E_BUSY';
SELECT payout.classify('acme', 'E_BUSY');
BEGIN;
DELETE FROM payout.provider_code WHERE provider = 'acme';
SELECT payout.classify('acme', '0');
ROLLBACK;
SELECT payout.classify('acme', '0');
TRUNCATE payout.provider_code;
SELECT payout.classify('acme', '0');

-- Per row in a bulk UPDATE.
INSERT INTO payout.provider_code VALUES ('acme', 'E_FUNDS', 'INSUFFICIENT_FUNDS');
CREATE TABLE answers (id int PRIMARY KEY, code text, http int, timed_out boolean,
					  resolution payout.resolution);
INSERT INTO answers
SELECT g, CASE g % 4 WHEN 0 THEN 'E_FUNDS' WHEN 1 THEN 'x' ELSE NULL END,
	   CASE g % 4 WHEN 2 THEN 500 ELSE 200 END, g % 4 = 3
FROM generate_series(1, 1000) AS g;
UPDATE answers SET resolution = payout.classify('acme', code, http, timed_out);
SELECT resolution, count(*) FROM answers GROUP BY resolution ORDER BY resolution;

-- An unprivileged role may classify but not edit the mappings: every edit
-- is refused (42501), and the mappings are the same afterwards.
SELECT provider, code, resolution FROM payout.provider_code ORDER BY provider, code;
CREATE ROLE regress_payout_app;
SET ROLE regress_payout_app;
SELECT payout.classify('acme', 'E_FUNDS');
\set VERBOSITY sqlstate
INSERT INTO payout.provider_code VALUES ('acme', 'x', 'OK');
UPDATE payout.provider_code SET resolution = 'OK';
DELETE FROM payout.provider_code;
TRUNCATE payout.provider_code;
\set VERBOSITY default
RESET ROLE;
SELECT provider, code, resolution FROM payout.provider_code ORDER BY provider, code;
SELECT payout.classify('acme', 'E_FUNDS');

DROP TABLE answers;
DROP ROLE regress_payout_app;
DROP EXTENSION payout;
