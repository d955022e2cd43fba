"""Concurrent download against a loopback server with injected latency: --jobs 1
against --jobs 8 for 40 classes x 1,000 drawings, with the same bytes and files.

The server (the test suite's own, tests/conftest.py) waits --latency seconds
before each response and after every 64 KiB of body, as a distant server's
round trips would. The files are real drawings of ../shared (tests/data when it
is not there), repeated with new key_ids.

    python benchmarks/download_jobs.py [--classes 40] [--per-class 1000] [--latency 0.05]
"""

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from conftest import Mirror, repeated_lines  # noqa: E402  the test suite's own server

from qdsketch import download as dl  # noqa: E402
from qdsketch.classes import categories  # noqa: E402


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.ndjson")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    sources = ["cat", "clock", "house", "nail", "tent"]
    names = list(categories())[: args.classes]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mirror = Mirror(tmp / "mirror")
        for i, name in enumerate(names):  # each class gets real drawings (of one of five classes), renamed
            body = repeated_lines(sources[i % 5], args.per_class + 100).replace(
                f'"word":"{sources[i % 5]}"'.encode(), f'"word":"{name}"'.encode()
            )
            mirror.add("simplified", name, body)
        mirror.latency = args.latency
        mirror.thread.start()
        print(f"{len(names)} classes x {args.per_class:,} drawings, latency {args.latency * 1e3:.0f} ms a round trip")
        seconds = {}
        for jobs in args.jobs:
            t = time.perf_counter()
            results = dl.download_classes(
                names, jobs, data_dir=tmp / f"j{jobs}", limit=args.per_class, base=mirror.url, fmt="simplified"
            )
            seconds[jobs] = time.perf_counter() - t
            kept = sum(r.bytes_kept for r in results)
            moved = sum(r.bytes_moved for r in results)
            files = digest(tmp / f"j{jobs}" / "simplified")
            print(
                f"--jobs {jobs}: {seconds[jobs]:6.2f} s, {kept / 1e6:.2f} MB kept, {moved / 1e6:.2f} MB moved, "
                f"files sha256 {files}"
            )
        base = seconds[args.jobs[0]]
        for jobs in args.jobs[1:]:
            print(f"--jobs {jobs} is {base / seconds[jobs]:.1f}x --jobs {args.jobs[0]}")
        mirror.server.shutdown()


if __name__ == "__main__":
    main()
