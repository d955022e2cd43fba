"""Hostile input at the command line: every case must end within its timeout, with a non-zero
exit, exactly one `Error:` line, no traceback, and every file that was there before unchanged
(docs/reliability.md).

A bad option value is refused by Click before any command runs, so those cases run in-process
(milliseconds each). Bad files reach the library, so those run as real processes, each its
own, two at a time, once for the module, forked from one that imported torch once
(``tests/forker.py``; a case of each kind also runs as a fresh `python -m qdsketch`, and must
end the same); each case is still its own test, and fails alone."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA, FIVE, real_lines

from qdsketch.data.dataset import SPLITS
from qdsketch.paths import bundled_model

BASES = {  # a command that would work, but for the option under test
    "download": ["download", "--classes", "cat", "--base-url", "http://127.0.0.1:9/", "--data-dir", "dl", "-q"],
    "preprocess": ["preprocess", "--data-dir", "data", "-o", "new.npz"],
    "train": ["train", "--data", "ds.npz", "--preset", "tiny", "--run-dir", "newrun", "--epochs", "1"],
    "evaluate": ["evaluate", "run", "--judge", "--judge-path", "j.pt"],
    "sample": ["sample", "cat", "-o", "x.png"],
    "animate": ["animate", "cat", "-o", "x.gif"],
}
FLOATS = {
    "download": ["--timeout", "--max-file-size"],
    "train": [
        "--lr",
        "--weight-decay",
        "--augment-scale",
        "--augment-rotate",
        "--augment-drop",
        "--augment-jitter",
        "--dropout",
        "--xy-weight",
        "--pen-weight",
    ],
    "evaluate": ["--temperature"],
    "sample": ["--temperature", "--pen-temperature"],
    "animate": ["--fps", "--hold", "--temperature", "--pen-temperature"],
}
INTS = {
    "download": ["--max-per-class", "--retries", "--jobs"],
    "preprocess": ["--max-per-class", "--max-seq-len", "--seed", "--workers"],
    "train": [
        "--epochs",
        "--batch-size",
        "--early-stop",
        "--seed",
        "--max-steps",
        "--embed-dim",
        "--hidden",
        "--layers",
        "--mixtures",
    ],
    "evaluate": ["-n", "--seed"],
    "sample": ["-n", "--seed", "--best-of"],
    "animate": ["--size", "--points-per-frame", "--seed", "--best-of"],
}
BAD_FLOATS = ["nan", "inf", "-inf", "1e400", "abc", "-1e9"]
BAD_INTS = ["-5", "1.5", "x"]
#: options with an upper bound, so 10^30 is refused too (the others take any size)
BOUNDED = {
    "--retries",
    "--jobs",
    "--max-seq-len",
    "--seed",
    "--workers",
    "--batch-size",
    "--embed-dim",
    "--hidden",
    "--layers",
    "--mixtures",
    "-n",
    "--best-of",
    "--size",
}


def option_cases():
    for command, options in FLOATS.items():
        for option in options:
            for value in BAD_FLOATS:
                yield (command, [*BASES[command], option, value])
    for command, options in INTS.items():
        for option in options:
            for value in BAD_INTS + ([str(10**30)] if option in BOUNDED else []):
                yield (command, [*BASES[command], option, value])


def file_cases():
    """Bad files handed to commands: the file is made in the case's folder first."""
    cases = []
    for _, change in [
        ("labels", lambda a: a.update(train_labels=a["train_labels"] + 40)),
        ("offsets", lambda a: a.update(val_offsets=a["val_offsets"][::-1])),
        ("rows", lambda a: a.update(train_rows=a["train_rows"][:, :2])),
        ("pens", lambda a: a.update(test_rows=-a["test_rows"])),
        ("meta", lambda a: a.update(meta=np.array("{nope"))),
        ("names", lambda a: a.update(class_names=a["class_names"][:0])),
        ("std", lambda a: a.update(std=a["std"] * 0)),
        ("missing", lambda a: a.pop("train_keys")),
    ]:
        cases.append(("train", ["train", "--data", "bad.npz", "--preset", "tiny", "--run-dir", "r2"], ("npz", change)))
        cases.append(("evaluate", ["evaluate", "run", "--data", "bad.npz"], ("npz", change)))
    for _, change in [
        ("head", lambda p: p["model_config"].update(head="rnn")),
        ("hidden", lambda p: p["model_config"].update(hidden=-3)),
        ("seq", lambda p: p.update(max_seq_len=10**9)),
        ("names", lambda p: p.update(class_names=["cat"])),
        ("nan", lambda p: next(iter(p["model"].values())).fill_(float("nan"))),
        ("version", lambda p: p.update(version="2")),
        ("format", lambda p: p.update(format="other")),
        ("model", lambda p: p.pop("model")),
        ("train config none", lambda p: p.update(train_config=None)),  # issue 21's reproductions from here
        ("train config text", lambda p: p.update(train_config="epochs=3")),
    ]:
        cases.append(("sample", ["sample", "cat", "--checkpoint", "bad.pt", "-o", "y.png"], ("pt", change)))
        cases.append(("animate", ["animate", "cat", "--checkpoint", "bad.pt", "-o", "y.gif"], ("pt", change)))
    for text in [b"", b"\n\n", b"[1, 2]\n", b'{"drawing": "x"}\n', b"\xff\xfe\x00garbage\n", b"[" * 50_000 + b"\n"]:
        cases.append(("animate", ["animate", "--from", "bad.ndjson", "-o", "z.gif"], ("ndjson", text)))
        cases.append(("sample", ["sample", "cat", "--prefix", "bad.ndjson", "-o", "z.png"], ("ndjson", text)))
    for _, change in [  # a sharded dataset (issue 21): its manifest ...
        ("no splits", lambda m: m.pop("splits")),
        ("splits text", lambda m: m.update(splits="train")),
        ("counts list", lambda m: m.update(counts=[1, 2])),
        ("no meta", lambda m: m.pop("meta")),
        ("no names", lambda m: m.update(class_names=[])),
        ("few names", lambda m: m.update(class_names=m["class_names"][:2])),
        ("seq -1", lambda m: m.update(max_seq_len=-1)),
        ("seq huge", lambda m: m.update(max_seq_len=10**12)),
        ("mean nan", lambda m: m.update(mean=[float("nan"), 0.0])),
        ("std 0", lambda m: m.update(std=[0.0, 1.0])),
        ("escape", lambda m: m["splits"]["train"][0].update(name="../ds")),
        ("absolute", lambda m: m["splits"]["train"][0].update(name="/etc/passwd")),
        ("empty class", lambda m: (m["class_names"].append("dog"), m["counts"].update(dog=dict.fromkeys(SPLITS, 0)))),
    ]:
        cases.append(
            ("train", ["train", "--data", "bad-shards", "--preset", "tiny", "--run-dir", "r3"], ("shards", change))
        )
        if _ in ("no splits", "escape", "empty class"):  # evaluate loads it the same way: a few suffice
            cases.append(("evaluate", ["evaluate", "run", "--data", "bad-shards"], ("shards", change)))
    for name, change in [  # ... and its arrays
        ("train-00000.labels", lambda a: a + 99),
        ("val-00000.labels", lambda a: a - 9),
        ("train-00000.offsets", lambda a: np.concatenate([a[:1], a[1:][::-1]])),
        ("train-00000.rows", lambda a: np.where(a == 1, 7, a).astype(a.dtype)),
    ]:
        cases.append(
            (
                "train",
                ["train", "--data", "bad-shards", "--preset", "tiny", "--run-dir", "r3"],
                ("shard", (name, change)),
            )
        )
    for train in (np.array(5), np.array(None, dtype=object)):  # a sketchrnn file of a 0-d array
        cases.append(("preprocess", ["preprocess", "--data-dir", "rnn", "-o", "new.npz"], ("sketchrnn", train)))
    cases.append(("preprocess", ["preprocess", "--data-dir", "data", "-o", "loop"], ("link", ("loop", "loop"))))
    cases.append(("preprocess", ["preprocess", "--data-dir", "data", "-o", "linked"], ("link", ("linked", "mine"))))
    for args in (
        ["preprocess", "--data-dir", "data", "-o", "data/simplified/cat.ndjson"],  # its own input
        ["preprocess", "--data-dir", "data", "-o", "mine"],  # a folder that is not a dataset
        ["preprocess", "--data-dir", "data", "-o", "x.txt"],  # neither a .npz nor a folder's name (issue 22)
        ["evaluate", "run", "--judge", "--judge-path", "run/best.pt"],  # not a judge
        ["train", "--data", "ds.npz", "--preset", "tiny", "--run-dir", "run"],  # a run is there
        ["train", "--run-dir", "nothing", "--resume"],
        ["train", "--resume", "--run-dir", "run", "--lr", "0.5"],
        ["sample", "catt", "-o", "y.png"],
        ["sample", "cat", "-o", "y.jpg"],
        ["sample", "cat", "-o", "notes.txt/y.png"],
        ["animate", "-o", "y.gif"],
        ["animate", "cat", "-o", "y.png"],
        ["download", "--classes", "dog,catt", "-q"],
        ["download", "--from", "nowhere", "-q"],
        ["download", "--classes", "cat", "--base-url", "ftp://x/", "-q"],
        ["download", "--classes", "cat", "--base-url", "http://a:99999/", "-q"],
        ["preprocess", "--split", "1,2"],
        ["preprocess", "--split", "nan,1,1"],
        ["preprocess", "--data-dir", "empty"],
        ["train", "--data", "nothing.npz"],
        ["train", "--data", "notes.txt"],
        ["evaluate", "nothing"],
        ["evaluate", "run", "--split", "other"],
        ["sample", "cat", "--device", "meta", "-o", "y.png"],
        ["sample", "cat", "--checkpoint", "notes.txt", "-o", "y.png"],
    ):
        cases.append((args[0], args, None))
    return cases


