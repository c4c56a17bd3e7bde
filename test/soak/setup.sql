-- test/soak/setup.sql: the soak test's database, made by test/t/010_soak.pl.
-- Roles with doc/security.md's grants, two payout tables (plain, and
-- partitioned by created_at, which its primary key includes), and the
-- workers' steps as functions that run with the caller's rights.
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
CREATE ROLE soak_editor LOGIN;
GRANT INSERT, DELETE ON payout.transition TO soak_editor;

CREATE SCHEMA soak AUTHORIZATION soak_owner;
GRANT USAGE ON SCHEMA soak TO soak_api, soak_processor, soak_moderators,
	soak_operators, soak_expirer;
SET ROLE soak_owner;
CREATE SEQUENCE soak.ids;
CREATE TABLE soak.plain (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Partitioned by created_at, as a table that keeps years of payouts is:
-- a payout moves to the other partition when its created_at crosses the
-- moment the database was set up, and its key, which includes created_at,
-- changes with it.  soak.redated() takes a created_at a day back or
-- forth, across that moment.
CREATE TABLE soak.dated (LIKE soak.plain INCLUDING DEFAULTS,
						 PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
DO $$
BEGIN
	EXECUTE format('CREATE TABLE soak.dated_before PARTITION OF soak.dated'
				   ' FOR VALUES FROM (MINVALUE) TO (%L)', now());
	EXECUTE format('CREATE TABLE soak.dated_after PARTITION OF soak.dated'
				   ' FOR VALUES FROM (%L) TO (MAXVALUE)', now());
	EXECUTE format('CREATE FUNCTION soak.redated(t timestamptz) RETURNS timestamptz'
				   ' LANGUAGE sql IMMUTABLE'
				   ' AS $f$SELECT CASE WHEN t >= %L THEN t - interval ''1 day'''
				   ' ELSE t + interval ''1 day'' END$f$', now());
END
$$;
SELECT payout.attach('soak.plain', notify => true);
SELECT payout.attach('soak.dated', notify => true);
-- The indexes of doc/workflow.md: the work queue, the moderation queue, the
-- operators' queue, expiry.
CREATE INDEX ON soak.plain (id) WHERE status = 'READY';
CREATE INDEX ON soak.dated (id) WHERE status = 'READY';
CREATE INDEX ON soak.plain (resolution, created_at) WHERE payout.requires_moderation(status, resolution);
CREATE INDEX ON soak.dated (resolution, created_at) WHERE payout.requires_moderation(status, resolution);
CREATE INDEX ON soak.plain (created_at) WHERE status = 'READY' AND autoprocess IS NOT TRUE;
CREATE INDEX ON soak.dated (created_at) WHERE status = 'READY' AND autoprocess IS NOT TRUE;
CREATE INDEX ON soak.plain (created_at) WHERE status IN ('CREATED', 'READY', 'PENDING');
CREATE INDEX ON soak.dated (created_at) WHERE status IN ('CREATED', 'READY', 'PENDING');
GRANT USAGE ON SEQUENCE soak.ids TO soak_api;
GRANT SELECT, INSERT, UPDATE ON soak.plain, soak.dated TO soak_api;
GRANT SELECT, UPDATE ON soak.plain, soak.dated TO soak_processor, soak_moderators,
	soak_operators, soak_expirer;
RESET ROLE;

-- The provider's answers, and what they mean.
INSERT INTO payout.provider_code VALUES
	('soak', 'ok', 'OK'), ('soak', 'busy', 'GENERAL_ERROR'),
	('soak', 'funds', 'INSUFFICIENT_FUNDS');

-- The row of a key, for the functions below: the id, which every key of
-- both tables starts with.
CREATE FUNCTION soak.id_of(key text) RETURNS bigint LANGUAGE sql IMMUTABLE
AS $$ SELECT split_part(trim(key, '()'), ',', 1)::bigint $$;

-- API: n new payouts, a tenth of them manual, readied at once.
CREATE FUNCTION soak.create(tbl regclass, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	ids bigint[];
BEGIN
	SELECT array_agg(nextval('soak.ids')) INTO ids FROM generate_series(1, n);
	EXECUTE format('INSERT INTO %s (id, amount, autoprocess)'
				   ' SELECT i, i %% 1000, i %% 10 <> 0'
				   ' FROM unnest($1) AS i', tbl) USING ids;
	EXECUTE format('UPDATE %s SET status = ''READY'' WHERE id = ANY ($1)', tbl) USING ids;
END
$$;

-- API: the n newest READY payouts nobody holds, dated a day back or
-- forth, so that they move to the other partition while processors claim
-- them and the expirer expires them.  A row another transaction moved
-- after the statement's snapshot cannot be locked (40001, "tuple to be
-- locked was already moved to another partition"): as claim() and
-- expire() do, the application tries again with a new snapshot.
CREATE FUNCTION soak.move(tbl regclass, n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	moved int;
BEGIN
	FOR attempt IN 1 .. 10 LOOP
		BEGIN
			EXECUTE format('WITH m AS (UPDATE %1$s p SET created_at = soak.redated(p.created_at)'
						   ' FROM (SELECT id, created_at FROM %1$s WHERE status = ''READY'''
						   ' ORDER BY id DESC LIMIT $1 FOR UPDATE SKIP LOCKED) c'
						   ' WHERE (p.id, p.created_at) = (c.id, c.created_at) RETURNING 1)'
						   ' SELECT count(*) FROM m', tbl) INTO moved USING n;
			RETURN moved;
		EXCEPTION WHEN serialization_failure THEN
			IF attempt = 10 THEN
				RAISE;
			END IF;
		END;
	END LOOP;
END
$$;

-- Processors and operators: claim a batch and walk each payout to its end
-- with the provider's answer, as doc/workflow.md's claim loop does; with
-- moving, one payout in ten moves to the other partition while it is
-- processed.
CREATE FUNCTION soak.process(tbl regclass, batch int, manual boolean,
							 moving boolean DEFAULT false) RETURNS int LANGUAGE plpgsql AS $$
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
		IF moving AND random() < 0.1 THEN
			EXECUTE format('UPDATE %s SET created_at = soak.redated(created_at) WHERE id = $1', tbl)
			USING soak.id_of(k);
		END IF;
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

-- What expire() meets on the partitioned table: the statement of one of
-- its batches (payout.expire_query()), tried once, as expire() did before
-- it tried a batch again, and rolled back.  Records whether a row moved to
-- another partition after the statement's snapshot stopped it (40001):
-- how often expire() has to try again.
CREATE TABLE soak.probes (at timestamptz NOT NULL DEFAULT clock_timestamp(),
						  moved boolean NOT NULL);
GRANT INSERT ON soak.probes TO soak_expirer;
CREATE FUNCTION soak.expire_probe(tbl regclass) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
	moved boolean := false;
BEGIN
	BEGIN
		EXECUTE payout.expire_query(tbl) INTO n USING interval '2 seconds', 1000;
		RAISE SQLSTATE 'SOAK0';			-- undo the batch
	EXCEPTION
		WHEN serialization_failure THEN
			moved := true;
		WHEN SQLSTATE 'SOAK0' THEN
			NULL;
	END;
	INSERT INTO soak.probes (moved) VALUES (moved);
	RETURN moved;
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

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA soak TO PUBLIC;
