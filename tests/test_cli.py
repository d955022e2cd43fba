"""The command line, through click's CliRunner, and as a real process."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import click
import pytest
from click.testing import CliRunner
from helpers import DATA, needs_shared, train_json

from qdsketch.checkpoint import load_checkpoint
from qdsketch.cli import cli
from qdsketch.config import opt

COMMANDS = sorted(cli.commands)


def test_help_for_every_command(run):
    top = run("--help")
    assert top.exit_code == 0
    for name in COMMANDS:
        assert name in top.output
        for flag in ("--help", "-h"):
            result = run(name, flag)
            assert result.exit_code == 0
            assert "Example:" in result.output and f"qdsketch {name}" in result.output


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from qdsketch.cli import cli\n"
        "try: cli(['--help'], prog_name='qdsketch')\n"
        "except SystemExit: pass\n"
        "heavy = {'torch', 'matplotlib', 'imageio', 'numpy', 'rich', 'http.server', 'qdsketch.server'} & set(sys.modules)\n"
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_python_dash_m():
    proc = subprocess.run([sys.executable, "-m", "qdsketch", "--version"], capture_output=True, text=True)
    import torch

    from qdsketch import __version__

    assert proc.returncode == 0, proc.stderr
    name, devices = proc.stdout.splitlines()
    assert name == f"qdsketch, version {__version__}"
    assert devices.startswith(f"torch {torch.__version__}; devices: cpu")  # and any GPU it sees


@pytest.mark.parametrize(
    "args, message",
    [
        (["download", "--classes", "catt"], "Error: unknown class 'catt'. Did you mean 'cat', 'castle', 'carrot'?"),
        (["download", "--classes", ","], "Error: no class names given. Pass --classes cat,clock"),
        (
            ["download", "--base-url", "ftp://x/", "--classes", "cat"],
            "Error: base URL 'ftp://x/' is not http(s). Pass --base-url http://host/path/",
        ),
        (
            ["preprocess", "--split", "1,2"],
            "Error: bad split '1,2'. Give three non-negative weights, e.g. --split 70,15,15",
        ),
        (
            ["preprocess", "--classes", "eiffel tower"],
            "Error: unknown class 'eiffel tower'. Did you mean 'The Eiffel Tower', 'flower', 'feather'?",
        ),
    ],
)
def test_bad_input_is_one_line(run, args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert result.output == message + "\n"


def test_download_needs_classes(run):
    result = run("download")
    assert result.exit_code == 2 and "Error: pass --classes NAMES (or --from PATH to import files)" in result.output


def test_preprocess_without_data(run, tmp_path):
    result = run("preprocess", "--data-dir", str(tmp_path / "none"), "-o", str(tmp_path / "d.npz"))
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: no drawings in {tmp_path / 'none'}/. Run `qdsketch download --classes cat,clock` or pass --data-dir\n"
    )
    result = run("preprocess", "--data-dir", str(tmp_path), "--classes", "cat", "-o", str(tmp_path / "d.npz"))
    assert result.output == f"Error: no data for 'cat' in {tmp_path}/. Run `qdsketch download --classes cat`\n"
    assert not (tmp_path / "d.npz").exists()


def test_list_classes(run):
    result = run("download", "--list-classes")
    names = result.output.splitlines()
    assert len(names) == 345 and "The Eiffel Tower" in names and "hot air balloon" in names


def test_preprocess_summary(run, data_copy, tmp_path):
    out = tmp_path / "ds.npz"
    result = run("preprocess", "--data-dir", str(data_copy), "--classes", "cat,clock,house,nail,tent", "-o", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "│ cat   │    16 │   3 │    4 │    23 │" in lines
    assert "│ all   │   120 │  26 │   25 │   171 │" in lines
    assert "length: mean 31.1, max 85 (max_seq_len 150, 0 truncated)" in lines
    assert "dx(mean=1.841, std=38.841), dy(mean=1.451, std=41.952)" in lines
    assert "skipped: 18 unrecognized, 118 duplicates, 0 bad" in lines
    assert lines[-1] == f"wrote {out}"
    js = run("preprocess", "--data-dir", str(data_copy), "-o", str(out), "--json")
    summary = json.loads(js.output)
    assert summary["total"] == {"train": 156, "val": 34, "test": 31}  # all seven shipped classes
    assert summary["output"] == str(out)


def test_download_from_then_preprocess_like_the_demo(run, tmp_path):
    from helpers import DATA

    a = run("download", "--from", str(DATA), "--data-dir", str(tmp_path), "-q")
    assert a.exit_code == 0 and a.output == ""
    b = run("preprocess", "--data-dir", str(tmp_path), "-o", str(tmp_path / "ds.npz"), "--json")
    assert json.loads(b.output)["classes"]["The Eiffel Tower"] == {"train": 18, "val": 4, "test": 3}


@needs_shared
def test_the_shared_data_command_includes_bulk(run, tmp_path):
    """`make data`: scripts/shared_data.sh, then preprocess, on every real drawing of the five classes."""
    from helpers import SHARED

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        ["bash", str(root / "scripts" / "shared_data.sh"), str(SHARED), str(tmp_path / "d")],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "d" / "dataset.npz"
    r = run(
        "preprocess",
        "--data-dir",
        str(tmp_path / "d"),
        "--classes",
        "cat,clock,tent,house,nail",
        "-o",
        str(out),
        "--json",
    )
    assert r.exit_code == 0, r.output
    totals = {name: sum(c.values()) for name, c in json.loads(r.output)["classes"].items()}
    # bulk/ brings about 4,900 a class (without it clock, tent, house and nail have about 70); samples/ is left out
    assert totals == {"cat": 4757, "clock": 4927, "tent": 4938, "house": 4934, "nail": 4926}


@pytest.mark.parametrize(
    "args, option, value",
    [
        (["sample", "cat", "-o", "x.png", "--temperature", "nan"], "--temperature", "nan"),
        (["animate", "cat", "-o", "x.gif", "--pen-temperature", "inf"], "--pen-temperature", "inf"),
        (["train", "--lr", "inf"], "--lr", "inf"),
        (["train", "--xy-weight", "nan"], "--xy-weight", "nan"),
        (["evaluate", "runs/x", "--judge", "--temperature", "inf"], "--temperature", "inf"),
    ],
)
def test_float_options_refuse_nan_and_inf(run, args, option, value, tmp_path):
    result = run(*args)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: Invalid value for '{option}': '{value}' is not a finite number."
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_preprocess_never_writes_over_its_input(run, data_copy):
    cat = data_copy / "simplified" / "cat.ndjson"
    before = cat.read_bytes()
    result = run("preprocess", "--data-dir", str(data_copy), "-o", str(cat))
    assert result.exit_code == 1
    assert result.output == f"Error: {cat} is one of the input files: pass another --output\n"
    assert cat.read_bytes() == before


@pytest.mark.parametrize(
    "args",
    [
        ["sample", "cat", "--seed", "-5", "-o", "x.png"],
        ["animate", "cat", "--seed", "-1", "-o", "x.gif"],
        ["preprocess", "--seed", "-1"],
        ["train", "--seed", "-3"],
        ["evaluate", "runs/x", "--judge", "--seed", "-2"],
        ["sample", "cat", "--seed", str(10**30), "-o", "x.png"],
    ],
)
def test_one_seed_range_everywhere(run, args, tmp_path):
    result = run(*args)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].startswith("Error: Invalid value for '--seed': ")
    assert result.output.splitlines()[-1].endswith("is not in the range 0<=x<=9223372036854775807.")
    assert list(tmp_path.iterdir()) == []


def test_hold_is_bounded_by_what_a_gif_can_hold(run, tmp_path):
    result = run("animate", "cat", "--hold", 700, "-o", "x.gif")
    assert result.exit_code == 2 and "700.0 is not in the range 0<=x<=600" in result.output.splitlines()[-1]
    ok = run("animate", "cat", "--hold", 600, "--seed", 1, "-o", "x.gif")
    assert ok.exit_code == 0, ok.output


def test_a_chunk_of_only_bad_drawings_is_skipped_not_a_crash(run, tmp_path):
    """4,096 drawings with a value out of range, then good ones: the chunk comes back empty."""
    good = (DATA / "simplified" / "cat.ndjson").read_bytes()
    bad = b'{"word":"cat","drawing":[[[-5,2],[1,2]]]}\n' * 4096
    (tmp_path / "d" / "simplified").mkdir(parents=True)
    (tmp_path / "d" / "simplified" / "cat.ndjson").write_bytes(bad + good)
    result = run("preprocess", "--data-dir", tmp_path / "d", "-o", "x.npz", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    # the 23 recognized cats of the 25 real ones, every bad line counted
    assert sum(summary["classes"]["cat"].values()) == 23 and summary["skipped"]["unrecognized"] == 2
    assert summary["skipped"]["bad"] == {"out-of-range value": 4096}
    (tmp_path / "d" / "simplified" / "cat.ndjson").write_bytes(bad[:45])
    only_bad = run("preprocess", "--data-dir", tmp_path / "d", "-o", "y.npz")
    assert only_bad.exit_code == 1
    assert only_bad.output.startswith("Error: no usable drawing for 'cat' in ")


@pytest.mark.parametrize("options", [["--split", "100,0,0"], ["--max-per-class", "1"]])
def test_a_dataset_without_validation_drawings_is_refused_by_train(run, options, tmp_path):
    made = run("preprocess", "--data-dir", DATA, "--classes", "cat,clock", *options, "-o", "s.npz")
    assert made.exit_code == 0, made.output
    result = run("train", "--data", "s.npz", "--preset", "tiny", "--run-dir", "r")
    assert result.exit_code == 1
    assert result.output == (
        "Error: s.npz has no validation drawings. Preprocess with a --split that keeps some of each, "
        "e.g. 70,15,15, and enough drawings a class\n"
    )
    assert not (tmp_path / "r").exists()


def test_nothing_is_ignored_in_silence(run, dataset_path, tmp_path):
    both = run("animate", "cat", "--drawing", DATA / "simplified" / "house.ndjson", "-o", "x.gif")
    assert both.exit_code == 2 and both.output.splitlines()[-1] == (
        f"Error: --drawing animates the one in {DATA / 'simplified' / 'house.ndjson'}: drop 'cat', or drop --drawing"
    )
    amp = run("train", "--data", dataset_path, "--preset", "tiny", "--epochs", 1, "--amp", "--device", "cpu")
    assert amp.exit_code == 0 and "note: --amp does nothing on cpu: bf16 autocast runs on CUDA only" in amp.output
    one = run("sample", "cat", "-n", 1, "--seed", 3, "-o", "one.png")
    assert one.output.startswith("wrote one.png: 1 sketch (cat), seed 3")


def test_sketches_marked_unrecognized_name_the_option_that_keeps_them(run, tmp_path):
    made = run("sample", "cat", "-n", 3, "--seed", 1, "-o", tmp_path / "d" / "simplified" / "cat.ndjson")
    assert made.exit_code == 0, made.output
    result = run("preprocess", "--data-dir", tmp_path / "d", "-o", "x.npz")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: every drawing of 'cat' in {tmp_path / 'd' / 'simplified' / 'cat.ndjson'} is marked unrecognized (3). "
        "Pass --all-drawings to keep them\n"
    )
    assert run("preprocess", "--data-dir", tmp_path / "d", "-o", "x.npz", "--all-drawings").exit_code == 0


def test_every_command_that_reports_takes_json_and_quiet(run, mirror, data_copy, dataset_path, tmp_path):
    """`--json`: JSON on stdout and nothing else; `-q`: nothing at all."""
    commands = {
        "download": ["download", "--classes", "cat", "--base-url", mirror.url, "--max-per-class", 3, "--force"],
        "preprocess": ["preprocess", "--data-dir", data_copy, "--classes", "cat,clock", "-o", "p.npz"],
        "train": ["train", "--data", dataset_path, "--preset", "tiny", "--max-steps", 1],
        "evaluate": ["evaluate", "--data", dataset_path],
        "sample": ["sample", "cat", "-n", 2, "--seed", 1, "-o", "s.png"],
        "animate": ["animate", "cat", "--seed", 1, "-o", "a.gif"],
        "info": ["info"],
    }
    for name, args in commands.items():
        extra = ["--run-dir", f"{name}-json"] if name == "train" else []
        if name == "evaluate":
            args = [args[0], tmp_path / "train-json", *args[1:]]
        result = run(*args, *extra, "--json")
        assert result.exit_code == 0, (name, result.output)
        data = train_json(result.output)[1] if name == "train" else json.loads(result.output)
        assert data, name
        extra = ["--run-dir", f"{name}-quiet"] if name == "train" else []
        quiet = run(*args, *extra, "-q")
        assert quiet.exit_code == 0 and quiet.output == "", (name, quiet.output)
    assert json.loads(run(*commands["sample"], "--json").output)["seed"] == 1


def test_evaluate_takes_the_model_as_sample_does(run, dataset_path, tmp_path):
    """Positional, or --checkpoint as in sample and animate, or neither: the model that ships."""
    from qdsketch.config import preset
    from qdsketch.train import TrainConfig, train

    train(TrainConfig(data=str(dataset_path), epochs=1, batch_size=16), preset("tiny"), tmp_path / "r")
    a = json.loads(run("evaluate", tmp_path / "r", "--json").output)
    b = json.loads(run("evaluate", "--checkpoint", tmp_path / "r", "--json").output)
    assert a == b and a["checkpoint"] == str(tmp_path / "r" / "best.pt")
    both = run("evaluate", tmp_path / "r", "--checkpoint", tmp_path / "r")
    assert both.exit_code == 2 and both.output.splitlines()[-1].startswith("Error: give the model once: ")
    assert (
        run(
            "preprocess", "--data-dir", DATA, "--classes", "cat,clock,tent,house,nail", "-o", "ship.npz", "-q"
        ).exit_code
        == 0
    )
    shipped = run("evaluate", "--data", "ship.npz", "--json")  # the shipped model's classes, in its order
    assert shipped.exit_code == 0 and json.loads(shipped.output)["checkpoint"].endswith("default.pt")
    # with nothing given: the shipped model's own dataset is this project's build, not the user's
    alone = run("evaluate")
    assert alone.exit_code == 1 and alone.output == (
        "Error: this model was trained on data-shared/dataset.npz, which is not here, and there is no "
        "data/dataset.npz. Pass --data, or make a dataset of its classes: qdsketch download --classes "
        "cat,clock,tent,house,nail && qdsketch preprocess\n"
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "ship.npz").rename(tmp_path / "data" / "dataset.npz")  # where preprocess puts it
    own = run("evaluate", "--json")
    assert own.exit_code == 0 and json.loads(own.output)["data"] == "data/dataset.npz"
    assert json.loads(own.output)["overall"] == json.loads(shipped.output)["overall"]
    old = run("animate", "--from", DATA / "simplified" / "clock.ndjson", "-o", "c.gif")  # the old name still works
    new = run("animate", "--drawing", DATA / "simplified" / "clock.ndjson", "-o", "d.gif")
    assert old.exit_code == new.exit_code == 0
    assert (tmp_path / "c.gif").read_bytes() == (tmp_path / "d.gif").read_bytes()


def test_qdsketch_home_holds_data_and_runs(run, tmp_path, monkeypatch):
    """With QDSKETCH_HOME set, download, preprocess and train use $QDSKETCH_HOME/data and /runs."""
    home = tmp_path / "home"
    monkeypatch.setenv("QDSKETCH_HOME", str(home))
    assert run("download", "--from", DATA, "--classes", "cat,clock", "-q").exit_code == 0
    assert sorted(p.name for p in (home / "data" / "simplified").glob("*.ndjson")) == ["cat.ndjson", "clock.ndjson"]
    made = run("preprocess", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["output"] == str(home / "data" / "dataset.npz")
    trained = run("train", "--preset", "tiny", "--max-steps", 2, "--json")
    assert trained.exit_code == 0, trained.output
    run_dir = Path(train_json(trained.output)[1]["run_dir"])
    assert run_dir.parent == home / "runs" and (run_dir / "best.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing in the current folder
    monkeypatch.setenv("QDSKETCH_HOME", "")  # empty: as if unset
    assert "data/dataset.npz" in run("train", "--help").output


def complete(words: str) -> list[str]:
    """What TAB offers after ``words`` in bash, from the real entry point."""
    import os

    env = {
        **os.environ,
        "_QDSKETCH_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }
    out = subprocess.run([sys.executable, "-m", "qdsketch"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if line]


def test_shell_completion_completes_class_names():
    # the shipped models' classes: all 345 now
    assert complete("qdsketch sample hous") == ["house", "house plant"]
    assert complete("qdsketch animate --classes clo") == ["clock", "cloud"]
    assert complete("qdsketch download --classes cat,hot") == ["cat,hot air balloon", "cat,hot dog", "cat,hot tub"]
    assert complete("qdsketch download --classes al") == ["all", "alarm clock"]
    assert complete("qdsketch sample --checkpoint nowhere.pt c") == []  # no model there: nothing, quietly
    assert "preprocess" in complete("qdsketch pre")


def test_a_checkpoints_classes_are_read_without_running_its_code(tmp_path):
    import pickle
    import zipfile

    from qdsketch.completion import checkpoint_classes

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    payload = pickle.dumps({"class_names": ["cat", "dog"], "model": Boom()})
    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as z:
        z.writestr("evil/data.pkl", payload)
    assert checkpoint_classes(tmp_path / "evil.pt") == ["cat", "dog"]
    assert not (tmp_path / "pwned").exists()


def test_a_tab_on_a_hostile_checkpoint_answers_at_once_with_nothing(tmp_path, monkeypatch):
    """A FIFO, /dev/zero, a run whose best.pt is a FIFO, a pickle too big to be a
    checkpoint's: each used to hang a TAB or take gigabytes; now nothing is offered,
    within the timeout of ``complete``, as a real process. So is a garbled COMP_CWORD."""
    import os
    import pickle
    import zipfile

    os.mkfifo(tmp_path / "fifo.pt")
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "best.pt")
    (tmp_path / "zero.pt").symlink_to("/dev/zero")
    with zipfile.ZipFile(tmp_path / "big.pt", "w", zipfile.ZIP_DEFLATED) as z:  # 2 MB of pickle, a few KB zipped
        z.writestr("big/data.pkl", pickle.dumps({"class_names": ["cat"], "blob": "x" * (2 << 20)}))
    monkeypatch.chdir(tmp_path)
    for checkpoint in ("fifo.pt", "run", "zero.pt", "big.pt"):
        assert complete(f"qdsketch sample --checkpoint {checkpoint} ca") == []
    env = {**os.environ, "_QDSKETCH_COMPLETE": "bash_complete", "COMP_WORDS": "qdsketch sa", "COMP_CWORD": "abc"}
    out = subprocess.run([sys.executable, "-m", "qdsketch"], env=env, capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_preprocess_verbose_says_what_it_read_and_why_it_skipped(run, tmp_path):
    folder = tmp_path / "d" / "simplified"
    folder.mkdir(parents=True)
    lines = (DATA / "simplified" / "cat.ndjson").read_text().splitlines()[:5]
    bad = ['{"word":"cat","key_id":"1","drawing":[[[-5,2],[1,2]]]}', "not json"]
    (folder / "cat.ndjson").write_text("\n".join(lines + bad) + "\n")
    args = ["preprocess", "--data-dir", tmp_path / "d", "-o", "v.npz", "--split", "60,20,20"]
    plain, verbose = run(*args).output.splitlines(), run(*args, "-v").output.splitlines()
    # a line that is not JSON is found as it is read; values are checked a chunk at a time, after
    assert plain[-4:] == [
        "skipped: 0 unrecognized, 0 duplicates, 2 bad",
        "  cat.ndjson:7: malformed JSON",
        "  cat.ndjson:6: out-of-range value",
        "wrote v.npz",
    ]
    assert verbose[-7:] == [
        "skipped: 0 unrecognized, 0 duplicates, 2 bad",
        "  1 malformed JSON",
        "  1 out-of-range value",
        "  cat.ndjson:7: malformed JSON",
        "  cat.ndjson:6: out-of-range value",
        f"read cat: {folder / 'cat.ndjson'}",
        "wrote v.npz",
    ]


# Module level, as the config dataclasses are: the annotations are strings to resolve.
@dataclasses.dataclass(frozen=True)
class _Spelled:
    old_style: Optional[int] = opt(None, "Optional[int].", min=1)  # noqa: UP045 (the spelling under test)
    new_style: float | None = opt(None, "float | None.", min=0)
    flag: bool = opt(False, "A flag.")


def test_options_made_from_a_config_read_every_spelling_of_an_optional_type():
    """`Optional[int]` and `X | None` both give a bounded option of X: read as strings,
    the first would have become a str option and accepted anything."""
    from qdsketch.cli import config_options

    command = click.command()(config_options(_Spelled)(lambda **kw: None))
    kinds = {p.name: p.type for p in command.params}
    assert isinstance(kinds["old_style"], click.IntRange) and kinds["old_style"].min == 1
    assert isinstance(kinds["new_style"], click.FloatRange) and kinds["new_style"].min == 0
    assert next(p for p in command.params if p.name == "flag").is_flag
    assert CliRunner().invoke(command, ["--old-style", "x"]).exit_code == 2


@pytest.mark.parametrize(
    "args, limit",
    [
        (["train", "--data", "ds.npz", "--preset", "tiny", "--epochs", "1", "--run-dir", "run"], 4000),
        (["animate", "house", "-o", "house.gif"], 300),
        (["sample", "house", "-n", "4", "-o", "houses.png"], 300),
    ],
)
def test_a_full_disk_is_one_line_whoever_writes(dataset_path, tmp_path, args, limit):
    """torch's writer (a RuntimeError of its own) and imageio's (which wrote again when it was
    collected, printing a traceback after the error) write to memory; qdsketch writes the file,
    so a full disk is one OSError, one line, and no part file. A real failing write: files
    may grow to ``limit`` bytes (RLIMIT_FSIZE)."""
    import os
    import resource
    import shutil
    import signal

    shutil.copy(dataset_path, tmp_path / "ds.npz")

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "qdsketch", *args, "-q"],
        cwd=tmp_path,
        env=env,
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout + proc.stderr == (
        "Error: File too large: nothing was written. Free some disk space or write somewhere else\n"
    )
    assert not [p for p in tmp_path.rglob("*") if ".part" in p.name or p.suffix in (".pt", ".gif", ".png")]


def test_info_says_what_a_checkpoint_is(run, dataset_path, tmp_path):
    """A run's best.pt and last.pt, and the model that ships, as JSON and as lines."""
    from qdsketch.config import Augment, preset
    from qdsketch.train import TrainConfig, train

    cfg = TrainConfig(data=str(dataset_path), epochs=2, batch_size=16, ema=0.9, augment=Augment(scale=0.1))
    summary = train(cfg, preset("tiny"), tmp_path / "r")
    best = json.loads(run("info", tmp_path / "r", "--json").output)
    assert best["checkpoint"] == str(tmp_path / "r" / "best.pt")
    assert best["classes"] == ["cat", "clock", "house", "nail", "tent"] and best["preset"] == "tiny"
    assert best["parameters"] == sum(p.numel() for p in load_checkpoint(tmp_path / "r").model.parameters())
    assert best["epoch"] == summary["best_epoch"] and best["val"]["total"] == summary["best_val"]
    assert best["trained"]["steps"] == 8 * summary["best_epoch"]  # 8 batches an epoch
    assert best["train"]["ema"] == 0.9 and best["train"]["augment"]["scale"] == 0.1
    assert best["data"] == str(dataset_path) and not best["resumable"]
    assert best["history"]["epochs"] == 2 and best["history"]["best_val"] == summary["best_val"]
    last = json.loads(run("info", tmp_path / "r" / "last.pt", "--json").output)
    assert last["resumable"] and last["resumes_at"] == {"epoch": 3, "batch": 0} and last["trained"]["steps"] == 16
    lines = run("info", tmp_path / "r" / "last.pt").output.splitlines()
    assert lines[1].split() == ["classes", "5:", "cat,", "clock,", "house,", "nail,", "tent"]
    assert lines[2].startswith("model") and lines[2].rstrip().endswith("preset tiny")
    assert lines[-1].split() == "resumable yes: train --resume continues at epoch 3, batch 0".split()
    polls = iter(range(1000))
    train(cfg, preset("tiny"), tmp_path / "cut", should_stop=lambda: next(polls) == 11)  # epoch 2, batch 3
    cut = run("info", tmp_path / "cut" / "last.pt").output.splitlines()
    assert cut[3].split()[:12] == "weights epoch 1 and 3 batches of epoch 2, 11 optimizer steps,".split()
    shipped = json.loads(run("info", "--json").output)
    assert shipped["classes"] == ["cat", "clock", "tent", "house", "nail"] and shipped["preset"] == "mixture"
    assert shipped["history"] is None
    missing = run("info", tmp_path / "none.pt")
    assert missing.exit_code == 1 and missing.output.startswith(f"Error: no checkpoint at {tmp_path / 'none.pt'}")


