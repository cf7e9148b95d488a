# tests/asan/asan.mk - every unit and integration suite built with
# AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer (gcc) in
# $(BUILD)/asan, and run. parleyd and the fake backend that the integration
# tests start are built the same way. Every process writes its reports to
# $(BUILD)/asan/reports/ (a report from a child process would otherwise only
# reach a log the test deletes); any report there fails the run.
#
#   make asan

ASAN_BUILD := $(BUILD)/asan
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_REPORTS = $(abspath $(ASAN_BUILD))/reports
ASAN_MAKE = $(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) OPT=-O1 EXTRA_CFLAGS="$(ASAN_FLAGS)" \
	EXTRA_TESTS=

# Build on every core unless make already runs jobs in parallel (-j).
parallel_jobs = case "$$MAKEFLAGS" in *jobserver*|*-j*) j=;; *) j=-j$$(nproc);; esac

.PHONY: asan
asan:
	@$(parallel_jobs); $(ASAN_MAKE) $$j $(ASAN_BUILD)/parleyd $(ASAN_BUILD)/fake-backend \
		$(UNIT_BIN:$(BUILD)/%=$(ASAN_BUILD)/%) $(INTEG_BIN:$(BUILD)/%=$(ASAN_BUILD)/%)
	@rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	@ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:log_path=$(ASAN_REPORTS)/asan \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(ASAN_REPORTS)/ubsan \
	$(ASAN_MAKE) unit integration; rc=$$?; \
	if [ -n "$$(ls -A $(ASAN_REPORTS))" ]; then \
		echo "asan: sanitizer reports:"; \
		for f in $(ASAN_REPORTS)/*; do echo "--- $$f"; cat "$$f"; done; exit 1; \
	fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	echo "asan: every unit and integration suite ran clean (ASan, LSan, UBSan)"

EXTRA_TESTS += asan
