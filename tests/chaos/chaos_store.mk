# tests/chaos/chaos_store.mk - the store under stress (tests/chaos/check_store.c).
#
#   make chaos-store        the short form (an 8 s external lock), part of `make test`
#   make chaos-store-full   the full form: the external lock held for 40 s
#
# The full-disk test mounts a small tmpfs: it needs root (skipped without it, outside CI).

CHAOS_STORE_BIN := $(BUILD)/tests/check_store

$(CHAOS_STORE_BIN): $(BUILD)/obj/tests/chaos/check_store.o $(HARNESS_OBJ) $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

.PHONY: chaos-store chaos-store-full
chaos-store: $(CHAOS_STORE_BIN) $(BUILD)/parleyd $(FAKE_BIN)
	@echo "== $(CHAOS_STORE_BIN) (short form)"
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) CHAOS_LOCK_S=$${CHAOS_LOCK_S:-8} \
		$(CHAOS_STORE_BIN)

chaos-store-full: $(CHAOS_STORE_BIN) $(BUILD)/parleyd $(FAKE_BIN)
	@echo "== $(CHAOS_STORE_BIN) (40 s external lock)"
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) CHAOS_LOCK_S=40 $(CHAOS_STORE_BIN)

EXTRA_TESTS += chaos-store
