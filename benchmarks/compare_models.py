"""Compare trained runs on the same dataset: losses and the judge's figures,
printed as the markdown tables of docs/results.md.

    python benchmarks/compare_models.py DATASET RUN [RUN ...] [--n 100] [--temperature 0.5 ...]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.checkpoint import load_checkpoint  # noqa: E402
from qdsketch.evaluate import evaluate  # noqa: E402
from qdsketch.model import count_parameters  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--temperature", type=float, action="append")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    temps = args.temperature or [0.5]
    reports = {}
    for run in args.runs:
        judge = {"n": args.n, "temperatures": temps, "seed": args.seed}
        reports[run] = evaluate(Path(run), Path(args.data), "test", "cpu", judge=judge)
    print("| run | head | parameters | test loss | Sketch-RNN L_R | " + " | ".join(
        f"recognised @{t} | FD @{t} | novelty @{t}" for t in temps) + " | novelty of real |")
    print("|" + " --- |" * (5 + 3 * len(temps) + 1))
    for run, r in reports.items():
        ck = load_checkpoint(Path(run))
        j = r["judge"]
        mean = lambda key: np.mean([c[key] for c in j["classes"].values() if c[key] is not None])
        lr = f"{r['sketchrnn_units']['L_R']:.3f}" if "sketchrnn_units" in r else ""
        cells = [Path(run).name, r["head"], f"{count_parameters(ck.model):,}", f"{r['overall']['total']:.3f}", lr]
        for t in temps:
            cells += [f"{mean(f'recognised@{t}'):.2f}", f"{mean(f'frechet@{t}'):.1f}", f"{mean(f'novelty@{t}'):.3f}"]
        cells.append(f"{mean('novelty_real'):.3f}")
        print("| " + " | ".join(cells) + " |")
    print()
    first = next(iter(reports.values()))["judge"]
    print(f"Judge accuracy on real test drawings: {first['overall']['accuracy']:.3f} overall; " + ", ".join(
        f"{k} {v['accuracy']:.2f}" for k, v in first["classes"].items()))
    print()
    for t in temps:
        names = list(first["classes"])
        print(f"Recognised at temperature {t}, per class:\n")
        print("| run | " + " | ".join(names) + " |")
        print("|" + " --- |" * (len(names) + 1))
        for run, r in reports.items():
            print(f"| {Path(run).name} | " + " | ".join(f"{r['judge']['classes'][n][f'recognised@{t}']:.2f}" for n in names) + " |")
        print()


if __name__ == "__main__":
    main()
