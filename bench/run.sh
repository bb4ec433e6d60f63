#!/usr/bin/env bash
# Runs the seccf benchmarks against a fresh `seccf dev` KMC on loopback and rewrites
# docs/performance.md with the numbers, the machine and how to reproduce them.
#
#   bench/run.sh                       # crypto 5 s, ub C=8 10 s, zn C=8 10 s
#   CONCURRENCY=16 UB_SECONDS=30 bench/run.sh
#   DOC=/tmp/perf.md bench/run.sh      # write the report elsewhere
#
# Knobs (environment): CRYPTO_SECONDS, UB_SECONDS, ZN_SECONDS, CONCURRENCY,
# DOC (output file), KMC_LOG (RUST_LOG of the KMC, default "info" as in production).
#
# Nothing is asserted: this measures, it does not test. It starts one KMC process and
# stops it (by process id) when done or on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CRYPTO_SECONDS=${CRYPTO_SECONDS:-5}
UB_SECONDS=${UB_SECONDS:-10}
ZN_SECONDS=${ZN_SECONDS:-10}
CONCURRENCY=${CONCURRENCY:-8}
DOC=${DOC:-docs/performance.md}
KMC_LOG=${KMC_LOG:-info}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

echo "== building (release)" >&2
cargo build --release -p seccf -p seccf-load
SECCF="$TARGET_DIR/release/seccf"
LOAD="$TARGET_DIR/release/seccf-load"

WORK=$(mktemp -d)
DATA="$WORK/dev"
RESULTS="$WORK/results"
mkdir -p "$RESULTS"
DEV_PID=""

