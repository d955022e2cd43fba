"""The Transformer backbone (``--arch transformer``) held to the LSTM's contracts:
causal, the same drawings with and without its cache, learning, exact resume,
checkpoints and the CLI."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_train import cfg, same_state

from qdsketch.batching import DeviceSplit
from qdsketch.checkpoint import load_checkpoint
from qdsketch.config import ModelConfig
from qdsketch.data.preprocess import load_dataset
from qdsketch.model import SketchTransformer, build_model, count_parameters
from qdsketch.sample import generate, sketch_seeds
from qdsketch.train import resume, train

# dropout on, two blocks: so that the random state matters to the result
TINY_T = ModelConfig(
    arch="transformer", n_classes=5, embed_dim=8, hidden=16, layers=2, heads=2, dropout=0.3, head="gmm", mixtures=3
)


@pytest.fixture(scope="module")
def batch(dataset_path):
    ds = load_dataset(dataset_path)
    return DeviceSplit(ds.splits["train"], ds.mean, ds.std).batch(np.arange(16))


@pytest.fixture(scope="module")
def long_batch(dataset_path):
    """The 8 longest training drawings, and 8 short ones."""
    ds = load_dataset(dataset_path)
    split = DeviceSplit(ds.splits["train"], ds.mean, ds.std)
    order = np.argsort(split.steps_np)
    return split.batch(np.concatenate([order[-8:], order[:8]]))


def test_build_model_picks_the_backbone_and_counts_its_parameters():
    model = build_model(replace(TINY_T, n_classes=345, hidden=256, layers=4, heads=4, embed_dim=64, mixtures=20))
    assert isinstance(model, SketchTransformer)
    # per block 12 d^2 + 13 d (attention 4 d^2 + 4 d, MLP 8 d^2 + 5 d, two norms 4 d); input, class
    # projection and final norm; the embedding; the head (6 x 20 + 3 outputs)
    d = 256
    expected = 4 * (12 * d * d + 13 * d) + (5 * d + d) + (64 * d + d) + 2 * d + 345 * 64 + (d + 1) * 123
    assert count_parameters(model) == expected == 3_231_419


def test_a_step_sees_only_the_steps_before_it(batch):
    torch.manual_seed(0)
    model = build_model(TINY_T).eval()
    out, _ = model(batch.inputs, batch.labels)
    changed = batch.inputs.clone()
    changed[:, 10:] = torch.randn_like(changed[:, 10:]) * 10
    again, _ = model(changed, batch.labels)
    assert torch.equal(out["pi"][:, :10], again["pi"][:, :10])
    assert not torch.allclose(out["pi"][:, 10:], again["pi"][:, 10:])


def test_the_cache_gives_what_the_whole_sequence_gives(long_batch):
    batch = long_batch
    torch.manual_seed(0)
    model = build_model(TINY_T).eval()
    whole, _ = model(batch.inputs, batch.labels)
    assert batch.inputs.shape[1] > 64  # the cache outgrows its first buffers
    emb = model.class_embedding(batch.labels)
    out = model.run(batch.inputs[:, :5], emb, model.initial_state(emb))  # a start of several steps, as a prefix
    parts = [out["pen"]]
    out = model.run(batch.inputs[:, 5:9], emb, out["state"])  # several steps after a cache
    parts.append(out["pen"])
    for t in range(9, batch.inputs.shape[1]):  # then one at a time, as sampling goes
        out = model.run(batch.inputs[:, t : t + 1], emb, out["state"])
        parts.append(out["pen"])
    assert torch.allclose(torch.cat(parts, 1), whole["pen"], atol=1e-5)


def test_padding_does_not_change_the_loss(batch):
    torch.manual_seed(0)
    model = build_model(TINY_T).eval()
    _, clean = model(batch.inputs, batch.labels, batch.targets, batch.mask)
    pad = ~batch.mask.bool()
    assert pad.sum() > 100
    inputs, targets = batch.inputs.clone(), batch.targets.clone()
    inputs[pad] = torch.randn(int(pad.sum()), 5) * 100
    targets[pad] = torch.randn(int(pad.sum()), 5) * 100
    _, noisy = model(inputs, batch.labels, targets, batch.mask)
    for k in ("total", "xy", "pen"):
        assert noisy[k].item() == pytest.approx(clean[k].item(), rel=1e-6)


def test_a_tiny_transformer_overfits_one_batch_of_real_drawings(batch):
    torch.manual_seed(0)
    model = build_model(replace(TINY_T, hidden=32, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        _, loss = model(batch.inputs, batch.labels, batch.targets, batch.mask)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
        losses.append(loss["total"].item())
    assert losses[-1] < losses[0] - 2.0  # measured: about 2.3 -> -0.6 in 150 steps


def test_interrupted_mid_epoch_and_resumed_is_bit_identical(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=2), TINY_T, tmp_path / "straight")
    polls = iter(range(1000))
    summary = train(cfg(dataset_path, epochs=2), TINY_T, tmp_path / "cut", should_stop=lambda: next(polls) == 11)
    assert summary["interrupted"] and (summary["epoch"], summary["batch"]) == (2, 3)
    resume(tmp_path / "cut")
    same_state(tmp_path / "straight" / "last.pt", tmp_path / "cut" / "last.pt")


class Uncached(torch.nn.Module):
    """The model, run over every step so far at each step: no cache."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.class_embedding = model.class_embedding
        self.head = model.head

    def initial_state(self, emb):
        return None

    def run(self, strokes, emb, seen):
        seen = strokes if seen is None else torch.cat([seen, strokes], 1)
        out = self.model.run(seen, emb, self.model.initial_state(emb))
        out["state"] = seen
        return out

    def keep_rows(self, seen, rows):
        return seen[rows]


