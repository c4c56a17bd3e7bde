-- test/soak/setup.sql: the soak test's database, made by test/t/010_soak.pl.
-- Roles with doc/security.md's grants, two payout tables (plain, and
-- partitioned by region), and the workers' steps as functions that run
-- with the caller's rights.
CREATE EXTENSION payout;

CREATE ROLE soak_owner;
GRANT EXECUTE ON FUNCTION payout.record_history() TO soak_owner;
CREATE ROLE soak_api LOGIN;
CREATE ROLE soak_processor LOGIN;
CREATE ROLE soak_moderators NOLOGIN;
CREATE ROLE soak_moderator LOGIN IN ROLE soak_moderators;
CREATE ROLE soak_operators NOLOGIN;
CREATE ROLE soak_operator LOGIN IN ROLE soak_operators;
CREATE ROLE soak_expirer LOGIN;
CREATE ROLE soak_mover LOGIN;
CREATE ROLE soak_editor LOGIN;
GRANT INSERT, DELETE ON payout.transition TO soak_editor;

CREATE SCHEMA soak AUTHORIZATION soak_owner;
GRANT USAGE ON SCHEMA soak TO soak_api, soak_processor, soak_moderators,
	soak_operators, soak_expirer, soak_mover;
SET ROLE soak_owner;
CREATE SEQUENCE soak.ids;
CREATE TABLE soak.plain (
	id bigint PRIMARY KEY,
	region text NOT NULL DEFAULT 'a',
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE soak.parts (LIKE soak.plain INCLUDING DEFAULTS,
						 PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE soak.parts_a PARTITION OF soak.parts FOR VALUES IN ('a');
CREATE TABLE soak.parts_b PARTITION OF soak.parts FOR VALUES IN ('b');
SELECT payout.attach('soak.plain', notify => true);
SELECT payout.attach('soak.parts', notify => true);
-- The indexes of doc/workflow.md: the work queue, the moderation queue, the
-- operators' queue, expiry.
CREATE INDEX ON soak.plain (id) WHERE status = 'READY';
CREATE INDEX ON soak.parts (id) WHERE status = 'READY';
CREATE INDEX ON soak.plain (resolution, created_at) WHERE payout.requires_moderation(status, resolution);
CREATE INDEX ON soak.parts (resolution, created_at) WHERE payout.requires_moderation(status, resolution);
CREATE INDEX ON soak.plain (created_at) WHERE status = 'READY' AND autoprocess IS NOT TRUE;
CREATE INDEX ON soak.parts (created_at) WHERE status = 'READY' AND autoprocess IS NOT TRUE;
CREATE INDEX ON soak.plain (created_at) WHERE status IN ('CREATED', 'READY', 'PENDING');
CREATE INDEX ON soak.parts (created_at) WHERE status IN ('CREATED', 'READY', 'PENDING');
GRANT USAGE ON SEQUENCE soak.ids TO soak_api;
GRANT SELECT, INSERT, UPDATE ON soak.plain, soak.parts TO soak_api;
GRANT SELECT, UPDATE ON soak.plain, soak.parts TO soak_processor, soak_moderators,
	soak_operators, soak_expirer, soak_mover;
RESET ROLE;

-- The provider's answers, and what they mean.
INSERT INTO payout.provider_code VALUES
	('soak', 'ok', 'OK'), ('soak', 'busy', 'GENERAL_ERROR'),
	('soak', 'funds', 'INSUFFICIENT_FUNDS');

-- The row of a key, for the functions below.
CREATE FUNCTION soak.id_of(key text) RETURNS bigint LANGUAGE sql IMMUTABLE
AS $$ SELECT split_part(trim(key, '()'), ',', 1)::bigint $$;

-- API: n new payouts, a tenth of them manual, readied at once.
CREATE FUNCTION soak.create(tbl regclass, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	ids bigint[];
BEGIN
	SELECT array_agg(nextval('soak.ids')) INTO ids FROM generate_series(1, n);
	EXECUTE format('INSERT INTO %s (id, region, amount, autoprocess)'
				   ' SELECT i, CASE WHEN i %% 2 = 0 THEN ''a'' ELSE ''b'' END, i %% 1000, i %% 10 <> 0'
				   ' FROM unnest($1) AS i', tbl) USING ids;
	EXECUTE format('UPDATE %s SET status = ''READY'' WHERE id = ANY ($1)', tbl) USING ids;
END
$$;

-- Processors and operators: claim a batch and walk each payout to its end
-- with the provider's answer, as doc/workflow.md's claim loop does.
CREATE FUNCTION soak.process(tbl regclass, batch int, manual boolean) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	k text;
	n int := 0;
	answer text;
	res payout.resolution;
BEGIN
	FOR k IN SELECT * FROM payout.claim(tbl, batch, manual) LOOP
		n := n + 1;
		EXECUTE format('UPDATE %s SET status = ''PROCESSING'' WHERE id = $1 AND status = ''INVOKING''', tbl)
		USING soak.id_of(k);
		answer := (ARRAY['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'busy', 'funds'])[1 + floor(random() * 8)::int];
		res := payout.classify('soak', answer);
		IF payout.resolution_group(res) = 'OK' THEN
			EXECUTE format('UPDATE %s SET status = ''PROCESSED'', resolution = $2 WHERE id = $1', tbl)
			USING soak.id_of(k), res;
		ELSIF payout.is_final(res) THEN
			EXECUTE format('UPDATE %s SET status = payout.failure_status(status), resolution = $2 WHERE id = $1', tbl)
			USING soak.id_of(k), res;
		ELSE
			-- held, for a moderator
			EXECUTE format('UPDATE %s SET resolution = $2 WHERE id = $1', tbl)
			USING soak.id_of(k), res;
		END IF;
	END LOOP;
	RETURN n;
END
$$;

-- Moderators: doc/workflow.md's moderation queue, oldest first; release (and
-- finish) or end each held payout.
CREATE FUNCTION soak.moderate(tbl regclass, n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	i bigint;
	done int := 0;
BEGIN
	FOR i IN EXECUTE format('SELECT id FROM %s WHERE payout.requires_moderation(status, resolution)'
							' ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED', tbl) USING n LOOP
		done := done + 1;
		IF random() < 0.5 THEN
			EXECUTE format('UPDATE %s SET resolution = ''OK'', status = ''PROCESSED'' WHERE id = $1', tbl) USING i;
		ELSE
			EXECUTE format('UPDATE %s SET resolution = ''DECLINED_ERROR'', status = payout.failure_status(status) WHERE id = $1', tbl) USING i;
		END IF;
	END LOOP;
	RETURN done;
END
$$;

-- Moves READY payouts between the partitions, while processors claim them.
CREATE FUNCTION soak.move(n int) RETURNS void LANGUAGE sql AS $$
	UPDATE soak.parts p SET region = CASE p.region WHEN 'a' THEN 'b' ELSE 'a' END
	FROM (SELECT id, region FROM soak.parts WHERE status = 'READY'
		  ORDER BY id DESC LIMIT n FOR UPDATE SKIP LOCKED) c
	WHERE (p.id, p.region) = (c.id, c.region)
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA soak TO PUBLIC;
