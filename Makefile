# tweetlake: a streaming medallion pipeline inside PostgreSQL (PGXS build)
EXTENSION    = tweetlake
MODULE_big   = tweetlake
EXTVERSION   = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
PGFILEDESC   = "tweetlake - Kafka to bronze/silver/gold inside PostgreSQL"

# The extension's SQL lives in schema/: the current version's install script is built from
# the unversioned sources in schema/sources/ (in file-name order); released install scripts
# and every upgrade script tweetlake--A--B.sql are kept as shipped.
DATA_built   = schema/$(EXTENSION)--$(EXTVERSION).sql
DATA         = $(filter-out $(DATA_built),$(wildcard schema/$(EXTENSION)--*.sql))
EXTRA_CLEAN += $(DATA_built)

# pg_regress suites: sql/ + expected/
REGRESS      = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --encoding=UTF8 --no-locale

PG_CONFIG   ?= pg_config
PKG_CONFIG  ?= pkg-config
PG_CPPFLAGS  = $(shell $(PKG_CONFIG) --cflags json-c rdkafka 2>/dev/null) -Isrc
SHLIB_LINK   = $(shell $(PKG_CONFIG) --libs json-c rdkafka 2>/dev/null)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): $(sort $(wildcard schema/sources/*.sql))
	cat $^ > $@

# ---------------------------------------------------------------------------
# The two README commands and their helpers
# ---------------------------------------------------------------------------
.PHONY: deps run stop test bench

deps:
	bash scripts/install-deps.sh

# make run SUPERSET=1: the Superset dashboards too (scripts/superset.sh)
run:
	bash scripts/install-deps.sh $(if $(filter 1,$(SUPERSET)),--superset)
	$(MAKE) all
	$(MAKE) install
	SUPERSET=$(SUPERSET) bash scripts/run.sh start

stop:
	bash scripts/run.sh stop

test:
	bash scripts/install-deps.sh --test
	$(MAKE) all
	$(MAKE) install
	bash scripts/test.sh

bench: deps
	$(MAKE) all
	$(MAKE) install
	bash bench/run.sh

# docker/ for real, alone: the images built with podman and the stack run with podman-compose
# (scripts/compose-test.sh, as root; part of make test, SKIP_COMPOSE=1 leaves it out there).
.PHONY: test-compose
test-compose:
	bash scripts/compose-test.sh

# The Debian package for real, as root: postgresql-15-tweetlake built by dpkg-buildpackage from
# debian/ in a scratch copy (build/deb), installed, the pg_regress suites run against it, removed,
# and `make install` run again to put the working build back (scripts/deb-test.sh; part of
# make test, SKIP_DEB=1 leaves it out there).
.PHONY: test-deb
test-deb:
	bash scripts/deb-test.sh

# The extension built with AddressSanitizer and UBSan, run through the pg_regress suites,
# t/004_fuzz.pl and t/002_exactly_once.pl on a private copy of PostgreSQL in build/sanitize
# (scripts/sanitize.sh; run before each release).  Leaves the working tree's build alone.
.PHONY: sanitize
sanitize: deps
	bash scripts/sanitize.sh

# Test aid: the mock cluster as its own process (see test/mock_broker.c)
test/mock_broker: test/mock_broker.c
	$(CC) -O2 -Wall -o $@ $< $(shell $(PKG_CONFIG) --cflags --libs rdkafka)
EXTRA_CLEAN += test/mock_broker

# pgindent-style formatting of src/*.c and src/*.h (scripts/indent.sh --check only shows the diff)
.PHONY: indent
indent:
	bash scripts/indent.sh
