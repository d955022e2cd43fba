"""Scale benchmarks for docs/scale.md: preprocess and training on millions of drawings.

The inputs are the real drawings of ../shared/data/quickdraw (all 344 classes it
holds: simplified/, plus next/ and bulk/ where a class has them) repeated with new
key_ids up to --per-class lines a class. They are gigabytes: made by this script,
never committed, and removed by `clean`.

    python benchmarks/scale.py make-input /tmp/qd --per-class 10000
    python benchmarks/scale.py preprocess /tmp/qd /tmp/qd-ds --workers 1
    python benchmarks/scale.py train /tmp/qd-ds --max-steps 300
    python benchmarks/scale.py clean /tmp/qd /tmp/qd-ds

Peak RSS is sampled every 20 ms over the whole process tree (the command and its
worker processes, summed) from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "quickdraw"
QDSKETCH = [sys.executable, "-m", "qdsketch"]


def real_lines(name: str) -> list[bytes]:
    """Every real drawing of ``name`` in ../shared, as compact JSON with the key_id left to fill."""
    out = []
    for folder in ("simplified", "next", "bulk"):
        path = SHARED / folder / f"{name}.ndjson"
        if path.is_file():
            for line in path.read_bytes().splitlines():
                obj = json.loads(line)
                if obj.get("recognized", True) is False:
                    continue
                obj = {"word": name, "recognized": True, "key_id": "%KEY%", "drawing": obj["drawing"]}
                out.append(json.dumps(obj, separators=(",", ":")).encode())
    return out


def make_input(folder: Path, per_class: int) -> None:
    names = sorted(p.stem for p in (SHARED / "simplified").glob("*.ndjson"))
    target = folder / "simplified"
    target.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    total = 0
    for c, name in enumerate(names):
        lines = [line.split(b"%KEY%") for line in real_lines(name)]
        with open(target / f"{name}.ndjson", "wb") as handle:
            for i in range(per_class):
                head, tail = lines[i % len(lines)]
                handle.write(head + str(10**15 + c * 10**7 + i).encode() + tail + b"\n")
        total += per_class
    size = sum(p.stat().st_size for p in target.iterdir())
    seconds = time.perf_counter() - t
    print(f"{len(names)} classes x {per_class:,} = {total:,} drawings, {size / 1e9:.2f} GB, {seconds:.0f} s")


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every descendant."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def measured(cmd: list[str]) -> tuple[float, int, str]:
    """Run ``cmd``; its wall time, peak tree RSS and output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = proc.communicate()[0].decode()
    sampler.join()
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    return time.perf_counter() - t, peak[0], out


def preprocess(data: Path, output: Path, workers: int) -> None:
    cmd = [*QDSKETCH, "preprocess", "--data-dir", str(data), "-o", str(output), "--workers", str(workers), "--json"]
    seconds, peak, out = measured(cmd)
    summary = json.loads(out[out.index("{") :])
    n = sum(summary["total"].values())
    size = sum(p.stat().st_size for p in Path(output).iterdir())
    print(
        f"preprocess, {workers} worker(s): {n:,} drawings in {seconds:.1f} s = {n / seconds:,.0f} drawings/s; "
        f"peak RSS {peak / 2**20:,.0f} MiB (process tree); output {size / 1e9:.2f} GB"
    )


def train(data: Path, max_steps: int, stream: str, batch_size: int, preset: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            *QDSKETCH,
            "train",
            "--data",
            str(data),
            "--preset",
            preset,
            "--max-steps",
            str(max_steps),
            "--stream",
            stream,
            "--batch-size",
            str(batch_size),
            "--device",
            "cpu",
            "--run-dir",
            f"{tmp}/run",
            "-q",
        ]
        seconds, peak, _ = measured(cmd)
        history = json.loads(Path(f"{tmp}/run/history.json").read_text())
    train_seconds = sum(r["train_seconds"] for r in history)
    validation = sum(r["seconds"] - r["train_seconds"] for r in history)
    per_step = train_seconds / max_steps
    print(
        f"train --stream {stream}, {preset}, batch {batch_size}: {max_steps} steps in {len(history)} epoch(s), "
        f"{per_step * 1e3:.2f} ms a step ({max_steps * batch_size / train_seconds:,.0f} drawings/s), validation "
        f"{validation:.0f} s, whole command {seconds:.0f} s; peak RSS {peak / 2**20:,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-input")
    p.add_argument("folder", type=Path)
    p.add_argument("--per-class", type=int, default=2000)
    p = sub.add_parser("preprocess")
    p.add_argument("data", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--workers", type=int, default=1)
    p = sub.add_parser("train")
    p.add_argument("data", type=Path)
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--stream", default="always")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--preset", default="tiny")
    p = sub.add_parser("clean")
    p.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "make-input":
        make_input(args.folder, args.per_class)
    elif args.command == "preprocess":
        preprocess(args.data, args.output, args.workers)
    elif args.command == "train":
        train(args.data, args.max_steps, args.stream, args.batch_size, args.preset)
    else:
        for folder in args.folders:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
