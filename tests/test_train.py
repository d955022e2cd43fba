"""Training: the recipe, resume equivalence, checkpoints, DDP, and the CLI."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import DATA, checkpoint_of, train_json

from qdsketch.checkpoint import load_checkpoint, save_checkpoint
from qdsketch.config import Augment, ModelConfig, preset
from qdsketch.errors import CheckpointError, QdsketchError
from qdsketch.model import SketchModel
from qdsketch.train import TrainConfig, resume, train, warmed_up, warmup_scale

TINY = preset("tiny")


def cfg(dataset_path, **kw):
    return TrainConfig(**{"data": str(dataset_path), "batch_size": 16, "pool": 2, **kw})


def same_state(a: Path, b: Path):
    """Parameters and optimizer state of two last.pt files are bit-identical."""
    ka, kb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    for name, t in ka["model"].items():
        assert torch.equal(t, kb["model"][name]), name
    sa, sb = ka["state"]["optimizer"]["state"], kb["state"]["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for k in sa[i]:
            assert torch.equal(sa[i][k], sb[i][k]), (i, k)
    assert ka["state"].keys() == kb["state"].keys()
    for name, t in ka["state"].get("trained_weights", {}).items():  # --ema: the trained weights beside the average
        assert torch.equal(t, kb["state"]["trained_weights"][name]), name
    assert ka["state"].get("average_updates") == kb["state"].get("average_updates")
    assert ka["state"]["scheduler"] == kb["state"]["scheduler"]
    assert ka["state"]["early"] == kb["state"]["early"]
    assert torch.equal(ka["state"]["rng"]["torch"], kb["state"]["rng"]["torch"])
    return ka["state"]["history"], kb["state"]["history"]


# dropout on, two layers: so that the RNG state matters to the result
DROPPY = ModelConfig(embed_dim=8, hidden=16, layers=2, dropout=0.3)


def test_resume_at_an_epoch_boundary_is_bit_identical(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=2), DROPPY, tmp_path / "straight")
    train(cfg(dataset_path, epochs=1), DROPPY, tmp_path / "split")
    summary = resume(tmp_path / "split", {"epochs": 2})
    assert summary["epochs"] == 2
    h1, h2 = same_state(tmp_path / "straight" / "last.pt", tmp_path / "split" / "last.pt")
    strip = lambda h: [
        {k: v for k, v in r.items() if k not in ("seconds", "train_seconds", "seqs_per_s", "cpu_hours")} for r in h
    ]
    assert strip(h1) == strip(h2)


@pytest.mark.parametrize("ema, warmup", [(0.0, 0), (0.9, 0), (0.0, 12)])  # a warm-up of 12 steps spans the cut at 9
def test_interrupted_mid_epoch_and_resumed_is_bit_identical(dataset_path, tmp_path, ema, warmup):
    train(cfg(dataset_path, epochs=2, ema=ema, warmup=warmup), DROPPY, tmp_path / "straight")
    polls = iter(range(1000))
    summary = train(
        cfg(dataset_path, epochs=2, ema=ema, warmup=warmup),
        DROPPY,
        tmp_path / "cut",
        should_stop=lambda: next(polls) == 9,
    )
    assert summary["interrupted"] and (summary["epoch"], summary["batch"]) == (2, 1)  # 8 batches an epoch
    assert len(summary["history"]) == 1  # the history comes back on an interrupt too
    resume(tmp_path / "cut")  # the run's own 2 epochs
    same_state(tmp_path / "straight" / "last.pt", tmp_path / "cut" / "last.pt")


def test_save_every_keeps_last_pt_within_the_epoch_so_a_killed_run_resumes_bit_identical(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=2), DROPPY, tmp_path / "straight")
    polls = iter(range(1000))

    def killed():  # as kill -9 at batch 3 of epoch 2 (8 batches an epoch): nothing is saved then
        if next(polls) == 11:
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        train(cfg(dataset_path, epochs=2, save_every=1e-9), DROPPY, tmp_path / "killed", should_stop=killed)
    saved = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["state"]
    assert (saved["epoch"], saved["batch"], saved["steps"]) == (2, 2, 10)  # the save before the last batch run
    # a snapshot before every batch but an epoch's first: the weights, for the run's curve
    snapshots = sorted(int(p.stem.split("-")[1]) for p in (tmp_path / "killed" / "snapshots").glob("steps-*.pt"))
    assert snapshots == [1, 2, 3, 4, 5, 6, 7, 9, 10]
    snapshot = load_checkpoint(tmp_path / "killed" / "snapshots" / "steps-10.pt")
    assert snapshot.state is None and snapshot.trained["steps"] == 10 and 0 < snapshot.trained["cpu_hours"] < 1
    assert snapshot.val == {}  # not validated: the last epoch's losses are not these weights'
    assert (snapshot.epoch, snapshot.trained["batches_into_epoch"]) == (1, 2)  # epoch 1 and 2 batches of epoch 2
    from rich.console import Console

    from qdsketch.info import describe
    from qdsketch.reporting import info_table

    console = Console(record=True, width=200)
    info_table(console, describe(tmp_path / "killed" / "snapshots" / "steps-10.pt"))
    assert "weights     epoch 1 and 2 batches of epoch 2, 10 optimizer steps" in console.export_text()
    summary = resume(tmp_path / "killed")
    same_state(tmp_path / "straight" / "last.pt", tmp_path / "killed" / "last.pt")
    cpu = [row["cpu_hours"] for row in summary["history"]]
    assert 0 < cpu[0] < cpu[1]  # CPU time adds up over the resumed parts


def test_ema_saves_the_average_of_the_weights_after_every_step_and_trains_as_without(dataset_path, tmp_path):
    """Under --ema, best.pt, last.pt and snapshots hold the moving average of the trained
    weights; those (last.pt's state) are the ones a run without it trains, bit for bit."""
    one_epoch = cfg(dataset_path, epochs=1, save_every=1e-9)  # 8 batches; snapshots after steps 1-7
    train(one_epoch, DROPPY, tmp_path / "plain")
    train(replace(one_epoch, ema=0.5), DROPPY, tmp_path / "ema")
    plain = torch.load(tmp_path / "plain" / "last.pt", weights_only=True)
    averaged = torch.load(tmp_path / "ema" / "last.pt", weights_only=True)
    for name, t in plain["model"].items():
        assert torch.equal(averaged["state"]["trained_weights"][name], t), name
    assert averaged["state"]["average_updates"] == 8 and "trained_weights" not in plain["state"]
    # the average, step by step, from the initial weights and each step's trained weights
    torch.manual_seed(0)
    expected = SketchModel(replace(DROPPY, n_classes=5)).state_dict()
    steps = [torch.load(tmp_path / "plain" / "snapshots" / f"steps-{i}.pt", weights_only=True) for i in range(1, 8)]
    for n, step in enumerate([*steps, plain], start=1):
        rate = min(0.5, (1 + n) / (10 + n))  # 2/11, 3/12, ... then 0.5 from step 8
        expected = {k: rate * v + (1 - rate) * step["model"][k] for k, v in expected.items()}
    for name, t in expected.items():
        torch.testing.assert_close(averaged["model"][name], t, rtol=0, atol=1e-6)
        assert not torch.allclose(averaged["model"][name], plain["model"][name], atol=1e-4), name
    best = torch.load(tmp_path / "ema" / "best.pt", weights_only=True)
    assert all(torch.equal(best["model"][k], averaged["model"][k]) for k in expected)
    assert best["val"]["total"] == json.loads((tmp_path / "ema" / "history.json").read_text())[0]["val_total"]
    assert best["val"]["total"] != plain_val(tmp_path / "plain")  # validated on the average


def plain_val(run_dir: Path) -> float:
    return json.loads((run_dir / "history.json").read_text())[0]["val_total"]


def test_ema_given_on_resume_starts_from_the_trained_weights_and_can_be_dropped_again(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=3), DROPPY, tmp_path / "straight")
    train(cfg(dataset_path, epochs=1), DROPPY, tmp_path / "later")
    resume(tmp_path / "later", {"epochs": 2, "ema": 0.9})
    saved = torch.load(tmp_path / "later" / "last.pt", weights_only=True)
    assert saved["train_config"]["ema"] == 0.9 and saved["state"]["average_updates"] == 8
    resume(tmp_path / "later", {"epochs": 3, "ema": 0.0})  # the trained weights go on as before
    same_state(tmp_path / "straight" / "last.pt", tmp_path / "later" / "last.pt")


