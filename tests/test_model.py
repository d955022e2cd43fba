"""The model: the reference's architecture, its loss, and learning."""

import numpy as np
import pytest
import torch

from qdsketch.batching import DeviceSplit, batch_order, padding_efficiency
from qdsketch.config import PRESETS, ModelConfig, preset
from qdsketch.data.preprocess import load_dataset
from qdsketch.model import SketchModel, count_parameters


def test_seed_preset_is_the_reference_architecture():
    model = SketchModel(preset("seed"))
    assert count_parameters(model) == 5_927_045
    assert model.lstm.input_size == 133 and model.lstm.hidden_size == 512 and model.lstm.num_layers == 3
    assert model.lstm.dropout == 0.3
    assert model.init_h_proj.out_features == 3 * 512
    assert model.head.fc_xy.out_features == 2 and model.head.fc_pen.out_features == 3


def test_preset_overrides():
    cfg = preset("seed", hidden=64, layers=None)
    assert (cfg.hidden, cfg.layers, cfg.embed_dim) == (64, 3, 128)
    assert PRESETS["seed"].model.hidden == 512  # presets are not modified


@pytest.fixture
def train_split(dataset_path):
    ds = load_dataset(dataset_path)
    return DeviceSplit(ds.splits["train"], ds.mean, ds.std)


def test_batches_hold_the_model_pairs(dataset_path, train_split):
    from reference import model_pair

    ds = load_dataset(dataset_path)
    d = ds.splits["train"].drawings
    inp, tgt, mask, labels, *_ = train_split.batch(np.array([3, 0]))
    for j, i in enumerate([3, 0]):
        x, y = model_pair(d.rows[d.offsets[i] : d.offsets[i + 1]], ds.mean, ds.std)
        n = len(x)
        assert inp[j, :n].numpy() == pytest.approx(x, abs=1e-6)
        assert tgt[j, :n].numpy() == pytest.approx(y, abs=1e-6)
        assert mask[j].sum() == n and (inp[j, n:] == 0).all()
    assert labels.tolist() == ds.splits["train"].labels[[3, 0]].tolist()


def test_changing_the_padding_does_not_change_the_loss(train_split):
    torch.manual_seed(0)
    model = SketchModel(preset("tiny", n_classes=5))
    inp, tgt, mask, labels, *_ = train_split.batch(np.arange(16))
    assert (~mask).sum() > 100  # there is padding to change
    _, clean = model(inp, labels, tgt, mask)
    noisy_inp, noisy_tgt = inp.clone(), tgt.clone()
    pad = ~mask
    noisy_inp[pad] = torch.randn(int(pad.sum()), 5) * 100
    noisy_tgt[pad] = torch.randn(int(pad.sum()), 5) * 100
    _, noisy = model(noisy_inp, labels, noisy_tgt, mask)
    for k in ("total", "xy", "pen"):
        assert noisy[k].item() == clean[k].item()


def test_loss_is_the_reference_composite(train_split):
    torch.manual_seed(0)
    model = SketchModel(preset("tiny", n_classes=5, xy_weight=2.0, pen_weight=0.5))
    inp, tgt, mask, labels, *_ = train_split.batch(np.arange(8))
    out, losses = model(inp, labels, tgt, mask)
    real = mask.bool()
    mse = torch.nn.functional.mse_loss(out["xy"][real], tgt[..., :2][real])
    ce = torch.nn.functional.cross_entropy(out["pen"][real], tgt[..., 2:][real].argmax(-1))
    assert losses["xy"].item() == pytest.approx(mse.item(), rel=1e-6)
    assert losses["pen"].item() == pytest.approx(ce.item(), rel=1e-6)
    assert losses["total"].item() == pytest.approx(2.0 * mse.item() + 0.5 * ce.item(), rel=1e-6)


def test_a_tiny_model_overfits_one_batch_of_real_drawings(train_split):
    torch.manual_seed(0)
    model = SketchModel(ModelConfig(n_classes=5, embed_dim=16, hidden=64, layers=1, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    inp, tgt, mask, labels, *_ = train_split.batch(np.arange(8))
    first = None
    for _ in range(200):
        _, losses = model(inp, labels, tgt, mask)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        first = first or losses["total"].item()
    assert losses["total"].item() < first / 4  # measured: about 2.2 -> 0.3 in 200 steps


def test_length_grouping_keeps_padding_small(train_split):
    steps = train_split.steps_np
    rng = np.random.default_rng(0)
    grouped = batch_order(steps, 8, rng, pool=50)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(len(steps)))
    random = [b for b in np.array_split(rng.permutation(len(steps)), len(grouped))]
    assert padding_efficiency(steps, grouped) > 0.9 > padding_efficiency(steps, random)


def test_balanced_sampling_gives_each_class_equal_expected_batches(train_split):
    from qdsketch.batching import balanced_weights

    labels, steps = train_split.labels_np, train_split.steps_np
    sizes = np.bincount(labels)
    assert sizes.min() < sizes.max()  # real, uneven classes: 16 cats against 28 tents
    w = balanced_weights(labels)
    assert w.sum() == pytest.approx(1.0)
    assert [w[labels == c].sum() for c in range(5)] == pytest.approx([0.2] * 5)
    counts = np.zeros(5)
    for epoch in range(300):
        for b in batch_order(steps, 8, np.random.default_rng([0, epoch]), pool=4, weights=w):
            counts += np.bincount(labels[b], minlength=5)
    total = counts.sum()
    assert total == 300 * len(labels)  # an epoch is as many draws as there are drawings
    sigma = np.sqrt(total * 0.2 * 0.8)
    assert np.abs(counts - total / 5).max() < 4 * sigma
    # without weights, each class comes in proportion to its size, exactly
    plain = np.zeros(5)
    for b in batch_order(steps, 8, np.random.default_rng(0), pool=4):
        plain += np.bincount(labels[b], minlength=5)
    assert plain.tolist() == sizes.tolist()
