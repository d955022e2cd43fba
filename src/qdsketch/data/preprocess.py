"""``qdsketch preprocess`` and the datasets it makes: build one, write it, load it.

``build`` reads every file a data directory holds for the chosen classes (``sources``),
truncates, splits per class with a seeded generator (``plan``) and fits the normalisation
on the training split only. The output is a dataset file (``npz``, built in memory) or a
sharded directory (``shards``, streamed in bounded memory); ``load_dataset`` reads
either. docs/data-format.md describes both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qdsketch.data import npz, shards
from qdsketch.data.dataset import SPLITS, Dataset, Shard, Split, join_labels, summarize
from qdsketch.data.drawings import Skipped, concat, select
from qdsketch.data.plan import Moments, Plan, split_classes
from qdsketch.errors import DataError


def build_dataset(
    data_dir: Path,
    classes: list[str] | None = None,
    max_per_class: int | None = None,
    max_seq_len: int = 150,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    recognized_only: bool = True,
    workers: int = 1,
    progress=None,
) -> Dataset:
    """The whole dataset in memory (``write_shards`` streams it to disk instead)."""
    plan = Plan.of(
        data_dir,
        classes,
        max_per_class=max_per_class,
        max_seq_len=max_seq_len,
        fractions=fractions,
        seed=seed,
        recognized_only=recognized_only,
    )
    return build(plan, workers, progress)


def build(plan: Plan, workers: int = 1, progress=None) -> Dataset:
    """``plan`` read and split, in memory."""
    skipped, truncated, moments = Skipped(), 0, Moments()
    pieces: dict[str, list[Shard]] = {s: [] for s in SPLITS}
    for label, drawings, index, class_skipped, class_truncated in split_classes(plan, workers, progress):
        skipped.merge(class_skipped)
        truncated += class_truncated
        parts = {split: select(drawings, i, plan.max_seq_len) for split, i in zip(SPLITS, index)}
        moments.add(parts["train"].rows)
        for split, d in parts.items():
            pieces[split].append(Shard(d, np.full(len(d), label, np.int64)))
    splits = {s: Split.of(concat([p.drawings for p in parts]), join_labels(parts)) for s, parts in pieces.items()}
    if not len(splits["train"]):
        raise DataError("the training split is empty", "use more drawings or a larger first --split weight")
    mean, std = moments.normalizer()
    meta = plan.meta(skipped, truncated)
    return Dataset(list(plan.classes), splits, mean, std, plan.max_seq_len, plan.seed, meta)


def preprocess(plan: Plan, output: Path, workers: int = 1, progress=None) -> dict:
    """``qdsketch preprocess``: ``plan`` read, split and written to ``output``, a
    dataset file (``.npz``, built in memory) or else a sharded directory (streamed);
    returns the summary."""
    output = Path(output)
    if output.suffix and output.suffix.lower() != ".npz" and not output.is_dir():  # x.txt: made a folder
        raise DataError(
            f"-o {output}: a dataset is a .npz file or a folder of shards, not a {output.suffix} file",
            f"name a .npz file (built in memory), or a folder without a suffix, e.g. {output.with_suffix('')} "
            "(shards, streamed: for large data)",
        )
    if output.suffix.lower() == ".npz":
        ds = build(plan, workers, progress)
        npz.save_npz(ds, output)
        return summarize(ds)
    return shards.summary(shards.write_shards(plan, output, workers, progress=progress))


def load_dataset(path: Path) -> Dataset:
    """A dataset file, or a sharded dataset directory (memory-mapped), checked whole."""
    path = Path(path)
    return shards.load_shards(path) if path.is_dir() else npz.load_npz(path)
