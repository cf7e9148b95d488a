# tests/openapi/openapi.mk - the API description, checked (included by the Makefile).
#
#   make openapi-lint    Redocly CLI lints api/openapi.json (recommended rules, all errors)
#   make openapi-test    real answers of every endpoint of build/parleyd (on build/fake-backend)
#                        validated against api/openapi.json with ajv (JSON Schema 2020-12)
#
# `make test` runs both. node and npm come from `make deps` where they are missing (as for
# the browser tests); the npm packages are pinned by package-lock.json and installed into
# tests/openapi/node_modules (ignored by git) only when it is missing or older than the lock
# file. The lint sends no usage data (redocly.yaml, and REDOCLY_TELEMETRY=off).

OPENAPI_DIR := tests/openapi
OPENAPI_STAMP := $(OPENAPI_DIR)/node_modules/.parley-installed
OPENAPI_DEB_PKGS := $(if $(shell command -v node 2>/dev/null),,nodejs) \
	$(if $(shell command -v npm 2>/dev/null),,npm)

EXTRA_TESTS += openapi-lint openapi-test
.PHONY: openapi-lint openapi-test openapi-deps

openapi-deps:
	@$(if $(strip $(OPENAPI_DEB_PKGS)),$(MAKE) --no-print-directory deps DEB_PKGS='$(strip $(OPENAPI_DEB_PKGS))',true)

# one npm ci for both targets, even under make -j (node and npm first: order only)
$(OPENAPI_STAMP): $(OPENAPI_DIR)/package.json $(OPENAPI_DIR)/package-lock.json | openapi-deps
	cd $(OPENAPI_DIR) && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	@touch $@

openapi-lint: $(OPENAPI_STAMP)
	@echo "== $(OPENAPI_DIR): redocly lint api/openapi.json"
	@cd $(OPENAPI_DIR) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		./node_modules/.bin/redocly lint --config redocly.yaml --format stylish ../../api/openapi.json

openapi-test: $(OPENAPI_STAMP) $(BUILD)/parleyd $(FAKE_BIN)
	@echo "== $(OPENAPI_DIR): real answers against api/openapi.json"
	@cd $(OPENAPI_DIR) && PARLEYD=$(abspath $(BUILD)/parleyd) FAKE_BACKEND=$(abspath $(FAKE_BIN)) \
		node --test --test-reporter=spec openapi.test.mjs
