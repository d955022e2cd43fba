"""The mixture-density head: its likelihood, and sampling."""

import math

import numpy as np
import pytest
import torch
from helpers import checkpoint_of

from qdsketch.config import ModelConfig, preset
from qdsketch.model import GMMHead, SketchModel, count_parameters
from qdsketch.sample import sample_pen


def one_step(pi, mu, sigma, rho):
    """A head output for one row, one step, from plain numbers."""
    t = lambda v: torch.tensor(v, dtype=torch.float32).reshape(1, 1, *np.shape(v))
    return {"pi": t(pi), "mu": t(mu), "log_sigma": torch.log(t(sigma)), "rho": t(rho)}


def test_log_likelihood_agrees_with_a_direct_computation():
    pi_logits = [0.3, -1.2]
    mu = [[0.5, -0.2], [-1.0, 2.0]]
    sigma = [[0.8, 1.5], [0.4, 0.6]]
    rho = [0.6, -0.3]
    out = one_step(pi_logits, mu, sigma, rho)
    x, y = 0.1, 0.4
    # the bivariate normal density written out, as in Bishop (1994) and Sketch-RNN's eq. (24)
    w = np.exp(pi_logits) / np.exp(pi_logits).sum()
    p = 0.0
    for k in range(2):
        zx, zy = (x - mu[k][0]) / sigma[k][0], (y - mu[k][1]) / sigma[k][1]
        z = zx**2 + zy**2 - 2 * rho[k] * zx * zy
        p += (
            w[k]
            * math.exp(-z / (2 * (1 - rho[k] ** 2)))
            / (2 * math.pi * sigma[k][0] * sigma[k][1] * math.sqrt(1 - rho[k] ** 2))
        )
    got = GMMHead.log_prob(out, torch.tensor([[[x, y]]]))
    assert got.item() == pytest.approx(math.log(p), rel=1e-5)


def test_sampling_near_zero_temperature_collapses_to_the_mode():
    out = one_step(
        [0.1, 2.0, -1.0], [[1.0, 1.0], [-0.5, 0.25], [3.0, 3.0]], [[1, 1], [0.5, 0.5], [1, 1]], [0.0, 0.5, 0.0]
    )
    head = GMMHead(ModelConfig(head="gmm", mixtures=3, hidden=4))
    noise = torch.tensor([[0.999, 2.5, -2.5]])  # a draw far from the mean, at full temperature
    assert head.sample_xy(out, 1e-8, noise)[0].tolist() == pytest.approx([-0.5, 0.25], abs=1e-3)
    assert head.sample_xy(out, 0.0, noise)[0].tolist() == pytest.approx([-0.5, 0.25])
    assert sample_pen(torch.tensor([[0.2, 1.5, -3.0]]), 1e-8, torch.tensor([0.99])).tolist() == [1]


