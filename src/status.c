/*-------------------------------------------------------------------------
 *
 * status.c
 *	  Label tables of the payout enum types and the functions that
 *	  classify their values.
 *
 * The tables below are expanded from the one list of labels, labels.h,
 * which says what each status and resolution means: whether it is final,
 * which group a resolution belongs to, and its description.  It follows the
 * order of the labels in the CREATE TYPE statements of the install script,
 * which the build of the enum map checks label by label.
 *
 * Enum values reach C as OIDs of pg_enum rows, and those OIDs differ from
 * one database to the next (and change across dump and restore).  So
 * nothing here keeps an OID that it did not look up: each backend maps the
 * labels it knows to this database's OIDs once, through the syscache, and
 * drops the map whenever pg_enum changes.
 *
 * The classification functions are declared IMMUTABLE.  Strictly, they
 * read pg_enum, so they could be STABLE; we declare them IMMUTABLE because
 * the extension's labels never change meaning, and that lets DBAs use them
 * in index expressions and partial-index predicates.
 *
 * src/status.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "payout.h"
#include "status.h"

typedef struct StatusInfo
{
	const char *label;
	bool		final;
	const char *description;
} StatusInfo;

typedef struct ResolutionInfo
{
	const char *label;
	PayoutResolutionGroup group;
	const char *description;
} ResolutionInfo;

static const StatusInfo statuses[PAYOUT_NUM_STATUSES] = {
#define PAYOUT_STATUS(name, final, description) {#name, final, description},
#include "labels.h"
#undef PAYOUT_STATUS
};

static const ResolutionInfo resolutions[PAYOUT_NUM_RESOLUTIONS] = {
#define PAYOUT_RESOLUTION(name, group, description) {#name, PAYOUT_GROUP_##group, description},
#include "labels.h"
#undef PAYOUT_RESOLUTION
};

static const char *const group_labels[] = {"OK", "ERROR", "FATAL_ERROR"};

#define PAYOUT_NUM_GROUPS lengthof(group_labels)
#define PAYOUT_MAX_LABELS PAYOUT_NUM_RESOLUTIONS

/*
 * One enum type's map from label index to this database's pg_enum OID.
 */
typedef struct PayoutEnumMap
{
	const char *typname;		/* type name in schema payout */
	int			nlabels;
	bool		valid;
	Oid			typid;
	Oid			oids[PAYOUT_MAX_LABELS];
} PayoutEnumMap;

static PayoutEnumMap enum_maps[] = {
	[PAYOUT_ENUM_STATUS] = {"status", PAYOUT_NUM_STATUSES},
	[PAYOUT_ENUM_RESOLUTION] = {"resolution", PAYOUT_NUM_RESOLUTIONS},
	[PAYOUT_ENUM_RESOLUTION_GROUP] = {"resolution_group", PAYOUT_NUM_GROUPS},
};

/* Bumped by every pg_enum invalidation; see LoadEnumMap. */
static uint64 enum_invalidations = 0;

static const char *EnumLabel(PayoutEnumKind kind, int index);
static void LoadEnumMap(PayoutEnumKind kind);
static void EnumInvalidationCallback(Datum arg, int cacheid, uint32 hashvalue);

/*
 * EnumLabel
 *		The label at position index of an enum type, from the tables above.
 */
static const char *
EnumLabel(PayoutEnumKind kind, int index)
{
	switch (kind)
	{
		case PAYOUT_ENUM_STATUS:
			return statuses[index].label;
		case PAYOUT_ENUM_RESOLUTION:
			return resolutions[index].label;
		case PAYOUT_ENUM_RESOLUTION_GROUP:
			return group_labels[index];
	}
	return NULL;				/* keep compiler quiet */
}

/*
 * EnumInvalidationCallback
 *		Forget every enum map when pg_enum changes.
 *
 * It may run inside any catalog access, including while a map is being
 * built, so it only sets flags: no catalog access, no allocation, no error.
 * pg_enum changes only when an enum type is created, altered or dropped,
 * which is rare, so forgetting all three maps costs nothing worth saving.
 */
static void
EnumInvalidationCallback(Datum arg, int cacheid, uint32 hashvalue)
{
	int			i;

	enum_invalidations++;
	for (i = 0; i < lengthof(enum_maps); i++)
		enum_maps[i].valid = false;
}

/*
 * PayoutRegisterEnumCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterEnumCallbacks(void)
{
	CacheRegisterSyscacheCallback(ENUMOID, EnumInvalidationCallback, (Datum) 0);
}

/*
 * LoadEnumMap
 *		Look up this database's OID of every label of one enum type.
 *
 * The type is found by its name in schema payout, never through the
 * search_path.  Lookups go through the syscache, which may process
 * invalidation messages; if one for pg_enum arrives while we build, the
 * callback bumps enum_invalidations and the map we store is marked stale,
 * so the next caller builds it again (the "born stale" case of inval.c).
 * An error half-way leaves the old map invalid, never half-filled.
 */
