#!/usr/bin/env bash
# Assemble every real drawing in ../shared/data/quickdraw for the five reference classes
# into one data directory in Google's layout: simplified/ holds Google's first lines, the
# next/ lines and the bulk/ lines (random samples of Google's simplified files, about 4,900 a
# class); raw/ the raw drawings (preprocess counts a raw drawing and its simplified twin once,
# by key_id). `make data` runs this, then preprocess.
# samples/ is left out: it is a visualisation project's pick, not a random sample, and 767 of
# its 3,742 cats (21%) are a few parallel diagonal strokes and nothing else, against 11 of the
# 4,719 bulk/ cats (docs/data-format.md); a model trained on them draws diagonal wedges for cats.
#   bash scripts/shared_data.sh [SHARED_DIR] [OUT_DIR]
set -euo pipefail
shared=${1:-../shared/data/quickdraw}
out=${2:-data-shared}
mkdir -p "$out/simplified" "$out/raw"
for c in cat clock house nail tent; do
  cat "$shared/simplified/$c.ndjson" "$shared/next/$c.ndjson" "$shared/bulk/$c.ndjson" > "$out/simplified/$c.ndjson"
  cp "$shared/raw/$c.ndjson" "$out/raw/$c.ndjson"
done
echo "$out"
