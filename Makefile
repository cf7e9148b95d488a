# parley - non-recursive Makefile. Outputs go to build/.
#
#   make deps     install missing Debian packages (as root)
#   make          build build/parleyd
#   make run      build and start parleyd on 127.0.0.1:8080
#   make test     build and run every test suite
#   make format-check  fail when a source file differs from what clang-format makes of it

VERSION := 0.1.0
BUILD   ?= build
CC      ?= cc
PKGS    := libmicrohttpd jansson libcurl sqlite3 libcmark zlib
DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev \
	    libsqlite3-dev check libsubunit-dev curl libcmark-dev zlib1g-dev \
	    clang-format
# The git commit built, for parley_build_info; "unknown" outside a git checkout.
COMMIT  := $(or $(shell git rev-parse --short=12 HEAD 2>/dev/null),unknown)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
	-Wcast-qual -Wsign-compare -Wformat=2 -Wno-format-nonliteral
ifeq ($(CI),true)
WERROR ?= -Werror
endif
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DPARLEY_VERSION='"$(VERSION)"' -I. -I$(BUILD)/gen \
	$(WARN) $(WERROR) $(CFLAGS) $(EXTRA_CFLAGS) \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

LIB_SRC := $(sort $(wildcard db/*.c) $(filter-out server/main.c,$(wildcard server/*.c)) $(wildcard api/*.c))
GEN_SRC := $(BUILD)/gen/migrations.c $(BUILD)/gen/assets.c $(BUILD)/gen/openapi.c
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(GEN_SRC:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)
MIGRATIONS := $(sort $(wildcard migrations/*.sql))
ASSETS  := $(sort $(wildcard api/assets/*))

UNIT_SRC  := $(sort $(wildcard tests/unit/check_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
INTEG_SRC := $(sort $(wildcard tests/integration/check_*.c))
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/%)
HARNESS_OBJ := $(BUILD)/obj/tests/harness.o
FAKE_SRC  := $(sort $(wildcard tests/fake/*.c))
FAKE_BIN  := $(BUILD)/fake-backend

.PHONY: all deps run test unit integration live clean format format-check

# Extra targets of the test suites (browser, fuzz, crash, bench, live) live beside them.
-include $(wildcard tests/*/*.mk)
.DEFAULT_GOAL := all
# Objects of the test programs are kept between runs.
.SECONDARY:

all: $(BUILD)/parleyd

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "parley: installing missing packages:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >&2; \
	elif command -v sudo >/dev/null; then \
		(sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >&2; \
	else \
		echo "parley: these Debian packages are missing:$$missing"; \
		echo "parley: run 'apt-get install$$missing' as root, then run make again"; exit 1; \
	fi

$(BUILD)/gen/migrations.c: $(MIGRATIONS) tests/tools/embed.sh | $(BUILD)/gen
	sh tests/tools/embed.sh migrations db/embedded.h $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/assets.c: $(ASSETS) tests/tools/embed.sh | $(BUILD)/gen
	sh tests/tools/embed.sh assets api/assets.h $(ASSETS) > $@.tmp && mv $@.tmp $@

# Rewritten only when the commit changes, so a new commit rebuilds one object.
$(BUILD)/gen/build_info.h: FORCE | $(BUILD)/gen
	@echo '#define PARLEY_COMMIT "$(COMMIT)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/obj/server/metrics.o $(BUILD)/fuzz/obj/server/metrics.o: $(BUILD)/gen/build_info.h
.PHONY: FORCE
FORCE:

# the API's OpenAPI description, served at GET /v1/openapi.json
$(BUILD)/gen/openapi.c: api/openapi.json tests/tools/embed.sh | $(BUILD)/gen
	sh tests/tools/embed.sh openapi api/assets.h api/openapi.json > $@.tmp && mv $@.tmp $@

$(BUILD)/gen:
	mkdir -p $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(BUILD)/libparley.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/parleyd: $(BUILD)/obj/server/main.o $(BUILD)/libparley.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/check_%: $(BUILD)/obj/tests/unit/check_%.o $(HARNESS_OBJ) $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

$(BUILD)/tests/check_%: $(BUILD)/obj/tests/integration/check_%.o $(HARNESS_OBJ) $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

$(FAKE_BIN): $(FAKE_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libparley.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

run: deps $(BUILD)/parleyd
	./$(BUILD)/parleyd

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integration: $(INTEG_BIN) $(BUILD)/parleyd $(FAKE_BIN)
	@set -e; for t in $(INTEG_BIN); do echo "== $$t"; \
		PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) $$t; done

# Suites in tests/*/*.mk add their targets to EXTRA_TESTS.
test: deps
	@$(MAKE) --no-print-directory all unit integration $(EXTRA_TESTS)

# The C sources, formatted by .clang-format at the root.
FORMAT_SRC = $(wildcard */*.c */*.h tests/*/*.c tests/*/*.h)

format:
	clang-format -i $(FORMAT_SRC)

format-check: deps
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