cleanup() {
    if [[ -n "$DEV_PID" ]] && kill -0 "$DEV_PID" 2>/dev/null; then
        kill -TERM "$DEV_PID" 2>/dev/null || true
        wait "$DEV_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_BEFORE=$(loadavg)

echo "== starting seccf dev in $DATA" >&2
RUST_LOG="$KMC_LOG" "$SECCF" dev --data-dir "$DATA" --base-port 0 >"$WORK/dev.log" 2>&1 &
DEV_PID=$!
# dev.json is complete once the banner is printed (Rust's stdout is line-buffered).
for _ in $(seq 1 600); do
    grep -q "environment is running" "$WORK/dev.log" 2>/dev/null && break
    if ! kill -0 "$DEV_PID" 2>/dev/null; then
        echo "seccf dev exited early:" >&2
        cat "$WORK/dev.log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! grep -q "environment is running" "$WORK/dev.log" || [[ ! -s "$DATA/dev.json" ]]; then
    echo "seccf dev did not come up within 60 s:" >&2
    cat "$WORK/dev.log" >&2
    exit 1
fi

# CPU accounting per scenario: the whole machine (/proc/stat), the KMC process
# (/proc/PID/stat) and the load generator (this shell's finished children, `times`).
# What is left was used by other processes — on a shared build machine, other people's
# compilations — and the report says how much.
CLK_TCK=$(getconf CLK_TCK)
NPROC=$(nproc)
machine_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# `times` must run in this shell, not in a $(...) subshell, whose child counters start
# at zero: it writes to a file that children_cpu then reads.
children_cpu() {
    awk 'function s(t, a) { split(t, a, "m"); sub("s", "", a[2]); return a[1] * 60 + a[2] }
         NR == 2 { printf "%.3f\n", s($1) + s($2) }' "$WORK/times"
}
CPU_ROWS=""
DISTURBED_LIST=""
DISTURBED_STRONG=0
declare -A KMC_MS_PER_OP

run_scenario() {
    local name=$1
    shift
    echo "== $name" >&2
    local b0 k0 c0 t0 b1 k1 c1 t1 ops row other_share
    times >"$WORK/times"
    b0=$(machine_busy); k0=$(proc_cpu "$DEV_PID"); c0=$(children_cpu); t0=$(date +%s.%N)
    "$LOAD" "$@" >"$RESULTS/$name.json"
    t1=$(date +%s.%N); b1=$(machine_busy); k1=$(proc_cpu "$DEV_PID")
    times >"$WORK/times"
    c1=$(children_cpu)
    ops=$(grep -o '"ops":[0-9]*' "$RESULTS/$name.json" | head -1 | cut -d: -f2)
    # One awk computes the table row, the other processes' share and the KMC's CPU per
    # operation, separated by tabs.
    local out per_op
    out=$(awk -v name="$name" -v hz="$CLK_TCK" -v n="$NPROC" -v ops="${ops:-0}" \
        -v b0="$b0" -v b1="$b1" -v k0="$k0" -v k1="$k1" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" '
        BEGIN {
            wall = t1 - t0; cap = wall * n
            total = (b1 - b0) / hz; kmc = (k1 - k0) / hz; gen = c1 - c0
            other = total - kmc - gen; if (other < 0) other = 0
            per_op = (name != "crypto" && ops > 0) ? sprintf("%.3f", kmc * 1000 / ops) : "–"
            gen_op = (name != "crypto" && ops > 0) ? sprintf("%.3f", gen * 1000 / ops) : "–"
            printf "| %s | %.1f | %.1f | %.0f %% | %.1f | %.2f | %.1f | %.1f (%.0f %%) | %s | %s |\t%.0f\t%s\n",
                name, wall, cap, 100 * total / cap, kmc, kmc / wall, gen, other, 100 * other / cap, per_op, gen_op,
                100 * other / cap, per_op
        }')
    IFS=$'\t' read -r row other_share per_op <<<"$out"
    CPU_ROWS+="$row"$'\n'
    KMC_MS_PER_OP[$name]=$per_op
    if ((other_share >= 20)); then
        DISTURBED_STRONG=1
    fi
    if ((other_share >= 5)); then
        DISTURBED_LIST+="${DISTURBED_LIST:+, }${other_share} % during $name"
    fi
}

run_scenario crypto crypto --seconds "$CRYPTO_SECONDS"
run_scenario ub ub --dev-json "$DATA/dev.json" --concurrency "$CONCURRENCY" --seconds "$UB_SECONDS"
run_scenario zn zn --dev-json "$DATA/dev.json" --concurrency "$CONCURRENCY" --seconds "$ZN_SECONDS"

echo "== stopping seccf dev" >&2
kill -TERM "$DEV_PID"
wait "$DEV_PID" || true
DEV_PID=""

# ---- the report -------------------------------------------------------------------
TABLE=$("$LOAD" report "$RESULTS/crypto.json" "$RESULTS/ub.json" "$RESULTS/zn.json")
RAW=$(cat "$RESULTS/crypto.json" "$RESULTS/ub.json" "$RESULTS/zn.json")
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
CPU_MHZ=$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
RUSTC=$(rustc --version)
KERNEL=$(uname -sr)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain 2>/dev/null | head -1)" ]]; then COMMIT="$COMMIT + uncommitted changes"; fi
TMPFS=$(stat -f -c %T "$(dirname "$WORK")" 2>/dev/null || echo unknown)

if ((DISTURBED_STRONG)); then
    DISTURBED="**This run was disturbed by other work on the machine** (other engineers'
compilations and tests share it). Share of the CPU capacity taken by other processes:
${DISTURBED_LIST} (CPU table below). Treat those numbers as lower bounds and rerun
\`bench/run.sh\` on an idle machine."
elif [[ -n "$DISTURBED_LIST" ]]; then
    DISTURBED="Other processes on the machine (other engineers' builds and tests share it)
took a small share of the CPU capacity: ${DISTURBED_LIST} (CPU table below); expect
those numbers to be low by up to about that much."
else
    DISTURBED="Other processes used less than 5 % of the CPU capacity during every scenario
(CPU table below), so the run was not noticeably disturbed by other work."
fi

# How much of the KMC's per-operation CPU the GBA crypto accounts for (arithmetic on
# the numbers above, nothing more).
json_num() { grep -o "\"$1\":[0-9.eE+-]*" "$2" | head -1 | cut -d: -f2; }
CRYPTO_SHARE=$(awk -v mil="$(json_num milenage_per_sec "$RESULTS/crypto.json")" \
    -v kdf="$(json_num kdf_per_sec "$RESULTS/crypto.json")" \
    -v ub="${KMC_MS_PER_OP[ub]:-}" -v zn="${KMC_MS_PER_OP[zn]:-}" 'BEGIN {
        if (mil > 0 && kdf > 0 && ub > 0 && zn > 0) {
            mil_us = 1e6 / mil; kdf_us = 1e6 / kdf
            printf "Per bootstrap the KMC used %.3f CPU-ms; the one Milenage run in it (f1 + f2345) costs %.2f µs on one core, %.2f %% of that. ", ub, mil_us, 100 * mil_us / (ub * 1000)
            printf "Per Zn look-up the KMC used %.3f CPU-ms; one KDF run (Ks + Ks_NAF, an upper bound for the Ks_NAF it derives) costs %.2f µs, %.2f %% of that. ", zn, kdf_us, 100 * kdf_us / (zn * 1000)
            printf "So neither rate is limited by the GBA crypto: the rest of the request path (HTTP, TLS, digest, store, logging) is where the KMC spends its CPU."
        } else {
            printf "(Not enough data for the crypto share: a scenario measured nothing.)"
        }
    }')

mkdir -p "$(dirname "$DOC")"
cat >"$DOC" <<EOF
# Performance

Generated by \`bench/run.sh\` on ${DATE}. Do not edit by hand: rerun the script, which
rewrites this file. Performance is measured here and in the load generator
(\`crates/loadgen\`, binary \`seccf-load\`), never asserted in tests.

## Results

${TABLE}

${DISTURBED}

**The KMC and the load generator share the same ${NPROC} cores.** In \`ub\` and \`zn\` the
client side (software USIM AKA, digest computation, TLS, HTTP) competes with the KMC for
CPU, so these are lower bounds for a KMC that has the machine to itself. \`crypto\` runs
alone on one core while the idle KMC waits.

CPU use during each scenario, in CPU-seconds: capacity = wall time × ${NPROC} CPUs; busy =
all CPU time used on the machine ÷ capacity; KMC cores = the KMC's CPU-seconds ÷ wall
time (its average parallelism); "other" is everything but the KMC and \`seccf-load\`. The
per-operation columns are what one bootstrap or look-up costs each side, independent of
how the cores were shared.
Load average (1, 5, 15 min) before the run: ${LOAD_BEFORE}.

| Scenario | Wall (s) | Capacity | Busy | KMC | KMC cores | seccf-load | Other | KMC CPU-ms per op | seccf-load CPU-ms per op |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${CPU_ROWS}
${CRYPTO_SHARE}

## What each scenario measures

- **crypto** — one thread, in process, no IO. One operation is what a KMC computes per
  bootstrap plus one key release: Milenage f1 and f2345 for a fresh RAND, Ks = CK ‖ IK,
  and one Ks_NAF with the TS 33.220 KDF (HMAC-SHA-256). The rows "Milenage alone" and
  "KDF alone" split that cost. The requested time is split ½ (full chain), ¼, ¼.
- **ub** — full GBA_ME bootstraps per second over HTTP against the KMC's Ub listener,
  with ${CONCURRENCY} concurrent agents. One operation is the real agent's exchange: initial
  request → 401 with the AKA challenge (the KMC takes the next SQN and runs Milenage) →
  the software USIM's AUTHENTICATE → digest answer → 200 with \`rspauth\`, which the agent
  verifies; the KMC stores the context durably (SQLite) before answering. Two HTTP round
  trips on two new TCP connections (the agent does not reuse connections). Test
  subscribers (4 per worker) are created through the admin API first and deleted after.
- **zn** — NAF key look-ups per second against the KMC's Zn listener: ${CONCURRENCY} workers, each
  with its own mutual-TLS keep-alive connection (the demo NAF's client certificate),
  asking for the Ks_NAF of one B-TID. The TLS handshakes happen before the clock starts;
  every returned key is compared with the agent's own derivation (a mismatch would be
  counted as an error).

Latencies are per operation, from the client's side, for successful operations
(nearest-rank percentiles from a log-linear histogram, at most 0.8 % high). Operations/s
is successful operations divided by the measured duration.

## Machine

| | |
|---|---|
| CPU | ${CPU:-unknown} (${NPROC} logical CPUs, ${CPU_MHZ:-?} MHz reported) |
| Memory | ${MEM} |
| Kernel | ${KERNEL} |
| Compiler | ${RUSTC}, \`--release\` profile of the workspace |
| seccf | commit ${COMMIT} |
| KMC | \`seccf dev\` (SQLite store in a temporary directory on ${TMPFS}, log level \`${KMC_LOG}\` to a file) |
| Date | ${DATE} |

## How to reproduce

\`\`\`sh
bench/run.sh                                   # what produced this file
CONCURRENCY=16 UB_SECONDS=30 ZN_SECONDS=30 bench/run.sh

# or step by step
cargo build --release -p seccf -p seccf-load
target/release/seccf dev --data-dir "\$(mktemp -d)" --base-port 0 &   # prints the dev.json path
target/release/seccf-load crypto --seconds ${CRYPTO_SECONDS}
target/release/seccf-load ub --dev-json <data-dir>/dev.json --concurrency ${CONCURRENCY} --seconds ${UB_SECONDS}
target/release/seccf-load zn --dev-json <data-dir>/dev.json --concurrency ${CONCURRENCY} --seconds ${ZN_SECONDS}
\`\`\`

Each \`seccf-load\` run prints one JSON object on stdout (the raw results below) and a
summary line on stderr; \`seccf-load report FILE…\` renders such lines as the table above.
\`seccf-load\` only targets loopback addresses.

## Raw results

\`\`\`json
${RAW}
\`\`\`
EOF

echo "== wrote $DOC" >&2
cat "$RESULTS/crypto.json" "$RESULTS/ub.json" "$RESULTS/zn.json"