def test_sampling_at_temperature_one_follows_the_mixture():
    out = one_step([0.0, 0.0], [[-2.0, 0.0], [2.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]], [0.0, 0.0])
    head = GMMHead(ModelConfig(head="gmm", mixtures=2, hidden=4))
    g = torch.Generator().manual_seed(0)
    n = 4000
    noise = torch.cat([torch.rand(n, 1, generator=g), torch.randn(n, 2, generator=g)], 1)
    expanded = {k: v.expand(n, *v.shape[1:]) for k, v in out.items()}
    xy = head.sample_xy(expanded, 1.0, noise)
    assert (xy[:, 0] > 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert xy[xy[:, 0] > 0, 0].std().item() == pytest.approx(0.5, abs=0.03)


def test_sketchrnn_preset_trains_and_its_loss_is_the_nll():
    torch.manual_seed(0)
    model = SketchModel(preset("tiny", head="gmm", mixtures=3))
    assert count_parameters(SketchModel(preset("sketchrnn"))) == 5_927_045 - 2 * 513 + 120 * 513
    x = torch.zeros(2, 4, 5)
    y = torch.randn(2, 4, 5)
    y[..., 2:] = torch.nn.functional.one_hot(torch.tensor([[0, 1, 0, 2], [0, 0, 1, 2]]), 3).float()
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    out, losses = model(x, torch.tensor([0, 1]), y, mask)
    nll = -GMMHead.log_prob(out, y[..., :2])[mask].mean()
    assert losses["xy"].item() == pytest.approx(nll.item(), rel=1e-6)


def test_nll_in_sketchrnn_units_is_the_change_of_variables():
    from qdsketch.evaluate import nll_in_sketchrnn_units

    mean, std, scale = np.array([1.5, -0.7]), np.array([38.0, 34.0]), 36.5
    # one Gaussian, over pixels: centre (10, -4), deviations (20, 15), correlation 0.3
    px_mu, px_sigma, rho = np.array([10.0, -4.0]), np.array([20.0, 15.0]), 0.3
    x = np.array([[17.0, 2.0]])
    ours = one_step([0.0], [((px_mu - mean) / std).tolist()], [(px_sigma / std).tolist()], [rho])
    theirs = one_step([0.0], [(px_mu / scale).tolist()], [(px_sigma / scale).tolist()], [rho])
    nll_ours = -GMMHead.log_prob(ours, torch.tensor((x - mean) / std, dtype=torch.float32)[None]).item()
    nll_theirs = -GMMHead.log_prob(theirs, torch.tensor(x / scale, dtype=torch.float32)[None]).item()
    assert nll_in_sketchrnn_units(nll_ours, std, scale) == pytest.approx(nll_theirs, abs=1e-4)


def test_training_the_gmm_head_names_its_loss(run, dataset_path, tmp_path):

    rd = tmp_path / "run"
    result = run(
        "train",
        "--data",
        str(dataset_path),
        "--preset",
        "tiny",
        "--head",
        "gmm",
        "--mixtures",
        "3",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--run-dir",
        str(rd),
    )
    assert result.exit_code == 0, result.output
    assert " ep  train     xy    pen    val     xy    pen" in result.output
    assert {p.name for p in rd.glob("*.png")} == {"loss_total.png", "loss_xy.png", "loss_pen.png"}
    report = run("evaluate", str(rd))
    assert "in Sketch-RNN's units: L_R = L_s + L_p = " in report.output


def test_the_pen_keeps_its_own_probabilities_by_default_for_the_mixture_head():
    """Sharpening the pen makes the end of a sketch rarer than the model says, so
    sketches run on (docs/sampling.md): the mixture head samples the pen at 1."""
    from qdsketch.sample import generate, sketch_seeds

    def ckpt(head):
        torch.manual_seed(0)
        cfg = ModelConfig(n_classes=2, embed_dim=4, hidden=8, layers=1, dropout=0.0, head=head, mixtures=3)
        return checkpoint_of(SketchModel(cfg), ["a", "b"], mean=[1.0, 1.0])

    seeds = sketch_seeds(0, 16)
    gmm = ckpt("gmm")
    rows = lambda g: [r.tolist() for r in g.rows]
    default = generate(gmm, [0] * 16, seeds, temperature=0.4)
    assert (default.temperature, default.pen_temperature) == (0.4, 1.0)
    assert rows(default) == rows(generate(gmm, [0] * 16, seeds, temperature=0.4, pen_temperature=1.0))
    assert rows(default) != rows(generate(gmm, [0] * 16, seeds, temperature=0.4, pen_temperature=0.4))
    mse = ckpt("mse")
    ref = generate(mse, [0] * 16, seeds, temperature=0.3)
    assert (ref.temperature, ref.pen_temperature) == (0.3, 0.3)  # the reference's: one temperature, the pen's
    assert rows(ref) == rows(generate(mse, [0] * 16, seeds, temperature=0.3, pen_temperature=0.3))
    assert generate(gmm, [0], seeds[:1]).temperature == 0.25 and generate(mse, [0], seeds[:1]).temperature == 0.5
