#!/usr/bin/env bash
# Provision a real llama.cpp `llama-server` for parley's live tests.
#
# Usage:
#   tests/live/llama-server.sh path            print the absolute path of a working llama-server
#                                              binary (building it first if not cached)
#   tests/live/llama-server.sh build           make sure the binary is built and cached
#   tests/live/llama-server.sh version         print the cache/version key
#   tests/live/llama-server.sh start PORT [ARGS...]
#                                              start llama-server on 127.0.0.1:PORT in the
#                                              background, wait for /health, print its pid
#   tests/live/llama-server.sh stop PIDFILE    stop a server started by `start`
#
# No Debian/Ubuntu package ships llama.cpp, so the source is taken from the npm package
# node-llama-cpp, which carries the complete llama.cpp source tree as a git bundle.
# The binary is built once and cached outside the repository in
#   ${XDG_CACHE_HOME:-$HOME/.cache}/parley/llama-server-<version-key>/bin/llama-server
# The build log is kept next to it (llama-server-<version-key>.log).
#
# Environment:
#   PARLEY_LLAMA_NATIVE=0   build for a generic CPU instead of -march=native (own cache key)
#   PARLEY_BUILD_JOBS=N     parallel compile jobs (default: number of CPUs)
#   PARLEY_MODEL=FILE       model for `start` (default: the shared stories260K.gguf)
#   PARLEY_RUN_DIR=DIR      where `start` writes pid and log files (default: a new temp dir)
#
# Exit codes: 0 ok; 77 cannot provision on this machine (missing tools and not root,
# no network to the npm registry, no model); anything else is a real failure.

set -eu
set -o pipefail

NPM_PACKAGE=node-llama-cpp
NPM_VERSION=3.21.1
# sha512 of node-llama-cpp-3.21.1.tgz as published on the npm registry
NPM_SHA512=13737412fd956b4c33c9dbd7605c0cf47bf2a34ecfa168edf13ffd18c738dc2bedf18915fcd53fb5852010c0b582b4cfbf6a3d3d18d08b41b759be4ffdac2232
# llama.cpp commit contained in that package's git bundle (llama.cpp release "v0.4.0")
LLAMA_COMMIT=80fb11ac73e66d89eae2c6a91d8a77428fa733ed

PROG=llama-server.sh
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd -P)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd -P)

# HOME may be unset under some CI runners: fall back to the user's home from passwd
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/parley"

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "error: $*"; exit 1; }
skip() { say "cannot provision llama-server here: $*"; exit 77; }

# ---------------------------------------------------------------- version key

native_enabled() { [ "${PARLEY_LLAMA_NATIVE:-1}" != 0 ]; }

version_key() {
    local arch cpu
    arch=$(uname -m)
    if native_enabled; then
        # -march=native binaries are only valid on CPUs with the same feature set.
        if [ -r /proc/cpuinfo ]; then
            cpu=$( (grep -m1 -E '^(flags|Features)' /proc/cpuinfo || true) | cksum | cut -d' ' -f1)
        else
            cpu=$(uname -a | cksum | cut -d' ' -f1)
        fi
        printf '%s-%s-%s-native-%s\n' "$NPM_PACKAGE" "$NPM_VERSION" "$arch" "$cpu"
    else
        printf '%s-%s-%s-generic\n' "$NPM_PACKAGE" "$NPM_VERSION" "$arch"
    fi
}

KEY=$(version_key)
FINAL_DIR="$CACHE_ROOT/llama-server-$KEY"
BIN="$FINAL_DIR/bin/llama-server"
LOG="$CACHE_ROOT/llama-server-$KEY.log"
LOCK="$CACHE_ROOT/llama-server-$KEY.lock"

# ---------------------------------------------------------------- tools