def as_version_1(path: Path) -> None:
    """Rewrite a checkpoint in the layout qdsketch 0.1 and 0.2 wrote: the
    training fields in ``extra``, the augmentation flat, epoch counting on."""
    p = torch.load(path, weights_only=True)
    flat = {k: v for k, v in p["train_config"].items() if k != "augment"}
    flat.update({f"augment_{k}": v for k, v in p["train_config"]["augment"].items()})
    extra = {"train_config": flat, "max_seq_len": p["max_seq_len"]}
    if p["state"] is not None:
        extra.update(p["state"])
    else:
        extra.update(epoch=p["epoch"], val=p["val"])
    old = {k: p[k] for k in ("format", "model_config", "model", "class_names", "mean", "std")}
    torch.save({**old, "version": 1, "extra": extra}, path)


def test_checkpoints_of_qdsketch_0_2_load_and_resume_bit_identical(dataset_path, tmp_path):
    augmented = cfg(dataset_path, epochs=2, augment=Augment(scale=0.15))
    train(augmented, DROPPY, tmp_path / "straight")
    train(replace(augmented, epochs=1), DROPPY, tmp_path / "old")
    new_best = load_checkpoint(tmp_path / "old" / "best.pt")
    for name in ("best.pt", "last.pt"):
        as_version_1(tmp_path / "old" / name)
    old_best = load_checkpoint(tmp_path / "old" / "best.pt")
    assert (old_best.epoch, old_best.val, old_best.train) == (new_best.epoch, new_best.val, new_best.train)
    assert old_best.train.augment == Augment(scale=0.15) and old_best.max_seq_len == 150
    resume(tmp_path / "old", {"epochs": 2})
    same_state(tmp_path / "straight" / "last.pt", tmp_path / "old" / "last.pt")


