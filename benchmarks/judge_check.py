"""Can the judge's verdict fail? Its figures for what a generator could draw at the two
extremes: real validation drawings (never trained on, never tested on) passed off as
sketches should score about what real test drawings score (median ratio about 1), and a
broken generator (one straight line, a random scribble, nine circles, whatever the class)
should score about nothing.

    python benchmarks/judge_check.py --data data-all/dataset -n 10
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from test_judge import degenerate  # noqa: E402

from qdsketch import judge as J  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=ROOT / "data-all/dataset")
    p.add_argument("-n", type=int, default=10)
    args = p.parse_args()
    ds = load_dataset(args.data)
    net, _, _ = J.load_or_train(ds, args.data.with_name(args.data.stem + ".judge.pt"))
    classes = range(len(ds.class_names))
    val = J.split_rows(ds, "val")
    labels = ds.splits["val"].labels
    real = {c: [val[i] for i in np.flatnonzero(labels == c)[: args.n]] for c in classes}
    fake = degenerate()
    generated = {0: real, **{k + 1: {c: [fake[name]] * args.n for c in classes} for k, name in enumerate(fake)}}
    result = J.judge_generator(net, ds, generated, cfg=replace(J.DEFAULT_CONFIG, max_pool=34_500))
    o = result["overall"]
    print(
        f"the judge on {len(ds.splits['test']):,} real test drawings of {len(ds.class_names)} classes: "
        f"top-1 {o['accuracy']:.3f}, top-3 {o['accuracy_top3']:.3f}"
    )
    for key, what in enumerate(["real validation drawings", *fake]):
        print(
            f"{what:26s} median ratio {o[f'median_ratio@{key}']:.3f}  top-1 {o[f'recognised@{key}']:.3f}  "
            f"top-3 {o[f'recognised_top3@{key}']:.3f}  classes with top-3 zero {o[f'top3_zero@{key}']:.1%}"
        )


if __name__ == "__main__":
    main()