static void
LoadEnumMap(PayoutEnumKind kind)
{
	PayoutEnumMap *map = &enum_maps[kind];
	uint64		generation = enum_invalidations;
	Oid			oids[PAYOUT_MAX_LABELS];
	Oid			nspid;
	Oid			typid;
	int			i;

	nspid = get_namespace_oid(PAYOUT_SCHEMA, false);
	typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
							CStringGetDatum(map->typname),
							ObjectIdGetDatum(nspid));
	if (!OidIsValid(typid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type \"%s.%s\" does not exist",
						PAYOUT_SCHEMA, map->typname),
				 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));

	for (i = 0; i < map->nlabels; i++)
	{
		const char *label = EnumLabel(kind, i);

		oids[i] = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid,
								  ObjectIdGetDatum(typid),
								  CStringGetDatum(label));
		if (!OidIsValid(oids[i]))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("type \"%s.%s\" has no label \"%s\"",
							PAYOUT_SCHEMA, map->typname, label),
					 errdetail("The labels of the extension's enum types must not be renamed or removed."),
					 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));
	}

	memcpy(map->oids, oids, sizeof(Oid) * map->nlabels);
	map->typid = typid;
	map->valid = (generation == enum_invalidations);
}

/*
 * PayoutEnumTypeOid
 *		This database's OID of one of the extension's enum types.
 */
Oid
PayoutEnumTypeOid(PayoutEnumKind kind)
{
	if (!enum_maps[kind].valid)
		LoadEnumMap(kind);
	return enum_maps[kind].typid;
}

/*
 * PayoutEnumIndex
 *		Position of an enum value (a pg_enum OID) among the labels C knows.
 *
 * This is on the trigger's per-row path, so it must not allocate: a scan of
 * at most 27 OIDs in a static array.  A value whose label C does not know
 * (a label a DBA added with ALTER TYPE ... ADD VALUE) is an error: the
 * extension cannot tell whether it is final, so it must not guess.
 */
int
PayoutEnumIndex(PayoutEnumKind kind, Oid value)
{
	PayoutEnumMap *map = &enum_maps[kind];
	int			i;

	if (!map->valid)
		LoadEnumMap(kind);

	for (i = 0; i < map->nlabels; i++)
	{
		if (map->oids[i] == value)
			return i;
	}

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unsupported label \"%s\" of type \"%s.%s\"",
					DatumGetCString(DirectFunctionCall1(enum_out,
														ObjectIdGetDatum(value))),
					PAYOUT_SCHEMA, map->typname),
			 errdetail("The extension only knows the labels it created; labels added with ALTER TYPE ... ADD VALUE are not supported."),
			 errhint("Do not store such a label in a payout table or in payout.transition.")));
	return -1;					/* keep compiler quiet */
}

/*
 * PayoutEnumOid
 *		This database's OID of the label at a position.
 */
Oid
PayoutEnumOid(PayoutEnumKind kind, int index)
{
	PayoutEnumMap *map = &enum_maps[kind];

	Assert(index >= 0 && index < map->nlabels);
	if (!map->valid)
		LoadEnumMap(kind);
	return map->oids[index];
}

/*
 * PayoutStatusLabel
 *		The label of a status index.
 */
const char *
PayoutStatusLabel(int status)
{
	Assert(status >= 0 && status < PAYOUT_NUM_STATUSES);
	return statuses[status].label;
}

/*
 * PayoutStatusIsFinal
 *		Whether a status index is final (the seed marks nine).
 */
bool
PayoutStatusIsFinal(int status)
{
	Assert(status >= 0 && status < PAYOUT_NUM_STATUSES);
	return statuses[status].final;
}

/*
 * PayoutFailureStatus
 *		The final status a payout goes to when it fails at the stage of
 *		"status" (PAYOUT_INITIAL: a new row), or PAYOUT_NO_STATUS where
 *		there is none: a final status, or a processed payout, which cannot
 *		fail any more (its revocation can).
 *
 * Every pair here is an edge of the default graph.
 */
int
PayoutFailureStatus(int status)
{
	switch (status)
	{
		case PAYOUT_INITIAL:
			return PAYOUT_STATUS_CREATE_FAILED;
		case PAYOUT_STATUS_CREATED:
		case PAYOUT_STATUS_READY:
			return PAYOUT_STATUS_TERMINATED;
		case PAYOUT_STATUS_INVOKING:
			return PAYOUT_STATUS_INVOKE_FAILED;
		case PAYOUT_STATUS_PROCESSING:
		case PAYOUT_STATUS_PENDING:
			return PAYOUT_STATUS_PROCESS_FAILED;
		case PAYOUT_STATUS_CANCELLING:
			return PAYOUT_STATUS_CANCEL_FAILED;
		case PAYOUT_STATUS_REVOKING:
			return PAYOUT_STATUS_REVOKE_FAILED;
		default:
			return PAYOUT_NO_STATUS;
	}
}