def test_a_checkpoint_older_than_0_2_is_refused_with_the_fix(tmp_path):
    model = SketchModel(preset("tiny", n_classes=2))
    save_checkpoint(
        tmp_path / "x.pt",
        checkpoint_of(model, ["a", "b"], mean=[0, 0], std=[1, 1], epoch=1),
    )
    p = torch.load(tmp_path / "x.pt", weights_only=True)
    keep = ("format", "model_config", "model", "class_names", "mean", "std")
    torch.save({**{k: p[k] for k in keep}, "version": 1, "extra": {"epoch": 1}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"x.pt was written by a qdsketch older than 0.2. Train it again"):
        load_checkpoint(tmp_path / "x.pt")


def test_run_directory_and_early_stopping(dataset_path, tmp_path):
    # lr so high that validation never improves after the first epoch
    s = train(cfg(dataset_path, epochs=20, lr=0.5, early_stop=2), TINY, tmp_path / "run")
    assert s["stopped_early"] and s["epochs"] < 20
    assert s["best_epoch"] == min(range(1, s["epochs"] + 1), key=lambda e: s["history"][e - 1]["val_total"])
    assert s["epochs"] == s["best_epoch"] + 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "best.pt",
        "config.json",
        "history.csv",
        "history.json",
        "last.pt",
    ]
    best = load_checkpoint(tmp_path / "run")  # a run directory means its best.pt
    assert best.epoch == s["best_epoch"] and best.state is None
    assert best.val == {k: s["history"][s["best_epoch"] - 1][f"val_{k}"] for k in ("total", "xy", "pen")}
    last = load_checkpoint(tmp_path / "run" / "last.pt")
    assert last.epoch == s["epochs"] and last.state["epoch"] == s["epochs"] + 1 and last.val == {}
    assert best.train == last.train == cfg(dataset_path, epochs=20, lr=0.5, early_stop=2)
    assert best.max_seq_len == 150
    assert best.class_names == ["cat", "clock", "house", "nail", "tent"]
    lines = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_total,train_xy,train_pen,val_total,val_xy,val_pen,lr,")
    assert len(lines) == s["epochs"] + 1


def test_plateau_schedule_halves_the_lr(dataset_path, tmp_path):
    # gradients clipped to norm 0 and no weight decay: the weights, so the validation loss, never change
    frozen = cfg(dataset_path, epochs=7, grad_clip=0.0, weight_decay=0.0, early_stop=20, batch_size=64)
    s = train(frozen, TINY, tmp_path / "run")
    assert len({row["val_total"] for row in s["history"]}) == 1
    # epoch 1 sets the best; after 4 epochs without improvement (patience 3) the lr halves
    assert [row["lr"] for row in s["history"]] == [1e-3] * 5 + [5e-4] * 2


def test_checkpoint_alone_is_enough_to_sample_from(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=1), TINY, tmp_path / "run")
    ck = load_checkpoint(tmp_path / "run" / "best.pt")
    from qdsketch.data.preprocess import load_dataset

    ds = load_dataset(dataset_path)
    assert ck.mean == pytest.approx(ds.mean.tolist()) and ck.std == pytest.approx(ds.std.tolist())
    assert ck.config.n_classes == 5 and not ck.model.training


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    model = SketchModel(preset("tiny", n_classes=2))
    save_checkpoint(
        tmp_path / "good.pt",
        checkpoint_of(model, ["cat", "dog"], mean=[0, 0], std=[1, 1]),
    )
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.pt is truncated or not a checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"state_dict": model.state_dict()}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"foreign.pt is not a qdsketch checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    assert load_checkpoint(tmp_path / "good.pt").class_names == ["cat", "dog"]


def two_processes(launcher: str, *args) -> list[str]:
    """``qdsketch train ARGS`` in two processes: started by torchrun, or by ``--processes 2``."""
    if launcher == "torchrun":
        torchrun = Path(sys.executable).with_name("torchrun")
        return [str(a) for a in [torchrun, "--standalone", "--nproc-per-node", 2, "-m", "qdsketch", "train", *args]]
    return [str(a) for a in [sys.executable, "-m", "qdsketch", "train", "--processes", 2, *args]]


