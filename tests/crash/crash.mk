# tests/crash/crash.mk - kill -9 parleyd while it works; nothing may be lost.
#
#   make crash        the short form (CRASH_JOBS=40, CRASH_KILLS=5), part of `make test`
#   make crash-test   the full form: 200 jobs, 20 kills
#
# CRASH_SEED=N repeats a run (each run prints its seed).

CRASH_BIN := $(BUILD)/tests/check_crash

$(CRASH_BIN): $(BUILD)/obj/tests/crash/check_crash.o $(HARNESS_OBJ) $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

.PHONY: crash crash-test
crash: $(CRASH_BIN) $(BUILD)/parleyd $(FAKE_BIN)
	@echo "== $(CRASH_BIN) (short form)"
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) CRASH_JOBS=$${CRASH_JOBS:-40} \
		CRASH_KILLS=$${CRASH_KILLS:-5} $(CRASH_BIN)

crash-test: $(CRASH_BIN) $(BUILD)/parleyd $(FAKE_BIN)
	@echo "== $(CRASH_BIN) (200 jobs, 20 kills)"
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) CRASH_JOBS=200 CRASH_KILLS=20 $(CRASH_BIN)

EXTRA_TESTS += crash
