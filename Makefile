# Makefile for the payout extension (PGXS)

EXTENSION = payout
MODULE_big = payout
OBJS = \
	src/citus.o \
	src/history.o \
	src/history_buffer.o \
	src/key.o \
	src/ledger.o \
	src/move.o \
	src/payout.o \
	src/provider.o \
	src/query_state.o \
	src/rules.o \
	src/status.o \
	src/table_cache.o \
	src/table_state.o \
	src/transition.o \
	src/transition_cache.o
PGFILEDESC = "payout - payout status workflow enforced in the database"

DATA = payout--1.0.sql payout--1.1.sql payout--1.2.sql $(wildcard payout--*--*.sql)

# security runs first and creates the extension itself, as do the others:
# no --load-extension here.
REGRESS = security types classify transition graph trigger_misuse dml hostile moves \
	resolution autoprocess provider claim_expire history ledger graph_picture recreated_triggers \
	scale upgrade applications identity conditions
REGRESS_OPTS = --inputdir=. --outputdir=.

ISOLATION = graph_invalidation graph_statement claim notify race manual move_race \
	upsert_race ledger
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso --load-extension=payout

TAP_TESTS = 1
PROVE_TESTS = $(wildcard test/t/*.pl)

EXTRA_CLEAN = output_iso tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The benchmark is not a test: it starts its own cluster and prints
# timings and ratios; see test/bench/run.
bench:
	test/bench/run

# The same kind of figures on a Citus cluster; see test/bench/citus.
bench-citus:
	test/bench/citus

# History against the released 1.1's, both builds side by side; it builds
# 1.1 from the git history.  See test/bench/compare.
bench-compare:
	test/bench/compare

# The soak test, for as long as SOAK_SECONDS says (default 10 minutes per
# table); the test run has a short one.  As root or with sudo.
soak:
	test/soak/run

# The suites on an assert-enabled PostgreSQL (test/debug-build makes it
# once), as PostgreSQL's buildfarm runs its own: with debug_discard_caches
# = 1 (check-debug: the suites of test/debug/, then every suite with the
# setting for the whole server, for hours) and under Valgrind Memcheck
# (check-valgrind, about an hour).  DEBUG_REGRESS and DEBUG_ISOLATION
# choose suites (default: all).  test/run-tests runs a part of them; see
# doc/testing.md.  As root or with sudo.
check-debug:
	test/run-debug discard clobber

check-valgrind:
	test/run-debug valgrind

.PHONY: bench bench-citus bench-compare soak check-debug check-valgrind
