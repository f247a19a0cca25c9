#!/usr/bin/env bash
# Long training runs (issue 15) in the background, one after another, resumable across sessions.
#
#   bash scripts/train-long.sh start     start the queue in the background, or do nothing if it runs
#   bash scripts/train-long.sh start RUN...  the same, for the named runs only (in the queue's order)
#   bash scripts/train-long.sh status    each run's step, best validation loss and last progress line
#   bash scripts/train-long.sh stop      SIGTERM the queue: the running trainer writes its checkpoint
#   bash scripts/train-long.sh queue     run the queue in the foreground (what `start` runs)
#   TRAIN_LANE=2 bash scripts/train-long.sh start RUN...   a second queue beside the first (its own
#                                        lock, pid and queue2.log; stop it with TRAIN_LANE=2 ... stop)
#
# Everything lives in $ITERA_TRAIN_DIR (default ~/.cache/itera-train, outside any git work tree,
# which a new session's fresh work tree leaves alone):
# the corpus, one folder per run (checkpoint.pt, model.safetensors, train_log.jsonl), <run>.log
# and queue.log. Every run is started with --resume, so running `start` again after a session
# ended continues each unfinished run from its last checkpoint and skips the finished ones; the
# result is the same as one uninterrupted run. A new machine has no such folder (a session whose
# machine was replaced loses it): the runs are seeded and single-threaded, so `start` then trains
# them again to the same weights. One trainer at a time, one thread (the machine's two cores are
# shared).
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."
D=${ITERA_TRAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/itera-train}
PY=${PY:-/usr/bin/python3}
THREADS=${THREADS:-1}
LANE=${TRAIN_LANE:-}
[[ "$LANE" =~ ^[0-9]*$ ]] || { echo "train-long: TRAIN_LANE must be a number" >&2; exit 2; }
mkdir -p "$D"

