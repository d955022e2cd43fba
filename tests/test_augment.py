"""Augmentation: random, seeded, and never breaking the pen structure."""

import numpy as np
import pytest
import torch

from qdsketch.batching import Augment, DeviceSplit
from qdsketch.data.preprocess import load_dataset


def strokes_at(rows):
    """Absolute points per stroke, from the origin, without re-aligning."""
    xy = np.vstack([[0.0, 0.0], np.cumsum(rows[:, :2], 0)])
    return [p for p in np.split(xy, np.flatnonzero(rows[:, 2] > 0.5) + 2) if len(p)]


@pytest.fixture(scope="module")
def split(dataset_path):
    ds = load_dataset(dataset_path)
    return DeviceSplit(ds.splits["train"], ds.mean, ds.std)


def stroke3_of(split, inp, mask, j):
    """Row j of a batch back as stroke-3 in pixels (inputs after SOS)."""
    n = int(mask[j].sum())
    rows = inp[j, 1:n].clone()
    xy = rows[:, :2] * split.std + split.mean
    return torch.cat([xy, rows[:, 3:4]], 1).numpy()


def pens(inp, mask, j):
    n = int(mask[j].sum())
    return inp[j, :n, 2:].argmax(-1).tolist()


@pytest.mark.parametrize(
    "aug", [Augment(scale=0.2), Augment(rotate=15), Augment(drop=0.3), Augment(jitter=1.0), Augment(0.15, 10, 0.1, 0.5)]
)
def test_augmentation_preserves_the_pen_structure(split, aug):
    index = np.arange(16)
    inp, tgt, mask, *_ = split.batch(index)
    g = torch.Generator().manual_seed(0)
    a_inp, a_tgt, a_mask, *_ = split.batch(index, aug, g)
    for j in range(16):
        before, after = pens(inp, mask, j), pens(a_inp, a_mask, j)
        if aug.drop:
            # dropping only removes pen-down rows inside strokes: the strokes stay the same in number
            assert after.count(1) == before.count(1) and len(after) <= len(before)
        else:
            assert after == before
        n = int(a_mask[j].sum())
        assert a_inp[j, 0].tolist() == [0, 0, 1, 0, 0]  # SOS
        assert a_tgt[j, n - 1].tolist() == [0, 0, 0, 0, 1]  # EOS right after the last row
        assert (a_inp[j, n:] == 0).all() and (a_tgt[j, n:] == 0).all()  # padding stays zero
        assert torch.equal(a_inp[j, 1:n], a_tgt[j, : n - 1])  # targets are the next inputs


def test_dropping_points_keeps_the_drawn_shape(split):
    index = np.arange(8)
    plain = split.batch(index)
    inp, mask = plain.inputs, plain.mask
    dropped = split.batch(index, Augment(drop=0.5), torch.Generator().manual_seed(1))
    a_inp, a_mask = dropped.inputs, dropped.mask
    assert (a_mask.sum(1) < mask.sum(1)).any()
    # the batch counts its real steps, fewer once points are dropped; the computed ones stay
    assert plain.steps == int(mask.sum()) == int(split.steps_np[index].sum())
    assert dropped.steps == int(a_mask.sum()) < plain.steps
    assert dropped.computed == plain.computed == 8 * int(split.steps_np[index].max())
    for j in range(8):
        before = strokes_at(stroke3_of(split, inp, mask, j))
        after = strokes_at(stroke3_of(split, a_inp, a_mask, j))
        assert len(before) == len(after)
        for s, t in zip(before, after):
            # every kept point is one of the original points, and the ends of each stroke stay
            assert np.abs(s[0] - t[0]).max() < 1e-3 and np.abs(s[-1] - t[-1]).max() < 1e-3
            assert all(np.abs(s - p).sum(1).min() < 1e-3 for p in t)


def test_scaling_scales_each_axis_by_one_factor(split):
    index = np.arange(4)
    inp, _, mask, *_ = split.batch(index)
    a_inp, _, a_mask, *_ = split.batch(index, Augment(scale=0.3), torch.Generator().manual_seed(2))
    for j in range(4):
        a, b = stroke3_of(split, inp, mask, j), stroke3_of(split, a_inp, a_mask, j)
        for axis in (0, 1):
            r = b[:, axis] / np.where(np.abs(a[:, axis]) > 1, a[:, axis], np.nan)
            r = r[~np.isnan(r)]
            assert r.max() - r.min() < 1e-3 and 0.7 <= r.mean() <= 1.3


def test_same_generator_seed_same_batch(split):
    index = np.arange(8)
    aug = Augment(0.15, 10, 0.1, 0.5)
    a = split.batch(index, aug, torch.Generator().manual_seed(5))
    b = split.batch(index, aug, torch.Generator().manual_seed(5))
    c = split.batch(index, aug, torch.Generator().manual_seed(6))
    assert all(torch.equal(x, y) for x, y in zip(a[:4], b[:4])) and a[4:] == b[4:]
    assert not torch.equal(a[0], c[0])
