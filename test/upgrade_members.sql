-- Included by sql/upgrade.sql in each database it compares: every member
-- of the extension, with its definition, comment and ACL, and the
-- triggers, constraints, indexes, columns and initial privileges of its
-- objects, one line each.
CREATE FUNCTION pg_temp.members()
RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
		   || coalesce(' | ' || CASE d.classid
				WHEN 'pg_proc'::regclass THEN
					(SELECT md5(pg_get_functiondef(p.oid)) || ' ' || coalesce(p.proacl::text, '-')
					 FROM pg_proc p WHERE p.oid = d.objid)
				WHEN 'pg_class'::regclass THEN
					(SELECT c.relkind::text || ' ' || c.relreplident::text || ' ' || coalesce(c.relacl::text, '-')
					 FROM pg_class c WHERE c.oid = d.objid)
				WHEN 'pg_event_trigger'::regclass THEN
					(SELECT e.evtevent::text || ' ' || e.evtenabled::text || ' ' || e.evttags::text
					 FROM pg_event_trigger e WHERE e.oid = d.objid)
				END, '')
		   || coalesce(' | ' || obj_description(d.objid, d.classid::regclass::name), '')
	FROM pg_depend d
	WHERE d.refclassid = 'pg_extension'::regclass
	  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'payout')
	  AND d.deptype = 'e'
	UNION ALL
	SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass || ' '
		   || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid)
	FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	WHERE c.relnamespace = 'payout'::regnamespace
	UNION ALL
	SELECT 'constraint ' || con.conname || ' on ' || con.conrelid::regclass || ' '
		   || pg_get_constraintdef(con.oid)
	FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
	WHERE c.relnamespace = 'payout'::regnamespace
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid)
	FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	WHERE c.relnamespace = 'payout'::regnamespace
	UNION ALL
	SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' '
		   || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull
		   || coalesce(' ' || pg_get_expr(ad.adbin, ad.adrelid), '')
		   || coalesce(' | ' || col_description(a.attrelid, a.attnum), '')
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		 LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	WHERE c.relnamespace = 'payout'::regnamespace AND a.attnum > 0
	  AND NOT a.attisdropped
	UNION ALL
	SELECT 'init privs ' || pg_describe_object(ip.classoid, ip.objoid, ip.objsubid)
		   || ' ' || ip.privtype::text || ' ' || ip.initprivs::text
	FROM pg_init_privs ip
	WHERE (ip.classoid = 'pg_proc'::regclass
		   AND ip.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'payout'::regnamespace))
	   OR (ip.classoid = 'pg_class'::regclass
		   AND ip.objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'payout'::regnamespace))
	   OR (ip.classoid = 'pg_namespace'::regclass AND ip.objoid = 'payout'::regnamespace)
$$;
