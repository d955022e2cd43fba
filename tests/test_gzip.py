"""Gzipped ndjson (``<class>.ndjson.gz``): read exactly as the same file uncompressed,
and a cut or corrupted one is one clear error with nothing half written."""

import gzip
import shutil

import numpy as np
import pytest
from helpers import DATA, FIVE, corrupt, real_lines

from qdsketch.classes import categories, parse_class_list
from qdsketch.data import drawings, ndjson
from qdsketch.data.dataset import SPLITS
from qdsketch.data.preprocess import build_dataset
from qdsketch.data.sources import find_sources
from qdsketch.errors import DataError


def gzipped_copy(tmp_path, names=FIVE, members=1):
    """The shipped drawings as a data directory whose simplified files are gzipped,
    in ``members`` gzip members one after the other (as `make data-all` writes them)."""
    target = tmp_path / "gz"
    shutil.copytree(DATA / "raw", target / "raw")
    (target / "simplified").mkdir()
    for name in names:
        lines = real_lines(name)
        cut = len(lines) // members
        parts = [lines[i * cut : (i + 1) * cut if i < members - 1 else None] for i in range(members)]
        (target / "simplified" / f"{name}.ndjson.gz").write_bytes(b"".join(gzip.compress(b"".join(p)) for p in parts))
    return target


def same_drawings(a: drawings.Drawings, b: drawings.Drawings) -> None:
    assert a.keys == b.keys
    np.testing.assert_array_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.offsets, b.offsets)


@pytest.mark.parametrize("fast", [True, False])
def test_a_gzipped_file_reads_as_the_file_itself_bad_lines_included(tmp_path, monkeypatch, fast):
    monkeypatch.setattr(ndjson, "FAST", fast)
    lines = real_lines("cat") + [corrupt(real_lines("clock")[0], "out-of-range value")] + real_lines("cat")[:3]
    plain = tmp_path / "cat.ndjson"
    plain.write_bytes(b"".join(lines))
    packed = tmp_path / "cat.ndjson.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    got = {}
    for path in (plain, packed):
        skipped = drawings.Skipped()
        got[path.suffix] = ndjson.read_ndjson(path, "simplified", None, skipped=skipped), skipped
    same_drawings(got[".ndjson"][0], got[".gz"][0])
    assert len(got[".gz"][0]) == 23  # 25 cats, 2 of them unrecognized
    assert got[".gz"][1].as_dict() == {
        "bad": {"out-of-range value": 1},
        "examples": ["cat.ndjson.gz:26: out-of-range value"],  # the file as it is named, and its line
        "unrecognized": 2,
        "duplicates": 3,
    }
    assert got[".ndjson"][1].examples == ["cat.ndjson:26: out-of-range value"]


@pytest.mark.parametrize("members", [1, 3])
def test_a_gzipped_data_directory_makes_the_same_dataset(tmp_path, data_copy, members):
    plain = build_dataset(data_copy, FIVE)
    packed = build_dataset(gzipped_copy(tmp_path, members=members), FIVE)
    for split in SPLITS:
        same_drawings(plain.splits[split].drawings, packed.splits[split].drawings)
        np.testing.assert_array_equal(plain.splits[split].labels, packed.splits[split].labels)
    assert plain.mean.tolist() == packed.mean.tolist() and plain.std.tolist() == packed.std.tolist()


def test_a_plain_file_is_read_before_a_gzipped_one(tmp_path):
    folder = gzipped_copy(tmp_path, ["cat"])
    assert find_sources(folder, "cat")[0][1].name == "cat.ndjson.gz"
    (folder / "simplified" / "cat.ndjson").write_bytes(b"".join(real_lines("cat")))
    assert [p.name for _, p in find_sources(folder, "cat")] == ["cat.ndjson", "cat.ndjson"]  # simplified, raw


def damaged(whole: bytes, how: str) -> bytes:
    if how == "cut short":
        return whole[: len(whole) // 2]
    if how == "corrupted":
        flipped = bytearray(whole)
        flipped[len(flipped) // 2] ^= 0xFF
        return bytes(flipped)
    return b'{"word": "cat", "drawing": [[[1, 2], [3, 4]]]}\n'  # not gzip at all


@pytest.mark.parametrize("how", ["cut short", "corrupted", "not gzip"])
def test_a_damaged_gzip_file_is_one_clear_error_and_writes_nothing(run, tmp_path, how):
    folder = gzipped_copy(tmp_path, ["cat", "clock"])
    path = folder / "simplified" / "clock.ndjson.gz"
    path.write_bytes(damaged(path.read_bytes(), how))
    with pytest.raises(DataError, match=r"clock\.ndjson\.gz is not a whole gzip file"):
        ndjson.read_ndjson(path, "simplified", "clock")
    for out in (tmp_path / "out.npz", tmp_path / "sharded"):
        result = run("preprocess", "--data-dir", folder, "--classes", "cat,clock", "-o", out, "--workers", 1)
        assert result.exit_code == 1
        assert result.output.startswith("Error: ") and "clock.ndjson.gz is not a whole gzip file" in result.output
        assert "Traceback" not in result.output and result.output.count("\n") == 1
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gz"]  # no temporaries left either


def test_download_from_a_gzipped_folder_writes_what_the_plain_folder_does(run, tmp_path):
    for name, source in (("plain", DATA / "simplified"), ("packed", gzipped_copy(tmp_path) / "simplified")):
        result = run("download", "--from", source.parent, "--data-dir", tmp_path / name, "-q")
        assert result.exit_code == 0, result.output
    for name in FIVE:
        plain = (tmp_path / "plain" / "simplified" / f"{name}.ndjson").read_bytes()
        assert (tmp_path / "packed" / "simplified" / f"{name}.ndjson").read_bytes() == plain


def test_download_from_a_damaged_gzip_file_keeps_nothing(run, tmp_path):
    source = gzipped_copy(tmp_path, ["cat"])
    path = source / "simplified" / "cat.ndjson.gz"
    path.write_bytes(damaged(path.read_bytes(), "cut short"))
    result = run(
        "download", "--from", source, "--data-dir", tmp_path / "d", "--classes", "cat", "--format", "simplified"
    )
    assert result.exit_code == 1 and "cat.ndjson.gz is not a whole gzip file (cut short)" in result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1
    assert not [p for p in (tmp_path / "d").rglob("*") if p.is_file()]
    # every format: the raw file beside it is whole, and comes in; the damaged one is named
    both = run("download", "--from", source, "--data-dir", tmp_path / "d", "--classes", "cat")
    assert both.exit_code == 1 and "Traceback" not in both.output
    assert "failed cat (simplified): " + f"{path} is not a whole gzip file (cut short)" in both.output
    assert sorted(p.name for p in (tmp_path / "d").rglob("*") if p.is_file()) == ["cat.ndjson", "cat.ndjson.meta.json"]
    assert (tmp_path / "d" / "raw" / "cat.ndjson").is_file()


def test_classes_all_means_all_345(run, tmp_path):
    assert parse_class_list("all") == parse_class_list(" ALL ") == list(categories())
    assert len(categories()) == 345
    result = run("preprocess", "--data-dir", gzipped_copy(tmp_path), "--classes", "all", "-o", tmp_path / "o.npz")
    assert result.exit_code == 1
    assert result.output.startswith("Error: no data for 340 of the classes in ")
    assert "qdsketch download --classes all" in result.output and "Traceback" not in result.output
