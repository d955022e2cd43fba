"""The judge: its measures, and `qdsketch evaluate --judge` on a tiny run."""

import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

from qdsketch import judge as J
from qdsketch.cli import cli
from qdsketch.model import preset
from qdsketch.train import TrainConfig, train


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 2)) * [1.0, 2.0]
    b = rng.normal(size=(20000, 2)) * [1.0, 2.0] + [3.0, 0.0]
    assert J.frechet(a, a) == pytest.approx(0, abs=1e-9)
    # same covariance: only the means differ, by 3
    assert J.frechet(a, b) == pytest.approx(9.0, rel=0.02)
    # 1-d closed form: (mu1 - mu2)^2 + (s1 - s2)^2
    c = rng.normal(size=(20000, 1)) * 2.0
    d = rng.normal(size=(20000, 1)) * 0.5 + 1.0
    assert J.frechet(c, d) == pytest.approx(1.0 + 1.5**2, rel=0.02)


def test_nearest_distance_is_the_fraction_of_differing_pixels():
    pool = np.zeros((2, 4, 4), np.float32)
    pool[1, 0, :] = 1
    q = pool[1:].copy()
    q[0, 3, 3] = 1
    assert J.nearest_distance(q, pool).tolist() == [1 / 16]
    assert J.nearest_distance(pool, pool).tolist() == [0.0, 0.0]


@pytest.fixture(scope="module")
def tiny_run(dataset_path, tmp_path_factory):
    rd = tmp_path_factory.mktemp("judge") / "run"
    train(TrainConfig(data=str(dataset_path), epochs=2, batch_size=16), preset("tiny", hidden=32), rd)
    return rd


def test_evaluate_judge_json_on_a_tiny_run(tiny_run, dataset_path, tmp_path):
    judge_path = tmp_path / "judge.pt"
    t = time.perf_counter()
    result = CliRunner().invoke(cli, ["evaluate", str(tiny_run), "--judge", "-n", "6", "--temperature", "0.3",
                                      "--temperature", "1.0", "--judge-path", str(judge_path), "--json"])
    seconds = time.perf_counter() - t
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    j = report["judge"]
    assert j["temperatures"] == [0.3, 1.0] and j["n"] == 6 and j["judge_trained_now"]
    assert set(j["classes"]) == {"cat", "clock", "house", "nail", "tent"}
    for c in j["classes"].values():
        for key in ("accuracy", "novelty_real", "recognised@0.3", "recognised@1.0", "novelty@0.3", "novelty@1.0"):
            assert 0.0 <= c[key] <= 1.0, key
        assert c["frechet@0.3"] >= 0
    assert 0 <= j["overall"]["accuracy"] <= 1
    assert judge_path.exists()
    print(f"evaluate --judge on a tiny run: {seconds:.1f} s")  # the whole evaluation runs in seconds
    again = CliRunner().invoke(cli, ["evaluate", str(tiny_run), "--judge", "-n", "6", "--judge-path", str(judge_path), "--json"])
    assert json.loads(again.output)["judge"]["judge_trained_now"] is False  # the cached judge is reused


def test_evaluate_judge_table(tiny_run, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(tiny_run), "--judge", "-n", "4", "--judge-path", str(tmp_path / "j.pt")])
    assert result.exit_code == 0, result.output
    assert "judge: 4 sketches per class, seed 0" in result.output
    assert "recog@0.5" in result.output and "novelty real" in result.output
