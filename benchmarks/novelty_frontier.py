"""Is there a way to sample the shipped model whose sketches are both as recognisable and as
novel as real drawings? Sweeps the two halves of the mixture head's temperature apart:
``tm`` divides the mixture logits (which Gaussian: the shape's choices), ``tv`` multiplies the
variances (how steady a stroke is); Sketch-RNN's temperature T is ``tm = tv = T``.

    cp src/qdsketch/assets/judge.pt data-shared/dataset.judge.pt   # the judge of every figure in docs
    python benchmarks/novelty_frontier.py data-shared/dataset.npz "0.25,0.25;1,0.25;1,1" [--n 400]

Prints, per class, recognised, precision / recall, novelty and seen / unseen, judged as
`evaluate --judge` does (the judge cached beside the dataset). docs/results.md records the
figures. The sampler is swapped in here only: `qdsketch sample` keeps Sketch-RNN's one T.
"""

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qdsketch import judge as J  # noqa: E402
from qdsketch import model as M  # noqa: E402
from qdsketch.checkpoint import load_checkpoint  # noqa: E402
from qdsketch.data.preprocess import load_dataset  # noqa: E402
from qdsketch.sample import generate, sketch_seeds  # noqa: E402


def split_sampler(tm: float, tv: float):
    """GMMHead.sample_xy with the mixture's and the variances' temperatures apart."""

    def sample_xy(out, temperature, noise):
        pi, mu, log_sigma, rho = (out[k][:, -1] for k in ("pi", "mu", "log_sigma", "rho"))
        k = (noise[:, :1] > torch.softmax(pi / tm, -1).cumsum(-1)[:, :-1]).sum(-1)
        rows = torch.arange(len(k))
        mu, sigma, rho = mu[rows, k], log_sigma[rows, k].exp() * tv**0.5, rho[rows, k]
        z1, z2 = noise[:, 1], noise[:, 2]
        y = mu[:, 1] + sigma[:, 1] * (rho * z1 + torch.sqrt(1 - rho**2) * z2)
        return torch.stack([mu[:, 0] + sigma[:, 0] * z1, y], -1)

    return staticmethod(sample_xy)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("settings", help='"tm,tv;tm,tv;..."')
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--n", type=int, default=400)
    args = p.parse_args()
    ds = load_dataset(Path(args.data))
    ckpt = load_checkpoint(args.checkpoint)
    net, _, _ = J.load_or_train(ds, Path(args.data).with_suffix(".judge.pt"))
    generated = {}
    for setting in args.settings.split(";"):
        tm, tv = map(float, setting.split(","))
        M.GMMHead.sample_xy = split_sampler(tm, tv)
        generated[setting] = {
            label: generate(ckpt, [label] * args.n, sketch_seeds(0, args.n, offset=label * args.n), 1.0).rows
            for label in range(len(ds.class_names))
        }
    r = J.judge_generator(net, ds, generated)
    print("| tm, tv | " + " | ".join(ds.class_names) + " |")
    print("|" + " --- |" * (len(ds.class_names) + 1))
    real = [
        f"{c['accuracy']:.2f}, -, {c['novelty_real']:.3f}, {c['seen_ratio_real']:.2f}" for c in r["classes"].values()
    ]
    print("| real test drawings | " + " | ".join(real) + " |")
    for s in generated:
        cells = [
            f"{c[f'recognised@{s}']:.2f}, {c[f'precision@{s}']:.2f} / {c[f'recall@{s}']:.2f}, "
            f"{c[f'novelty@{s}']:.3f}, {c[f'seen_ratio@{s}']:.2f}"
            for c in r["classes"].values()
        ]
        print(f"| {s} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
