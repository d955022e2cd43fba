"""Pack a compact copy of `make data-all`'s dataset for a lent GPU machine.

A device call carries at most 64 MiB with the code (docs/results.md, issue 19), and the sharded
dataset is 330 MB. This keeps, for every class, the first ``--train`` drawings of the dataset's
own training split and the first ``--val`` of its validation split (never a test drawing, so
the judge's test figures stay clean), as a qdsketch dataset file with the full dataset's
normalisation, gzipped as a whole (the loader refuses an .npz whose members inflate far: a
bomb's sign, and a compressed label array's too).

    python scripts/gpu_pack.py [--train 1000] [--val 20] [-o gpu/data.npz.gz]

Beside it, ``gpu/shared.tar.gz``: the real drawings of the five reference classes that
`scripts/shared_data.sh` reads from ../shared, which the benchmarks (train_speed.py) build
their data from; ../shared does not travel to the device. scripts/gpu_run.sh trains there from
the shipped weights, times the benchmarks on cuda, and brings the weights back.
"""

import argparse
import gzip
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.data.dataset import Dataset, Split  # noqa: E402
from qdsketch.data.drawings import select  # noqa: E402
from qdsketch.data.npz import save_npz  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402


def first_of_each(split: Split, n_classes: int, per_class: int) -> Split:
    """The first ``per_class`` drawings of each class in ``split``, in the split's order."""
    labels = split.labels
    index = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(n_classes)])
    index.sort()
    return Split.of(select(split.drawings, index), labels[index])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=ROOT / "data-all" / "dataset")
    p.add_argument("--train", type=int, default=1000, help="training drawings a class")
    p.add_argument("--val", type=int, default=20, help="validation drawings a class")
    p.add_argument("-o", "--output", type=Path, default=ROOT / "gpu" / "data.npz.gz")
    args = p.parse_args()
    ds = load_dataset(args.data)
    n = len(ds.class_names)
    empty = Split.of(select(ds.splits["test"].shards[0].drawings, np.zeros(0, np.int64)), np.zeros(0, np.int64))
    small = Dataset(
        ds.class_names,
        {
            "train": first_of_each(ds.splits["train"], n, args.train),
            "val": first_of_each(ds.splits["val"], n, args.val),
            "test": empty,
        },
        ds.mean,
        ds.std,
        ds.max_seq_len,
        ds.seed,
        {**ds.meta, "packed_from": str(args.data), "per_class": {"train": args.train, "val": args.val}},
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "data.npz"
        save_npz(small, plain)
        with plain.open("rb") as source, gzip.open(args.output, "wb", compresslevel=6) as packed:
            shutil.copyfileobj(source, packed)
    sizes = {k: len(v) for k, v in small.splits.items()}
    print(f"{args.output}: {args.output.stat().st_size / 2**20:.1f} MiB, {sizes}")
    shared = ROOT.parent / "shared" / "data" / "quickdraw"
    five = args.output.with_name("shared.tar.gz")
    with tarfile.open(five, "w:gz") as tar:  # as ../shared lays them out, for scripts/shared_data.sh
        for folder in ("simplified", "next", "bulk", "raw"):
            for name in ("cat", "clock", "house", "nail", "tent"):
                tar.add(shared / folder / f"{name}.ndjson", f"data/quickdraw/{folder}/{name}.ndjson")
    print(f"{five}: {five.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
