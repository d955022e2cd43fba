"""The sharded dataset: round trips, workers, moments, streaming, and every way it can be broken."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA, FIVE, repeated_lines

from qdsketch.batching import DeviceSplit, StreamSplit, batch_order
from qdsketch.config import Augment, TrainConfig, preset
from qdsketch.data.dataset import SPLITS
from qdsketch.data.plan import Moments, Plan
from qdsketch.data.preprocess import build_dataset, load_dataset
from qdsketch.data.shards import MANIFEST, write_shards
from qdsketch.errors import DataError
from qdsketch.train import train


def test_shards_round_trip_exactly(sharded_path):
    memory = build_dataset(DATA, FIVE)
    mapped = load_dataset(sharded_path)
    assert mapped.sharded and not memory.sharded
    assert mapped.class_names == memory.class_names and mapped.max_seq_len == memory.max_seq_len
    assert mapped.mean.tobytes() == memory.mean.tobytes() and mapped.std.tobytes() == memory.std.tobytes()
    for s in SPLITS:
        assert len(mapped.splits[s].shards) > 1  # about 10 drawings a shard
        a, b = mapped.splits[s].drawings, memory.splits[s].drawings
        assert np.array_equal(a.rows, b.rows) and a.rows.dtype == b.rows.dtype == np.int16
        assert np.array_equal(a.offsets, b.offsets)
        assert list(a.keys) == list(b.keys)
        assert np.array_equal(mapped.splits[s].labels, memory.splits[s].labels)
    # the shards are memory-mapped, not read
    assert isinstance(mapped.splits["train"].shards[0].drawings.rows, np.memmap)
    assert mapped.meta["sources"] == memory.meta["sources"] and mapped.meta["skipped"] == memory.meta["skipped"]


def test_the_output_is_byte_identical_for_any_number_of_workers(tmp_path):
    plan = Plan.of(DATA, FIVE)
    write_shards(plan, tmp_path / "one", workers=1, shard_drawings=10)
    write_shards(plan, tmp_path / "two", workers=2, shard_drawings=10)
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir()) and MANIFEST in names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_writing_a_class_a_block_at_a_time_gives_the_same_bytes(tmp_path, monkeypatch):
    """Each class's split is cut, copied and written SPLIT_BLOCK drawings at a time; shards still
    close only between classes, and the bytes are those of one piece a class. The files are
    synced in the background as they grow: the same bytes again."""
    from qdsketch.data import shards

    plan = Plan.of(DATA, FIVE)
    write_shards(plan, tmp_path / "whole", shard_drawings=10)
    monkeypatch.setattr(shards, "SPLIT_BLOCK", 3)  # about 5 blocks a class and split here
    monkeypatch.setattr(shards, "SYNC_EVERY", 1)  # a background fsync after every append it can
    write_shards(plan, tmp_path / "blocks", shard_drawings=10)
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "blocks").iterdir()) and len(names) > 10
    for name in names:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "blocks" / name).read_bytes(), name


def test_concat_consumes_its_parts_when_asked():
    from qdsketch.data.drawings import Drawings, concat
    from qdsketch.data.ndjson import read_ndjson

    whole = read_ndjson(DATA / "simplified" / "cat.ndjson", "simplified", "cat", recognized_only=False)
    o = whole.offsets
    cuts = [0, 3, 3, 10, len(whole)]  # an empty part too
    parts = [Drawings(whole.rows[o[a] : o[b]], o[a : b + 1] - o[a], whole.keys[a:b]) for a, b in zip(cuts, cuts[1:])]
    joined = concat(parts, consume=True)
    assert parts == []  # the caller's list no longer holds them
    assert np.array_equal(joined.rows, whole.rows) and np.array_equal(joined.offsets, whole.offsets)
    assert joined.keys == whole.keys and joined.rows.dtype == np.int16


def test_a_spilled_class_is_the_class_read_whole_and_never_held_whole(tmp_path, monkeypatch):
    """preprocess -o DIR reads each class a chunk at a time into two spill files; what they
    hold is exactly what read_class returns, and no chunk is bigger than CHUNK drawings."""
    from qdsketch.data import drawings, ndjson, shards
    from qdsketch.data.shards import spill_class
    from qdsketch.data.sources import iter_class, read_class

    monkeypatch.setattr(ndjson, "CHUNK", 7)
    monkeypatch.setattr(shards, "RELEASE_ABOVE", 0)  # let go of the pages after every block
    sizes = [len(c) for c in iter_class(DATA, "cat", None, True, drawings.Skipped())]
    assert max(sizes) == 7 and len(sizes) > 3
    whole = read_class(DATA, "cat", None, True, drawings.Skipped())
    spilled = spill_class((DATA, "cat", None, True, tmp_path, 0))
    assert len(spilled) == len(whole) == sum(sizes)
    assert spilled.rows.read_bytes() == whole.rows.astype("<i2").tobytes()
    assert np.array_equal(spilled.offsets, whole.offsets)
    keys, key_offsets = spilled.keys.read_bytes(), spilled.key_offsets
    assert [keys[a:b].decode() for a, b in zip(key_offsets, key_offsets[1:])] == whole.keys
    rows, blob, release = spilled.mapped()
    first = rows[: whole.offsets[5]].copy()
    release()  # the pages read so far go; reading again reads the file again
    assert np.array_equal(rows[: whole.offsets[5]], first) and bytes(blob[: key_offsets[1]]) == keys[: key_offsets[1]]
    del rows, blob
    spilled.remove()
    assert list(tmp_path.iterdir()) == []


def test_keys_that_are_not_ascii_are_written_as_utf8():
    from qdsketch.data.shards import encode_keys

    for keys in (["5201136883597312", "cat.ndjson:3"], ["ключ", "a", "", "\udcff"]):
        blob, ends = encode_keys(keys)
        starts = np.concatenate([[0], ends[:-1]])
        assert [blob[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends)] == keys


def test_no_spill_file_is_left_behind(tmp_path):
    write_shards(Plan.of(DATA, FIVE), tmp_path / "out", workers=2, shard_drawings=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not [p.name for p in (tmp_path / "out").iterdir() if "spill" in p.name]


def test_streaming_moments_equal_numpy_on_the_concatenation():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3, 40, size=(n, 3)).round().astype(np.int16) for n in (0, 1, 7, 500, 2, 3000)]
    chunks.append(np.full((4, 3), 32767, np.int16))  # the extremes an int16 row can hold
    merged, halves = Moments(), [Moments(), Moments()]
    for i, c in enumerate(chunks):
        merged.add(c)
        halves[i % 2].add(c)
    halves[0].merge(halves[1])  # as two workers' moments would be merged
    xy = np.concatenate(chunks)[:, :2].astype(np.float64)
    for m in (merged, halves[0]):
        assert m.n == len(xy) and (m.s1, m.s2) == (merged.s1, merged.s2)  # integers: merged without rounding
        np.testing.assert_allclose(m.mean, xy.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(m.std, xy.std(axis=0), rtol=1e-13)
    with pytest.raises(TypeError, match="stroke-3 rows are integers, not float32"):
        Moments().add(np.zeros((2, 3), np.float32))


def test_streamed_batches_equal_batches_held_on_the_device(sharded_path):
    ds = load_dataset(sharded_path)
    for s in ("train", "val"):
        held, streamed = DeviceSplit(ds.splits[s], ds.mean, ds.std), StreamSplit(ds.splits[s], ds.mean, ds.std)
        assert np.array_equal(held.steps_np, streamed.steps_np) and np.array_equal(held.labels_np, streamed.labels_np)
        for b in batch_order(held.steps_np, 16, np.random.default_rng(1), pool=2):
            for aug in (None, Augment(0.15, 10, 0.1, 0.5)):
                x = held.batch(b, aug, torch.Generator().manual_seed(2))
                y = streamed.batch(b, aug, torch.Generator().manual_seed(2))
                assert all(torch.equal(p, q) for p, q in zip(x[:4], y[:4])) and x[4:] == y[4:]


def test_streamed_training_equals_training_in_memory(sharded_path, tmp_path):
    cfg = TrainConfig(data=str(sharded_path), epochs=2, batch_size=16, pool=2, augment=Augment(scale=0.1))
    model = preset("tiny", hidden=16)
    a = train(replace(cfg, stream="never"), model, tmp_path / "held")
    b = train(replace(cfg, stream="always"), model, tmp_path / "streamed")
    assert [r["val_total"] for r in a["history"]] == [r["val_total"] for r in b["history"]]
    wa = torch.load(tmp_path / "held" / "last.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "streamed" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_max_steps_ends_the_run_after_that_many_steps(sharded_path, tmp_path):
    s = train(
        TrainConfig(data=str(sharded_path), epochs=50, batch_size=16, max_steps=3), preset("tiny"), tmp_path / "r"
    )
    assert s["epochs"] == 1 and not s["interrupted"]
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["state"]["steps"] == 3


# --- broken datasets ------------------------------------------------------------------


@pytest.fixture
def broken(sharded_path, tmp_path):
    """A copy of the sharded dataset to break."""
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(sharded_path, target)
    return target


def test_a_truncated_shard(broken):
    path = broken / "train-00001.rows.npy"
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(
        DataError,
        match=r"train-00001.rows.npy is \d[\d,]* bytes, the manifest says .*Run `qdsketch preprocess -o .*copy` again",
    ):
        load_dataset(broken)


def test_a_missing_shard(broken):
    (broken / "val-00000.offsets.npy").unlink()
    with pytest.raises(DataError, match=r"val-00000.offsets.npy is missing. Run `qdsketch preprocess"):
        load_dataset(broken)


def test_a_manifest_that_disagrees_with_its_shards(broken):
    m = json.loads((broken / MANIFEST).read_text())
    m["counts"]["cat"]["test"] += 1
    (broken / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(DataError, match=r"the test shards hold 25 drawings, the manifest 26"):
        load_dataset(broken)


def test_a_manifest_from_the_future(broken):
    m = json.loads((broken / MANIFEST).read_text())
    m["version"] = 99
    (broken / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(DataError, match=r"was written by a newer qdsketch \(format 99\). Upgrade qdsketch"):
        load_dataset(broken)


def test_no_manifest_is_no_dataset(broken):
    (broken / MANIFEST).unlink()
    with pytest.raises(DataError, match=r"holds no manifest.json: not a complete sharded dataset"):
        load_dataset(broken)


def _edit_manifest(folder, change):
    m = json.loads((folder / MANIFEST).read_text())
    change(m)
    (folder / MANIFEST).write_text(json.dumps(m))


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda m: m.pop("splits"), "splits does not list the shards of train, val and test"),
        (lambda m: m.update(splits="train"), "splits does not list the shards of train, val and test"),
        (lambda m: m.update(counts=[1, 2]), "counts does not list the classes"),
        (lambda m: m.pop("meta"), "meta is not an object"),
        (lambda m: m.update(class_names=[]), "class_names is not a list of names"),
        (lambda m: m.update(class_names=m["class_names"][:2]), "counts does not list the classes"),
        (lambda m: m.update(max_seq_len="150"), "max_seq_len is not an integer"),
        (lambda m: m.update(mean=[0.5]), "mean is not two numbers"),
        (lambda m: m["splits"]["train"][0].update(name="../outside"), "a train shard has no shard name"),
        (lambda m: m["splits"]["val"][0].update(name="/etc/passwd"), "a val shard has no shard name"),
        (lambda m: m["splits"]["test"][0].pop("bytes"), "shard test-00000 does not say its size"),
        (lambda m: m["counts"]["cat"].update(train="many"), "counts are not counts of each split"),
    ],
)
def test_a_damaged_manifest_is_named_and_never_followed(broken, change, why):
    """The manifest's structure is checked before any file it names is opened: a shard
    name is a name, never a path out of the folder."""
    _edit_manifest(broken, change)
    with pytest.raises(DataError, match=rf"manifest.json is damaged: {why}. Run `qdsketch preprocess -o"):
        load_dataset(broken)


def _rewrite(folder, name, change):
    """Shard file ``name`` rewritten by ``change``, its size set again in the manifest."""
    path = folder / f"{name}.npy"
    np.save(path, change(np.load(path)))
    shard, key = name.rsplit(".", 1)
    _edit_manifest(
        folder,
        lambda m: next(i for s in m["splits"].values() for i in s if i["name"] == shard)["bytes"].update(
            {key: path.stat().st_size}
        ),
    )


@pytest.mark.parametrize(
    "name, change, why",
    [
        ("train-00000.labels", lambda a: a + 99, "the train shard 0 labels are not class indices"),
        ("val-00001.labels", lambda a: a - 5, "the val shard 1 labels are not class indices"),
        ("train-00002.offsets", lambda a: np.concatenate([[1], a[1:]]), "the train shard 2 offsets do not start at 0"),
        (
            "test-00000.offsets",
            lambda a: np.concatenate([[0], a[2:3], a[1:2], a[3:]]),
            "the test shard 0 offsets do not cut its rows",
        ),
        (
            "train-00000.rows",
            lambda a: np.where(a == 1, 7, a).astype(a.dtype),
            "the train shard 0 rows have pen values other",
        ),
    ],
)
def test_a_shard_whose_arrays_are_wrong_is_refused_as_a_dataset_file_is(broken, name, change, why):
    _rewrite(broken, name, change)
    with pytest.raises(DataError, match=rf"copy is not a usable dataset \({why}"):
        load_dataset(broken)


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda m: m.update(mean=[float("nan"), 0.0]), "mean is not two finite numbers"),
        (lambda m: m.update(std=[0.0, 1.0]), "std is not positive"),
        (lambda m: m.update(max_seq_len=-1), "max_seq_len -1 is not between 1 and 10,000"),
        (lambda m: m.update(max_seq_len=10**12), "max_seq_len 1000000000000 is not between 1 and 10,000"),
        (
            lambda m: (m["class_names"].append("dog"), m["counts"].update(dog={"train": 0, "val": 0, "test": 0})),
            "class 'dog' has no drawings in train, val or test",
        ),
    ],
)
def test_a_manifest_whose_values_are_wrong_is_refused_at_load_not_after_an_epoch(broken, change, why):
    _edit_manifest(broken, change)
    with pytest.raises(DataError, match=rf"copy is not a usable dataset \({why}\)"):
        load_dataset(broken)


def test_the_cli_says_so_in_one_line(run, broken):
    (broken / "train-00000.labels.npy").unlink()
    result = run("train", "--data", broken, "--preset", "tiny", "--epochs", 1)
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: {broken / 'train-00000.labels.npy'} is missing. Run `qdsketch preprocess -o {broken}` again\n"
    )


def test_a_folder_that_is_not_a_dataset_is_never_written_over(run, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = run("preprocess", "--data-dir", DATA, "--classes", "cat", "-o", mine)
    assert result.exit_code == 1
    assert result.output == f"Error: {mine} exists and is not a qdsketch dataset. Pass another --output\n"
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def _preprocess(args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "qdsketch", "preprocess", *map(str, args)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_a_kill_mid_preprocess_leaves_nothing_trusted_and_the_old_dataset_whole(tmp_path, sharded_path):
    import shutil

    data = tmp_path / "data" / "simplified"
    data.mkdir(parents=True)
    for name in ("cat", "clock"):
        (data / f"{name}.ndjson").write_bytes(repeated_lines(name, 30000))
    out = tmp_path / "out"
    shutil.copytree(sharded_path, out)  # a complete dataset the user already has
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = _preprocess(["--data-dir", tmp_path / "data", "-o", out, "--workers", 1])
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.*.part/train-00000.rows.npy")) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old one, untouched
    assert load_dataset(out).class_names == FIVE
    for part in tmp_path.glob(".out.*.part"):  # what the killed run left
        with pytest.raises(DataError, match="holds no manifest.json"):
            load_dataset(part)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended, and waits for its reaper


def _preprocess_under_way(tmp_path):
    """``preprocess -o DIR --workers 2`` as a real process, once its workers are reading."""
    data = tmp_path / "data" / "simplified"
    data.mkdir(parents=True)
    for name in ("cat", "clock", "tent", "nail"):
        (data / f"{name}.ndjson").write_bytes(repeated_lines(name, 30000))
    proc = _preprocess(["--data-dir", tmp_path / "data", "-o", tmp_path / "out", "--workers", 2])
    deadline = time.time() + 60
    while len(_children(proc.pid)) < 2 and time.time() < deadline:
        time.sleep(0.02)
    while not list(tmp_path.glob(".out.*.part/.spill-*")) and time.time() < deadline:
        time.sleep(0.02)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    return proc, workers


def test_sigterm_stops_preprocess_and_its_workers_as_ctrl_c_does(tmp_path):
    """kill, timeout, systemd and docker send SIGTERM: one line, exit 130, nothing left,
    and no worker printing a BrokenPipeError traceback on its way out."""
    proc, workers = _preprocess_under_way(tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out.decode(), err.decode()) == (130, "", "interrupted: nothing half-written was left\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    deadline = time.time() + 10
    while any(map(_alive, workers)) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers))


def test_the_workers_die_with_a_parent_killed_with_9(tmp_path):
    proc, workers = _preprocess_under_way(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while any(map(_alive, workers)) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers))
    err = proc.stderr.read().decode()  # the workers' output, had they written any
    assert "Traceback" not in err


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """A real write failure: the process may write no more than 1 MB per file (RLIMIT_FSIZE)."""
    import resource

    data = tmp_path / "data" / "simplified"
    data.mkdir(parents=True)
    (data / "cat.ndjson").write_bytes(repeated_lines("cat", 20000))

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    proc = _preprocess(
        ["--data-dir", tmp_path / "data", "-o", tmp_path / "out", "--workers", 1], preexec_fn=small_files
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert (
        err.decode()
        == f"Error: could not write {tmp_path / 'out'}: File too large. Free some disk space, or pass another --output\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_the_command_forks_its_workers_and_writes_the_same_bytes(tmp_path):
    """`qdsketch preprocess` (no torch loaded) starts its workers by fork; the bytes match one worker's."""
    for workers in (1, 2):
        proc = _preprocess(["--data-dir", DATA, "-o", tmp_path / f"w{workers}", "--workers", workers, "--json"])
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    names = sorted(p.name for p in (tmp_path / "w1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "w2").iterdir())
    for name in names:
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes(), name
