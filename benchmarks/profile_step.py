"""Where a CPU training step's time goes, per candidate: torch.profiler's top operators over
real batches, and the step with bf16 autocast beside float32 (a CPU without bf16 units
emulates it).

    python benchmarks/profile_step.py --data data-all/dataset --batches 6
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from arch_speed import CANDIDATES  # noqa: E402

from qdsketch.batching import DeviceSplit, batch_order  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402
from qdsketch.model import build_model  # noqa: E402
from qdsketch.train import epoch_rng  # noqa: E402


def step(model, opt, b, bf16: bool):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        _, losses = model(b.inputs, b.labels, b.targets, b.mask)
    opt.zero_grad(set_to_none=True)
    losses["total"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(ROOT / "data-all/dataset"))
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--only", default="lstm 2x384 (mixture),transformer 4x256")
    args = p.parse_args()
    torch.set_num_threads(1)
    ds = load_dataset(Path(args.data))
    split = DeviceSplit(ds.splits["val"], ds.mean, ds.std, "cpu")
    batches = [split.batch(b) for b in batch_order(split.steps_np, 128, epoch_rng(0, 1), 50)[: args.batches + 1]]
    for name in [n.strip() for n in args.only.split(",")]:
        torch.manual_seed(0)
        model = build_model(replace(CANDIDATES[name], n_classes=len(ds.class_names))).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        step(model, opt, batches[0], False)
        rates = {}
        for bf16 in (False, True):
            t = time.perf_counter()
            try:
                for b in batches[1:]:
                    step(model, opt, b, bf16)
            except RuntimeError as exc:  # oneDNN has no bf16 LSTM on a CPU without bf16 units
                rates[bf16] = f"fails ({str(exc)[:60]}...)"
                continue
            rates[bf16] = f"{sum(len(b.labels) for b in batches[1:]) / (time.perf_counter() - t):.1f} seq/s"
        print(f"\n{name}: float32 {rates[False]}, bf16 autocast {rates[True]}")
        with torch.profiler.profile() as prof:
            for b in batches[1:]:
                step(model, opt, b, False)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
