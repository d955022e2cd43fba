"""A judge of recognisability: a compact classifier of drawings, and the figures
it gives a generator.

The judge is a small CNN on 28 x 28 renderings (the size of Google's own
Quick, Draw! bitmaps), trained on the dataset's training split with classes
weighted by inverse frequency, since real class counts can be very uneven.
For a generator it reports, per class:

- ``accuracy``: the judge on the real test drawings;
- ``recognised``: the fraction of generated sketches it assigns to their class;
- ``frechet``: the Frechet distance between its penultimate features for the
  real test drawings and for the generated sketches (as FID does; with few real
  drawings per class it is a noisy, biased estimate: compare models on the
  same data only);
- ``novelty``: the median distance from each generated sketch to its nearest
  training drawing of the class (the fraction of the 784 pixels that differ),
  beside ``novelty_real``, the same for real test drawings. A generator that
  memorises shows values well below the real ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from qdsketch.data import Dataset
from qdsketch.files import atomic_path


@dataclass
class JudgeConfig:
    size: int = 28  # renderings are size x size, like Google's bitmaps
    features: int = 32  # penultimate layer: the features the Frechet distance uses
    epochs: int = 12  # passes over the training split
    batch_size: int = 128
    lr: float = 2e-3  # Adam
    seed: int = 0


class JudgeNet(nn.Module):
    def __init__(self, n_classes: int, cfg: JudgeConfig):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * (cfg.size // 4) ** 2, cfg.features), nn.ReLU(),
        )
        self.out = nn.Linear(cfg.features, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and features of ``(N, size, size)`` images with ink 1 on 0."""
        f = self.body(x.unsqueeze(1))
        return self.out(f), f


def rasterize(rows_list: list[np.ndarray], size: int = 28) -> np.ndarray:
    """Drawings as ``(N, size, size)`` float32 images, ink 1 on 0, 1-pixel lines."""
    from qdsketch.render import fit, raster

    out = np.zeros((len(rows_list), size, size), dtype=np.float32)
    for i, rows in enumerate(rows_list):
        if len(rows):
            out[i] = 1 - np.asarray(raster(fit(rows, size, margin=0.05), size, width=1), dtype=np.float32) / 255
    return out


def split_rows(ds: Dataset, split: str) -> list[np.ndarray]:
    d = ds.splits[split].drawings
    return [d.rows[a:b] for a, b in zip(d.offsets[:-1], d.offsets[1:])]


def fingerprint(ds: Dataset, cfg: JudgeConfig) -> str:
    """What a cached judge was trained on: the training drawings and the config."""
    h = hashlib.sha256()
    h.update(repr((ds.class_names, asdict(cfg))).encode())
    h.update("\n".join(ds.splits["train"].drawings.keys).encode())
    return h.hexdigest()[:16]


def train_judge(ds: Dataset, cfg: JudgeConfig = JudgeConfig(), device: str = "cpu") -> JudgeNet:
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = JudgeNet(len(ds.class_names), cfg)
    net.to(device).train()
    x = torch.from_numpy(rasterize(split_rows(ds, "train"), cfg.size)).to(device)
    y = torch.from_numpy(ds.splits["train"].labels).to(device)
    counts = torch.bincount(y, minlength=len(ds.class_names)).clamp(min=1).float()
    loss_fn = nn.CrossEntropyLoss(weight=(counts.sum() / counts / len(counts)).to(device))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x), cfg.batch_size):
            b = order[i : i + cfg.batch_size]
            logits, _ = net(x[b])
            loss = loss_fn(logits, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def load_or_train(ds: Dataset, path: Path, cfg: JudgeConfig = JudgeConfig(), device: str = "cpu") -> tuple[JudgeNet, bool]:
    """The judge cached at ``path`` if it was trained on this dataset, else a new
    one, saved there. Returns ``(judge, trained_now)``."""
    key = fingerprint(ds, cfg)
    if path.is_file():
        try:
            saved = torch.load(path, map_location=device, weights_only=True)
        except Exception:
            saved = {}
        if saved.get("fingerprint") == key:
            net = JudgeNet(len(ds.class_names), cfg)
            net.load_state_dict(saved["model"])
            return net.to(device).eval(), False
    net = train_judge(ds, cfg, device)
    with atomic_path(path) as tmp:
        torch.save({"fingerprint": key, "config": asdict(cfg), "model": {k: v.cpu() for k, v in net.state_dict().items()}}, tmp)
    return net, True


@torch.no_grad()
def classify(net: JudgeNet, images: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels and features."""
    logits, feats = net(torch.from_numpy(images).to(device))
    return logits.argmax(-1).cpu().numpy(), feats.cpu().double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a`` and ``b``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``, with the
    matrix square roots from symmetric eigendecompositions."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a = np.atleast_2d(np.cov(a, rowvar=False)) if len(a) > 1 else np.zeros((a.shape[1],) * 2)
    s_b = np.atleast_2d(np.cov(b, rowvar=False)) if len(b) > 1 else np.zeros((b.shape[1],) * 2)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def nearest_distance(queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """For each binary image in ``queries``, the fraction of pixels in which it
    differs from its nearest image in ``pool``."""
    q = (queries.reshape(len(queries), -1) > 0.5).astype(np.float32)
    p = (pool.reshape(len(pool), -1) > 0.5).astype(np.float32)
    # Hamming distance of 0/1 vectors: |q| + |p| - 2 q.p
    d = q.sum(1)[:, None] + p.sum(1)[None, :] - 2 * q @ p.T
    return d.min(1) / q.shape[1]


def judge_generator(
    net: JudgeNet, ds: Dataset, generated: dict[float, dict[int, list[np.ndarray]]], device: str = "cpu", size: int = 28
) -> dict:
    """The per-class figures for sketches ``generated[temperature][label]``."""
    test_rows, train_rows = split_rows(ds, "test"), split_rows(ds, "train")
    test_img, train_img = rasterize(test_rows, size), rasterize(train_rows, size)
    test_y, train_y = ds.splits["test"].labels, ds.splits["train"].labels
    test_pred, test_feat = classify(net, test_img, device)
    classes = {}
    for label, name in enumerate(ds.class_names):
        real = test_y == label
        pool = train_img[train_y == label]
        row = {
            "test_drawings": int(real.sum()),
            "accuracy": float((test_pred[real] == label).mean()) if real.any() else None,
            "novelty_real": float(np.median(nearest_distance(test_img[real], pool))) if real.any() and len(pool) else None,
        }
        for t, by_label in generated.items():
            images = rasterize(by_label[label], size)
            pred, feat = classify(net, images, device)
            row[f"recognised@{t}"] = float((pred == label).mean())
            row[f"frechet@{t}"] = frechet(test_feat[real], feat) if real.sum() > 1 else None
            row[f"novelty@{t}"] = float(np.median(nearest_distance(images, pool))) if len(pool) else None
        classes[name] = row
    overall = {"accuracy": float((test_pred == test_y).mean()) if len(test_y) else None}
    for t in generated:
        overall[f"recognised@{t}"] = float(np.mean([c[f"recognised@{t}"] for c in classes.values()]))
    return {"classes": classes, "overall": overall, "temperatures": list(generated)}
