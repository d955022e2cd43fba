"""Build src/qdsketch/assets/others.npz: the real drawings the judge learns "none of
these" from, one small set per Quick, Draw! class.

    python scripts/build_others.py [SHARED_SIMPLIFIED_DIR]

It reads Google's first 25 simplified drawings of each class (the folder
../shared/data/quickdraw/simplified, 344 classes), keeps the recognized ones and
stores them as stroke-3 int16 rows with offsets and a class index per drawing.
The judge leaves out the classes of the dataset it judges, so the same file
serves any dataset. Google's Quick, Draw! data, CC BY 4.0 (see data/README.md).
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.classes import categories  # noqa: E402
from qdsketch.data.ndjson import read_ndjson  # noqa: E402
from qdsketch.files import atomic_path  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared/data/quickdraw/simplified")
    names, rows, lengths, labels = [], [], [], []
    for name in categories():
        path = folder / f"{name}.ndjson"
        if not path.is_file():
            continue
        d = read_ndjson(path, "simplified", name)
        label = len(names)
        names.append(name)
        rows.append(d.rows)
        lengths += np.diff(d.offsets).tolist()
        labels += [label] * len(d)
    out = ROOT / "src/qdsketch/assets/others.npz"
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                class_names=np.array(names, dtype=np.str_),
                rows=np.concatenate(rows).astype(np.int16),
                offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                labels=np.array(labels, dtype=np.int16),
            )
    print(f"{out}: {len(labels):,} drawings of {len(names)} classes, {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
