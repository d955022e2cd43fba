"""Drawings per second from simplified ndjson to a dataset file, beside bare
``json.loads`` over the same lines, in the same run, on one core.

The input repeats the real drawings of tests/data (and ../shared/data, when it
is beside the repository) with new key_ids, up to --drawings lines per class.

    python benchmarks/preprocess_speed.py [--drawings 100000]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "tests/data/quickdraw/simplified", ROOT.parent / "shared/data/quickdraw/samples"]


def make_input(folder: Path, name: str, count: int) -> Path:
    lines = []
    for src in SOURCES:
        f = src / f"{name}.ndjson"
        if f.exists():
            lines += [json.loads(line) for line in f.read_text().splitlines()]
    out = folder / "simplified" / f"{name}.ndjson"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as handle:
        for i in range(count):
            line = lines[i % len(lines)]
            obj = dict(line, word=name, recognized=True, key_id=str(10**15 + i))
            obj["drawing"] = obj.pop("drawing")  # last, and compact: as Google writes them
            handle.write(json.dumps(obj, separators=(",", ":")) + "\n")
    return out


def best_of_each(n, fns):
    """The best of ``n`` timings of each function, taken in rounds (each function once a
    round), so that a machine whose speed drifts over minutes favours none of them."""
    times = [[] for _ in fns]
    for _ in range(n):
        for fn, taken in zip(fns, times):
            t = time.perf_counter()
            fn()
            taken.append(time.perf_counter() - t)
    return [min(t) for t in times]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--drawings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from qdsketch.data import ndjson
    from qdsketch.data.ndjson import read_ndjson
    from qdsketch.data.npz import save_npz
    from qdsketch.data.preprocess import build_dataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = make_input(tmp, "cat", args.drawings)
        size = path.stat().st_size
        n = args.drawings

        def bare_bytes():
            with open(path, "rb") as f:
                for line in f:
                    json.loads(line)

        def bare_text():
            with open(path, encoding="utf-8") as f:
                for line in f:
                    json.loads(line)

        def read():
            read_ndjson(path, "simplified", "cat")

        def read_by_line():  # the compiled fast path off: every line through orjson and lists
            ndjson.FAST = False
            try:
                read_ndjson(path, "simplified", "cat")
            finally:
                ndjson.FAST = True

        def full():
            save_npz(build_dataset(tmp, ["cat"]), tmp / "ds.npz")

        t_bytes, t_text, t_read, t_line, t_full = best_of_each(
            args.repeat, [bare_bytes, bare_text, read, read_by_line, full]
        )
    t_bare = min(t_bytes, t_text)  # compare against the faster of the two
    print(
        f"input: {n:,} real cat drawings (repeated, new key_ids), {size / 1e6:.1f} MB, python {sys.version.split()[0]}"
    )
    print(f"{'bare json.loads, bytes lines':<34}{n / t_bytes:>12,.0f} drawings/s")
    print(f"{'bare json.loads, str lines':<34}{n / t_text:>12,.0f} drawings/s")
    print(f"{'read_ndjson (to stroke-3)':<34}{n / t_read:>12,.0f} drawings/s  {t_read / t_bare:.2f}x bare (the faster)")
    print(f"{'  the same, line by line':<34}{n / t_line:>12,.0f} drawings/s  {t_line / t_bare:.2f}x bare (the faster)")
    print(
        f"{'preprocess (to dataset file)':<34}{n / t_full:>12,.0f} drawings/s  {t_full / t_bare:.2f}x bare (the faster)"
    )


if __name__ == "__main__":
    main()