/*
 * PayoutResolutionLabel
 *		The label of a resolution index.
 */
const char *
PayoutResolutionLabel(int resolution)
{
	Assert(resolution >= 0 && resolution < PAYOUT_NUM_RESOLUTIONS);
	return resolutions[resolution].label;
}

/*
 * PayoutResolutionGroupOf
 *		The group of a resolution index.
 */
PayoutResolutionGroup
PayoutResolutionGroupOf(int resolution)
{
	Assert(resolution >= 0 && resolution < PAYOUT_NUM_RESOLUTIONS);
	return resolutions[resolution].group;
}

/*
 * payout.is_final(payout.status): true for the statuses the payout cannot
 * leave.
 */
PG_FUNCTION_INFO_V1(payout_is_final_status);
Datum
payout_is_final_status(PG_FUNCTION_ARGS)
{
	int			status = PayoutEnumIndex(PAYOUT_ENUM_STATUS, PG_GETARG_OID(0));

	PG_RETURN_BOOL(statuses[status].final);
}

/*
 * payout.is_final(payout.resolution): true for the FATAL_ERROR group, whose
 * resolutions end the payout.
 */
PG_FUNCTION_INFO_V1(payout_is_final_resolution);
Datum
payout_is_final_resolution(PG_FUNCTION_ARGS)
{
	int			resolution = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
											 PG_GETARG_OID(0));

	PG_RETURN_BOOL(resolutions[resolution].group == PAYOUT_GROUP_FATAL_ERROR);
}

/*
 * payout.resolution_group(payout.resolution)
 */
PG_FUNCTION_INFO_V1(payout_resolution_group);
Datum
payout_resolution_group(PG_FUNCTION_ARGS)
{
	int			resolution = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
											 PG_GETARG_OID(0));

	PG_RETURN_OID(PayoutEnumOid(PAYOUT_ENUM_RESOLUTION_GROUP,
								resolutions[resolution].group));
}

/*
 * payout.requires_moderation(payout.resolution): true for the ERROR group.
 * Such a resolution is not final: a moderator decides how the payout goes
 * on, and until then the processor must not touch it.
 */
PG_FUNCTION_INFO_V1(payout_requires_moderation);
Datum
payout_requires_moderation(PG_FUNCTION_ARGS)
{
	int			resolution = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
											 PG_GETARG_OID(0));

	PG_RETURN_BOOL(resolutions[resolution].group == PAYOUT_GROUP_ERROR);
}

/*
 * payout.requires_moderation(payout.status, payout.resolution): whether a
 * payout is held for moderation: its resolution is in the ERROR group and
 * its status is not final.  Not strict, so that it can stand in a
 * partial-index predicate and a WHERE clause without IS TRUE: no
 * resolution means no hold, and a missing status is not final.
 */
PG_FUNCTION_INFO_V1(payout_requires_moderation_payout);
Datum
payout_requires_moderation_payout(PG_FUNCTION_ARGS)
{
	int			resolution;

	if (PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	resolution = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION, PG_GETARG_OID(1));
	if (resolutions[resolution].group != PAYOUT_GROUP_ERROR)
		PG_RETURN_BOOL(false);
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(!statuses[PayoutEnumIndex(PAYOUT_ENUM_STATUS,
											 PG_GETARG_OID(0))].final);
}

/*
 * payout.failure_status(payout.status): where a payout goes when it fails
 * at this stage; NULL stands for a new row.  Not strict for that reason.
 */
PG_FUNCTION_INFO_V1(payout_failure_status);
Datum
payout_failure_status(PG_FUNCTION_ARGS)
{
	int			status;
	int			failure;

	status = PG_ARGISNULL(0) ? PAYOUT_INITIAL :
		PayoutEnumIndex(PAYOUT_ENUM_STATUS, PG_GETARG_OID(0));
	failure = PayoutFailureStatus(status);
	if (failure == PAYOUT_NO_STATUS)
		PG_RETURN_NULL();
	PG_RETURN_OID(PayoutEnumOid(PAYOUT_ENUM_STATUS, failure));
}

/*
 * payout.description(payout.status)
 */
PG_FUNCTION_INFO_V1(payout_description_status);
Datum
payout_description_status(PG_FUNCTION_ARGS)
{
	int			status = PayoutEnumIndex(PAYOUT_ENUM_STATUS, PG_GETARG_OID(0));

	PG_RETURN_TEXT_P(cstring_to_text(statuses[status].description));
}

/*
 * payout.description(payout.resolution)
 */
PG_FUNCTION_INFO_V1(payout_description_resolution);
Datum
payout_description_resolution(PG_FUNCTION_ARGS)
{
	int			resolution = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
											 PG_GETARG_OID(0));

	PG_RETURN_TEXT_P(cstring_to_text(resolutions[resolution].description));
}
