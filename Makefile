# tweetlake: a streaming medallion pipeline inside PostgreSQL (PGXS build)
EXTENSION    = tweetlake
MODULE_big   = tweetlake
EXTVERSION   = 0.1.0
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA         = $(wildcard sql/$(EXTENSION)--*.sql)
PGFILEDESC   = "tweetlake - Kafka to bronze/silver/gold inside PostgreSQL"

# pg_regress suites live in sql/ + expected/; the install script sits beside them
REGRESS      = $(sort $(basename $(notdir $(filter-out sql/$(EXTENSION)--%,$(wildcard sql/*.sql)))))

PG_CONFIG   ?= pg_config
PKG_CONFIG  ?= pkg-config
PG_CPPFLAGS  = $(shell $(PKG_CONFIG) --cflags json-c rdkafka 2>/dev/null) -Isrc
SHLIB_LINK   = $(shell $(PKG_CONFIG) --libs json-c rdkafka 2>/dev/null)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

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

# Test aid: the mock cluster as its own process (see test/mock_broker.c)
test/mock_broker: test/mock_broker.c
	$(CC) -O2 -Wall -o $@ $< $(shell $(PKG_CONFIG) --cflags --libs rdkafka)
EXTRA_CLEAN += test/mock_broker