CORPUS=$D/brown-2000
# name, then train.py flags. A later run may depend on an earlier one's model.safetensors.
RUNS=(
  # the default student's teacher: 2.27M parameters, no positions, 256-token windows
  "teacher-d192 --no-pos-embedding --preset teacher --d 192 --expert-size 96 --seq-len 256 --epochs 6
   --batch-size 16 --lr 3e-3 --warmup 100 --patience 4 --seed 1"
  # the students use windows of 128 in batches of 32 (same tokens per step): the scan remembers only
  # ~20 tokens, and on a small model 128x32 beat 256x16 (val 4.896 vs 4.946 after 300 steps)
  # the default until the four-layer student below: d=96 L=3 f=64, 557k parameters (<= 400 KB as Q4_0),
  # distilled
  "student-d96 --no-pos-embedding --d 96 --layers 3 --state 8 --expand 2 --experts 4 --expert-size 64
   --top-k 2 --moe-layers 1 --seq-len 128 --epochs 6 --batch-size 32 --lr 3e-3 --warmup 100 --patience 4
   --seed 2 --teacher $D/teacher-d192/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  # a <= 100 KB candidate: V=512 (the V=2000 tokenizer alone is ~60 KB of a file), d=64 L=2 f=32,
  # 141k parameters, about 90 KB as Q4_0 with its tokenizer; no teacher shares its vocabulary
  "tiny-v512 --data $D/brown-512 --no-pos-embedding --d 64 --layers 2 --state 8 --expand 2 --experts 4
   --expert-size 32 --top-k 2 --moe-layers 1 --seq-len 128 --epochs 8 --batch-size 32 --lr 3e-3
   --warmup 100 --patience 4 --seed 3"
  # teacher-d192's shape with dropout 0.1 (it overfit: training loss 3.2
  # against 4.0 nats on validation), 5 epochs, then warm restarts from its weights at lower peak
  # learning rates, each kept only because validation improved (docs/training.md)
  "teacher-d192-drop10 --no-pos-embedding --preset teacher --d 192 --expert-size 96 --seq-len 256 --epochs 5
   --batch-size 16 --lr 3e-3 --warmup 100 --patience 4 --seed 1 --dropout 0.1"
  "teacher-d192-drop10-more --init $D/teacher-d192-drop10/model.safetensors --no-pos-embedding --seq-len 256
   --epochs 2 --batch-size 16 --lr 1e-3 --warmup 50 --patience 4 --seed 4 --dropout 0.1"
  "teacher-d192-drop10-more2 --init $D/teacher-d192-drop10-more/model.safetensors --no-pos-embedding
   --seq-len 256 --epochs 2 --batch-size 16 --lr 6e-4 --warmup 50 --patience 4 --seed 5 --dropout 0.1"
  "teacher-d192-drop10-more3 --init $D/teacher-d192-drop10-more2/model.safetensors --no-pos-embedding
   --seq-len 256 --epochs 2 --batch-size 16 --lr 3e-4 --warmup 50 --patience 4 --seed 6 --dropout 0.1"
  # the teacher's shape and dropout on 3.1x the text: Brown's training split and the State of the
  # Union addresses (docs/data.md); validation is still Brown's
  "teacher-d192-sotu --data $D/brown-sotu-2000 --no-pos-embedding --preset teacher --d 192 --expert-size 96
   --seq-len 256 --epochs 3 --batch-size 16 --lr 3e-3 --warmup 100 --patience 4 --seed 7 --dropout 0.1"
  # the shipped teacher: that run's weights, then 2 epochs of Brown alone (docs/training.md)
  "teacher-d192-sotu-brown --init $D/teacher-d192-sotu/model.safetensors --no-pos-embedding --seq-len 256
   --epochs 2 --batch-size 16 --lr 1e-3 --warmup 50 --patience 4 --seed 8 --dropout 0.1"
  # the default student trained alone, for the cards' measure of what distillation gives
  "student-d96-nokd --no-pos-embedding --d 96 --layers 3 --state 8 --expand 2 --experts 4 --expert-size 64
   --top-k 2 --moe-layers 1 --seq-len 128 --epochs 6 --batch-size 32 --lr 3e-3 --warmup 100 --patience 4
   --seed 2"
  # the earlier default's shape (d=64, L=3, 285k parameters, 375 KB as Q8_0: its speed), without
  # positions, distilled from the shipped teacher for 8 epochs: how close a model of the old
  # default's cost comes to PPMd (docs/training.md)
  "student-d64-kd --no-pos-embedding --d 64 --layers 3 --state 8 --expand 2 --experts 4 --expert-size 32
   --top-k 2 --moe-layers 1 --seq-len 128 --epochs 8 --batch-size 32 --lr 3e-3 --warmup 100 --patience 4
   --seed 2 --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  # the same shape, as the shipped teacher was made: first 3 epochs of Brown and the State of the
  # Union addresses, distilled from the shipped teacher, then 3 epochs of Brown from its weights
  "student-d64-sotu-kd --data $D/brown-sotu-2000 --no-pos-embedding --d 64 --layers 3 --state 8 --expand 2
   --experts 4 --expert-size 32 --top-k 2 --moe-layers 1 --seq-len 128 --epochs 3 --batch-size 32 --lr 3e-3
   --warmup 100 --patience 4 --seed 10 --teacher $D/teacher-d192-sotu-brown/model.safetensors
   --kd-temperature 2.0 --kd-alpha 0.5"
  "student-d64-sotu-kd-brown --init $D/student-d64-sotu-kd/model.safetensors --no-pos-embedding --seq-len 128
   --epochs 3 --batch-size 32 --lr 1e-3 --warmup 50 --patience 4 --seed 11
   --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  # cheaper blocks, more experts: d=64, L=4, di=64 (expand 1), 8 experts of width 32 (top 2) in
  # every layer; 334k parameters, 261 KB as Q4_0, 0.85x the earlier default's FLOPs per token. In
  # 600-step trials without a teacher it learned faster than the earlier default's shape (4.495
  # against 4.544 nats)
  "student-d64l4-kd --no-pos-embedding --d 64 --layers 4 --state 8 --expand 1 --experts 8 --expert-size 32
   --top-k 2 --moe-layers 0,1,2,3 --seq-len 128 --epochs 6 --batch-size 32 --lr 3e-3 --warmup 100
   --patience 4 --seed 2 --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0
   --kd-alpha 0.5"
  # the same blocks with 16 experts per layer (467k parameters, 336 KB as Q4_0, the same FLOPs)
  "student-d64l4e16-kd --no-pos-embedding --d 64 --layers 4 --state 8 --expand 1 --experts 16 --expert-size 32
   --top-k 2 --moe-layers 0,1,2,3 --seq-len 128 --epochs 6 --batch-size 32 --lr 3e-3 --warmup 100
   --patience 4 --seed 2 --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0
   --kd-alpha 0.5"
  # each of those two's weights, then 2 more epochs at a lower peak learning rate (as the teachers);
  # student-d64l4-kd-more3 is the shipped default student (models/student-mix.gguf)
  "student-d64l4-kd-more --init $D/student-d64l4-kd/model.safetensors --no-pos-embedding --seq-len 128
   --epochs 2 --batch-size 32 --lr 1e-3 --warmup 50 --patience 4 --seed 12
   --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  "student-d64l4e16-kd-more --init $D/student-d64l4e16-kd/model.safetensors --no-pos-embedding --seq-len 128
   --epochs 2 --batch-size 32 --lr 1e-3 --warmup 50 --patience 4 --seed 12
   --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  "student-d64l4-kd-more2 --init $D/student-d64l4-kd-more/model.safetensors --no-pos-embedding --seq-len 128
   --epochs 2 --batch-size 32 --lr 6e-4 --warmup 50 --patience 4 --seed 13
   --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  "student-d64l4-kd-more3 --init $D/student-d64l4-kd-more2/model.safetensors --no-pos-embedding --seq-len 128
   --epochs 2 --batch-size 32 --lr 3e-4 --warmup 50 --patience 4 --seed 14
   --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  # the default student's weights, then 2 epochs in windows of 256 (as the teacher's; the same
  # tokens per step), so that its T, the context it is trained and measured with, is 256
  "student-d64l4-kd-t256 --init $D/student-d64l4-kd-more3/model.safetensors --no-pos-embedding --seq-len 256
   --epochs 2 --batch-size 16 --lr 3e-4 --warmup 50 --patience 4 --seed 15
   --teacher $D/teacher-d192-sotu-brown/model.safetensors --kd-temperature 2.0 --kd-alpha 0.5"
  # the tiny model's weights, then 2 epochs in windows of 512 of its 512-token vocabulary (about
  # the characters of the student's 256; the same tokens per step)
  "tiny-v512-t512 --data $D/brown-512 --init $D/tiny-v512/model.safetensors --no-pos-embedding --seq-len 512
   --epochs 2 --batch-size 8 --lr 3e-4 --warmup 50 --patience 4 --seed 16"
)
COMMON=(--data "$CORPUS" --threads "$THREADS" --log-every 50 --eval-every 200 --eval-tokens 65536
        --ckpt-every 200 --ckpt-minutes 5 --resume)

