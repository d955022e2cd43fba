"""Compare trained runs on the same dataset: losses, lengths and the judge's figures,
printed as the markdown tables of docs/results.md, and saved as JSON.

    python benchmarks/compare_models.py DATASET RUN [RUN ...] [--n 400] [--temperature 0.4 ...]
        [--pen-temperature 1.0] [--json out.json]

Every run is judged by the same judge (trained once on DATASET, cached beside it),
with the same seeds, on the test split.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.checkpoint import load_checkpoint  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402
from qdsketch.evaluate import evaluate  # noqa: E402
from qdsketch.model import count_parameters  # noqa: E402
from qdsketch.sample import generate, sketch_seeds  # noqa: E402


def lengths(ckpt, ds, n, temperature, pen_temperature, seed) -> dict:
    """Mean rows per generated sketch, and the fraction that ran to the length limit."""
    out = {}
    for label, name in enumerate(ds.class_names):
        g = generate(
            ckpt,
            [label] * n,
            sketch_seeds(seed, n, offset=label * n),
            temperature,
            ds.max_seq_len,
            pen_temperature=pen_temperature,
        )
        out[name] = {"rows": float(np.mean([len(r) for r in g.rows])), "at_limit": float((~g.ended).mean())}
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--temperature", type=float, action="append")
    p.add_argument("--pen-temperature", type=float, help="[default: the head's]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    ds = load_dataset(Path(args.data))
    real = {
        name: float(np.diff(ds.splits["test"].drawings.offsets)[ds.splits["test"].labels == i].mean())
        for i, name in enumerate(ds.class_names)
    }
    reports = {}
    for run in args.runs:
        ck = load_checkpoint(Path(run))
        temps = args.temperature or [None]
        judge = {
            "n": args.n,
            "temperatures": temps if temps != [None] else None,
            "seed": args.seed,
            "pen_temperature": args.pen_temperature,
        }
        r = evaluate(Path(run), Path(args.data), "test", "cpu", judge=judge)
        r["parameters"] = count_parameters(ck.model)
        r["epochs"] = ck.epoch
        r["val"] = ck.val["total"]
        r["lengths"] = {t: lengths(ck, ds, 100, t, args.pen_temperature, args.seed) for t in r["judge"]["temperatures"]}
        reports[run] = r
        print(f"judged {run}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"real_rows": real, "runs": reports}, indent=1))
    first = next(iter(reports.values()))["judge"]
    names = list(first["classes"])
    fmt = lambda v: "" if v is None else f"{v:.2f}"
    print(
        f"Judge on real test drawings: accuracy {first['overall']['accuracy']:.3f} overall; "
        + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in first["classes"].items())
        + f". False positives on {first['overall']['held_out_drawings']:,} held-out drawings of other classes: "
        f"{first['overall']['false_positive']:.3f} ("
        + ", ".join(f"{k} {v['false_positive']:.3f}" for k, v in first["classes"].items())
        + "). Real validation against real test drawings: precision "
        + ", ".join(f"{k} {fmt(v['precision_real'])}" for k, v in first["classes"].items())
        + "; recall "
        + ", ".join(f"{k} {fmt(v['recall_real'])}" for k, v in first["classes"].items())
        + ".\n"
    )
    head = "run | head | parameters | epochs (best) | val loss | test loss | T | recognised | none | precision | recall"
    print(f"| {head} | novelty | rows (real {np.mean(list(real.values())):.1f}) | at limit |")
    print("|" + " --- |" * 14)
    for run, r in reports.items():
        j = r["judge"]
        for t in j["temperatures"]:

            def mean(key, t=t, j=j):
                return np.mean([c[f"{key}@{t}"] for c in j["classes"].values() if c[f"{key}@{t}"] is not None])

            ln = r["lengths"][t]
            cells = [
                Path(run).name,
                r["head"],
                f"{r['parameters']:,}",
                str(r["epochs"]),
                fmt(r["val"]),
                f"{r['overall']['total']:.3f}",
                f"{t:g}",
                f"{mean('recognised'):.2f}",
                f"{mean('none'):.2f}",
                f"{mean('precision'):.2f}",
                f"{mean('recall'):.2f}",
                f"{mean('novelty'):.3f}",
                f"{np.mean([v['rows'] for v in ln.values()]):.1f}",
                f"{np.mean([v['at_limit'] for v in ln.values()]):.2f}",
            ]
            print("| " + " | ".join(cells) + " |")
    print(f"\nNovelty of real test drawings: {np.mean([c['novelty_real'] for c in first['classes'].values()]):.3f}\n")
    for run, r in reports.items():
        j = r["judge"]
        for t in j["temperatures"]:
            print(f"{Path(run).name}, temperature {t:g}, per class:\n")
            cols = "class | real acc | false pos | recognised | none | precision | recall | prec real | recall real"
            print(f"| {cols} | novelty | novelty real | seen/unseen | seen/unseen real | rows | real rows |")
            print("|" + " --- |" * 15)
            for n in names:
                c = j["classes"][n]
                cells = [
                    n,
                    fmt(c["accuracy"]),
                    f"{c['false_positive']:.3f}",
                    fmt(c[f"recognised@{t}"]),
                    fmt(c[f"none@{t}"]),
                    fmt(c[f"precision@{t}"]),
                    fmt(c[f"recall@{t}"]),
                    fmt(c["precision_real"]),
                    fmt(c["recall_real"]),
                    f"{c[f'novelty@{t}']:.3f}",
                    f"{c['novelty_real']:.3f}",
                    fmt(c[f"seen_ratio@{t}"]),
                    fmt(c["seen_ratio_real"]),
                    f"{r['lengths'][t][n]['rows']:.1f}",
                    f"{real[n]:.1f}",
                ]
                print("| " + " | ".join(cells) + " |")
            print()


if __name__ == "__main__":
    main()
