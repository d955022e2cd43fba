"""Training throughput of a preset, beside a bare nn.LSTM forward and backward
on the same tokens, in the same run; and the padding efficiency.

The data: every real drawing of the five reference classes in ../shared
(scripts/shared_data.sh), preprocessed as `qdsketch preprocess` does.

    python benchmarks/train_speed.py [--preset seed] [--device cpu] [--batches 20]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.batching import DeviceSplit, batch_order, padding_efficiency  # noqa: E402
from qdsketch.config import preset  # noqa: E402
from qdsketch.data.npz import save_npz  # noqa: E402
from qdsketch.data.preprocess import build_dataset  # noqa: E402
from qdsketch.train import TrainConfig, epoch_rng, train  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="seed")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--batches", type=int, default=0, help="train on this many batches (0: a whole epoch, timed exactly)"
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeat", type=int, default=1, help="repeat the training split this many times (for GPU epochs)")
    args = p.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(
            [
                "bash",
                str(ROOT / "scripts/shared_data.sh"),
                str(ROOT.parent / "shared/data/quickdraw"),
                str(tmp / "data"),
            ],
            check=True,
            capture_output=True,
        )
        ds = build_dataset(tmp / "data", ["cat", "clock", "tent", "house", "nail"])
        if args.repeat > 1:  # the same real drawings again, as more sequences
            from qdsketch.data.drawings import concat

            tr = ds.splits["train"]
            ds.splits["train"] = type(tr)(concat([tr.drawings] * args.repeat), np.tile(tr.labels, args.repeat))
        save_npz(ds, tmp / "ds.npz")
        split = DeviceSplit(ds.splits["train"], ds.mean, ds.std, device)
        batches = batch_order(split.steps_np, args.batch_size, epoch_rng(0, 1), 50)
        if args.batches:
            batches = batches[: args.batches]
        n_seq = sum(len(b) for b in batches)
        eff = padding_efficiency(split.steps_np, batches)

        # qdsketch's own loop, on exactly these batches (epoch 1, seed 0), stopped after them
        cfg = TrainConfig(data=str(tmp / "ds.npz"), epochs=1, batch_size=args.batch_size, device=args.device)
        polls = iter(range(10**9))
        stop = (lambda: next(polls) >= len(batches)) if args.batches else (lambda: False)
        t = time.perf_counter()
        summary = train(cfg, preset(args.preset), tmp / "run", should_stop=stop)
        ours = summary["history"][0]["train_seconds"] if summary.get("history") else time.perf_counter() - t

        # a bare nn.LSTM of the same shape, forward and backward on the same tokens
        mc = preset(args.preset)
        lstm = torch.nn.LSTM(5 + mc.embed_dim, mc.hidden, mc.layers, batch_first=True, dropout=mc.dropout).to(device)
        lstm.train()

        def bare_pass(batches):
            for b in batches:
                inp = split.batch(b).inputs
                x = torch.cat([inp, torch.zeros(*inp.shape[:2], mc.embed_dim, device=device)], -1)
                out, _ = lstm(x)
                out.sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()

        bare_pass(batches[:2])  # warm-up
        t = time.perf_counter()
        bare_pass(batches)
        bare = time.perf_counter() - t
    print(f"preset {args.preset} on {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    print(f"{len(batches)} batches, {n_seq:,} sequences, padding efficiency {eff:.1%}")
    if summary.get("interrupted"):
        print("(qdsketch's time: from the start of train(), including set-up; an upper bound)")
    print(f"bare nn.LSTM fwd+bwd  {n_seq / bare:10,.1f} seq/s  {bare:7.2f} s")
    print(f"qdsketch train        {n_seq / ours:10,.1f} seq/s  {ours:7.2f} s  {ours / bare:.2f}x bare")


if __name__ == "__main__":
    main()