prepare() {  # the Brown corpus tokenized with byte-level BPE of 2000 and of 512 tokens
  for v in 2000 512; do
    [ -f "$D/brown-$v/train.bin" ] && continue
    [ -f dist/host/cli/itera.js ] || npm run build
    node bin/itera.js tokenizer train --kind bpe --vocab "$v" -o "$D/tokenizer-$v.json"
    node bin/itera.js data prepare --tokenizer "$D/tokenizer-$v.json" --corpus brown -o "$D/brown-$v"
  done
  # Brown and the State of the Union addresses (docs/data.md), with the same 2,000-token tokenizer
  [ -f "$D/brown-sotu-2000/train.bin" ] ||
    node bin/itera.js data prepare --tokenizer "$D/tokenizer-2000.json" --corpus brown+sotu -o "$D/brown-sotu-2000"
}

queue() {
  exec 9>"$D/queue$LANE.lock"
  flock -n 9 || { echo "train-long: a queue already runs (lock $D/queue$LANE.lock)"; return 0; }
  "$PY" -c 'import torch' || { echo "train-long: $PY cannot import torch" >&2; return 1; }
  prepare
  for spec in "${RUNS[@]}"; do
    read -r -d '' -a f <<< "$spec" || true
    name=${f[0]}
    if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    echo "== $(date -Is) $name"
    status=0
    "$PY" scripts/train/train.py "${COMMON[@]}" --out "$D/$name" "${f[@]:1}" >> "$D/$name.log" 2>&1 || status=$?
    echo "== $(date -Is) $name exited with status $status"
    [ "$status" = 0 ] || return "$status"  # interrupted: stop here; `start` resumes
  done
  echo "== $(date -Is) every run finished"
}

