#!/usr/bin/env bash
# The first command to run on a machine with an NVIDIA GPU (no network needed; carry node_modules over, and
# build/ too if you like): builds the addon with CUDA from the tree as it is, runs the CUDA parity tests
# (test/cuda), then `bench gemm`, `bench train-step`, `bench sample` and `bench ppo-step` on the GPU.
# stdout: JSON lines only (the benches' figures, each naming the device, plus one line per check);
# progress and logs go to stderr. Exit 0 when every check passed. Budget: about 8 minutes in all.
# Usage: scripts/gpu-check.sh [--quick]    (--quick: c1 sizes only, fewer repetitions)
# GPU_CHECK_EMULATED=1 rehearses the script without a GPU on the CPU emulation build (npm run build:cuda-emu):
# no build, tiny bench sizes (--smoke); it proves the script, not the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick"
REHEARSAL=${GPU_CHECK_EMULATED:-}
if [ -n "$REHEARSAL" ]; then
  export FARM_NATIVE=build-emu/Release/farm.node
  QUICK="--smoke"
fi
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
STATUS=pass

log() { echo "gpu-check: $*" >&2; }
elapsed() { echo $(( $(date +%s) - T0 )); }
# line CHECK key value ...: one JSON object (numbers and booleans typed, the rest strings)
line() {
  node -e '
    const [check, ...kv] = process.argv.slice(1), o = { check };
    for (let i = 0; i < kv.length; i += 2) {
      const v = kv[i + 1];
      o[kv[i]] = /^-?[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : v === "true" ? true : v === "false" ? false : v;
    }
    console.log(JSON.stringify(o));' "$@"
}
fail() {
  line gpu-check status fail reason "$1" seconds "$(elapsed)"
  log "FAILED: $1 (logs in $LOGDIR)"
  exit 1
}
remaining() { echo $(( 480 - $(elapsed) )); }
# run_phase NAME SECONDS CMD...: runs with a time limit that also respects the overall budget
run_phase() {
  local name=$1 limit=$2
  shift 2
  local left
  left=$(remaining)
  [ "$left" -lt 20 ] && { log "skipping $name: the 8-minute budget is spent"; line "$name" status skipped reason "time budget spent"; STATUS=fail; return 1; }
  [ "$limit" -gt "$left" ] && limit=$left
  log "$name (limit ${limit}s) ..."
  timeout --kill-after=10 "$limit" "$@"
}

command -v node >/dev/null || fail "node is not installed"
[ -x node_modules/.bin/tsx ] && [ -f node_modules/cmake-js/bin/cmake-js ] && [ -d node_modules/node-addon-api ] ||
  fail "node_modules is missing or incomplete: copy it from a machine where 'npm ci' ran (this check downloads nothing)"
if [ -n "$REHEARSAL" ]; then
  [ -f "$FARM_NATIVE" ] || fail "GPU_CHECK_EMULATED=1 needs the emulation build: npm run build:cuda-emu"
elif command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L >&2 || true
elif [ ! -e /dev/nvidiactl ] && [ ! -e /dev/nvidia0 ]; then
  fail "no NVIDIA GPU is visible here (no nvidia-smi, no /dev/nvidia*); run this on a machine with a GPU and its driver"
fi

# ---- build (CUDA required when nvcc is here; otherwise the carried-over build must have it)
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="$PATH:/usr/local/cuda/bin"
probe() { node --import tsx -e 'import { native } from "./ts/engine/native.ts"; console.log(JSON.stringify(native.cudaInfo ? native.cudaInfo() : { compiled: false }))' 2>/dev/null; }
compiled() { probe | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { try { process.exit(JSON.parse(s).compiled ? 0 : 1); } catch { process.exit(1); } })'; }
if [ -n "$REHEARSAL" ]; then
  line build status skipped reason "rehearsal on the emulation build"
elif command -v nvcc >/dev/null 2>&1 && ! command -v cmake >/dev/null 2>&1; then
  log "nvcc is here but cmake is not: trying the carried-over build"
  compiled || fail "cmake is not installed (the CUDA build needs CMake 3.18+), and the carried-over build has no CUDA backend"
  line build status reused reason "no cmake"
elif command -v nvcc >/dev/null 2>&1; then
  tb=$(date +%s)
  export FARM_CUDA=1
  if ! run_phase build 300 node scripts/build-native.mjs >"$LOGDIR/build.log" 2>&1 || ! compiled; then
    # a build directory from another machine or a CPU-only configure: start it afresh
    log "rebuilding from scratch (build/ was stale, from elsewhere, or CPU-only)"
    rm -rf build
    run_phase build 300 node scripts/build-native.mjs --force >"$LOGDIR/build.log" 2>&1 || { tail -n 40 "$LOGDIR/build.log" >&2; fail "the CUDA build failed (log above)"; }
  fi
  line build status pass seconds $(( $(date +%s) - tb )) nvcc "$(nvcc --version | tail -n 2 | head -n 1)"
else
  log "nvcc not found: using the carried-over build"
  compiled || fail "nvcc is not installed here and the carried-over build has no CUDA backend (build it where nvcc is: npm run build)"
  line build status reused
fi

# ---- the device
INFO=$(probe)
[ -n "$INFO" ] || fail "the addon does not load (see: node --import tsx -e \"import './ts/engine/native.ts'\")"
echo "$INFO" | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const i = JSON.parse(s); console.log(JSON.stringify({ check: "device", available: i.available, reason: i.reason, emulated: i.emulated, gemm: i.gemm, ...i.device })); process.exit(i.available && (!i.emulated || process.argv[1]) ? 0 : 1); })' "$REHEARSAL" ||
  fail "the CUDA backend cannot run here: $(echo "$INFO" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).reason ?? "emulated build"))')"

# ---- parity tests
tt=$(date +%s)
run_phase cuda-tests 200 node scripts/run-tests.mjs test/cuda >"$LOGDIR/tests.log" 2>&1
rc=$?
summary=$(tail -n 1 "$LOGDIR/tests.log")
passed=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
failed=$(echo "$summary" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
skipped=$(echo "$summary" | sed -n 's/.*failed, \([0-9]*\) skipped.*/\1/p')
if [ $rc -ne 0 ] || [ "${failed:-1}" != "0" ] || [ "${skipped:-0}" != "0" ]; then
  STATUS=fail
  grep -E "^✘|FAIL|Error|unreachable|differ" "$LOGDIR/tests.log" | head -n 40 >&2
  line cuda-tests status fail passed "${passed:-0}" failed "${failed:-?}" skipped "${skipped:-0}" exit "$rc" seconds $(( $(date +%s) - tt ))
else
  line cuda-tests status pass passed "$passed" failed 0 seconds $(( $(date +%s) - tt ))
fi

# ---- benches on the GPU (their JSON lines go to stdout as they are)
for spec in "gemm 90" "train-step 120" "sample 90" "ppo-step 80"; do
  set -- $spec
  tb=$(date +%s)
  if run_phase "bench-$1" "$2" node --import tsx "bench/$1.ts" --backend=cuda $QUICK 2>"$LOGDIR/bench-$1.log"; then
    line "bench-$1" status pass seconds $(( $(date +%s) - tb ))
  else
    STATUS=fail
    tail -n 20 "$LOGDIR/bench-$1.log" >&2
    line "bench-$1" status fail seconds $(( $(date +%s) - tb ))
  fi
done

line gpu-check status "$STATUS" seconds "$(elapsed)"
log "done in $(elapsed)s: $STATUS (logs in $LOGDIR)"
[ "$STATUS" = pass ]
