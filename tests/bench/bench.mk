# tests/bench/bench.mk - `make bench`: what parleyd adds to the model's own time, in numbers.
#
#   make bench               every figure, BENCH_RUNS times (default 3): a table on stdout,
#                            the same figures with per-run details in build/bench.json
#   BENCH_RUNS=5 make bench  more runs
#   BENCH_LIVE=0 make bench  without the real llama-server figures
#   BENCH_ONLY=orch,engine,real,trials,sched,slots  only some parts; BENCH_KEEP=1 keeps
#                            build/bench-work
#
# Not part of `make test`. It needs wrk (installed by `make deps`) and the llama-server that
# tests/live/llama-server.sh provisions and caches for the live tests (built on first use).

BENCH_BIN := $(BUILD)/tests/bench

DEB_PKGS += wrk

$(BENCH_BIN): $(BUILD)/obj/tests/bench/bench.o $(HARNESS_OBJ) $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LIBS)

.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/parleyd $(FAKE_BIN) $(BENCH_BIN)
	@PARLEYD=$(BUILD)/parleyd FAKE_BACKEND=$(FAKE_BIN) BENCH_JSON=$(BUILD)/bench.json \
		BENCH_DIR=$(BUILD)/bench-work $(BENCH_BIN)