def test_a_run_stopped_in_its_first_epoch_says_how_to_use_its_last_pt(run, dataset_path, tmp_path):
    """No best.pt yet: sample, animate and evaluate name last.pt and --resume; info describes last.pt."""
    from qdsketch.config import preset
    from qdsketch.train import TrainConfig, train

    polls = iter(range(1000))
    cfg = TrainConfig(data=str(dataset_path), epochs=2, batch_size=16)
    train(cfg, preset("tiny"), tmp_path / "cut", should_stop=lambda: next(polls) == 3)  # epoch 1, batch 3
    assert sorted(p.name for p in (tmp_path / "cut").glob("*.pt")) == ["last.pt"]
    said = (
        f"Error: cut has no best.pt yet: the run stopped within its first epoch, before validation chose one. "
        f"Use its weights so far with --checkpoint {Path('cut') / 'last.pt'}, "
        "or go on with `qdsketch train --run-dir cut --resume`\n"
    )
    for args in (
        ["sample", "cat", "--checkpoint", "cut", "-o", "s.png"],
        ["animate", "cat", "--checkpoint", "cut", "-o", "cat.gif"],
    ):
        result = run(*args)
        assert (result.exit_code, result.output) == (1, said), args
    assert run("evaluate", "cut").output == said
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "cat.gif").exists()
    assert run("sample", "cat", "--checkpoint", "cut/last.pt", "-n", 1, "-o", "s.png").exit_code == 0
    info = json.loads(run("info", "cut", "--json").output)
    assert info["checkpoint"] == str(Path("cut") / "last.pt") and info["resumes_at"] == {"epoch": 1, "batch": 3}