@pytest.mark.parametrize("launcher", ["torchrun", "--processes"])
def test_ddp_refuses_a_split_with_fewer_batches_than_processes(dataset_path, tmp_path, launcher):
    """One batch, two processes: one of them would have nothing to train on and wait for the
    other forever in the first gradient exchange. Refused, with the fix, before any step;
    under --processes, said once, though both processes meet it."""
    args = ["--data", dataset_path, "--preset", "tiny", "--batch-size", 4096, "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = two_processes(launcher, *args, "--run-dir", tmp_path / "r")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 1
    said = (
        "Error: the training split makes 1 batch(es) of 4096, fewer than the 2 processes: none would train. "
        "Lower --batch-size, or start fewer processes"
    )
    assert said in proc.stderr.splitlines()
    assert not list((tmp_path / "r").glob("*.pt"))
    if launcher == "--processes":
        assert proc.stderr == said + "\n"


@pytest.mark.parametrize(
    "sharded, launcher", [(False, "torchrun"), (True, "--processes")], ids=["file-torchrun", "sharded-streamed"]
)
def test_ddp_with_two_cpu_processes(dataset_path, sharded_path, sharded, launcher, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        two_processes(
            launcher,
            "--data",
            str(sharded_path if sharded else dataset_path),
            *(["--stream", "always"] if sharded else []),
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--run-dir",
            str(tmp_path / "ddp"),
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + "\n---\n" + proc.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "ddp").iterdir())
    assert files == [
        "best.pt",
        "config.json",
        "history.csv",
        "history.json",
        "last.pt",
        "loss_pen.png",
        "loss_total.png",
        "loss_xy.png",
    ]
    assert proc.stdout.count("done after 1 epochs") == 1  # rank 0 alone prints
    history = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert len(history) == 1 and history[0]["epoch"] == 1


@pytest.mark.parametrize("code, said, rc", [(None, "", 0), (3, "", 3), ("Error: a message", "Error: a message\n", 1)])
def test_one_of_several_processes_leaves_without_the_interpreters_clean_up(code, said, rc):
    """``launch.leave``: what was printed is flushed, the exit code is SystemExit's, and the
    interpreter's clean-up (here an atexit handler; in training, gloo's threads) never runs."""
    script = (
        "import atexit, sys\n"
        "from qdsketch.launch import leave\n"
        "atexit.register(lambda: print('cleaned up'))\n"
        "print('trained', end='')\n"
        f"leave({code!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (rc, "trained", said)


# --- CLI ---------------------------------------------------------------------------------


def test_cli_train_resume_evaluate(run, dataset_path, tmp_path):
    rd = tmp_path / "run"
    common = ["--data", dataset_path, "--preset", "tiny", "--batch-size", 16, "--run-dir", rd]
    first = run("train", *common, "--epochs", 1)
    assert first.exit_code == 0, first.output
    assert first.output.startswith(
        f"run: {rd}\nmodel: 965 trainable parameters (n_classes=5, arch=lstm, embed_dim=8, hidden=8, "
    )
    assert "heads=" not in first.output  # the LSTM has none
    assert "mixtures" not in first.output  # the mse head has none
    assert first.output.splitlines()[-1].startswith("done after 1 epochs; best validation loss ")
    assert {"loss_total.png", "loss_xy.png", "loss_pen.png"} <= {p.name for p in rd.iterdir()}
    again = run("train", *common, "--epochs", 1)
    assert again.exit_code == 1
    assert again.output == f"Error: {rd} already holds a run. Pass --resume to continue it, or another --run-dir\n"
    same = run("train", "--run-dir", rd, "--resume", "--data", dataset_path)  # the run's own epochs: nothing left
    assert same.exit_code == 0 and len(json.loads((rd / "history.json").read_text())) == 1
    second = run("train", "--run-dir", rd, "--resume", "--epochs", 2, "--data", dataset_path)
    assert second.exit_code == 0, second.output
    assert "resuming at epoch 2, batch 0" in second.output
    assert len(json.loads((rd / "history.json").read_text())) == 2
    ev = run("evaluate", rd, "--json")
    report = json.loads(ev.output)
    assert set(report["classes"]) == {"cat", "clock", "house", "nail", "tent"}
    assert report["overall"]["drawings"] == 25 and report["split"] == "test"
    table = run("evaluate", rd / "last.pt", "--split", "val")
    assert (
        table.exit_code == 0 and "│ all " in table.output and "losses: xy, the squared error of dx, dy;" in table.output
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--data", "nope.npz"],
            "Error: no dataset file at nope.npz. Make one with `qdsketch preprocess` or pass --data",
        ),
        (["train", "--resume"], "Error: no run to resume in runs/. Pass the --run-dir of the run to continue"),
        (
            ["train", "--resume", "--run-dir", "r", "--lr", "0.1"],
            "Error: nothing to resume: no r/last.pt. Start it with `qdsketch train --run-dir r`",
        ),
        (
            ["evaluate", "nowhere"],
            "Error: no checkpoint at nowhere. Train one with `qdsketch train`, or pass --checkpoint",
        ),
    ],
)
def test_cli_errors(run, args, message, tmp_path):
    result = run(*args)
    assert result.exit_code in (1, 2)
    assert message in result.output and "Traceback" not in result.output


def test_cli_resume_without_last(run, tmp_path, dataset_path):
    result = run("train", "--run-dir", tmp_path / "r", "--resume", "--data", dataset_path)
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: nothing to resume: no {tmp_path / 'r' / 'last.pt'}. Start it with `qdsketch train --run-dir {tmp_path / 'r'}`\n"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cli_cuda_unavailable(run, dataset_path, tmp_path):
    result = run("train", "--data", dataset_path, "--device", "cuda", "--run-dir", tmp_path / "r")
    assert result.output == "Error: CUDA is not available on this machine. Use --device cpu (or auto)\n"
    assert not (tmp_path / "r").exists()


def test_cli_evaluate_on_another_dataset(run, dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=1), TINY, tmp_path / "run")

    from qdsketch.data.npz import save_npz
    from qdsketch.data.preprocess import build_dataset

    save_npz(build_dataset(DATA, ["cat", "tent"]), tmp_path / "two.npz")
    result = run("evaluate", tmp_path / "run", "--data", tmp_path / "two.npz")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path / 'two.npz'} holds classes ['cat', 'tent'], the checkpoint [")


def test_the_default_preset_is_the_recipe_that_ships(run, dataset_path, tmp_path):
    from qdsketch.checkpoint import load_checkpoint as load
    from qdsketch.model import count_parameters

    shipped = load(None)  # src/qdsketch/assets/default.pt
    assert shipped.config == preset("mixture")
    assert count_parameters(SketchModel(preset("mixture"))) == 2_029_115
    result = run("train", "--data", dataset_path, "--max-steps", 1, "--run-dir", "r")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"] == preset("mixture").to_dict()
    assert config["train"]["epochs"] == 75 and config["train"]["augment"]["scale"] == 0.15
    mine = run("train", "--data", dataset_path, "--max-steps", 1, "--augment-scale", 0, "--epochs", 3, "--run-dir", "m")
    assert mine.exit_code == 0, mine.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["train"]["epochs"] == 3 and config["train"]["augment"]["scale"] == 0  # what the user says wins


def test_a_loss_that_becomes_nan_stops_training_and_keeps_the_last_good_state(dataset_path, tmp_path):
    """A last.pt whose optimizer state went bad (NaN moments): the first step makes the
    weights NaN, the epoch's loss is NaN, and training stops with the fix, saving nothing."""
    train(cfg(dataset_path, epochs=1), TINY, tmp_path / "run")
    last = tmp_path / "run" / "last.pt"
    payload = torch.load(last, weights_only=True)
    for moments in payload["state"]["optimizer"]["state"].values():
        moments["exp_avg"].fill_(float("nan"))
    torch.save(payload, last)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(
        QdsketchError,
        match=r"training diverged: the loss became nan in epoch 2. Lower --lr \(it is 0.001\) or the loss weights; last.pt and best.pt keep epoch 1",
    ):
        resume(tmp_path / "run", {"epochs": 2})
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.name != "config.json"}
    assert after == {k: v for k, v in before.items() if k != "config.json"}


