# streaming: PGXS build.  `make test` and `make demo` install what is
# missing (they work on a fresh machine where pg_config does not exist yet).

MODULE_big = streaming
EXTENSION  = streaming
DATA       = sql/streaming--0.1.sql sql/streaming--0.1--0.2.sql sql/streaming--0.2--0.3.sql sql/streaming--0.3--0.4.sql sql/streaming--0.4--0.5.sql
PGFILEDESC = "streaming - continuous incremental queries"

OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))

PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK += -lrdkafka

# pg_regress scripts are sql/*.sql except the extension script itself
REGRESS = $(sort $(basename $(notdir $(filter-out sql/streaming--%,$(wildcard sql/*.sql)))))
REGRESS_OPTS = --inputdir=$(srcdir) --outputdir=$(CURDIR)/results

# isolation specs (specs/*.spec vs expected/*.out): concurrent sessions
ISOLATION = $(sort $(basename $(notdir $(wildcard specs/*.spec))))

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(PGXS),)
include $(PGXS)
else
all install:
	@echo "pg_config not found; 'make test' and 'make demo' install the build dependencies first" >&2
	@exit 1
endif

.PHONY: test demo bench
test:
	bash test/run_tests.sh

demo:
	bash test/demo.sh

bench:
	bash test/bench/kafka.sh
	bash test/bench/nexmark.sh
	bash test/bench/latency.sh
	bash test/bench/table_latency.sh
	bash test/bench/incremental.sh
	bash test/bench/join.sh
	bash test/bench/pool.sh
	bash test/bench/batch_overhead.sh
	bash test/bench/soak.sh
