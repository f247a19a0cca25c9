#!/usr/bin/env bash
# How fast a model of a given shape runs, before training it: a model's speed does not depend on
# its weights, so each shape gets freshly initialised weights (train.py, one step), F32 -> Q8_0 and
# Q4_0 files, and one `itera bench` run measures them all beside a reference model. Prints each
# file's size, parameters, FLOPs per token and its prefill and decode speed as ratios to the
# reference in the same run (docs/training.md, "A model at the earlier default's cost").
#
#   bash scripts/train/shape-speed.sh OUT_DIR [REFERENCE.gguf] [SHAPES_FILE]
#
# SHAPES_FILE: one shape per line, a name then train.py's shape flags (lines starting # skipped);
# without it, the shapes below. REFERENCE defaults to the earlier default student (a test fixture).
# Needs a corpus folder for the tokenizer and vocabulary: CORPUS (default
# ~/.cache/itera-train/brown-2000, made by scripts/train-long.sh). Knobs: PY, RUNS (bench rounds, 5).
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in -h | --help | "") sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
OUT=$1
REF=${2:-host/test/fixtures/models/learned-pos-student-q8_0.gguf}
PY=${PY:-/usr/bin/python3}
CORPUS=${CORPUS:-${ITERA_TRAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/itera-train}/brown-2000}
[ -f "$CORPUS/train.bin" ] || { echo "shape-speed: no corpus in $CORPUS (bash scripts/train-long.sh prepares one, or set CORPUS)" >&2; exit 1; }
[ -f dist/host/cli/itera.js ] || npm run build
mkdir -p "$OUT"
DEFAULT_SHAPES='# the earlier default (d=64, L=3, expand 2, 4 experts of 32 in layer 1), without positions
d64-l3 --d 64 --layers 3 --state 8 --expand 2 --experts 4 --expert-size 32 --top-k 2 --moe-layers 1
# the d96 student (run student-d96), the default before the shape d64-l4-e1-moe8
d96-l3 --d 96 --layers 3 --state 8 --expand 2 --experts 4 --expert-size 64 --top-k 2 --moe-layers 1
d64-l3-moe8 --d 64 --layers 3 --state 8 --expand 2 --experts 8 --expert-size 32 --top-k 2 --moe-layers 0,1,2
d64-l3-e1-moe16x64-top1 --d 64 --layers 3 --state 8 --expand 1 --experts 16 --expert-size 64 --top-k 1 --moe-layers 0,1,2
d64-l4-e1-moe8 --d 64 --layers 4 --state 8 --expand 1 --experts 8 --expert-size 32 --top-k 2 --moe-layers 0,1,2,3
d64-l4-e1-moe16 --d 64 --layers 4 --state 8 --expand 1 --experts 16 --expert-size 32 --top-k 2 --moe-layers 0,1,2,3
d64-l5-e1-moe8 --d 64 --layers 5 --state 8 --expand 1 --experts 8 --expert-size 32 --top-k 2 --moe-layers 0,1,2,3,4
d96-l3-e1 --d 96 --layers 3 --state 8 --expand 1 --experts 4 --expert-size 64 --top-k 2 --moe-layers 1'
if [ -n "${3:-}" ]; then SHAPES=$(cat "$3"); else SHAPES=$DEFAULT_SHAPES; fi

args=(--model "$REF")
while read -r name flags; do
  [ -z "$name" ] || [[ "$name" == \#* ]] && continue
  if [ ! -f "$OUT/$name-q4_0.gguf" ]; then
    echo "shape-speed: $name" >&2
    # shellcheck disable=SC2086 # the flags are words
    "$PY" scripts/train/train.py --data "$CORPUS" --out "$OUT/$name" --no-pos-embedding --steps 1 --quiet \
      --eval-every 0 $flags > "$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log" >&2; exit 1; }
    node bin/itera.js convert "$OUT/$name/model.safetensors" --tokenizer "$CORPUS/tokenizer.json" --name "$name" \
      -o "$OUT/$name-f32.gguf" > /dev/null
    node bin/itera.js quantize "$OUT/$name-f32.gguf" --type q8_0 -o "$OUT/$name-q8_0.gguf" > /dev/null
    node bin/itera.js quantize "$OUT/$name-f32.gguf" --type q4_0 -o "$OUT/$name-q4_0.gguf" > /dev/null
  fi
  args+=(--model "$OUT/$name-q8_0.gguf" --model "$OUT/$name-q4_0.gguf")
done <<< "$SHAPES"

echo "shape-speed: itera bench of $(( ${#args[@]} / 2 )) files, ${RUNS:-5} rounds" >&2
node bin/itera.js bench "${args[@]}" --peers none --reference none --runs "${RUNS:-5}" --json "$OUT/bench.json" > /dev/null
node -e '
const d = require(process.argv[1]);
const speed = (m) => [m.engines[0].prefill.tokensPerSecond.median, m.engines[0].decode.tokensPerSecond.median];
const [p0, d0] = speed(d.models[0]);
console.log("| file | bytes | parameters | FLOPs/token | prefill tok/s | decode tok/s | prefill ratio | decode ratio |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const m of d.models) {
  const [p, dd] = speed(m);
  const f = (x) => Math.round(x).toLocaleString("en-US");
  console.log(`| ${m.path.split("/").pop()} | ${f(m.fileBytes)} | ${f(m.parameters)} | ${f(m.flops.exact.total)} | ${f(p)} | ${f(dd)} | ${(p / p0).toFixed(2)} | ${(dd / d0).toFixed(2)} |`);
}' "$(realpath "$OUT/bench.json")"
