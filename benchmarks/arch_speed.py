"""Training cost of candidate models, per sequence, on real batches of a dataset: the
wall that decides what 345 classes can be learned with (docs/results.md).

Each candidate runs the training step that `qdsketch train` runs (forward, losses,
backward, clipping, AdamW) on the same batches, drawn as an epoch draws them, after
two warm-up batches. torch's threads are set by --threads.

    python benchmarks/arch_speed.py --data data-all/dataset --threads 1 --batches 20
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.batching import DeviceSplit, batch_order  # noqa: E402
from qdsketch.config import ModelConfig, preset  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402
from qdsketch.model import build_model, count_parameters  # noqa: E402
from qdsketch.train import epoch_rng  # noqa: E402

CANDIDATES = {
    "lstm 2x384 (mixture)": preset("mixture"),
    "lstm 1x512": preset("mixture", hidden=512, layers=1),
    "lstm 1x256": preset("mixture", hidden=256, layers=1),
    "transformer 4x256": replace(preset("mixture"), arch="transformer", hidden=256, layers=4, heads=4, dropout=0.1),
    "transformer 6x192": replace(preset("mixture"), arch="transformer", hidden=192, layers=6, heads=4, dropout=0.1),
    "transformer 4x128": replace(preset("mixture"), arch="transformer", hidden=128, layers=4, heads=4, dropout=0.1),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(ROOT / "data-all/dataset"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--only", default="", help="comma-separated names from the list (default: all)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset(Path(args.data))
    split = DeviceSplit(ds.splits["val"], ds.mean, ds.std, "cpu")  # real drawings; the validation split loads fast
    order = batch_order(split.steps_np, args.batch_size, epoch_rng(0, 1), 50)[: args.batches + 2]
    batches = [split.batch(b) for b in order]
    n_train = len(ds.splits["train"])
    print(
        f"{args.data}: {len(ds.class_names)} classes, {n_train:,} training drawings; torch {torch.__version__}, "
        f"{args.threads} thread(s), batch {args.batch_size}, {args.batches} batches after 2 warm-up"
    )
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CANDIDATES)
    for name in names:
        cfg: ModelConfig = replace(CANDIDATES[name], n_classes=len(ds.class_names))
        torch.manual_seed(0)
        model = build_model(cfg).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
        seqs, t0 = 0, 0.0
        for i, b in enumerate(batches):
            if i == 2:
                seqs, t0 = 0, time.perf_counter()
            _, losses = model(b.inputs, b.labels, b.targets, b.mask)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            seqs += len(b.labels)
        rate = seqs / (time.perf_counter() - t0)
        print(
            f"{name:22s} {count_parameters(model):>10,} params  {rate:7.1f} seq/s  "
            f"{1e3 / rate:6.2f} ms/seq  an epoch of {n_train:,}: {n_train / rate / 3600:5.2f} h"
        )


if __name__ == "__main__":
    main()