main() {
case "${1:-status}" in
  start)
    shift
    for r in "$@"; do
      grep -q "^  \"$r " "$SELF" || { echo "train-long: no run named $r (see RUNS in $SELF)" >&2; exit 2; }
    done
    if ! flock -n "$D/queue$LANE.lock" true; then echo "train-long: already running; see $D/queue$LANE.log"; exit 0; fi
    nohup setsid bash "$SELF" queue "$@" >> "$D/queue$LANE.log" 2>&1 < /dev/null &
    echo $! > "$D/queue$LANE.pid"
    echo "train-long: queue$LANE started (pid $(cat "$D/queue$LANE.pid")); logs in $D/*.log"
    ;;
  queue) shift; queue "$@" ;;
  stop)
    pid=$(cat "$D/queue$LANE.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid"  # its own process group (setsid): the trainer checkpoints and exits
      echo "train-long: sent SIGTERM to the queue (process group $pid)"
    else
      echo "train-long: no queue running"
    fi
    ;;
  status)
    for spec in "${RUNS[@]}"; do
      read -r -d '' -a f <<< "$spec" || true
      name=${f[0]}
      printf '%s: ' "$name"
      if [ -f "$D/$name/checkpoint.pt" ]; then
        "$PY" - "$D/$name/checkpoint.pt" "$D/$name/train_log.jsonl" "$CORPUS" <<'EOF'
import json, math, os, sys, torch
ck = torch.load(sys.argv[1], map_location="cpu")
b = ck["best"]
print(f"step {ck['step']}/{ck['total_steps']}, best val {b['val_loss']:.4f} nats at step {b['step']}, "
      f"{ck['train_seconds'] / 60:.1f} min trained" + (f", finished ({ck['stop_reason']})" if ck["finished"] else ""))
# the validation curve; bits per character with the validation split's characters per token
meta_path = os.path.join(ck.get("data") or sys.argv[3], "meta.json")
meta = json.load(open(meta_path)) if os.path.exists(meta_path) else None
evals = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    if "val_loss" in r:
        evals[r["step"]] = r["val_loss"]
cpt = None
if meta and "splits" in meta:
    v = meta["splits"]["validation"]
    cpt = v["characters"] / v["tokens"]
for step, vl in sorted(evals.items()):
    bpc = f"  {vl / math.log(2) / cpt:.3f} bits/char" if cpt else ""
    print(f"    val step {step:5d}: {vl:.4f} nats  {vl / math.log(2):.3f} bits/token{bpc}")
EOF
      else
        echo "no checkpoint yet"
      fi
      [ -f "$D/$name.log" ] && grep -E '^(step|eval)' "$D/$name.log" | tail -n 2 | sed 's/^/    /'
    done
    ;;
  *) echo "usage: bash scripts/train-long.sh start [RUN...]|status|stop|queue [RUN...]" >&2; exit 2 ;;
esac
}
# bash reads a script as it runs it: main and exit on one line are parsed together, so a file
# edited under a running queue is never read again after main returns
main "$@"; exit