def test_runs_lists_each_run_with_its_state_and_marks_the_latest_and_the_best(run, dataset_path, tmp_path):
    from qdsketch.config import preset
    from qdsketch.files import folder_lock
    from qdsketch.train import TrainConfig, train

    cfg = TrainConfig(data=str(dataset_path), epochs=2, batch_size=16)
    assert (
        run("runs").output
        == "Error: no runs folder at runs. Train one with `qdsketch train`, or pass your runs folder\n"
    )
    (tmp_path / "runs").mkdir()
    assert (
        run("runs").output == "no runs in runs/: `qdsketch train` makes one\n"
        and run("runs", "--json").output == "[]\n"
    )
    done = train(cfg, preset("tiny"), tmp_path / "runs" / "done")
    other = train(dataclasses.replace(cfg, epochs=3), preset("tiny", hidden=16), tmp_path / "runs" / "other")
    polls = iter(range(1000))
    train(cfg, preset("tiny"), tmp_path / "runs" / "cut", should_stop=lambda: next(polls) == 3)
    (tmp_path / "runs" / "notes").mkdir()  # a folder that is not a run
    with folder_lock(tmp_path / "runs" / "done"):  # as a train of it would hold it
        listed = json.loads(run("runs", "--json").output)
        table = run("runs").output.splitlines()
    assert [Path(r["run_dir"]).name for r in listed] == ["done", "other", "cut"]  # oldest first
    by_name = {Path(r["run_dir"]).name: r for r in listed}
    assert by_name["done"]["state"] == "training" and by_name["done"]["pid"] == os.getpid()
    assert by_name["other"]["state"] == "done" and by_name["cut"]["state"] == "resumable"
    assert by_name["cut"]["latest"] and not by_name["done"]["latest"]  # its last.pt was written last
    assert (by_name["done"]["best_val"], by_name["other"]["best_val"]) == (done["best_val"], other["best_val"])
    best = "other" if other["best_val"] < done["best_val"] else "done"  # the same data: comparable
    assert [r["best"] for r in listed] == [n == best for n in by_name] and by_name["cut"]["best_val"] is None
    assert (by_name["done"]["epochs"], by_name["done"]["of_epochs"], by_name["cut"]["epochs"]) == (2, 2, 0)
    assert by_name["done"]["preset"] == "tiny" and by_name["other"]["preset"] is None
    assert by_name["other"]["model"] == "lstm 1x16 mse" and by_name["other"]["classes"] == 5
    assert table[0] == "runs in runs/" and table[1].split() == "run updated model classes epochs best val state".split()
    rows = {line.split()[0]: line.split() for line in table[2:5]}
    assert rows["done"][3:8] == ["tiny", "5", "2/2", f"{done['best_val']:.4f}", "training"]
    assert rows["other"][3:10] == ["lstm", "1x16", "mse", "5", "3/3", f"{other['best_val']:.4f}", "done"]
    assert rows["cut"][3:] == ["tiny", "5", "0/2", "resumable", "latest"] and rows[best][-1] == "best"
    assert table[-1] == "resumable: `qdsketch train --run-dir RUN --resume` continues it"
    assert json.loads(run("runs", "--json").output)[0]["state"] == "done"  # the lock is given back