@pytest.mark.parametrize(
    "field, value, why",
    [
        ("head", "transformer", "unknown head 'transformer'"),
        ("hidden", -1, "hidden -1 is out of range"),
        ("layers", 100000, "layers 100000 is out of range"),
        ("max_seq_len", 10**9, "max_seq_len 1000000000"),
        ("max_seq_len", "150", "max_seq_len '150'"),
        ("class_names", ["cat"], "5 classes, but class names ['cat']"),
        ("std", [0.0, 1.0], "its normalisation is not finite"),
        ("weights", float("nan"), "some weights are not finite"),
    ],
)
def test_crafted_checkpoints_are_refused_in_one_line(run, tmp_path, field, value, why):
    from qdsketch.paths import bundled_model

    payload = torch.load(bundled_model(), weights_only=True)
    if field in ("head", "hidden", "layers"):
        payload["model_config"][field] = value
    elif field == "weights":
        next(iter(payload["model"].values())).fill_(value)
    else:
        payload[field] = value
    torch.save(payload, tmp_path / "x.pt")
    result = run("sample", "cat", "--checkpoint", tmp_path / "x.pt", "-o", "x.png")
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'x.pt'} is not a checkpoint qdsketch can use ({why}). Train again\n"
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("device", ["meta", "cpu:9", "cuda:x", "gpu"])
def test_unknown_devices_are_named_not_blamed_on_the_model(run, device):
    result = run("sample", "cat", "--device", device, "-o", "x.png")
    assert result.exit_code == 1
    assert result.output == f"Error: unknown device {device!r}. Use auto, cpu, cuda, cuda:N or mps\n"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; kill, or a closing session
def test_two_runs_on_one_run_dir_are_refused_and_a_stale_lock_is_taken_over(run, dataset_path, tmp_path, stop):
    rd = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "qdsketch",
        "train",
        "--data",
        str(dataset_path),
        "--preset",
        "tiny",
        "--epochs",
        "100000",
        "--early-stop",
        "100000",
        "--batch-size",
        "16",
        "--run-dir",
        str(rd),
        "-q",
    ]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not (rd / "history.json").exists() and time.time() < deadline:  # it is under way
            time.sleep(0.05)
        second = run("train", "--run-dir", rd, "--resume", "--epochs", 100001)
        assert second.exit_code == 1
        assert second.output == (
            f"Error: {rd} is in use by another qdsketch train (pid {first.pid}). "
            "Wait for it to end, or use another folder\n"
        )
    finally:
        first.send_signal(stop)  # it saves last.pt and leaves
        first.wait(timeout=60)
    assert first.returncode == 130 and not (rd / ".lock").exists()
    assert torch.load(rd / "last.pt", weights_only=True)["state"]["steps"] > 0  # saved where it stopped
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (rd / ".lock").write_text(gone.stdout)  # a lock left by a process that no longer exists
    again = run("train", "--run-dir", rd, "--resume", "--epochs", 3)
    assert again.exit_code == 0, again.output
    assert not (rd / ".lock").exists()


def test_the_command_that_started_a_run_continues_it_with_resume(run, tmp_path):
    """The same options again are accepted, a changed one is refused with both values, nothing
    of the run changes then, and --resume alone takes the latest run in runs/."""
    from qdsketch.data.npz import save_npz
    from qdsketch.data.preprocess import build_dataset

    save_npz(build_dataset(DATA, ["cat", "tent"], max_per_class=20), tmp_path / "ds.npz")
    first = ["train", "--data", "ds.npz", "--preset", "tiny", "--batch-size", "8", "--augment-scale", "0.1"]
    assert run(*first, "--epochs", "1", "--run-dir", "runs/a", "-q").exit_code == 0
    again = run(*first, "--epochs", "2", "--run-dir", "runs/a", "--resume", "--json")
    assert again.exit_code == 0, again.output
    epochs, summary = train_json(again.output)
    assert summary["epochs"] == 2 and [row["epoch"] for row in epochs] == [2]  # the one epoch it trained now
    before = (tmp_path / "runs/a/last.pt").read_bytes()
    changed = run(*first, "--epochs", "3", "--batch-size", "16", "--hidden", "9", "--run-dir", "runs/a", "--resume")
    assert changed.exit_code == 1
    assert changed.output == (
        "Error: runs/a was trained with other settings: --batch-size 16 (the run has 8), --hidden 9 (the run has 8). "
        "Drop --batch-size, --hidden to continue it as it was, or start a new run with another --run-dir "
        "(only --epochs, --device, --data, --save-every and --ema may change on --resume)\n"
    )
    other_preset = run("train", "--preset", "seed", "--run-dir", "runs/a", "--resume", "--epochs", "3")
    assert other_preset.exit_code == 1 and "--hidden 512 (the run has 8)" in other_preset.output
    assert (tmp_path / "runs/a/last.pt").read_bytes() == before
    time.sleep(0.01)
    assert (
        run("train", "--data", "ds.npz", "--preset", "tiny", "--epochs", "1", "--run-dir", "runs/b", "-q").exit_code
        == 0
    )
    latest = run("train", "--resume", "--epochs", "2", "--json")
    assert latest.exit_code == 0, latest.output
    assert json.loads((tmp_path / "runs/b/history.json").read_text())[-1]["epoch"] == 2
    assert len(json.loads((tmp_path / "runs/a/history.json").read_text())) == 2


