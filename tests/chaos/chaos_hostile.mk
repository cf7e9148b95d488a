# tests/chaos/chaos_hostile.mk - a bad day from the outside (included by the Makefile).
#
#   make chaos-hostile        the short form (12 s of trickling clients), part of `make test`
#   make chaos-hostile-full   the long form: 40 s of trickling clients
#
# Hostile web pages, sign-out, NUL paths, 2,000 trickling connections from 127.0.0.2-9,
# a backend that streams forever, model output that is not clean text, log injection,
# URIs and headers past the limits: tests/chaos/check_hostile.c.

CHAOS_HOSTILE_BIN := $(BUILD)/tests/check_hostile

$(CHAOS_HOSTILE_BIN): $(BUILD)/obj/tests/chaos/check_hostile.o $(HARNESS_OBJ) $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

.PHONY: chaos-hostile chaos-hostile-full
chaos-hostile: $(CHAOS_HOSTILE_BIN) $(BUILD)/parleyd $(FAKE_BIN)
	@echo "== $(CHAOS_HOSTILE_BIN) (short form)"
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) $(CHAOS_HOSTILE_BIN)

chaos-hostile-full: $(CHAOS_HOSTILE_BIN) $(BUILD)/parleyd $(FAKE_BIN)
	@echo "== $(CHAOS_HOSTILE_BIN) (long form)"
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) CHAOS_FULL=1 $(CHAOS_HOSTILE_BIN)

EXTRA_TESTS += chaos-hostile