def test_the_same_drawings_with_and_without_the_cache(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=2), TINY_T, tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run")
    labels, seeds = [0, 1, 2, 3, 4] * 2, sketch_seeds(3, 10)
    cached = generate(ckpt, labels, seeds, max_len=60)
    ckpt.model = Uncached(ckpt.model)
    uncached = generate(ckpt, labels, seeds, max_len=60)
    assert [len(r) for r in cached.rows] == [len(r) for r in uncached.rows]
    assert sum(len(r) for r in cached.rows) > 100  # sketches long enough that the cache is used
    for a, b in zip(cached.rows, uncached.rows):
        assert a[:, 2].tolist() == b[:, 2].tolist()
        assert np.abs(a[:, :2] - b[:, :2]).max() < 1e-3


def test_the_cli_trains_samples_and_refuses_a_shape_it_cannot_build(run, dataset_path, tmp_path):
    args = ["train", "--data", dataset_path, "--preset", "tiny", "--arch", "transformer", "--batch-size", 16]
    bad = run(*args, "--hidden", 10, "--heads", 4, "--run-dir", tmp_path / "bad")
    assert bad.exit_code == 1
    assert bad.output == (
        "Error: this model cannot be built: hidden 10 is not a multiple of heads 4. "
        "Change --hidden, --heads or --arch\n"
    )
    assert not (tmp_path / "bad").exists()
    good = run(*args, "--hidden", 8, "--heads", 2, "--epochs", 1, "--run-dir", tmp_path / "t", "-q")
    assert good.exit_code == 0, good.output
    ckpt = load_checkpoint(tmp_path / "t")
    assert isinstance(ckpt.model, SketchTransformer) and ckpt.config.arch == "transformer"
    out = run("sample", "cat", "house", "-n", 2, "--checkpoint", tmp_path / "t", "-o", tmp_path / "s.ndjson")
    assert out.exit_code == 0, out.output
    assert len((tmp_path / "s.ndjson").read_text().splitlines()) == 4