def test_the_run_dir_is_locked_before_anything_is_read(run, tmp_path):
    """A second train on a folder in use is refused before it reads anything, its dataset
    included (it used to load the dataset first and take the lock after, so a finished run
    could be overwritten); a folder it made for nothing is gone again."""
    rd = tmp_path / "busy"
    rd.mkdir()
    (rd / ".lock").write_text(str(os.getpid()))  # a live process holds it: this one
    for args in (["--data", tmp_path / "none.npz"], ["--resume"]):
        result = run("train", "--preset", "tiny", "--run-dir", rd, *args)
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: {rd} is in use by another qdsketch train (pid {os.getpid()})")
    assert [p.name for p in rd.iterdir()] == [".lock"] and (rd / ".lock").read_text() == str(os.getpid())
    refused = run("train", "--data", tmp_path / "none.npz", "--run-dir", tmp_path / "new")
    assert refused.exit_code == 1 and "no dataset file at" in refused.output
    assert not (tmp_path / "new").exists()


def _other_size_optimizer(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=1), preset("tiny", hidden=16), tmp_path / "other")
    return torch.load(tmp_path / "other" / "last.pt", weights_only=True)["state"]["optimizer"]


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda state, other: state.update(optimizer=other), "ValueError: its optimizer state is for a model of"),
        (lambda state, other: state.update(epoch="2"), "ValueError: epoch is '2', not a count"),
        (lambda state, other: state.clear(), "KeyError"),
        (lambda state, other: state.update(partial=[1, 2]), "AttributeError"),
        (lambda state, other: state.update(history=None), "ValueError: the early-stopping state or the history"),
    ],
)
def test_resume_from_a_state_that_does_not_fit_is_one_line(run, dataset_path, tmp_path, change, why):
    rd = tmp_path / "run"
    train(cfg(dataset_path, epochs=1), TINY, rd)
    payload = torch.load(rd / "last.pt", weights_only=True)
    change(payload["state"], _other_size_optimizer(dataset_path, tmp_path))
    torch.save(payload, rd / "last.pt")
    before = (rd / "last.pt").read_bytes()
    result = run("train", "--run-dir", rd, "--resume", "--epochs", 2)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: {rd / 'last.pt'} holds a training state that does not fit its run ({why}")
    assert result.output.endswith(
        "Resume from the last.pt that training wrote, or start a new run with another --run-dir\n"
    )
    assert (rd / "last.pt").read_bytes() == before and len(result.output.splitlines()) == 1


def test_torchrun_killed_with_9_leaves_no_trainer_running(dataset_path, tmp_path):
    """Its trainers get SIGTERM when the launcher is gone (signals.die_with_parent), which
    stops them as Ctrl-C does, instead of training on as orphans in the run directory."""
    rd = tmp_path / "ddp"
    launcher = _endless_run_under_torchrun(dataset_path, rd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trainers = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline") if _trains_in(p, rd)]
    launcher.kill()
    assert len(trainers) == 2
    launcher.wait()
    deadline = time.time() + 60
    while any(_running(pid) for pid in trainers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in trainers)
    assert not (rd / ".lock").exists()  # they let go of the run directory on their way out


@pytest.mark.parametrize("launcher", ["torchrun", "--processes"])
def test_ctrl_c_under_torchrun_stops_every_trainer_in_one_message_and_keeps_a_resumable_run(
    dataset_path, tmp_path, launcher
):
    """A terminal's Ctrl-C (SIGINT to the whole process group): the trainers agree on the stop,
    say so once and where to resume, and leave no process and no lock. (torchrun's own agent
    then prints its SignalException: the launcher's code, not qdsketch's. Under --processes,
    the same launcher stays quiet, and the command exits 130.)"""
    rd = tmp_path / "ddp"
    process = _endless_run_under_torchrun(
        dataset_path, rd, launcher, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    if launcher == "--processes":
        assert process.returncode == 130
        assert "Traceback" not in output.decode() and "signal" not in output.decode(), output
    said = [line for line in output.decode().splitlines() if line.startswith("interrupted at epoch")]
    assert len(said) == 1 and "(with several processes, a stop within an epoch is not saved)" in said[0], output
    assert f"resume with: qdsketch train --run-dir {rd} --resume" in output.decode()
    assert not any(_trains_in(p, rd) for p in Path("/proc").glob("[0-9]*/cmdline"))
    assert not (rd / ".lock").exists()
    last = load_checkpoint(rd / "last.pt")
    assert last.state["batch"] == 0 and last.state["epoch"] == last.epoch + 1 >= 2  # a whole epoch


def _endless_run_under_torchrun(dataset_path, run_dir: Path, launcher="torchrun", **popen) -> subprocess.Popen:
    """torchrun (or ``--processes``) with two CPU trainers of a run that never ends by itself,
    returned once both are training (its first epoch is in ``history.json``)."""
    args = ["--data", dataset_path, "--preset", "tiny", "--epochs", 100000, "--early-stop", 100000]
    args += ["--batch-size", 16, "--device", "cpu", "--run-dir", run_dir]
    cmd = two_processes(launcher, *args)
    process = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, **popen)
    deadline = time.time() + 120
    while not (run_dir / "history.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    return process


def _trains_in(cmdline: Path, run_dir: Path) -> bool:
    try:
        words = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    launcher = any(word.endswith(b"/torchrun") for word in words)
    return b"train" in words and str(run_dir).encode() in words and not launcher


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


FIX = "Unset WORLD_SIZE and RANK to train in one process, or start them all with torchrun --nproc-per-node N\n"


@pytest.mark.parametrize(
    "env, error",
    [
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not a process count"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' is not a process count"),
        ({"RANK": "-1", "WORLD_SIZE": "2"}, "RANK='-1' is not a process count"),
        ({"RANK": "3", "WORLD_SIZE": "2"}, "RANK=3 is not below WORLD_SIZE=2"),
        ({"RANK": "0", "WORLD_SIZE": "2"}, "WORLD_SIZE=2 asks for 2 processes, but MASTER_ADDR and MASTER_PORT do not"),
    ],
)
def test_process_counts_that_make_no_group_are_one_line(run, tmp_path, monkeypatch, dataset_path, env, error):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run("train", "--data", dataset_path, "--preset", "tiny")
    assert result.exit_code == 1 and result.output.startswith(f"Error: {error}"), result.output
    assert result.output.endswith(FIX) and len(result.output.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # not even runs/


@pytest.mark.parametrize("rank", [0, 1])
def test_a_process_whose_peers_never_come_stops_after_the_rendezvous_timeout(run, tmp_path, monkeypatch, rank):
    """RANK and WORLD_SIZE without the other processes: one line after the timeout
    ($QDSKETCH_RENDEZVOUS_TIMEOUT, here 1 s), where torch alone waits 30 minutes."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"RANK": rank, "WORLD_SIZE": 2, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    for name, value in {**env, "QDSKETCH_RENDEZVOUS_TIMEOUT": 1}.items():
        monkeypatch.setenv(name, str(value))
    started = time.monotonic()
    result = run("train", "--data", tmp_path / "never-read.npz", "--preset", "tiny", "--run-dir", "r")
    assert time.monotonic() - started < 30
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        f"Error: the 2 processes of this run did not all meet at 127.0.0.1:{port} within 1 s (this is rank {rank}: "
    )
    assert result.output.endswith(FIX) and len(result.output.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_train_json_is_a_json_line_per_epoch_then_the_summary(run, dataset_path, tmp_path):
    result = run("train", "--data", dataset_path, "--preset", "tiny", "--epochs", 2, "--run-dir", "r", "--json")
    assert result.exit_code == 0, result.output
    epochs, summary = train_json(result.output)
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [{k: v for k, v in row.items() if k != "event"} for row in epochs] == history
    assert summary["epochs"] == 2 and summary["run_dir"] == "r" and summary["history"] == history


def test_the_estimate_of_a_whole_run_counts_every_batch_left_and_validation():
    from qdsketch.reporting import RunSpeed, estimate_lines

    speed = RunSpeed(epochs=75, val_share=0.2)
    assert speed.batch(1, 1, 100, now=0.0) is None  # the first batch pays for warming up: not counted
    assert speed.batch(1, 5, 100, now=4.9) is None  # too soon to say
    # 0.6 s a batch from batch 1 to 11; 89 batches left in epoch 1, then 74 epochs of 100, and
    # 75 validation passes over a fifth as many drawings at a third of the cost
    assert speed.batch(1, 11, 100, now=6.0) == pytest.approx(0.6 * (89 + 7400 + 75 * 100 * 0.2 / 3))
    assert speed.batch(2, 50, 100, now=90.0) is None  # said once
    again = RunSpeed(epochs=3)
    # an epoch of 8 batches per call (a tiny run is heard once an epoch): epoch 2 took 6 s
    assert again.batch(1, 8, 8, now=0.0) is None and again.batch(2, 8, 8, now=6.0) == pytest.approx(6.0)
    assert again.end == "the end of epoch 3"
    # --max-steps 300 on epochs of 133 batches: 0.1 s a batch from step 20 to 70; 230 steps left,
    # and the validations of epochs 1, 2 and 3 (the last at step 300), a tenth as large, at a third
    capped = RunSpeed(epochs=40, val_share=0.1, max_steps=300)
    assert capped.batch(1, 20, 133, now=0.0) is None
    assert capped.batch(1, 70, 133, now=5.0) == pytest.approx(0.1 * (230 + 133 * 3 * 0.1 / 3))
    assert capped.end == "step 300 (--max-steps)"
    assert estimate_lines(4793.4, "the end of epoch 75", "cuda") == [
        "estimate: about 80 min to the end of epoch 75 at this speed, validation included "
        "(early stopping may end it sooner)"
    ]
    cpu = estimate_lines(4793.4, "the end of epoch 75", "cpu")
    assert len(cpu) == 2 and cpu[1].startswith("that is long for a CPU: --preset small trains in minutes")
    assert estimate_lines(59 * 60, "the end of epoch 3", "cpu")[0].startswith(
        "estimate: about 59 min to the end of epoch 3 "
    )


def test_train_says_how_long_the_run_will_take(run, dataset_path, monkeypatch):
    from qdsketch.reporting import RunSpeed

    monkeypatch.setattr(RunSpeed, "AFTER_SECONDS", 0.0)  # at once: a tiny run is over in seconds
    args = ["--preset", "tiny", "--epochs", 3, "--batch-size", 16, "--run-dir", "r"]  # 8 batches an epoch
    result = run("train", "--data", dataset_path, *args)
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if line.startswith("estimate: about ")]
    assert len(said) == 1 and " to the end of epoch 3 at this speed" in said[0], result.output


def test_warmup_steps_at_a_share_of_the_rate_and_puts_the_rate_back():
    assert [warmup_scale(step, 4) for step in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_scale(0, 0) == warmup_scale(0, 1) == 1.0  # off, and a warm-up of one step is none
    weight = torch.zeros(3, requires_grad=True)
    weight.grad = torch.tensor([1.0, -2.0, 3.0])
    opt = torch.optim.AdamW([weight], lr=0.1, weight_decay=0.0)
    with warmed_up(opt, 0.25):
        opt.step()
    # AdamW's first step moves every weight by its rate, whatever the gradient's size
    assert torch.allclose(weight.detach(), torch.tensor([-0.025, 0.025, -0.025]), atol=1e-7)
    assert opt.param_groups[0]["lr"] == 0.1


def test_warmup_changes_the_first_steps_only_and_keeps_the_rate_of_the_recipe(dataset_path, tmp_path):
    for name, warmup in [("off", 0), ("one", 1), ("eight", 8)]:
        train(cfg(dataset_path, epochs=1, warmup=warmup), DROPPY, tmp_path / name)
    off, one, eight = (load_checkpoint(tmp_path / n / "last.pt") for n in ("off", "one", "eight"))
    for key, weight in off.model.state_dict().items():
        assert torch.equal(one.model.state_dict()[key], weight), key  # one step of warm-up is none
    assert any(not torch.equal(eight.model.state_dict()[k], w) for k, w in off.model.state_dict().items())
    assert eight.state["history"][0]["lr"] == off.state["history"][0]["lr"] == 1e-3
    assert eight.train.warmup == 8  # a run's own setting: --resume keeps it


# --- --init-from: a new run from a checkpoint's weights ------------------------------------


def test_init_from_starts_from_the_weights_and_counts_their_steps_and_hours(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=1, ema=0.9), DROPPY, tmp_path / "first")
    first = load_checkpoint(tmp_path / "first" / "last.pt")
    # a small model with other settings than the first's: --init-from's model wins
    summary = train(
        cfg(dataset_path, epochs=1, ema=0.9, init_from=str(tmp_path / "first" / "last.pt")),
        TINY,
        tmp_path / "next",
        should_stop=lambda: True,  # saved before its first step: the weights it starts from
    )
    assert summary["interrupted"] and summary["batch"] == 0
    start = load_checkpoint(tmp_path / "next" / "last.pt")
    assert start.config == first.config
    for name, weight in first.model.state_dict().items():  # the average's weights, which first saved
        assert torch.equal(start.model.state_dict()[name], weight), name
    assert start.trained["steps"] == first.trained["steps"] == 8
    assert start.trained["cpu_hours"] >= first.trained["cpu_hours"] > 0
    # the average goes on at its full decay from there: those are no random weights to fade out
    assert start.state["average_updates"] == 8 and start.state["steps_before"] == 8
    resume(tmp_path / "next")  # its one epoch: 8 steps more, counted from the first run's
    assert load_checkpoint(tmp_path / "next" / "last.pt").trained["steps"] == 16


def test_init_from_keeps_the_normalisation_its_weights_were_trained_with(dataset_path, tmp_path):
    train(cfg(dataset_path, epochs=1), TINY, tmp_path / "first")
    first = load_checkpoint(tmp_path / "first" / "best.pt")
    scaled = replace(first, mean=[0.5, -0.25], std=[2.0, 3.0])
    save_checkpoint(tmp_path / "scaled.pt", scaled)
    train(cfg(dataset_path, epochs=1, init_from=str(tmp_path / "scaled.pt")), TINY, tmp_path / "next")
    for name in ("best.pt", "last.pt"):
        saved = load_checkpoint(tmp_path / "next" / name)
        assert (saved.mean, saved.std) == ([0.5, -0.25], [2.0, 3.0]), name
    resume(tmp_path / "next", {"epochs": 2})  # and a resumed run keeps its own, not the dataset's
    assert load_checkpoint(tmp_path / "next" / "last.pt").mean == [0.5, -0.25]


def test_init_from_a_shipped_model_by_name(run, tmp_path):
    from qdsketch.data.npz import save_npz
    from qdsketch.data.preprocess import build_dataset
    from qdsketch.shipped import shipped_models

    five = shipped_models()[0]
    save_npz(build_dataset(DATA, list(five.classes)), tmp_path / "five.npz")
    result = run("train", "--data", "five.npz", "--init-from", "five", "--max-steps", 1, "--run-dir", "r", "-q")
    assert result.exit_code == 0, result.output
    trained = load_checkpoint(tmp_path / "r" / "last.pt")
    shipped = load_checkpoint(five.path)
    assert trained.config == shipped.config and trained.class_names == shipped.class_names
    assert trained.trained["steps"] == shipped.trained.get("steps", 0) + 1  # its own count, where it kept one
    assert trained.train.init_from == "five"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--init-from", "nowhere"],
            "Error: --init-from nowhere: no checkpoint or run directory there, and no shipped model of that name. "
            "Give a best.pt, last.pt or run directory, or one of five, all\n",
        ),
        (
            ["--init-from", "five"],  # the dataset holds the five classes, in another order
            "Error: --init-from five knows 5 classes, and {data} holds 5 others (or in another order). "
            "Start from a model of the dataset's classes, or preprocess its classes with --classes\n",
        ),
        (
            ["--init-from", "five", "--preset", "tiny", "--hidden", "64"],
            "Error: --init-from five brings its own model, so --preset, --hidden cannot change it. "
            "Drop --preset, --hidden, or train a new model without --init-from\n",
        ),
    ],
)
def test_init_from_errors_are_one_line(run, dataset_path, tmp_path, args, message):
    result = run("train", "--data", dataset_path, "--run-dir", "r", *args)
    assert result.exit_code == 1
    assert result.output == message.format(data=dataset_path)
    assert not (tmp_path / "r").exists()
