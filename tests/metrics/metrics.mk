# tests/metrics/metrics.mk - /metrics checked by Prometheus's own promtool (included by the
# Makefile).
#
#   make metrics-test    a real parleyd runs a job against the fake backend; its /metrics
#                        is piped to `promtool check metrics`, which must have nothing to say
#
# `make test` runs it. promtool comes with Debian's prometheus package, installed by
# `make deps` when this suite runs, not by `make run`.

PROMTOOL ?= /usr/bin/promtool

EXTRA_TESTS += metrics-test
.PHONY: metrics-test metrics-deps

metrics-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS=prometheus

metrics-test: metrics-deps $(BUILD)/parleyd $(FAKE_BIN) $(BUILD)/tests/check_conventions
	@echo "== promtool check metrics ($(PROMTOOL))"
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) PROMTOOL=$(PROMTOOL) \
		CK_RUN_CASE=metrics $(BUILD)/tests/check_conventions