def test_preprocess_says_it_is_compiling_on_the_readers_first_use(run, data_copy, monkeypatch):
    """The first use on a machine compiles the fast reader for 10 to 30 s: said, not silent."""
    import qdsketch.cli as cli_module
    from qdsketch.data import ndjson

    # the suite loaded the kernels before any test: numba's cache files are there, and the
    # rule that names them (a function's first decorator line, this Python) finds every one
    assert ndjson.kernels_compiled()
    args = ["preprocess", "--data-dir", data_copy, "--classes", "cat", "-o", "p.npz"]
    assert cli_module.COMPILING not in run(*args).output
    monkeypatch.setattr(ndjson, "kernels_compiled", lambda: False)  # as on a fresh machine
    said = run(*args)
    assert said.exit_code == 0 and said.output.startswith(cli_module.COMPILING + "\n")
    assert run(*args, "-q").output == ""


# --- -v, -q and --json: the same on every command that reports ------------------------------


REPORTING = ["download", "preprocess", "train", "evaluate", "info", "runs", "sample", "animate"]


def test_every_command_that_reports_takes_v_q_and_json():
    for name in REPORTING:
        flags = {opt for param in cli.commands[name].params for opt in param.opts}
        assert {"-v", "--verbose", "-q", "--quiet", "--json"} <= flags, name


