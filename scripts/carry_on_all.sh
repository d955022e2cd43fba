#!/usr/bin/env bash
# Carry the model of all 345 classes on for a working session, on this machine's CPU.
#
# Where the last session's run directory survived (runs/all-*/last.pt, or RUN=DIR), it goes on
# with `train --resume`: exact, the optimizer's state included. A run directory does not always
# outlive the machine it was made on, though; then a new run starts from the weights that ship
# (`train --init-from all`): the model, its classes and its normalisation come with them, and
# the new run's checkpoints count their steps and CPU hours, so the curve of docs/results.md
# goes on. That optimizer starts afresh, so its learning rate warms up over the first 2,000
# steps: at the full rate from the start, the validation loss went from 0.245 to 0.386 before
# it recovered (docs/results.md measured both).
#
#   bash scripts/carry_on_all.sh [SEED]     # SEED: a new run's batch order [default: today's date]
#
# It builds data-all/ if needed (`make data-all`, about a minute), starts the run in the
# background (the surviving one, or a new runs/all-<date>), logging to its train.log, and
# returns. Then:
#   judge a snapshot:  python benchmarks/judge_curve.py PICK --data data-all/dataset \
#                        --judge src/qdsketch/assets/judge-all.pt -n 10   (PICK/lstm/snapshots/ links to it)
#   stop it:           kill -INT <pid>            (saves last.pt; this script again goes on from it)
#   ship its weights:  qdsketch evaluate SNAPSHOT --data data-all/dataset --judge -n 100 --json > judged.json
#                      python scripts/class_table.py judged.json > docs/classes.md
#                      python scripts/ship_all.py SNAPSHOT "a 2 x 384 LSTM ... for N CPU hours ..."
#                      and the `all` figures of docs/model-card.md, docs/results.md and the README grid
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:-$(date +%Y%m%d)}
[ -f data-all/dataset/manifest.json ] || make data-all
# the newest run directory that holds a last.pt, if any; written so that neither a fresh
# machine (no runs/) nor a run stopped before its first save ends the script under pipefail
newest_resumable() {
    local d
    for d in $(ls -td runs/all-*/ 2>/dev/null || true); do
        if [ -f "$d/last.pt" ]; then echo "${d%/}"; return; fi
    done
}
RUN=${RUN:-$(newest_resumable)}
# two threads: 1.6 times one thread's steps on the 2-core machines here (docs/results.md)
export OMP_NUM_THREADS=${THREADS:-2}
if [ -n "$RUN" ] && [ -f "$RUN/last.pt" ]; then
    setsid nohup .venv/bin/qdsketch train --run-dir "$RUN" --resume >> "$RUN/train.log" 2>&1 &
    echo "resuming $RUN (pid $!); its log: $RUN/train.log"
    exit 0
fi
RUN=runs/all-$(date +%Y%m%d-%H%M)
mkdir -p "$RUN"
setsid nohup .venv/bin/qdsketch train --data data-all/dataset --init-from all --warmup 2000 \
    --ema 0.999 --save-every 10 --seed "$SEED" --epochs 30 --run-dir "$RUN" > "$RUN/train.log" 2>&1 &
echo "training in $RUN (pid $!, seed $SEED); its log: $RUN/train.log"
