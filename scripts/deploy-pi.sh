#!/usr/bin/env bash
# Deploys Itera-Lite Edge to a Raspberry Pi (64-bit Raspberry Pi OS, Node >= 18) over ssh and runs
# the device tests and a benchmark there:
#
#   scripts/deploy-pi.sh [options] user@host
#     --dir DIR        folder on the Pi (default: itera-lite, in the user's home)
#     --port N         ssh port
#     --no-bench       skip `itera bench`
#     --no-tests       skip the device tests
#     --dry-run        print every command instead of running it (nothing is copied or run)
#
# What goes over: build/*.wasm, dist/host (the runtime and the CLI), bin/, package.json and its
# lock, device-tests/, models/student-q8_0.gguf if there is one, and device-inputs/: the conformance
# cases with this machine's own results for them, so the Pi is held to the same token ids and
# to logits within 1e-5. On the Pi: `npm ci --omit=dev --ignore-scripts` for the CLI's runtime
# dependencies (once), `node device-tests/run.mjs --inputs ... --compare ...`, then `itera bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "deploy-pi: $*" >&2; exit 2; }

target="" dir="itera-lite" port="" dry=0 bench=1 tests=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --dir) [ $# -ge 2 ] || die "--dir needs a folder"; dir="$2"; shift 2 ;;
    --port) [ $# -ge 2 ] || die "--port needs a number"; [[ "$2" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$2'"; port="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --no-bench) bench=0; shift ;;
    --no-tests) tests=0; shift ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$target" ] || die "one target only (got '$target' and '$1')"; target="$1"; shift ;;
  esac
done
[ -n "$target" ] || { usage >&2; die "missing the target, like pi@raspberrypi.local"; }
[[ "$target" =~ ^[A-Za-z0-9._-]+@[A-Za-z0-9._:-]+$ ]] || die "the target must look like user@host, got '$target'"
[[ "$dir" =~ ^[A-Za-z0-9._/~-]+$ ]] || die "--dir may hold letters, digits and . _ / ~ - only, got '$dir'"

# what the Pi needs, built here first
for f in build/itera.wasm build/itera-scalar.wasm dist/host/runtime/api.js dist/host/cli/itera.js bin/itera.js device-tests/run.mjs; do
  [ -e "$f" ] || die "$f is missing: run 'npm run build' first"
done

ssh_opts=(-o BatchMode=yes -o ConnectTimeout=15)
[ -n "$port" ] && ssh_opts+=(-p "$port")

run() {
  # prints the command; runs it unless --dry-run
  printf '+'; printf ' %q' "$@"; printf '\n'
  [ "$dry" = 1 ] || "$@"
}

inputs=build/device-inputs
run rm -rf "$inputs"
run node device-tests/run.mjs --write-inputs "$inputs"
run node device-tests/run.mjs --inputs "$inputs" --results "$inputs/x86.json"

files=(build/itera.wasm build/itera-scalar.wasm build/itera-wasi.wasm dist/host bin package.json package-lock.json device-tests "$inputs")
[ -e models/student-q8_0.gguf ] && files+=(models/student-q8_0.gguf)
existing=()
for f in "${files[@]}"; do [ -e "$f" ] || [ "$dry" = 1 ] && existing+=("$f"); done

run ssh "${ssh_opts[@]}" "$target" "mkdir -p $dir"
if command -v rsync >/dev/null 2>&1; then
  rsh="ssh ${ssh_opts[*]}"
  run rsync -az --delete-excluded --relative -e "$rsh" "${existing[@]}" "$target:$dir/"
else
  # scp keeps no relative paths: copy each top-level item into its folder
  for f in "${existing[@]}"; do
    run ssh "${ssh_opts[@]}" "$target" "mkdir -p $dir/$(dirname "$f")"
    run scp -rq ${port:+-P "$port"} -o BatchMode=yes "$f" "$target:$dir/$(dirname "$f")/"
  done
fi

remote="cd $dir && node --version && uname -m"
remote+=" && { [ -d node_modules ] || npm ci --omit=dev --ignore-scripts --no-audit --no-fund; }"
if [ "$tests" = 1 ]; then
  remote+=" && node device-tests/run.mjs --inputs build/device-inputs --compare build/device-inputs/x86.json"
fi
if [ "$bench" = 1 ]; then
  model="build/device-inputs/tiny.gguf"
  [ -e "$inputs/micro.gguf" ] || [ "$dry" = 1 ] && model="build/device-inputs/micro.gguf"
  [ -e models/student-q8_0.gguf ] && model="models/student-q8_0.gguf"
  remote+=" && node bin/itera.js bench --model $model"
fi
run ssh "${ssh_opts[@]}" "$target" "$remote"
[ "$dry" = 1 ] && echo "deploy-pi: dry run: nothing was copied or run on $target"
exit 0
