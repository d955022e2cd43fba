#!/usr/bin/env bash
# Assemble every real drawing in ../shared/data/quickdraw for all 345 classes into one data
# directory in qdsketch's layout, for `make data-all`:
# - cat, clock, house, nail and tent as `make data` has them (scripts/shared_data.sh);
# - every other class as simplified/<class>.ndjson.gz: Google's first 25 lines (simplified/),
#   gzipped, then the allclasses/ file as it is (a gzip file may hold several members, read
#   one after the other). zigzag has no simplified/ file, so only its allclasses/ lines.
#   bash scripts/shared_data_all.sh [SHARED_DIR] [OUT_DIR]
set -euo pipefail
shared=${1:-../shared/data/quickdraw}
out=${2:-data-all}
bash "$(dirname "$0")/shared_data.sh" "$shared" "$out" > /dev/null
for path in "$shared"/allclasses/*.ndjson.gz; do
  name=$(basename "$path" .ndjson.gz)
  target="$out/simplified/$name.ndjson.gz"
  {
    if [ -f "$shared/simplified/$name.ndjson" ]; then gzip -1 -c "$shared/simplified/$name.ndjson"; fi
    cat "$path"
  } > "$target.part"
  mv "$target.part" "$target"
done
echo "$out"
