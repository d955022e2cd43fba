"""The judge's verdict on a run's weights as training goes: the curve of docs/results.md.

For each checkpoint of each run (``snapshots/steps-N.pt``, written by ``train --save-every``,
then ``best.pt``), ``-n`` sketches of every class at the head's default temperature, judged
by a cached judge of the dataset (``scripts/ship_judge.py`` or ``evaluate --judge`` trains
it). One ``judge_generator`` call per run, so the real drawings are drawn and classified once.
A checkpoint's CPU hours come from its own record (written since this release), else from a log of the
process's CPU seconds (``--cpu-log``: lines "unix-time run-dir pid cpu-seconds"), read at the
file's modification time.

    python benchmarks/judge_curve.py RUN [RUN ...] --data data-all/dataset --judge data-all/dataset.judge.pt
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch import judge as J  # noqa: E402
from qdsketch.batching import DeviceSplit  # noqa: E402
from qdsketch.checkpoint import load_checkpoint  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402
from qdsketch.evaluate import evaluate_split  # noqa: E402
from qdsketch.sample import generate_many, sketch_seeds  # noqa: E402


def cpu_hours_at(log: Path | None, run: Path, when: float) -> float | None:
    """CPU hours of ``run``'s process at unix time ``when``, interpolated in ``log``."""
    if log is None or not log.exists():
        return None
    points = []
    for line in log.read_text().splitlines():
        t, name, _, cpu = line.split()
        if Path(name).name == run.name:
            points.append((float(t), float(cpu)))
    if len(points) < 2 or when > points[-1][0] + 60:
        return None
    t, cpu = np.array(points).T
    if when < t[0]:  # before the log began: the rate of its first stretch, back to the run's start
        rate = (cpu[1] - cpu[0]) / (t[1] - t[0])
        return float(max(cpu[0] - rate * (t[0] - when), 0)) / 3600
    return float(np.interp(when, t, cpu)) / 3600


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--data", type=Path, default=ROOT / "data-all/dataset")
    p.add_argument("--judge", type=Path, help="a cached judge [default: beside the dataset]")
    p.add_argument("-n", type=int, default=10, help="sketches per class")
    p.add_argument("--cpu-log", type=Path)
    p.add_argument("--every", type=int, default=1, help="judge every this-many-th snapshot")
    p.add_argument("--pool", type=int, default=34_500, help="training drawings for novelty (100 a class)")
    p.add_argument("--val", type=int, default=5000, help="validation drawings (a fixed random subset) for the loss")
    p.add_argument("--out", type=Path, help="write the curve here as JSON")
    p.add_argument(
        "--temperature",
        type=float,
        action="append",
        help="sampling temperature; repeat to judge several [default: the head's]",
    )
    args = p.parse_args()
    ds = load_dataset(args.data)
    judge_path = args.judge or args.data.with_name(args.data.stem + ".judge.pt")
    net, _, _ = J.load_or_train(ds, judge_path)
    classes = range(len(ds.class_names))
    labels = [c for c in classes for _ in range(args.n)]
    seeds = sketch_seeds(0, len(labels))
    val_index = J.even_subset(ds.splits["val"].labels, args.val, 0)
    curve = []
    for run in args.runs:
        snaps = sorted(run.glob("snapshots/steps-*.pt"), key=lambda f: int(f.stem.split("-")[1]))[:: args.every]
        points, generated = [], {}
        for path in snaps:
            ckpt = load_checkpoint(path)
            hours = ckpt.trained.get("cpu_hours") or cpu_hours_at(args.cpu_log, run, path.stat().st_mtime)
            val = evaluate_split(ckpt.model, DeviceSplit(ds.splits["val"], ckpt.mean, ckpt.std), 256, index=val_index)
            for temperature in args.temperature or [None]:
                t = time.perf_counter()
                rows = generate_many(ckpt, labels, seeds, temperature, ckpt.max_seq_len).rows
                took = time.perf_counter() - t
                key = len(points)
                generated[key] = {c: rows[c * args.n : (c + 1) * args.n] for c in classes}
                points.append(
                    {
                        "run": str(run),
                        "checkpoint": path.name,
                        "steps": int(path.stem.split("-")[1]),
                        "cpu_hours": hours,
                        "arch": ckpt.config.arch,
                        "temperature": temperature,
                        "sampling_seconds": took,
                        **{f"val_{k}": v for k, v in val.means().items()},
                    }
                )
                print(f"{run.name} {path.name} at {temperature}: sampled {len(rows)} in {took:.1f} s", flush=True)
        result = J.judge_generator(net, ds, generated, cfg=replace(J.DEFAULT_CONFIG, max_pool=args.pool))
        o = result["overall"]
        for key, point in enumerate(points):
            point.update(
                {
                    k: o[f"{k}@{key}"]
                    for k in ("median_ratio", "recognised", "recognised_top3", "top3_zero", "precision", "recall")
                }
            )
            point["judge_accuracy"], point["judge_accuracy_top3"] = o["accuracy"], o["accuracy_top3"]
            curve.append(point)
            print(
                f"{run.name:12s} steps {point['steps']:6d}  t {point['temperature'] or 'default'}  "
                f"cpu h {point['cpu_hours'] or float('nan'):5.2f}  "
                f"val {point['val_total']:.3f}  median ratio {point['median_ratio'] or 0:.3f}  "
                f"top-1 {point['recognised']:.3f} "
                f"(real {o['accuracy']:.3f})  top-3 {point['recognised_top3']:.3f}  "
                f"top-3 zero {point['top3_zero']:.1%}",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(curve, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
