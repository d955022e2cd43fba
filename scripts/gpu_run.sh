#!/usr/bin/env bash
# On a lent GPU machine: carry the 345-class model on there, time the benchmarks on cuda, and
# bring the weights back. Prepared here, before a machine is lent (issue 19):
#   python scripts/gpu_pack.py                       # gpu/data.npz.gz and gpu/shared.tar.gz
#   echo /.whl/ >> .git/info/exclude; for v in 3.11 3.12 3.13; do python3 -m pip download --no-deps \
#     --only-binary=:all: --python-version $v --implementation cp --platform manylinux_2_17_x86_64 -d .whl orjson; done
# Then one device call, which fits its 10-minute limit (MINUTES of training, 1.5 of benchmarks):
#   run(command="bash scripts/gpu_run.sh 7", carry=["gpu", ".whl"], timeout_s=600)
# What comes back in $OUT: weights.pt (the weight average where training stopped, as ship_all.py
# takes it), history.json, train.log, train_speed.txt, sample_speed.txt, versions.txt.
# CPU check of the whole path, here: OUT=/tmp/out DEVICE=cpu BENCH_BATCHES=3 PYTHON=.venv/bin/python bash scripts/gpu_run.sh 0.5
set -uo pipefail
MINUTES=${1:-7}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-256}
OUT=${OUT:?the device tool sets OUT}
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! $PYTHON -c "import orjson" 2>/dev/null; then  # what the machine's image lacks, from .whl/ (any Python)
    $PYTHON -m pip install -q --no-index --find-links .whl --no-deps --no-compile --no-cache-dir --target /tmp/site \
        orjson || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [ ! -d ../shared/data/quickdraw ]; then  # the five classes' real drawings, for the benchmarks
    mkdir -p ../shared && tar xzf gpu/shared.tar.gz -C ../shared
fi
gunzip -c gpu/data.npz.gz > /tmp/data.npz || exit 1
{ $PYTHON -m qdsketch --version; nvidia-smi -L 2>/dev/null; } > "$OUT/versions.txt" 2>&1
# from the shipped weights, on the packed drawings; SIGINT after MINUTES saves last.pt, as Ctrl-C does
RUN=/tmp/run-gpu
timeout --signal=INT "$(python3 -c "print(int($MINUTES * 60))")" $PYTHON -m qdsketch train --data /tmp/data.npz \
    --init-from all --ema 0.999 --device "$DEVICE" --batch-size "$BATCH" --seed 3 --epochs 1000 \
    --save-every 2 --run-dir "$RUN" > "$OUT/train.log" 2>&1
echo "train exit: $?" >> "$OUT/train.log"
cp "$RUN/history.json" "$OUT/" 2>/dev/null
$PYTHON - "$RUN/last.pt" "$OUT/weights.pt" <<'PY'
import sys
from dataclasses import replace
from qdsketch.checkpoint import load_checkpoint, save_checkpoint
ckpt = load_checkpoint(sys.argv[1])  # the average (under --ema), the training state dropped: 8 MB
save_checkpoint(sys.argv[2], replace(ckpt, state=None, val={}))
print(sys.argv[2], ckpt.trained)
PY
$PYTHON benchmarks/train_speed.py --preset mixture --device "$DEVICE" --batches "${BENCH_BATCHES:-200}" > "$OUT/train_speed.txt" 2>&1
$PYTHON benchmarks/sample_speed.py --device "$DEVICE" > "$OUT/sample_speed.txt" 2>&1
ls -la "$OUT"
