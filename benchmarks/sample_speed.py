"""Generating 1,000 sketches: batched, one at a time (the reference's way), and
the bare cost of stepping the same LSTM over the same sketches (each as many steps as
it has rows, the batch shrinking as they end, as generation's does), all in one run.

    python benchmarks/sample_speed.py [--n 1000] [--checkpoint PATH] [--device cpu] [--single 200]
"""

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch.checkpoint import load_checkpoint  # noqa: E402
from qdsketch.sample import generate, sketch_seeds  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def bare_steps(model, going, device):
    """The LSTM alone, stepped over a batch of ``going[t]`` rows at step ``t``: no head,
    no sampling, nothing else."""
    lstm = model.lstm
    x = torch.zeros(going[0], 1, lstm.input_size, device=device)
    h = torch.zeros(lstm.num_layers, going[0], lstm.hidden_size, device=device)
    state = (h, h.clone())
    for n in going:
        out, state = lstm(x[:n], (state[0][:, :n], state[1][:, :n]))
    sync(device)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--single", type=int, default=200, help="sketches to time one at a time (scaled to --n)")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    ckpt = load_checkpoint(args.checkpoint, device)
    k = len(ckpt.class_names)
    labels = [i % k for i in range(args.n)]
    seeds = sketch_seeds(0, args.n)
    generate(ckpt, labels[:8], seeds[:8], device=device)  # warm-up

    t = time.perf_counter()
    gen = generate(ckpt, labels, seeds, device=device)
    sync(device)
    batched = time.perf_counter() - t
    lengths = [len(r) for r in gen.rows]
    steps = max(lengths)  # the batch stepped until its longest sketch ended
    going = [sum(n > t for n in lengths) for t in range(steps)]  # sketches still drawing at step t

    bare = float("nan")
    if ckpt.config.arch == "lstm":  # the Transformer has no bare recurrence to compare with
        bare_steps(ckpt.model, going[:2], device)
        t = time.perf_counter()
        bare_steps(ckpt.model, going, device)
        bare = time.perf_counter() - t

    m = min(args.single, args.n)
    t = time.perf_counter()
    for i in range(m):
        generate(ckpt, labels[i : i + 1], seeds[i : i + 1], device=device)
    sync(device)
    single = (time.perf_counter() - t) * args.n / m

    print(
        f"{args.n:,} sketches, {sum(len(r) for r in gen.rows):,} rows, {steps} steps for the batch; "
        f"model {ckpt.config.arch} {ckpt.config.layers}x{ckpt.config.hidden} "
        f"({ckpt.config.head}) on {device}, torch {torch.__version__}"
    )
    print(f"bare LSTM stepping         {bare:8.2f} s")
    print(
        f"batched                    {batched:8.2f} s  {batched / bare:.2f}x bare  {args.n / batched:10,.0f} sketches/s"
    )
    print(f"one at a time (x{args.n // m} of {m})   {single:8.2f} s  {single / batched:.1f}x batched")


if __name__ == "__main__":
    main()
