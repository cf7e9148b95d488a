# tests/deploy/deploy.mk - deploy/parleyd.service checked by systemd's own tools (included
# by the Makefile).
#
#   make unit-test    `systemd-analyze verify` on the unit, and `systemd-analyze security`
#                     with an exposure threshold of 2.5 (the tool's scale is ten times that)
#
# `make test` runs it. Both work on the unit file alone, without a running systemd; the
# Debian package systemd is installed by `make deps` when this suite runs. verify wants
# ExecStart's binary to exist, so it reads a copy of the unit whose ExecStart is the one
# just built; every other line is the unit's own.

UNIT := deploy/parleyd.service
UNIT_MAX_EXPOSURE := 25

EXTRA_TESTS += unit-test
.PHONY: unit-test unit-deps

unit-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS=systemd

unit-test: unit-deps $(BUILD)/parleyd
	@echo "== systemd-analyze verify $(UNIT)"
	@mkdir -p $(BUILD)/deploy
	@sed 's|^ExecStart=/usr/local/bin/parleyd|ExecStart=$(abspath $(BUILD)/parleyd)|' $(UNIT) \
		> $(BUILD)/deploy/parleyd.service
	@out=$$(systemd-analyze verify --man=no $(BUILD)/deploy/parleyd.service 2>&1); rc=$$?; \
		if [ $$rc != 0 ] || [ -n "$$out" ]; then echo "$$out"; exit 1; fi
	@echo "== systemd-analyze security --threshold=$(UNIT_MAX_EXPOSURE) $(UNIT)"
	@out=$$(systemd-analyze security --offline=true --threshold=$(UNIT_MAX_EXPOSURE) $(UNIT) 2>&1); \
		rc=$$?; echo "$$out" | tail -1; exit $$rc
