"""How noisy a run's weights are from step to step, and what averaging them gives: the
table "the step back, explained" of docs/results.md.

Each checkpoint's loss on the same drawings of the validation split (and, with
``--train``, of the training split, in eval mode), then, for each ``--mean A,B,C``, the
loss of the plain mean of those checkpoints' weights.

    python benchmarks/weight_noise.py RUN/snapshots/steps-8145.pt RUN/best.pt \\
        --mean RUN/snapshots/steps-8145.pt,RUN/best.pt --data data-all/dataset --train
"""

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch import judge as J  # noqa: E402
from qdsketch.batching import DeviceSplit  # noqa: E402
from qdsketch.checkpoint import load_checkpoint  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402
from qdsketch.evaluate import evaluate_split  # noqa: E402


def losses(model, ds, ckpt, split: str, index) -> str:
    means = evaluate_split(model, DeviceSplit(ds.splits[split], ckpt.mean, ckpt.std), 256, index=index).means()
    return " ".join(f"{k} {v:.4f}" for k, v in means.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*", type=Path)
    p.add_argument("--mean", action="append", default=[], help="comma-separated checkpoints whose weights to average")
    p.add_argument("--data", type=Path, default=ROOT / "data-all/dataset")
    p.add_argument("-n", type=int, default=5000, help="drawings of each split (a fixed subset, even over classes)")
    p.add_argument("--train", action="store_true", help="also the loss on as many training drawings")
    args = p.parse_args()
    ds = load_dataset(args.data)
    splits = ["val", "train"] if args.train else ["val"]
    index = {s: J.even_subset(ds.splits[s].labels, args.n, 0) for s in splits}
    for path in args.checkpoints:
        ckpt = load_checkpoint(path)
        said = "; ".join(f"{s}: {losses(ckpt.model, ds, ckpt, s, index[s])}" for s in splits)
        print(f"{path} (steps {ckpt.trained.get('steps', 0):.0f}): {said}", flush=True)
    for group in args.mean:
        ckpts = [load_checkpoint(Path(p)) for p in group.split(",")]
        weights = [c.model.state_dict() for c in ckpts]
        mean = {k: torch.stack([w[k].float() for w in weights]).mean(0) for k in weights[0]}
        model = ckpts[0].model
        model.load_state_dict(mean)
        said = "; ".join(f"{s}: {losses(model, ds, ckpts[0], s, index[s])}" for s in splits)
        print(f"mean of {group}: {said}", flush=True)


if __name__ == "__main__":
    main()