@pytest.fixture(scope="module")
def world(tmp_path_factory, dataset_path):
    """A folder holding what a user would have: data, a dataset, a run, notes."""
    from click.testing import CliRunner

    from qdsketch.cli import cli

    root = tmp_path_factory.mktemp("world")
    (root / "data" / "simplified").mkdir(parents=True)
    for name in ("cat", "clock"):
        (root / "data" / "simplified" / f"{name}.ndjson").write_bytes(b"".join(real_lines(name)))
    (root / "ds.npz").write_bytes(Path(dataset_path).read_bytes())
    (root / "notes.txt").write_text("mine")
    (root / "mine").mkdir()
    (root / "mine" / "keep.txt").write_text("mine too")
    (root / "empty").mkdir()
    from qdsketch.data.plan import Plan
    from qdsketch.data.shards import write_shards

    write_shards(Plan.of(DATA, FIVE), root / "shards", shard_drawings=40)
    args = ["train", "--data", root / "ds.npz", "--preset", "tiny", "--epochs", "1", "--run-dir", root / "run", "-q"]
    made = CliRunner().invoke(cli, [str(a) for a in args])
    assert made.exit_code == 0, made.output
    return root


def _snapshot(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _prepare(folder: Path, spec, dataset: Path):
    if spec is None:
        return
    kind, change = spec
    if kind == "npz":
        with np.load(dataset) as z:
            arrays = {k: z[k] for k in z.files}
        change(arrays)
        np.savez(folder / "bad.npz", **arrays)
    elif kind == "pt":
        payload = torch.load(bundled_model(), weights_only=True)
        change(payload)
        torch.save(payload, folder / "bad.pt")
    elif kind == "shards":
        shutil.copytree(folder / "shards", folder / "bad-shards")
        manifest = json.loads((folder / "bad-shards" / "manifest.json").read_text())
        change(manifest)
        (folder / "bad-shards" / "manifest.json").write_text(json.dumps(manifest))
    elif kind == "shard":
        name, change_array = change
        shutil.copytree(folder / "shards", folder / "bad-shards")
        path = folder / "bad-shards" / f"{name}.npy"
        np.save(path, change_array(np.load(path)))
        manifest = json.loads((folder / "bad-shards" / "manifest.json").read_text())
        shard, key = name.rsplit(".", 1)
        info = next(i for s in manifest["splits"].values() for i in s if i["name"] == shard)
        info["bytes"][key] = path.stat().st_size  # the sizes agree: only the values are wrong
        (folder / "bad-shards" / "manifest.json").write_text(json.dumps(manifest))
    elif kind == "sketchrnn":
        (folder / "rnn" / "sketchrnn").mkdir(parents=True)
        np.savez(folder / "rnn" / "sketchrnn" / "cat.npz", train=change)
    elif kind == "link":
        link, target = change
        (folder / link).symlink_to(target)
    else:
        (folder / "bad.ndjson").write_bytes(change)


def _run(folder: Path, args: list[str]) -> tuple[int | None, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "qdsketch", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return None, "timed out"
    return proc.returncode, proc.stdout + proc.stderr


def _problems(code: int | None, output: str, before: dict, folder: Path) -> list[str]:
    """What is wrong with how a case ended: the same rules in-process and as a process."""
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    problems = []
    if code is None:
        problems.append("hung")
    elif code == 0:
        problems.append("exit 0")
    if "Traceback" in output:
        problems.append("traceback")
    if len(errors) != 1:
        problems.append(f"{len(errors)} error lines")
    after = _snapshot(folder)
    if any(after.get(k) != v for k, v in before.items()):
        problems.append("changed or removed a file that was there")
    if set(after) - set(before):
        problems.append(f"left new files {sorted(set(after) - set(before))}")
    return problems


OPTION_CASES = list(option_cases())
FILE_CASES = file_cases()


def test_there_are_as_many_cases_as_before():
    assert len(OPTION_CASES) >= 200 and len(FILE_CASES) >= 60


@pytest.mark.parametrize("args", [args for _, args in OPTION_CASES], ids=" ".join)
def test_a_bad_option_value_is_one_error_line(world, tmp_path, monkeypatch, args):
    from click.testing import CliRunner

    from qdsketch.cli import cli

    folder = tmp_path / "case"
    shutil.copytree(world, folder, symlinks=True)
    before = _snapshot(folder)
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        pytest.fail(f"raised {result.exception!r}")  # a traceback, had it been a process
    assert result.exit_code == 2, result.output  # Click's usage error: nothing ran
    assert _problems(result.exit_code, result.output, before, folder) == []


def _case_folder(root: Path, name: str, world: Path, spec) -> Path:
    folder = root / name
    shutil.copytree(world, folder, symlinks=True)
    _prepare(folder, spec, world / "ds.npz")
    return folder


@pytest.fixture(scope="module")
def file_case_results(world, tmp_path_factory):
    """Every file case run as its own process, two at a time (the machine's two cores), each
    forked from one process that imported torch once (``tests/forker.py``):
    ``{case index: (exit code or None if it hung, output, files before, folder)}``."""
    root = tmp_path_factory.mktemp("file-cases")
    outputs = tmp_path_factory.mktemp("file-case-outputs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    folders, cases = [], []
    for i, (_, args, spec) in enumerate(FILE_CASES):
        folder = _case_folder(root, f"case{i}", world, spec)
        folders.append((folder, _snapshot(folder)))
        cases.append({"args": args, "cwd": str(folder), "env": env, "output": str(outputs / f"{i}.txt")})
    (outputs / "cases.json").write_text(json.dumps(cases))
    forker = [
        sys.executable,
        str(Path(__file__).with_name("forker.py")),
        outputs / "cases.json",
        outputs / "codes.json",
    ]
    subprocess.run(forker, env=env, check=True, timeout=60 + 10 * len(cases))
    codes = json.loads((outputs / "codes.json").read_text())
    return {
        i: (codes[i], (outputs / f"{i}.txt").read_text(), before, folder) for i, (folder, before) in enumerate(folders)
    }


#: a case of each command, run again as a fresh `python -m qdsketch` (what a fork could change
#: is the process, not the file: its start, environment, streams, exit and tracebacks)
FRESH = sorted({command: i for i, (command, _, _) in reversed(list(enumerate(FILE_CASES)))}.values())


@pytest.mark.slow
def test_a_forked_case_ends_exactly_as_a_fresh_process_does(world, file_case_results, tmp_path):
    """The instrument: what the forked runner reports is what `python -m qdsketch` does, to
    the byte, for a case of every command."""
    assert len(FRESH) == 6
    folders = {i: _case_folder(tmp_path, f"case{i}", world, FILE_CASES[i][2]) for i in FRESH}
    with ThreadPoolExecutor(2) as pool:
        fresh = dict(zip(FRESH, pool.map(lambda i: _run(folders[i], FILE_CASES[i][1]), FRESH)))
    for i, (code, output) in fresh.items():
        args, folder = FILE_CASES[i][1], folders[i]
        forked_code, forked_output, _, forked_folder = file_case_results[i]
        assert (code, output.replace(str(folder), "CASE")) == (
            forked_code,
            forked_output.replace(str(forked_folder), "CASE"),
        ), args


@pytest.mark.slow
@pytest.mark.parametrize(
    "index", range(len(FILE_CASES)), ids=[f"{' '.join(args)} [{i}]" for i, (_, args, _) in enumerate(FILE_CASES)]
)
def test_a_bad_file_or_argument_is_one_error_line_from_a_real_process(file_case_results, index):
    code, output, before, folder = file_case_results[index]
    assert _problems(code, output, before, folder) == [], output.strip()[-300:]
