# tests/browser/browser.mk - the dashboard in a real browser (included by the Makefile).
#
#   make browser-test    Debian's headless Chromium, driven by playwright-core, against
#                        build/parleyd and build/fake-backend; a screenshot of the job page
#                        lands in build/artifacts/job-page.png
#
# `make test` runs it. Its Debian packages (chromium; nodejs and npm only where node or npm
# is missing: a NodeSource nodejs carries npm and conflicts with Debian's npm package) are
# installed by `make deps` when this suite runs, not by `make run`, which needs no browser.
# The npm packages are pinned by package-lock.json and installed into
# tests/browser/node_modules (ignored by git) only when it is missing or older than the lock
# file; playwright-core downloads no browser.

BROWSER_DIR := tests/browser
BROWSER_STAMP := $(BROWSER_DIR)/node_modules/.parley-installed
CHROMIUM ?= /usr/bin/chromium
BROWSER_DEB_PKGS := chromium $(if $(shell command -v node 2>/dev/null),,nodejs) \
	$(if $(shell command -v npm 2>/dev/null),,npm)

EXTRA_TESTS += browser-test
.PHONY: browser-test browser-deps

browser-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS='$(strip $(BROWSER_DEB_PKGS))'

$(BROWSER_STAMP): $(BROWSER_DIR)/package.json $(BROWSER_DIR)/package-lock.json
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --prefer-offline --loglevel=error
	@touch $@

browser-test: browser-deps $(BUILD)/parleyd $(FAKE_BIN)
	@$(MAKE) --no-print-directory $(BROWSER_STAMP)
	@echo "== $(BROWSER_DIR) (chromium $(CHROMIUM))"
	@cd $(BROWSER_DIR) && PARLEYD=$(abspath $(BUILD)/parleyd) FAKE_BACKEND=$(abspath $(FAKE_BIN)) \
		CHROMIUM=$(CHROMIUM) ARTIFACTS=$(abspath $(BUILD)/artifacts) \
		node --test --test-reporter=spec dashboard.test.mjs hostile.test.mjs
