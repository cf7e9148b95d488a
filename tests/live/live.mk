# tests/live/live.mk - the live suite: parleyd against a real llama.cpp llama-server.
#
#   make live                      provision llama-server (built once, cached in ~/.cache/parley),
#                                  then run build/tests/check_live against it
#   make test-ollama [OLLAMA_HOST=http://HOST:11434] [OLLAMA_MODEL=gemma3:1b]
#                                  the same suite against a real Ollama (opt-in)
#
# `make test` runs `live`. When this machine cannot provision llama-server (no network, no
# npm, not root: tests/live/llama-server.sh exits 77) the suite is skipped with one SKIP line,
# except in CI (CI=true), where that is a failure: a CI run that skips it has not tested the
# product.

LIVE_SH := tests/live/llama-server.sh
LIVE_BIN := $(BUILD)/tests/check_live
OLLAMA_MODEL ?= gemma3:1b

EXTRA_TESTS += live
.PHONY: live test-ollama

# What building llama-server needs on a fresh Debian 12 (tests/live/llama-server.sh), while it
# is not cached yet, and only where `make deps` may install it: as root or in CI. Elsewhere the
# script names what is missing and the suite is skipped. As in browser.mk, nodejs and npm only
# where node or npm is missing (NodeSource's nodejs carries npm and conflicts with Debian's).
LIVE_CACHED := $(wildcard $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/parley/llama-server-$(shell \
	$(LIVE_SH) version 2>/dev/null)/bin/llama-server)
ifeq ($(LIVE_CACHED),)
ifneq ($(filter true,$(CI))$(filter 0,$(shell id -u)),)
DEB_PKGS += $(foreach t,cmake git g++ make,$(if $(shell command -v $(t) 2>/dev/null),,$(t))) \
	$(if $(shell command -v node 2>/dev/null),,nodejs) \
	$(if $(shell command -v npm 2>/dev/null),,npm)
endif
endif

$(LIVE_BIN): $(BUILD)/obj/tests/live/check_live.o $(HARNESS_OBJ) $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

# The suite measures timings, so in `make test` (make -j) it runs after the other suites that
# are goals, not beside them. (Suites whose .mk sorts after this one are not covered.)
live: $(LIVE_BIN) $(BUILD)/parleyd $(FAKE_BIN) | $(filter-out live,$(filter unit integration \
	$(EXTRA_TESTS),$(MAKECMDGOALS)))
	@bin=$$($(LIVE_SH) path) && rc=0 || rc=$$?; \
	if [ $$rc = 77 ]; then \
		if [ "$(CI)" = true ]; then \
			echo "FAIL live: cannot provision llama-server in CI (see above); CI must run the live tests"; \
			exit 1; \
		fi; \
		echo "SKIP live: cannot provision llama-server on this machine (see above); the live tests did not run"; \
		exit 0; \
	fi; \
	[ $$rc = 0 ] || exit $$rc; \
	echo "== $(LIVE_BIN) (llama-server $$bin)"; \
	PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) LLAMA_SERVER=$$bin \
		PARLEY_LIVE_KIND=llama-server \
		$(LIVE_BIN) && rc=0 || rc=$$?; \
	if [ $$rc = 77 ]; then \
		if [ "$(CI)" = true ]; then echo "FAIL live: the suite cannot run in CI (see above)"; exit 1; fi; \
		echo "SKIP live: the suite cannot run on this machine (see above)"; exit 0; \
	fi; \
	exit $$rc

test-ollama: $(LIVE_BIN) $(BUILD)/parleyd
	@host="$${OLLAMA_HOST:-http://127.0.0.1:11434}"; \
	if ! curl -sf -m 3 -o /dev/null "$$host/api/version"; then \
		echo "test-ollama: no Ollama answers at $$host; set OLLAMA_HOST=http://HOST:11434"; \
		exit 1; \
	fi; \
	echo "== $(LIVE_BIN) (Ollama $$host, model $(OLLAMA_MODEL))"; \
	PARLEYD=$(BUILD)/parleyd PARLEY_LIVE_KIND=ollama OLLAMA_HOST="$$host" \
		OLLAMA_MODEL="$(OLLAMA_MODEL)" $(LIVE_BIN)
