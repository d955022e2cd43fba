#!/usr/bin/env bash
# Assemble every real drawing in ../shared/data/quickdraw for the five reference classes
# into one data directory in Google's layout: simplified/ holds Google's first lines, the
# next/ lines and the samples/ lines; raw/ the raw drawings (preprocess counts a raw drawing
# and its simplified twin once, by key_id).
#   bash scripts/shared_data.sh [SHARED_DIR] [OUT_DIR]
set -euo pipefail
shared=${1:-../shared/data/quickdraw}
out=${2:-data-shared}
mkdir -p "$out/simplified" "$out/raw"
for c in cat clock house nail tent; do
  cat "$shared/simplified/$c.ndjson" "$shared/next/$c.ndjson" "$shared/samples/$c.ndjson" > "$out/simplified/$c.ndjson"
  cp "$shared/raw/$c.ndjson" "$out/raw/$c.ndjson"
done
echo "$out"