# ensure_tools CMD:DEBIAN_PACKAGE ...
ensure_tools() {
    local spec cmd pkg missing_cmds="" missing_pkgs=""
    for spec in "$@"; do
        cmd=${spec%%:*}
        pkg=${spec#*:}
        if ! command -v "$cmd" >/dev/null 2>&1; then
            missing_cmds="$missing_cmds $cmd"
            case " $missing_pkgs " in *" $pkg "*) ;; *) missing_pkgs="$missing_pkgs $pkg" ;; esac
        fi
    done
    [ -z "$missing_cmds" ] && return 0

    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        skip "missing tools:$missing_cmds (on Debian/Ubuntu: apt-get install$missing_pkgs)"
    fi
    say "installing missing tools with apt-get:$missing_pkgs"
    mkdir -p "$CACHE_ROOT"
    # shellcheck disable=SC2086
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
               $missing_pkgs; } >>"$LOG" 2>&1; then
        tail -n 20 "$LOG" >&2 || true
        skip "apt-get could not install:$missing_pkgs"
    fi
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null 2>&1 || skip "still missing after apt-get: ${spec%%:*}"
    done
}

# ---------------------------------------------------------------- build

binary_ok() {
    [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1
}

fail_build() {
    say "error: $*"
    say "last lines of $LOG:"
    tail -n 40 "$LOG" >&2 || true
    exit 1
}

TMP_BUILD=""
STEP_PID=""
cleanup_build() {
    if [ -n "$TMP_BUILD" ] && [ -d "$TMP_BUILD" ]; then
        rm -rf "$TMP_BUILD"
    fi
}

# Run a long build step in its own process group (so an interrupted build also stops the
# compilers), with its output appended to the log.
run_step() {
    local rc=0
    setsid "$@" >>"$LOG" 2>&1 </dev/null &
    STEP_PID=$!
    wait "$STEP_PID" || rc=$?
    STEP_PID=""
    return "$rc"
}

on_signal() {
    if [ -n "$STEP_PID" ]; then
        kill -TERM -- "-$STEP_PID" 2>/dev/null || kill -TERM "$STEP_PID" 2>/dev/null || true
        wait "$STEP_PID" 2>/dev/null || true
    fi
    say "interrupted; nothing was installed"
    exit "$1"
}

do_build() {
    local started jobs native_flag tarball sum heads head
    started=$(date +%s)

    : >"$LOG"
    ensure_tools cmake:cmake git:git cc:gcc c++:g++ make:make npm:npm tar:tar setsid:util-linux

    # Leftovers of builds that were killed outright (we hold the lock, so none is running).
    rm -rf "$CACHE_ROOT/.build-$KEY".* 2>/dev/null || true
    TMP_BUILD=$(mktemp -d "$CACHE_ROOT/.build-$KEY.XXXXXX")
    trap cleanup_build EXIT
    trap 'on_signal 130' INT
    trap 'on_signal 143' TERM

    say "building llama-server from $NPM_PACKAGE@$NPM_VERSION (log: $LOG)"

    # 1. source: npm pack downloads the tarball only; it runs no package scripts.
    say "downloading $NPM_PACKAGE@$NPM_VERSION from the npm registry"
    if ! (cd "$TMP_BUILD" && npm pack --ignore-scripts --loglevel=warn --pack-destination "$TMP_BUILD" \
            "$NPM_PACKAGE@$NPM_VERSION") >>"$LOG" 2>&1; then
        skip "'npm pack $NPM_PACKAGE@$NPM_VERSION' failed (no access to the npm registry? details in $LOG)"
    fi
    tarball="$TMP_BUILD/$NPM_PACKAGE-$NPM_VERSION.tgz"
    [ -f "$tarball" ] || fail_build "npm pack did not produce $tarball"
    if command -v sha512sum >/dev/null 2>&1; then
        sum=$(sha512sum "$tarball" | cut -d' ' -f1)
        [ "$sum" = "$NPM_SHA512" ] || fail_build "checksum mismatch for $tarball"
    fi

    say "unpacking the llama.cpp source"
    tar -xzf "$tarball" -C "$TMP_BUILD" package/llama/gitRelease.bundle >>"$LOG" 2>&1 ||
        fail_build "package has no package/llama/gitRelease.bundle"
    rm -f "$tarball"
    heads=$(git bundle list-heads "$TMP_BUILD/package/llama/gitRelease.bundle" 2>>"$LOG") ||
        fail_build "unreadable git bundle"
    printf 'bundle heads:\n%s\n' "$heads" >>"$LOG"
    head=$(printf '%s\n' "$heads" | awk 'NR==1 {print $1}')
    [ "$head" = "$LLAMA_COMMIT" ] || say "warning: bundle commit $head, expected $LLAMA_COMMIT"
    git -c advice.detachedHead=false clone -q --no-checkout \
        "$TMP_BUILD/package/llama/gitRelease.bundle" "$TMP_BUILD/src" >>"$LOG" 2>&1 ||
        fail_build "git clone of the bundle failed"
    git -C "$TMP_BUILD/src" -c advice.detachedHead=false checkout -q "$head" >>"$LOG" 2>&1 ||
        fail_build "git checkout $head failed"
    rm -rf "$TMP_BUILD/package"

    # 2. configure: CPU only, static libraries (self-contained binary), server only,
    #    no web UI (it would be downloaded), no OpenSSL.
    if native_enabled; then native_flag=ON; else native_flag=OFF; fi
    say "configuring (GGML_NATIVE=$native_flag)"
    run_step cmake -S "$TMP_BUILD/src" -B "$TMP_BUILD/src/build" \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE="$native_flag" \
        -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_SERVER=ON \
        -DLLAMA_BUILD_UI=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF ||
        fail_build "cmake configure failed"

    # 3. compile
    jobs=${PARLEY_BUILD_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
    say "compiling llama-server with $jobs jobs (about 10 minutes on 2 cores)"
    run_step cmake --build "$TMP_BUILD/src/build" --target llama-server -j "$jobs" ||
        fail_build "compilation failed"

    # 4. assemble the cache entry, check it works without the build tree, install atomically.
    mkdir -p "$TMP_BUILD/out/bin"
    cp "$TMP_BUILD/src/build/bin/llama-server" "$TMP_BUILD/out/bin/llama-server" ||
        fail_build "build produced no bin/llama-server"
    rm -rf "$TMP_BUILD/src"
    "$TMP_BUILD/out/bin/llama-server" --version >"$TMP_BUILD/out/VERSION" 2>&1 ||
        fail_build "built llama-server does not run: $(cat "$TMP_BUILD/out/VERSION")"
    {
        echo "key: $KEY"
        echo "source: $NPM_PACKAGE@$NPM_VERSION (llama.cpp commit $head)"
        echo "GGML_NATIVE: $native_flag"
        echo "build seconds: $(( $(date +%s) - started ))"
    } >"$TMP_BUILD/out/BUILD-INFO"
    echo "build log: $LOG" >>"$TMP_BUILD/out/BUILD-INFO"

    rm -rf "$FINAL_DIR"
    mv "$TMP_BUILD/out" "$FINAL_DIR" || fail_build "could not install into $FINAL_DIR"
    cleanup_build
    TMP_BUILD=""
    trap - EXIT INT TERM
    say "built in $(( $(date +%s) - started ))s: $BIN ($(head -n 1 "$FINAL_DIR/VERSION"))"
}

ensure_built() {
    binary_ok && return 0
    mkdir -p "$CACHE_ROOT"
    ensure_tools flock:util-linux
    exec 9>"$LOCK"
    if ! flock -n 9; then
        say "another process is building llama-server; waiting for it"
        flock 9
    fi
    if ! binary_ok; then
        do_build
        binary_ok || fail_build "installed binary does not run"
    fi
    exec 9>&-
}

# ---------------------------------------------------------------- start / stop

health_code() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/health" 2>/dev/null || true
}

# has_opt NAME... -- ARGS...: true if ARGS contains one of the option names (or NAME=...)
has_opt() {
    local names=() a n
    while [ $# -gt 0 ] && [ "$1" != -- ]; do names+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    for a in "$@"; do
        for n in "${names[@]}"; do
            case "$a" in "$n" | "$n"=*) return 0 ;; esac
        done
    done
    return 1
}

cmd_start() {
    [ $# -ge 1 ] || die "usage: $PROG start PORT [llama-server args...]"
    local port=$1 model run_dir pidfile logfile pid code
    shift
    case "$port" in '' | *[!0-9]*) die "PORT must be a number, got '$port'" ;; esac

    model=${PARLEY_MODEL:-$REPO_ROOT/../shared/models/stories260K.gguf}
    [ -f "$model" ] || skip "model file not found: $model (set PARLEY_MODEL)"
    model=$(cd "$(dirname "$model")" && pwd -P)/$(basename "$model")

    ensure_tools curl:curl
    ensure_built

    if [ -n "${PARLEY_RUN_DIR:-}" ]; then
        run_dir=$PARLEY_RUN_DIR
        mkdir -p "$run_dir"
    else
        run_dir=$(mktemp -d "${TMPDIR:-/tmp}/parley-llama-server.XXXXXX")
        say "run dir: $run_dir"
    fi
    pidfile="$run_dir/llama-server-$port.pid"
    logfile="$run_dir/llama-server-$port.log"

    if [ "$(health_code "$port")" != 000 ]; then
        die "something is already listening on 127.0.0.1:$port"
    fi

    # Defaults; an option given in the extra args replaces the default one.
    local args=()
    has_opt -m --model -- "$@" || args+=(-m "$model")
    has_opt -a --alias -- "$@" || args+=(-a stories260K)
    has_opt --host -- "$@" || args+=(--host 127.0.0.1)
    args+=(--port "$port")
    has_opt -np --parallel -- "$@" || args+=(-np 2)
    has_opt -c --ctx-size -- "$@" || args+=(-c 4096)
    has_opt --metrics -- "$@" || args+=(--metrics)

    nohup "$BIN" "${args[@]}" "$@" >"$logfile" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"

    for _ in $(seq 1 60); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            say "error: llama-server exited during startup; last lines of $logfile:"
            tail -n 20 "$logfile" >&2 || true
            exit 1
        fi
        code=$(health_code "$port")
        if [ "$code" = 200 ]; then
            say "llama-server pid $pid on 127.0.0.1:$port (pidfile $pidfile, log $logfile)"
            echo "$pid"
            return 0
        fi
        sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    say "error: llama-server did not become healthy within 30s; last lines of $logfile:"
    tail -n 20 "$logfile" >&2 || true
    exit 1
}

cmd_stop() {
    [ $# -eq 1 ] || die "usage: $PROG stop PIDFILE"
    local pidfile=$1 pid
    [ -f "$pidfile" ] || { say "no pidfile $pidfile; nothing to stop"; return 0; }
    pid=$(cat "$pidfile")
    case "$pid" in '' | *[!0-9]*) die "bad pid in $pidfile" ;; esac
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$pidfile"
        return 0
    fi
    # Only signal the process if it still is a llama-server (pids get reused).
    if [ -r "/proc/$pid/cmdline" ] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q llama-server; then
        say "pid $pid is no longer a llama-server; removing stale $pidfile"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "llama-server pid $pid ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------- main

usage() {
    sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
    path)    [ $# -eq 0 ] || usage; ensure_built; printf '%s\n' "$BIN" ;;
    build)   [ $# -eq 0 ] || usage; ensure_built ;;
    version) [ $# -eq 0 ] || usage; printf '%s\n' "$KEY" ;;
    start)   cmd_start "$@" ;;
    stop)    cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
esac
