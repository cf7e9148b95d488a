# tests/sse/sse.mk - a job's event stream read by a spec-compliant EventSource client
# (included by the Makefile).
#
#   make sse-test    the npm eventsource package, through a TCP proxy that cuts the
#                    connection once mid-job, against build/parleyd and build/fake-backend:
#                    it reconnects with Last-Event-ID, then rests after job_finished (204)
#
# `make test` runs it. Its Debian packages (nodejs and npm, only where node or npm is
# missing) are installed by `make deps` when this suite runs. The npm packages are pinned
# by package-lock.json and installed into tests/sse/node_modules (ignored by git) only
# when it is missing or older than the lock file.

SSE_DIR := tests/sse
SSE_STAMP := $(SSE_DIR)/node_modules/.parley-installed
SSE_DEB_PKGS := $(if $(shell command -v node 2>/dev/null),,nodejs) \
	$(if $(shell command -v npm 2>/dev/null),,npm)

EXTRA_TESTS += sse-test
.PHONY: sse-test sse-deps

sse-deps:
	@$(if $(strip $(SSE_DEB_PKGS)),$(MAKE) --no-print-directory deps DEB_PKGS='$(strip $(SSE_DEB_PKGS))',true)

$(SSE_STAMP): $(SSE_DIR)/package.json $(SSE_DIR)/package-lock.json
	cd $(SSE_DIR) && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	@touch $@

sse-test: sse-deps $(BUILD)/parleyd $(FAKE_BIN)
	@$(MAKE) --no-print-directory $(SSE_STAMP)
	@echo "== $(SSE_DIR) (eventsource)"
	@cd $(SSE_DIR) && PARLEYD=$(abspath $(BUILD)/parleyd) FAKE_BACKEND=$(abspath $(FAKE_BIN)) \
		node --test --test-reporter=spec events.test.mjs
