#!/usr/bin/env bash
# Rebuilds the default models in models/ from scratch (npm run models): tokenizer, corpus,
# teacher, distilled student, undistilled student, conversion, quantization, held-out scores,
# model cards. Deterministic for a given machine (seeded data order and initialisation).
#
#   bash scripts/models.sh [WORKDIR]        (default WORKDIR: .models-work, ignored by git)
#
# Knobs (environment): TEACHER_STEPS, STUDENT_STEPS, BATCH, VOCAB, THREADS, PY.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-.models-work}
PY=${PY:-/usr/bin/python3}
VOCAB=${VOCAB:-2000}
TEACHER_STEPS=${TEACHER_STEPS:-700}
STUDENT_STEPS=${STUDENT_STEPS:-700}
BATCH=${BATCH:-16}
THREADS=${THREADS:-1}
ITERA="node bin/itera.js"
mkdir -p "$W" models
start=$(date +%s)
say() { printf '\n== [%4ds] %s\n' $(( $(date +%s) - start )) "$*"; }

"$PY" -c 'import torch' 2>/dev/null || { echo "scripts/models.sh: $PY cannot import torch: apt-get install -y --no-install-recommends python3-torch" >&2; exit 1; }
[ -f dist/host/cli/itera.js ] || npm run build

say "tokenizer: byte-level BPE, $VOCAB tokens, trained on the Brown Corpus training split"
$ITERA tokenizer train --kind bpe --vocab "$VOCAB" -o "$W/tokenizer.json"

say "corpus: Brown train / validation / test, tokenized"
$ITERA data prepare --tokenizer "$W/tokenizer.json" --corpus brown -o "$W/corpus"

common=(--data "$W/corpus" --batch-size "$BATCH" --threads "$THREADS" --log-every 100 --eval-every 200 --eval-tokens 32768)

say "teacher (~1.1M parameters), $TEACHER_STEPS steps"
"$PY" scripts/train/train.py "${common[@]}" --out "$W/teacher" --preset teacher --steps "$TEACHER_STEPS" --seed 1

say "students (~0.29M parameters), $STUDENT_STEPS steps each: distilled (T=2, alpha=0.5) and alone, in parallel"
"$PY" scripts/train/train.py "${common[@]}" --out "$W/student" --preset micro --steps "$STUDENT_STEPS" --seed 2 \
  --teacher "$W/teacher/model.safetensors" --kd-temperature 2.0 --kd-alpha 0.5 > "$W/student.log" 2>&1 &
kd=$!
"$PY" scripts/train/train.py "${common[@]}" --out "$W/student-nokd" --preset micro --steps "$STUDENT_STEPS" --seed 2 > "$W/student-nokd.log" 2>&1 &
nokd=$!
wait $kd || { cat "$W/student.log"; exit 1; }
wait $nokd || { cat "$W/student-nokd.log"; exit 1; }
tail -n 3 "$W/student.log" "$W/student-nokd.log"

say "convert and quantize"
for m in teacher student student-nokd; do
  $ITERA convert "$W/$m/model.safetensors" --tokenizer "$W/tokenizer.json" --name "itera-lite-brown-$m" -o "$W/$m-f32.gguf" > "$W/$m-convert.txt"
  for q in q8_0 q4_0; do $ITERA quantize "$W/$m-f32.gguf" --type $q -o "$W/$m-$q.gguf" > "$W/$m-$q.txt"; done
done
for m in teacher student; do for q in f32 q8_0 q4_0; do cp "$W/$m-$q.gguf" "models/$m-$q.gguf"; done; done

say "held-out scores and samples"
node scripts/model-cards.mjs "$W"

say "done in $(( $(date +%s) - start )) s"
