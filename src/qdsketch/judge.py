"""A judge of generated sketches: a compact classifier of drawings that can say
"none of these", and the figures it gives a generator.

The judge is a small CNN on 28 x 28 anti-aliased renderings (the size of
Google's own Quick, Draw! bitmaps). It learns the dataset's classes from the
dataset's training split and one more class, *none of these*, from real
drawings of other Quick, Draw! classes that ship with qdsketch
(``assets/others.npz``: Google's first recognized simplified drawings of each of
344 classes, less the dataset's own). Every fifth of those other classes is
held out of training, so the judge's false-positive rate is measured on kinds
of drawing it never saw. Classes are weighted by inverse frequency.

For a generator it reports, per class, beside the judge's own figures
(``accuracy`` on real test drawings, ``false_positive`` on the held-out other
classes):

- ``recognised``: the fraction of generated sketches it assigns to their class
  (``none``: the fraction it calls none of these);
- ``precision`` and ``recall``: improved precision and recall (Kynkaanniemi et
  al. 2019, k = 3) between the generated sketches and as many real test
  drawings, in the judge's penultimate features; ``precision_real`` and
  ``recall_real`` are the same for real validation drawings against real test
  drawings, the ceiling. Precision: how many sketches look like some real
  drawing; recall: how much of the real variety the sketches cover;
- ``frechet``: the Frechet distance between those features for real test
  drawings and for the sketches, as FID computes it;
- ``novelty``: the median distance from each sketch to its nearest training
  drawing of the class (the fraction of the 784 pixels that differ), beside
  ``novelty_real``, the same for real test drawings. A generator that memorises
  shows values well below the real ones.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from qdsketch.data.dataset import Dataset
from qdsketch.errors import CheckpointError, QdsketchError
from qdsketch.files import write_atomically

NONE = "none of these"
VERSION = 3  # of how a judge is trained: a cached judge of another version is trained again


@dataclass(frozen=True)
class JudgeConfig:
    size: int = 28  # renderings are size x size, like Google's bitmaps
    features: int = 64  # penultimate layer: the space of precision, recall and the Frechet distance
    epochs: int = 8  # passes over the training drawings
    batch_size: int = 128
    lr: float = 2e-3  # Adam
    holdout_every: int = 5  # every this-many-th other class is held out, for the false-positive rate
    other_copies: int = 2  # each other-class drawing is learned as drawn and this many - 1 times turned and mirrored
    k: int = 3  # neighbours that set the radius of a feature's ball, for precision and recall
    seed: int = 0
    # Bounds on the work of a dataset of many classes (all 345: 1.08 million training drawings),
    # the same number from each class; a dataset of a few classes is under them and uses all.
    max_train: int = 200_000  # training drawings of the dataset's classes that the judge learns from
    max_pool: int = 200_000  # training drawings that novelty and memorisation compare sketches with


DEFAULT_CONFIG = JudgeConfig()


class JudgeNet(nn.Module):
    """The dataset's classes plus one, the last: none of these."""

    def __init__(self, n_classes: int, cfg: JudgeConfig):
        super().__init__()
        self.cfg = cfg
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (cfg.size // 4) ** 2, cfg.features),
            nn.ReLU(),
        )
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(cfg.features, n_classes + 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and features of ``(N, size, size)`` images with ink 1 on 0."""
        f = self.body(x.unsqueeze(1))
        return self.out(self.drop(f)), f


# --- drawings to pixels ---------------------------------------------------------------------


def rasterize(rows_list: list[np.ndarray], size: int = 28) -> np.ndarray:
    """Drawings as ``(N, size, size)`` float32 images, ink 1 on 0: drawn at twice
    the size with 2-pixel lines, then averaged down, so lines are anti-aliased."""
    from qdsketch.render import fit, raster

    big = 2 * size
    out = np.zeros((len(rows_list), size, size), dtype=np.float32)
    for i, rows in enumerate(rows_list):
        if len(rows):
            ink = 1 - np.asarray(raster(fit(rows, big, margin=0.05), big, width=2), dtype=np.float32) / 255
            out[i] = ink.reshape(size, 2, size, 2).mean((1, 3))
    return out


def split_rows(ds: Dataset, split: str, index: np.ndarray | None = None) -> list[np.ndarray]:
    """The drawings of ``split`` (those at ``index``, if given) as stroke-3 arrays."""
    d = ds.splits[split].drawings
    index = np.arange(len(d)) if index is None else index
    return [d.rows[d.offsets[i] : d.offsets[i + 1]] for i in index]


def even_subset(labels: np.ndarray, at_most: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``at_most`` drawings, at most ``at_most // classes`` of each
    class, chosen at random with ``seed``; every index when there are no more than that."""
    if len(labels) <= at_most:
        return np.arange(len(labels))
    per_class = max(at_most // max(len(np.unique(labels)), 1), 1)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        mine = np.flatnonzero(labels == label)
        chosen.append(mine if len(mine) <= per_class else rng.choice(mine, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


# --- the other classes ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _others_file() -> dict:
    from importlib import resources

    with resources.files("qdsketch").joinpath("assets/others.npz").open("rb") as handle:
        with np.load(handle, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def turned(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A drawing rotated by a random angle and mirrored with probability 1/2:
    still a drawing of no class of ours (a rotated ladder is not a house), and
    it teaches the judge that lines and shapes at any angle are not ours either."""
    a = rng.uniform(0, 2 * np.pi)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    if rng.random() < 0.5:
        m = m @ np.diag([-1.0, 1.0])
    out = rows.astype(np.float32).copy()
    out[:, :2] = rows[:, :2] @ m.T
    return out


def other_drawings(exclude: list[str], holdout_every: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Real drawings of the classes not in ``exclude`` (case-insensitive), as
    ``(train, held_out)`` lists of stroke-3 arrays: every ``holdout_every``-th
    remaining class, in Google's order, is held out whole."""
    f = _others_file()
    skip = {name.casefold() for name in exclude}
    kept = [i for i, name in enumerate(f["class_names"].tolist()) if name.casefold() not in skip]
    held = set(kept[holdout_every - 1 :: holdout_every])
    trained = set(kept) - held
    offsets, rows = f["offsets"], f["rows"].astype(np.float32)
    train, held_out = [], []
    for i, label in enumerate(f["labels"].tolist()):
        if label in held:
            held_out.append(rows[offsets[i] : offsets[i + 1]])
        elif label in trained:
            train.append(rows[offsets[i] : offsets[i + 1]])
    return train, held_out


def flatness(rows: np.ndarray) -> float:
    """How far a drawing spreads beyond one straight line: the ratio of the
    smaller to the larger singular value of its centred points (0: a line)."""
    points = np.vstack([[0.0, 0.0], np.cumsum(np.asarray(rows, np.float64)[:, :2], axis=0)])
    s = np.linalg.svd(points - points.mean(0), compute_uv=False)
    return float(s[1] / s[0]) if len(s) > 1 and s[0] > 0 else 0.0


def typical(rows_list: list[np.ndarray], labels: np.ndarray, fraction: float = 0.15) -> np.ndarray:
    """A mask of the drawings that are not much flatter than their class:
    ``flatness >= fraction x`` the class median. Google's cats hold about 1%
    of diagonal strokes and nothing else; a judge that learns them calls every
    straight line a cat. Nails are thin, so the bar follows each class."""
    flat = np.array([flatness(r) for r in rows_list])
    keep = np.ones(len(flat), dtype=bool)
    for label in np.unique(labels):
        mine = labels == label
        keep[mine] = flat[mine] >= fraction * np.median(flat[mine])
    return keep


# --- training and caching ----------------------------------------------------------------------


def fingerprint(ds: Dataset, cfg: JudgeConfig) -> str:
    """What a cached judge was trained on: the training drawings, the other
    classes and the config."""
    config = asdict(cfg)
    for limit in ("max_train", "max_pool"):  # a limit the dataset is under changed nothing: judges
        if len(ds.splits["train"]) <= config[limit]:  # trained before it existed still match
            config.pop(limit)
    h = hashlib.sha256()
    h.update(repr((ds.class_names, config, NONE, VERSION)).encode())
    h.update("\n".join(ds.splits["train"].drawings.keys).encode())
    h.update(_others_file()["offsets"].tobytes())
    return h.hexdigest()[:16]


def train_judge(ds: Dataset, cfg: JudgeConfig = DEFAULT_CONFIG, device: str = "cpu", progress=None) -> JudgeNet:
    """Train on the dataset's training split plus the other classes' training
    drawings as class ``len(class_names)``. ``progress(done, total)`` is called
    after each batch, if given."""
    n = len(ds.class_names)
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = JudgeNet(n, cfg)
    net.to(device).train()
    others, _ = other_drawings(ds.class_names, cfg.holdout_every)
    rng = np.random.default_rng(cfg.seed)
    others = others + [turned(r, rng) for _ in range(cfg.other_copies - 1) for r in others]
    index = even_subset(ds.splits["train"].labels, cfg.max_train, cfg.seed)
    rows = split_rows(ds, "train", index)
    keep = index[typical(rows, ds.splits["train"].labels[index])]
    rows = [rows[i] for i in np.flatnonzero(np.isin(index, keep))]
    x = torch.from_numpy(rasterize(rows + others, cfg.size)).to(device)
    labels = torch.from_numpy(ds.splits["train"].labels[keep])
    y = torch.cat([labels, torch.full((len(others),), n, dtype=torch.int64)]).to(device)
    counts = torch.bincount(y, minlength=n + 1).clamp(min=1).float()
    loss_fn = nn.CrossEntropyLoss(weight=(counts.sum() / counts / len(counts)).to(device))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    per_epoch = -(-len(x) // cfg.batch_size)
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(x), generator=g).to(device)
        for j, i in enumerate(range(0, len(x), cfg.batch_size)):
            b = order[i : i + cfg.batch_size]
            logits, _ = net(x[b])
            loss = loss_fn(logits, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress is not None:
                progress(epoch * per_epoch + j + 1, cfg.epochs * per_epoch)
    return net.eval()


def load_or_train(
    ds: Dataset, path: Path, cfg: JudgeConfig = DEFAULT_CONFIG, device: str = "cpu", progress=None
) -> tuple[JudgeNet, bool, Path]:
    """The judge cached at ``path`` if it was trained on this dataset, else a new
    one, saved there. Returns ``(judge, trained_now, the file it came from)``: ``path``, or a
    shipped judge of this very dataset where ``path`` holds none yet."""
    key = fingerprint(ds, cfg)
    if not path.exists():
        found = _shipped_match(key, device)
        if found is not None:
            return _net_from(found[1], len(ds.class_names), cfg, device), False, found[0]
    if path.exists():
        try:
            saved = torch.load(path, map_location=device, weights_only=True)
        except Exception:
            saved = None
        if not (isinstance(saved, dict) and isinstance(saved.get("fingerprint"), str)):
            # never overwrite a file that is not a judge: it may be the user's model
            raise QdsketchError(
                f"{path} is not a judge that qdsketch wrote",
                "pass a --judge-path that does not exist yet, or one that holds a judge",
            )
        if saved["fingerprint"] == key:
            return _net_from(saved, len(ds.class_names), cfg, device), False, path
    net = train_judge(ds, cfg, device, progress)
    save_judge(path, net, ds, cfg, key)
    return net, True, path


def _shipped_match(key: str, device: str) -> tuple[Path, dict] | None:
    """The shipped judge whose fingerprint is ``key`` (e.g. the judge of `make data-all`,
    trained once for all), and what it holds, if one is."""
    for shipped_judge in shipped_judges():
        saved = torch.load(shipped_judge, map_location=device, weights_only=True)
        if saved.get("fingerprint") == key:
            return shipped_judge, saved
    return None


def _net_from(saved: dict, n_classes: int, cfg: JudgeConfig, device: str) -> JudgeNet:
    net = JudgeNet(n_classes, cfg)
    net.load_state_dict(saved["model"])
    return net.to(device).eval()


def save_judge(path: Path, net: JudgeNet, ds: Dataset, cfg: JudgeConfig, key: str | None = None) -> None:
    """Save a judge with what it was trained on (``key``: its fingerprint, if known)."""
    buffer = io.BytesIO()  # as checkpoints: torch's own writer turns a full disk into a RuntimeError
    payload = {
        "fingerprint": key or fingerprint(ds, cfg),
        "config": asdict(cfg),
        "class_names": list(ds.class_names),
        "model": {k: v.cpu() for k, v in net.state_dict().items()},
    }
    torch.save(payload, buffer)
    write_atomically(path, buffer.getbuffer())


# --- the judge that ships, for --best-of --------------------------------------------------------


def bundled_judge() -> Path:
    """The judge that ships with qdsketch: trained by ``make data`` and ``qdsketch evaluate
    --judge`` on the five-class real dataset (docs/model-card.md)."""
    from qdsketch.paths import shipped

    return shipped("judge.pt")


def shipped_judges() -> list[Path]:
    """The judges that ship with qdsketch (``assets/judge*.pt``)."""
    return sorted(bundled_judge().parent.glob("judge*.pt"))


def load_judge(path: Path | None = None, device: str = "cpu") -> tuple[JudgeNet, list[str]]:
    """A saved judge and its class names (the bundled one by default)."""
    path = Path(path) if path else bundled_judge()
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        net = _net_from(saved, len(saved["class_names"]), JudgeConfig(**saved["config"]), device)
    except Exception as exc:  # missing, truncated or foreign: all mean the same here
        raise CheckpointError(
            f"{path} is not a judge ({type(exc).__name__})", "pass a .judge.pt that `qdsketch evaluate --judge` wrote"
        ) from None
    return net, list(saved["class_names"])


@torch.no_grad()
def best_of(
    net: JudgeNet, judge_classes: list[str], candidates: list[np.ndarray], words: list[str], k: int, device: str = "cpu"
) -> list[int]:
    """For sketches drawn ``k`` at a time (``candidates[i * k : (i + 1) * k]`` are
    the tries for sketch ``i``, of class ``words[i]``), the index of the try the
    judge finds most likely to be of its class."""
    missing = sorted({w for w in words if w not in judge_classes})
    if missing:
        raise CheckpointError(
            f"the judge that ships with qdsketch knows {', '.join(judge_classes)}, not {', '.join(missing)}",
            "use --best-of 1 with this model",
        )
    logits, _ = _forward(net, rasterize(candidates, net.cfg.size), device)
    probs = torch.softmax(logits, -1).numpy().reshape(len(words), k, -1)
    columns = [judge_classes.index(w) for w in words]
    return [i * k + int(np.argmax(probs[i, :, c])) for i, c in enumerate(columns)]


@torch.no_grad()
def _forward(
    net: JudgeNet, images: np.ndarray, device: str = "cpu", chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and features of ``images``, on the CPU, ``chunk`` images at a time."""
    logits, feats = [torch.zeros(0, net.out.out_features)], [torch.zeros(0, net.out.in_features)]
    for i in range(0, len(images), chunk):
        out, f = net(torch.from_numpy(images[i : i + chunk]).to(device))
        logits.append(out.cpu())
        feats.append(f.cpu())
    return torch.cat(logits), torch.cat(feats)


@torch.no_grad()
def guesses(net: JudgeNet, judge_classes: list[str], sketches: list[np.ndarray], top: int = 3) -> list[list]:
    """The judge's ``top`` likeliest classes for each sketch (stroke-3 rows), likeliest first,
    as ``[name, probability]``; ``None`` as the name is "none of these"."""
    logits, _ = _forward(net, rasterize(sketches, net.cfg.size))
    probs = torch.softmax(logits, -1)
    values, labels = probs.topk(min(top, probs.shape[1]), dim=-1)
    names = [*judge_classes, None]  # the last label, where a judge has it, is none of these
    return [
        [[names[int(k)], round(float(v), 4)] for k, v in zip(row_labels, row_values)]
        for row_labels, row_values in zip(labels, values)
    ]


def classify(net: JudgeNet, images: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels (``n_classes`` = none of these) and features."""
    top, feats = ranked(net, images, device, 1)
    return top[:, 0], feats


def ranked(net: JudgeNet, images: np.ndarray, device: str = "cpu", top: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` likeliest labels of each image, likeliest first, ``(N, top)``
    (label ``n_classes`` is none of these), and the features."""
    logits, feats = _forward(net, images, device)
    top = min(top, logits.shape[1])
    return logits.topk(top, dim=-1).indices.numpy().reshape(len(images), top), feats.double().numpy()


# --- the measures --------------------------------------------------------------------------------


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
    return float(
        ((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(inner, 0, None)).sum()
    )


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of feature sets.

    Each real feature gets a ball reaching its ``k``-th nearest real neighbour
    (itself not counted); precision is the fraction of ``fake`` inside some
    real ball. Recall is the same with the roles swapped: the fraction of
    ``real`` inside some fake ball. A generator that draws one thing over and
    over has fake balls of radius 0, and so a recall near 0.
    """
    if len(real) <= k or len(fake) <= k:
        return float("nan"), float("nan")
    d_rr, d_ff, d_rf = _distances(real, real), _distances(fake, fake), _distances(real, fake)
    r_real = np.sort(d_rr, axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(d_ff, axis=1)[:, k]
    precision = float((d_rf <= r_real[:, None]).any(0).mean())
    recall = float((d_rf <= r_fake[None, :]).any(1).mean())
    return precision, recall


def nearest_distance(queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """For each binary image in ``queries``, the fraction of pixels in which it
    differs from its nearest image in ``pool``."""
    q = (queries.reshape(len(queries), -1) > 0.5).astype(np.float32)
    p = (pool.reshape(len(pool), -1) > 0.5).astype(np.float32)
    # Hamming distance of 0/1 vectors: |q| + |p| - 2 q.p
    d = q.sum(1)[:, None] + p.sum(1)[None, :] - 2 * q @ p.T
    return d.min(1) / q.shape[1]


def seen_ratio(queries: np.ndarray, seen: np.ndarray, unseen: np.ndarray) -> float | None:
    """Memorisation: the median, over ``queries``, of the distance to the nearest
    ``seen`` image (drawings the model learned from) over the distance to the
    nearest ``unseen`` one (drawings it never saw), the pools of one size. About 1:
    no closer to what it learned than to new drawings of the class; copies score 0.
    One pixel is added to both distances, so two empty distances do not read as a copy."""
    if not len(queries) or not len(seen) or not len(unseen):
        return None
    pixel = 1 / queries[0].size
    ratio = (nearest_distance(queries, seen) + pixel) / (nearest_distance(queries, unseen) + pixel)
    return float(np.median(ratio))


def _subset(n_have: int, n_want: int, seed: int) -> np.ndarray:
    """A fixed random subset of ``range(n_have)``, at most ``n_want`` long."""
    if n_have <= n_want:
        return np.arange(n_have)
    return np.sort(np.random.default_rng(seed).choice(n_have, n_want, replace=False))


def judge_generator(
    net: JudgeNet,
    ds: Dataset,
    generated: dict[float, dict[int, list[np.ndarray]]],
    device: str = "cpu",
    cfg: JudgeConfig = DEFAULT_CONFIG,
) -> dict:
    """The per-class figures for sketches ``generated[temperature][label]``."""
    n_classes = len(ds.class_names)
    pooled = even_subset(ds.splits["train"].labels, cfg.max_pool, cfg.seed + 3)
    images = {s: rasterize(split_rows(ds, s), cfg.size) for s in ("val", "test")}
    images["train"] = rasterize(split_rows(ds, "train", pooled), cfg.size)
    labels = {s: ds.splits[s].labels for s in ("val", "test")}
    labels["train"] = ds.splits["train"].labels[pooled]
    pred, top, feat = {}, {}, {}
    for s in ("val", "test"):
        top[s], feat[s] = ranked(net, images[s], device)
        pred[s] = top[s][:, 0]
    _, held_out = other_drawings(ds.class_names, cfg.holdout_every)
    held_pred, _ = classify(net, rasterize(held_out, cfg.size), device)
    n_gen = max((len(v) for by_label in generated.values() for v in by_label.values()), default=0)
    classes = {}
    for label, name in enumerate(ds.class_names):
        real = labels["test"] == label
        val = labels["val"] == label
        pool = images["train"][labels["train"] == label]
        unseen = images["val"][val]  # the validation drawings: never trained on
        seen = pool[_subset(len(pool), len(unseen), cfg.seed + 2)]  # as many training drawings
        # precision and recall compare sets of one size: n_gen real test drawings, and n_gen val ones for the ceiling
        real_feat = feat["test"][real][_subset(int(real.sum()), n_gen, cfg.seed)]
        val_feat = feat["val"][val][_subset(int(val.sum()), n_gen, cfg.seed + 1)]
        p_real, r_real = precision_recall(real_feat, val_feat, cfg.k)  # nan (None) with k or fewer drawings
        row = {
            "test_drawings": int(real.sum()),
            "accuracy": float((pred["test"][real] == label).mean()) if real.any() else None,
            "accuracy_top3": float((top["test"][real] == label).any(1).mean()) if real.any() else None,
            "false_positive": float((held_pred == label).mean()) if len(held_pred) else None,
            "precision_real": _finite(p_real),
            "recall_real": _finite(r_real),
            "novelty_real": float(np.median(nearest_distance(images["test"][real], pool)))
            if real.any() and len(pool)
            else None,
            "seen_ratio_real": seen_ratio(images["test"][real], seen, unseen),
        }
        for t, by_label in generated.items():
            img = rasterize(by_label[label], cfg.size)
            p3, f = ranked(net, img, device)
            p = p3[:, 0]
            precision, recall = precision_recall(real_feat, f, cfg.k)
            recognised, accuracy = float((p == label).mean()), row["accuracy"]
            row[f"recognised@{t}"] = recognised
            row[f"recognised_top3@{t}"] = float((p3 == label).any(1).mean())
            # generated over real: 1 when sketches are recognised as often as real drawings
            row[f"ratio@{t}"] = recognised / accuracy if accuracy else None
            row[f"none@{t}"] = float((p == n_classes).mean())
            row[f"precision@{t}"] = _finite(precision)
            row[f"recall@{t}"] = _finite(recall)
            row[f"frechet@{t}"] = frechet(feat["test"][real], f) if real.sum() > 1 and len(f) > 1 else None
            row[f"novelty@{t}"] = float(np.median(nearest_distance(img, pool))) if len(pool) else None
            row[f"seen_ratio@{t}"] = seen_ratio(img, seen, unseen)
        classes[name] = row
    overall = _overall(classes, pred["test"], labels["test"], held_pred, n_classes, list(generated))
    return {"classes": classes, "overall": overall, "temperatures": list(generated)}


def _overall(
    classes: dict, pred: np.ndarray, labels: np.ndarray, held_pred: np.ndarray, n_classes: int, temperatures
) -> dict:
    """The judge's own figures over every class, and the class means of each temperature's."""
    overall: dict = {
        "accuracy": float((pred == labels).mean()) if len(labels) else None,
        "accuracy_top3": _mean([c["accuracy_top3"] for c in classes.values()]),
        "false_positive": float((held_pred < n_classes).mean()) if len(held_pred) else None,
        "held_out_drawings": len(held_pred),  # 0 when the dataset holds every class: no "none of these"
    }
    for t in temperatures:
        for key in ("recognised", "recognised_top3", "precision", "recall"):
            overall[f"{key}@{t}"] = _mean([c[f"{key}@{t}"] for c in classes.values()])
        ratios = [c[f"ratio@{t}"] for c in classes.values() if c[f"ratio@{t}"] is not None]
        overall[f"median_ratio@{t}"] = float(np.median(ratios)) if ratios else None
        overall[f"top3_zero@{t}"] = float(np.mean([c[f"recognised_top3@{t}"] == 0 for c in classes.values()]))
        # the classes drawn worst: lowest ratio (a class the judge cannot tell from real ones has
        # none); among equal ratios (often 0: none recognised top-1), the lowest top-3 rate first
        ratio = {name: c[f"ratio@{t}"] for name, c in classes.items()}
        top3 = {name: c[f"recognised_top3@{t}"] or 0.0 for name, c in classes.items()}
        by_ratio = sorted(classes, key=lambda name: (ratio[name] is None, ratio[name] or 0.0, top3[name]))
        overall[f"worst@{t}"] = by_ratio[:WORST]
    return overall


WORST = 20  # classes listed as drawn worst


def _mean(values: list) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _finite(x: float) -> float | None:
    return None if x != x else float(x)