@pytest.mark.parametrize("name", REPORTING)
@pytest.mark.parametrize("other", ["-q", "--json"])
def test_v_with_q_or_json_is_a_usage_error_on_every_command(run, name, other):
    required = ["-o", "x.gif"] if name == "animate" else []  # checked by Click before the command runs
    result = run(name, *required, "-v", other)
    assert result.exit_code == 2
    why = "--json prints nothing but JSON" if other == "--json" else "-q asks for none"
    assert result.output.endswith(f"Error: -v asks for more words, and {why}: drop one\n")


def test_download_v_says_where_each_file_came_from_and_went(run, tmp_path):
    args = ["download", "--from", DATA, "--classes", "cat,clock", "--format", "simplified", "--data-dir", "d"]
    plain, verbose = run(*args).output, run(*args, "--force", "-v").output
    came = [
        f"{name} (simplified): from {DATA / 'simplified' / name}.ndjson to d/simplified/{name}.ndjson"
        for name in ("cat", "clock")
    ]
    assert all(line not in plain for line in came)
    assert all(line in verbose.splitlines() for line in came), verbose


def test_train_v_prints_every_setting_and_each_checkpoint_saved(run, dataset_path):
    args = ["train", "--data", dataset_path, "--preset", "tiny", "--epochs", 2, "--batch-size", 64]
    plain = run(*args, "--run-dir", "a").output.splitlines()
    verbose = run(*args, "--run-dir", "b", "-v").output.splitlines()
    assert not any(line.startswith(("settings:", "saved ")) for line in plain)
    settings = [line for line in verbose if line.startswith("settings: ")]
    assert len(settings) == 1 and "grad_clip=1.0" in settings[0] and "lr_patience=3" in settings[0]
    history = json.loads(Path("b/history.json").read_text())
    saves = [line for line in verbose if line.startswith("saved ")]
    total = int(load_checkpoint(Path("b/last.pt")).trained["steps"])
    steps = [total // 2, total]  # two epochs of as many batches
    best = [row["epoch"] for row in history if row["best"]]
    expected = [f"saved b/best.pt (after {steps[e - 1]} optimizer steps)" for e in best]
    assert [s for s in saves if "best.pt" in s] == expected
    assert [s for s in saves if "last.pt" in s] == [f"saved b/last.pt (after {n} optimizer steps)" for n in steps]


def test_info_v_lists_every_class_and_setting(run):
    from qdsketch.shipped import shipped_models

    everything = shipped_models()[-1].path  # the model of every class
    plain, verbose = (" ".join(run("info", everything, *v).output.split()) for v in ([], ["-v"]))  # unwrapped
    assert "(345 in all)" in plain and "zigzag" not in plain
    assert "(345 in all)" not in verbose and "zigzag" in verbose
    assert "settings" not in plain and "grad_clip=1.0" in verbose
    assert "scaling" not in plain and "longest drawing 150 points" in verbose


def test_runs_v_gives_each_runs_folder_and_dataset(run, dataset_path, tmp_path):
    run("train", "--data", dataset_path, "--preset", "tiny", "--epochs", 1, "--run-dir", "runs/one", "-q")
    plain, verbose = run("runs").output, run("runs", "-v").output
    line = f"one: {tmp_path / 'runs' / 'one'}, trained on {dataset_path}"
    assert line not in plain and line in verbose.splitlines()


def test_sample_v_says_each_sketchs_class_seed_model_length_and_end_on_stderr(run):
    result = run("sample", "cat", "bicycle", "-n", 2, "--seed", 5, "-o", "-", "-v")
    assert result.exit_code == 0
    sketches = [json.loads(line) for line in result.stdout.splitlines()]  # stdout: the sketches alone
    said = [line.split(maxsplit=1) for line in result.stderr.splitlines()[:4]]
    assert [number for number, _ in said] == ["1", "2", "3", "4"]
    for (_, line), sketch in zip(said, sketches):
        points = sum(len(xs) for xs, _ in sketch["drawing"])
        model = "five" if sketch["word"] == "cat" else "all"
        assert line.startswith(f"{sketch['word']}: seed ") and f", by {model}, {points} points in " in line
        assert f"in {len(sketch['drawing'])} strokes, " in line
        assert line.endswith(("ended by the model", "cut at the length limit"))


def test_animate_v_says_the_sketchs_length_and_the_gifs(run, tmp_path):
    import imageio.v3 as iio

    result = run("animate", "house", "-o", "h.gif", "--seed", 2, "--fps", 10, "--hold", 2, "-v")
    assert result.exit_code == 0, result.output
    frames = len(iio.imread(tmp_path / "h.gif", index=None))
    line = result.output.splitlines()[-2]
    assert line.endswith(f"; {frames} frames of 256 x 256 pixels, {(frames - 1) / 10 + 2:.1f} s a loop at 10 fps")
