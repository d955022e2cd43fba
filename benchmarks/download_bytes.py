"""Bytes moved against bytes kept when downloading N drawings of a class,
against a real HTTP server on 127.0.0.1 serving a Google-sized file (real cats
repeated with new key_ids), beside fetching the whole file as tools that
download whole class files do.

    python benchmarks/download_bytes.py [--lines 200000]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from conftest import Mirror, repeated_lines  # noqa: E402  the test suite's own server

from qdsketch import download as dl  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mirror = Mirror(tmp / "mirror")
        size = len(mirror.add("simplified", "cat", repeated_lines("cat", args.lines)).read_bytes())
        mirror.thread.start()
        print(f"file: {args.lines:,} lines, {size / 1e6:.1f} MB (* = the whole file: no --max-per-class)")
        print(
            f"{'kept':>8} {'bytes kept':>12} {'client moved':>13} {'server sent':>12} {'moved/kept':>10} {'seconds':>8}"
        )
        for n in (100, 1_000, 10_000, None):
            mirror.sent.clear()
            t = time.perf_counter()
            r = dl.download_class("cat", "simplified", tmp / f"d{n}", limit=n, base=mirror.url)
            seconds = time.perf_counter() - t
            sent = mirror.sent[mirror.path_of("simplified", "cat")]
            label = f"{r.kept:,}" + ("" if n else "*")
            print(
                f"{label:>8} {r.bytes_kept:>12,} {r.bytes_moved:>13,} {sent:>12,} "
                f"{r.bytes_moved / r.bytes_kept:>9.3f}x {seconds:>8.2f}"
            )
        mirror.server.shutdown()


if __name__ == "__main__":
    main()
