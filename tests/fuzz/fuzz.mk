# tests/fuzz/fuzz.mk - libFuzzer targets (clang), built from the sources with
# AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   make fuzz          each target for FUZZ_SECONDS (60)
#   make fuzz-short    each target for FUZZ_SHORT_SECONDS (10), part of `make test`
#
# A target's corpus is build/fuzz/corpus/NAME (what the fuzzer finds), then
# tests/fuzz/corpus/NAME (seeds, and every input that once crashed: they are
# replayed first on every run), then fixtures read in place from $PARLEY_SHARED.
# A crash leaves its input in build/fuzz/artifacts/.

DEB_PKGS += clang libclang-rt-14-dev

FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SHORT_SECONDS ?= 10
FUZZ_DIR    := $(BUILD)/fuzz
FUZZ_SHARED := $(or $(PARLEY_SHARED),../shared)
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -DPARLEY_VERSION='"$(VERSION)"' -I. -I$(BUILD)/gen -g -O1 \
	$(FUZZ_SAN) $(WARN) $(WERROR) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_LIB    := $(FUZZ_DIR)/libparley-fuzz.a
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o) $(GEN_SRC:$(BUILD)/gen/%.c=$(FUZZ_DIR)/obj/gen/%.o)

# per target: extra flags and seeds read in place
FUZZ_FLAGS_jobs     := -dict=tests/fuzz/json.dict
FUZZ_FLAGS_stream   := -dict=tests/fuzz/stream.dict
FUZZ_SEEDS_stream   := $(wildcard $(FUZZ_SHARED)/fixtures/llama-server)
FUZZ_ORIGIN         := $(wildcard $(FUZZ_SHARED)/fixtures/origin-phase2/response_speed_optimization_gemma3n_latest.* \
			 $(FUZZ_SHARED)/fixtures/origin-phase2/job_extraction_improvement_dolphin3_8b.*)
fuzz_comma := ,
fuzz_space := $(subst ,, )
FUZZ_FLAGS_extract  := $(if $(FUZZ_ORIGIN),-seed_inputs=$(subst $(fuzz_space),$(fuzz_comma),$(strip $(FUZZ_ORIGIN))))
FUZZ_FLAGS_markdown := $(FUZZ_FLAGS_extract)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-missing-prototypes -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

.PRECIOUS: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o

# $(call fuzz_run,NAME,SECONDS): fuzz one target; on a crash show the end of its log.
define fuzz_run
	@mkdir -p $(FUZZ_DIR)/corpus/$(1) $(FUZZ_DIR)/artifacts
	@printf '== fuzz_%s (%s s): ' $(1) $(2)
	@ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	$(FUZZ_DIR)/fuzz_$(1) -max_total_time=$(2) -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)- $(FUZZ_FLAGS_$(1)) \
		$(FUZZ_DIR)/corpus/$(1) tests/fuzz/corpus/$(1) $(FUZZ_SEEDS_$(1)) \
		> $(FUZZ_DIR)/fuzz_$(1).log 2>&1 || \
		{ echo FAILED; tail -60 $(FUZZ_DIR)/fuzz_$(1).log; exit 1; }
	@awk '/stat::number_of_executed_units/ {runs=$$2} /stat::peak_rss_mb/ {rss=$$2} \
		/ cov: / {cov=$$0; sub(/.* cov: /, "", cov); sub(/ .*/, "", cov)} \
		/ corp: / {corp=$$0; sub(/.* corp: /, "", corp); sub(/ .*/, "", corp)} \
		END {printf "%s runs, coverage %s edges, corpus %s inputs, peak RSS %s MB, no crash\n", \
		runs, cov, corp, rss}' $(FUZZ_DIR)/fuzz_$(1).log

endef

.PHONY: fuzz fuzz-short fuzz-build
fuzz-build: $(FUZZ_BINS)

# Build on every core unless make already runs jobs in parallel (-j).
fuzz_build = @case "$$MAKEFLAGS" in *jobserver*|*-j*) j=;; *) j=-j$$(nproc);; esac; \
	$(MAKE) --no-print-directory $$j fuzz-build

fuzz:
	$(fuzz_build)
	$(foreach t,$(FUZZ_NAMES),$(call fuzz_run,$(t),$(FUZZ_SECONDS)))

fuzz-short:
	$(fuzz_build)
	$(foreach t,$(FUZZ_NAMES),$(call fuzz_run,$(t),$(FUZZ_SHORT_SECONDS)))

EXTRA_TESTS += fuzz-short

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
