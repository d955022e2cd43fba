"""The dataset file: splits, normalisation, truncation, and reading it back."""

import numpy as np
import pytest
from helpers import FIVE

from qdsketch import strokes
from qdsketch.data import drawings, sketchrnn
from qdsketch.data.dataset import SPLITS
from qdsketch.data.npz import save_npz
from qdsketch.data.plan import Plan, parse_split
from qdsketch.data.preprocess import build_dataset, load_dataset
from qdsketch.data.sources import read_class
from qdsketch.errors import DataError


@pytest.fixture
def ds(data_copy):
    return build_dataset(data_copy, FIVE)


def test_every_unique_recognized_drawing_lands_in_exactly_one_split(ds):
    keys = [k for s in SPLITS for k in ds.splits[s].drawings.keys]
    assert len(keys) == len(set(keys))
    # 125 simplified + 177 raw lines; 118 raw twins of simplified ones, 18 unrecognized
    assert len(keys) == 171
    assert ds.meta["skipped"]["duplicates"] == 118 and ds.meta["skipped"]["unrecognized"] == 18


def test_split_is_stratified_and_seeded(data_copy, ds):
    counts = {name: [int((ds.splits[s].labels == i).sum()) for s in SPLITS] for i, name in enumerate(FIVE)}
    assert counts == {
        "cat": [16, 3, 4],
        "clock": [26, 6, 5],
        "house": [26, 6, 5],
        "nail": [24, 5, 5],
        "tent": [28, 6, 6],
    }
    again = build_dataset(data_copy, FIVE)
    assert again.splits["val"].drawings.keys == ds.splits["val"].drawings.keys
    other = build_dataset(data_copy, FIVE, seed=1)
    assert other.splits["val"].drawings.keys != ds.splits["val"].drawings.keys


def test_normalisation_is_fitted_on_train_only(ds):
    mean, std = strokes.fit_normalizer(ds.splits["train"].drawings.rows)
    assert ds.mean.tolist() == mean.tolist() and ds.std.tolist() == std.tolist()
    everything = np.concatenate([ds.splits[s].drawings.rows for s in SPLITS])
    assert strokes.fit_normalizer(everything)[0].tolist() != mean.tolist()


def test_truncation_is_counted(data_copy):
    ds = build_dataset(data_copy, ["cat"], max_seq_len=40)
    lengths = np.concatenate([np.diff(ds.splits[s].drawings.offsets) for s in SPLITS])
    assert lengths.max() == 40
    for s in SPLITS:  # every drawing, cut or not, ends its last stroke
        d = ds.splits[s].drawings
        assert (d.rows[d.offsets[1:] - 1, 2] == 1).all()
    whole = read_class(data_copy, "cat", None, True, drawings.Skipped())
    assert ds.meta["truncated"] == int((np.diff(whole.offsets) > 40).sum()) == 21


def test_max_per_class(data_copy):
    ds = build_dataset(data_copy, ["clock", "tent"], max_per_class=10)
    assert sum(len(ds.splits[s]) for s in SPLITS) == 20


def test_save_and_load_round_trip(ds, tmp_path):
    save_npz(ds, tmp_path / "d.npz")
    back = load_dataset(tmp_path / "d.npz")
    assert back.class_names == FIVE and back.max_seq_len == 150 and back.seed == 0
    assert back.meta == ds.meta
    for s in SPLITS:
        assert back.splits[s].drawings.rows.tolist() == ds.splits[s].drawings.rows.tolist()
        assert back.splits[s].drawings.offsets.tolist() == ds.splits[s].drawings.offsets.tolist()
        assert back.splits[s].labels.tolist() == ds.splits[s].labels.tolist()
        assert back.splits[s].drawings.keys == ds.splits[s].drawings.keys


def test_bad_dataset_files(tmp_path):
    with pytest.raises(DataError, match="no dataset file at"):
        load_dataset(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="is not a readable dataset file"):
        load_dataset(tmp_path / "junk.npz")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="is not a qdsketch dataset file"):
        load_dataset(tmp_path / "foreign.npz")


def test_a_class_whose_file_has_no_usable_drawing(tmp_path):
    (tmp_path / "simplified").mkdir()
    (tmp_path / "simplified" / "cat.ndjson").write_text("{broken\n[]\n")
    with pytest.raises(DataError, match=r"no usable drawing for 'cat' in .*cat.ndjson"):
        build_dataset(tmp_path, ["cat"])


@pytest.mark.parametrize("text", ["70,30", "a,b,c", "-1,50,50", "0,50,50"])
def test_bad_split(text):
    with pytest.raises(DataError, match="bad split"):
        parse_split(text)


@pytest.mark.parametrize(
    "key, value, why",
    [
        ("train_labels", lambda a: a + 99, "the train labels are not class indices"),
        ("val_labels", lambda a: a - 1, "the val labels are not class indices"),
        ("train_offsets", lambda a: a[::-1], "the train offsets do not start at 0"),
        ("test_offsets", lambda a: np.concatenate([a[:-1], [a[-1] + 5]]), "the test offsets do not cut its rows"),
        ("train_rows", lambda a: a[:, :2], "the train rows are not integer rows of 3"),
        ("val_rows", lambda a: -a, "the val rows have pen values other than 0 and 1"),  # found by tests/test_fuzz.py
        ("std", lambda a: a * 0, "std is not positive"),
        ("mean", lambda a: a * np.nan, "mean is not two finite numbers"),
        ("class_names", lambda a: a[:0], "class_names is not a list of names"),
        ("meta", lambda a: np.array("[1, 2]"), "meta is not a JSON object"),
        ("max_seq_len", lambda a: np.int64(10**12), "max_seq_len 1000000000000 is not between 1 and 10,000"),
        ("class_names", lambda a: np.append(a, "dog"), "class 'dog' has no drawings in train, val or test"),
        ("max_seq_len", lambda a: np.int64(-3), "max_seq_len -3 is not between 1 and 10,000"),
    ],
)
def test_a_broken_dataset_file_is_one_clear_error(dataset_path, tmp_path, key, value, why):
    with np.load(dataset_path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays[key] = value(arrays[key])
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=rf"bad.npz is not a usable dataset file \({why}\). Make one with"):
        load_dataset(tmp_path / "bad.npz")


def test_a_zip_bomb_is_refused_before_it_is_read(tmp_path):
    np.savez_compressed(tmp_path / "bomb.npz", train=np.zeros(60_000_000, np.uint8))  # 60 MB of zeros, 60 KB on disk
    with pytest.raises(
        DataError, match=r"bomb.npz is not a readable dataset file \(ValueError: train.npy would expand"
    ):
        load_dataset(tmp_path / "bomb.npz")
    with pytest.raises(DataError, match=r"bomb.npz is not a sketchrnn .npz file \(train.npy would expand"):
        sketchrnn.load_sketchrnn(tmp_path / "bomb.npz")


def test_progress_is_told_after_each_class(data_copy, tmp_path):
    from qdsketch.data.shards import write_shards

    calls = []
    build_dataset(data_copy, FIVE, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 5) for i in range(1, 6)]
    calls.clear()
    write_shards(Plan.of(data_copy, FIVE[:2]), tmp_path / "s", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]
