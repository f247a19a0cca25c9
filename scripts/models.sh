#!/usr/bin/env bash
# Rebuilds the shipped models in models/ from scratch (npm run models): tokenizers, corpora, the
# teacher, the distilled default student (a mix of Q8_0 and Q4_0 within 400,000 bytes), the
# <= 100 KB model, and the models kept for comparison (the earlier default student, trained alone
# and distilled): the runs of scripts/train-long.sh that scripts/model-runs.json names, which this
# script runs in the foreground,
# then conversion, quantization, held-out scores and the model cards.
#
#   bash scripts/models.sh [WORKDIR]        (default WORKDIR: .models-work, ignored by git)
#
# Every run resumes from its last checkpoint, so an interrupted rebuild continues where it stopped
# (run the same command again). Deterministic for a given machine: seeded data order and
# initialisation, one thread per run. Knobs (environment): THREADS, PY, and TRAINED=1 to skip the
# training stage when the runs are already done (e.g. by `scripts/train-long.sh start`, whose
# folder is then WORKDIR: bash scripts/models.sh ~/.cache/itera-train).
# Time here (2 shared cores, one thread): about 10 hours of training (see models/README.md for
# the last rebuild's total): the teacher on more text, then Brown (85 min), the Brown-only teacher
# chain (89 min), the earlier teacher (109 min), the default student's chain of five runs (85 min),
# the tiny model's two runs (90 min), the earlier students (24-72 min each).
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(realpath -m "${1:-.models-work}")
PY=${PY:-/usr/bin/python3}
ITERA="node bin/itera.js"
mkdir -p "$W" models
start=$(date +%s)
say() { printf '\n== [%5ds] %s\n' $(( $(date +%s) - start )) "$*"; }

"$PY" -c 'import torch' 2>/dev/null || { echo "scripts/models.sh: $PY cannot import torch: apt-get install -y --no-install-recommends python3-torch" >&2; exit 1; }
[ -f dist/host/cli/itera.js ] || npm run build

if [ -n "${TRAINED:-}" ]; then
  say "training: skipped (TRAINED is set); using the runs in $W"
elif [ -e "$W/queue.lock" ] && ! flock -n "$W/queue.lock" true; then
  echo "scripts/models.sh: a training queue already runs in $W (scripts/train-long.sh start?); wait for it or stop it" >&2; exit 1
else
  # the runs scripts/model-runs.json names (each model's run and the runs it continues from), in the
  # queue's order; the queue's other runs are experiments (docs/training.md), run with `start RUN`
  needed=$(node -e 'const s = new Set();
    for (const m of require("./scripts/model-runs.json").models) for (const r of [...(m.continues ?? []), m.run]) s.add(r);
    console.log([...s].join(" "))')
  say "training: tokenizers, corpora and the runs $needed, in $W"
  # exits non-zero when a run fails or is interrupted; running this script again resumes it
  # shellcheck disable=SC2086 # run names are words
  ITERA_TRAIN_DIR="$W" PY="$PY" bash scripts/train-long.sh queue $needed
fi

say "convert and quantize"
# shipped name <- training run, from scripts/model-runs.json (model-cards.mjs reads the same list)
runs=$(node -e 'for (const m of require("./scripts/model-runs.json").models)
  console.log([m.name, m.run, m.small, m.shipped ? 1 : 0, m.optional ? 1 : 0, m.budget ?? 0].join(" "))')
while read -r m r small shipped optional budget; do
  if [ ! -f "$W/$r/model.safetensors" ]; then
    [ "$optional" = 1 ] && { echo "$m: $W/$r has no model yet; the cards leave it out"; continue; }
    echo "scripts/models.sh: $W/$r/model.safetensors is missing" >&2; exit 1
  fi
  $ITERA convert "$W/$r/model.safetensors" --tokenizer "$W/$r/tokenizer.json" --name "itera-lite-brown-$m" -o "$W/$m-f32.gguf" > "$W/$m-convert.txt"
  $ITERA quantize "$W/$m-f32.gguf" --type q8_0 -o "$W/$m-q8_0.gguf" > "$W/$m-q8_0.txt"
  $ITERA quantize "$W/$m-f32.gguf" --type q4_0 --small "$small" -o "$W/$m-q4_0.gguf" > "$W/$m-q4_0.txt"
  types="f32 q8_0 q4_0"
  # a model with a byte budget also gets the mix of Q8_0 and Q4_0 matrices that fits it
  if [ "$budget" != 0 ]; then
    $ITERA quantize "$W/$m-f32.gguf" --type mixed --max-bytes "$budget" -o "$W/$m-mix.gguf" > "$W/$m-mix.txt"
    types="$types mix"
  fi
  if [ "$shipped" = 1 ]; then for q in $types; do cp "$W/$m-$q.gguf" "models/$m-$q.gguf"; done; fi
done <<< "$runs"

say "held-out scores and samples"
node scripts/model-cards.mjs "$W"

say "done in $(( $(date +%s) - start )) s"
