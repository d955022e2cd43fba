"""Property-based tests: every loader, fed whatever Hypothesis makes, either gives a
valid result or raises a ``QdsketchError`` with a message, never anything else.

CI runs a few hundred examples per loader; `HYPOTHESIS_PROFILE=thorough pytest
tests/test_fuzz.py` runs 10,000 each (docs/reliability.md has the figures).
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DATA, checkpoint_of, real_lines
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qdsketch.checkpoint import load_checkpoint
from qdsketch.data import fast as fastpath
from qdsketch.data import ndjson, sketchrnn
from qdsketch.data.drawings import Drawings, Skipped
from qdsketch.data.lines import keep_line
from qdsketch.data.preprocess import load_dataset
from qdsketch.errors import QdsketchError
from qdsketch.paths import bundled_model

settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# JSON values, with the numbers and shapes that break naive code
numbers = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 1, 255, 256, -1])
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=5))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=20,
)
strokes = st.lists(st.lists(st.lists(numbers | scalars, max_size=5), min_size=0, max_size=3), max_size=4)
drawings = st.fixed_dictionaries(
    {"drawing": st.one_of(strokes, values)},
    optional={"word": st.sampled_from(["cat", "dog", 3]), "key_id": values, "recognized": values},
)


def _line(obj) -> bytes:
    try:
        return json.dumps(obj).encode() + b"\n"
    except (ValueError, TypeError):
        return b"{}\n"


def _valid_drawings(d: Drawings) -> None:
    assert d.rows.dtype == np.int16 and d.rows.ndim == 2 and d.rows.shape[1] == 3
    assert d.offsets[0] == 0 and d.offsets[-1] == len(d.rows) and (np.diff(d.offsets) >= 1).all()
    assert len(d.keys) == len(d) and all(isinstance(k, str) for k in d.keys)
    assert set(np.unique(d.rows[:, 2])) <= {0, 1}


@given(st.lists(st.one_of(drawings.map(_line), st.binary(max_size=60).map(lambda b: b + b"\n")), max_size=8))
def test_ndjson_lines(lines):
    good = real_lines("cat")[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cat.ndjson"
        path.write_bytes(good[0] + b"".join(lines) + good[1])
        for fmt in ("simplified", "raw"):
            skipped = Skipped()
            d = ndjson.read_ndjson(path, fmt, "cat", skipped=skipped)
            _valid_drawings(d)
        for line in lines:
            assert keep_line(line, "simplified", "cat", True) in (True, False, None)
        try:
            word, rows = ndjson.read_drawing(path, 1)
            assert rows.ndim == 2 and rows.shape[1] == 3 and np.isfinite(rows).all()
        except QdsketchError:
            pass


arrays = st.one_of(
    st.builds(lambda n, v: np.full((n, 3), v, np.int16), st.integers(0, 5), st.integers(-(2**15), 2**15 - 1)),
    st.builds(lambda n, v: np.full((n,), v, np.float64), st.integers(0, 5), st.floats()),
    st.builds(lambda v: np.array(v, np.int64), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda n: np.zeros((n, 3, 2), np.int32), st.integers(0, 3)),
    st.just(np.array([None, 1], dtype=object)),
    st.just(np.array(["a", "b"])),
)


@given(st.dictionaries(st.sampled_from(["train", "valid", "test", "x"]), st.lists(arrays, max_size=3), max_size=3))
def test_sketchrnn_npz(members):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cat.npz"
        np.savez(path, **{k: np.array(v + [None], dtype=object)[:-1] if v else np.zeros(0) for k, v in members.items()})
        try:
            d = sketchrnn.read_npz(path)
        except QdsketchError:
            return
        _valid_drawings(d)


@pytest.fixture(scope="module")
def dataset_arrays(dataset_path):
    with np.load(dataset_path) as z:
        return {k: z[k] for k in z.files}


mutations = st.sampled_from(["drop", "empty", "scalar", "float", "negate", "shuffle", "grow", "string", "object"])


def _mutate(a: np.ndarray, how: str, rng: np.random.Generator):
    if how == "empty":
        return a[:0] if a.ndim else np.zeros(0)
    if how == "scalar":
        return np.int64(7)
    if how == "float":
        return a.astype(np.float64) * 1.5 if a.dtype.kind in "iuf" else a
    if how == "negate":
        return -a if a.dtype.kind in "if" else a
    if how == "shuffle":
        return rng.permutation(a) if a.ndim else a
    if how == "grow":
        return np.concatenate([a, a]) if a.ndim else a
    if how == "string":
        return np.array("{not json")
    return np.array([1, None], dtype=object)


def _loads_whole_or_refuses(path: Path) -> None:
    """A dataset file or folder either is refused with a QdsketchError, or loads consistent."""
    try:
        ds = load_dataset(path)
    except QdsketchError:
        return
    for split in ds.splits.values():
        _valid_drawings(split.drawings) if len(split) else None
        assert len(split.labels) == len(split) and (split.labels < len(ds.class_names)).all()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 100), mutations), min_size=1, max_size=3), st.integers(0, 2**32 - 1))
def test_dataset_files(dataset_arrays, changes, seed):
    rng = np.random.default_rng(seed)
    arrays = dict(dataset_arrays)
    keys = sorted(arrays)
    for which, how in changes:
        key = keys[which % len(keys)]
        if how == "drop":
            arrays.pop(key, None)
        elif key in arrays:
            arrays[key] = _mutate(arrays[key], how, rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.npz"
        try:
            np.savez(path, **arrays)
        except ValueError:
            return
        _loads_whole_or_refuses(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _manifest_paths(value, path=()):
    """Every place in a manifest: ``(key, key, ...)`` down to each value."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _manifest_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _manifest_paths(v, (*path, i))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["set", "drop"]), json_values), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 100), mutations), max_size=2),
    st.integers(0, 2**32 - 1),
)
def test_sharded_datasets(sharded_path, manifest_changes, array_changes, seed):
    """A real sharded dataset with any of its manifest's values replaced by any JSON value or
    dropped, and any of its shard files rewritten as the dataset-file fuzz mutates arrays:
    either one DataError, or a dataset that passes the same checks as any other."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        folder.mkdir()
        for original in sharded_path.iterdir():  # links: a file is copied only to be changed
            (folder / original.name).symlink_to(original)
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").unlink()
        for which, how, value in manifest_changes:
            places = [p for p in _manifest_paths(manifest) if p]
            *parent_path, key = places[which % len(places)]
            parent = manifest
            for step in parent_path:
                parent = parent[step]
            if how == "drop" and isinstance(parent, dict):
                parent.pop(key)
            else:
                parent[key] = value
        (folder / "manifest.json").write_text(json.dumps(manifest))
        files = sorted(folder.glob("*.npy"))
        for which, how in array_changes:
            path = files[which % len(files)]
            if how == "drop":
                path.unlink(missing_ok=True)
            elif path.exists():
                array = np.load(path, allow_pickle=True)  # the test's own object arrays, from an earlier change
                path.unlink()  # the link, never the dataset it points to
                np.save(path, _mutate(array, how, rng), allow_pickle=True)
        _loads_whole_or_refuses(folder)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real checkpoint of a tiny model (the shipped one, shrunk), quick to save and load."""
    from qdsketch.checkpoint import save_checkpoint
    from qdsketch.config import preset
    from qdsketch.model import SketchModel

    shipped = load_checkpoint(bundled_model())
    model = SketchModel(preset("tiny", head="gmm", mixtures=3))
    path = tmp_path_factory.mktemp("fuzz") / "tiny.pt"
    save_checkpoint(
        path,
        checkpoint_of(model, shipped.class_names, mean=shipped.mean, std=shipped.std, epoch=1, train=shipped.train),
    )
    return path


config_values = st.one_of(
    st.integers(-5, 10**6), st.floats(), st.text(max_size=4), st.none(), st.sampled_from(["mse", "gmm"])
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["n_classes", "hidden", "layers", "head", "mixtures", "embed_dim"]), config_values, max_size=3
    ),
    st.dictionaries(
        st.sampled_from(["max_seq_len", "class_names", "mean", "std", "version", "epoch"]), values, max_size=2
    ),
)
def test_checkpoints(tiny_checkpoint, config_changes, payload_changes):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload["model_config"].update(config_changes)
    payload.update(payload_changes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.pt"
        torch.save(payload, path)
        try:
            ckpt = load_checkpoint(path)
        except QdsketchError:
            return
        from qdsketch.sample import generate, sketch_seeds

        g = generate(ckpt, [0], sketch_seeds(0, 1), 0.25, 5)  # a model that loads also draws
        assert np.isfinite(g.rows[0]).all()


def test_the_fuzz_data_is_real():
    """The lines around the generated ones are real drawings that must survive."""
    d = ndjson.read_ndjson(DATA / "simplified" / "cat.ndjson", "simplified", "cat")
    assert len(d) > 20


# --- the fast path for simplified files equals the line-by-line one -----------------------

coordinates = st.integers(0, 1100)  # past 255: out of range; past 999: four digits
strokes_of_n = st.integers(0, 4).flatmap(
    lambda n: st.tuples(st.lists(coordinates, min_size=n, max_size=n), st.lists(coordinates, min_size=n, max_size=n))
)


def _google_line(strokes, key, word, recognized, fields) -> bytes:
    """A line as Google writes them (or with only some of the fields)."""
    obj = {"word": word, "countrycode": "US", "timestamp": "2017-03-02 23:25:10.07453 UTC"}
    obj = {k: v for k, v in obj.items() if k in fields}
    obj |= {"recognized": recognized, "key_id": key, "drawing": [list(s) for s in strokes]}
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


google_lines = st.builds(
    _google_line,
    st.lists(strokes_of_n, max_size=4),
    st.sampled_from(["5201136883597312", "5201136883597313", "", 7]),  # repeated, missing, not a string
    st.sampled_from(["cat", "cat", "dog"]),
    st.sampled_from([True, True, False, 0, None]),
    st.sets(st.sampled_from(["word", "countrycode", "timestamp"])),
)
TRICKY_FIELDS = [  # text before "drawing": that a cut at the first "drawing": would misread
    b'{"word":"cat","key_id":"9","x\\',  # the key x"drawing, which is not "drawing"
    b'{"word":"cat","key_id":"9","meta":{"drawing":1},',  # "drawing" in a nested object first
    b'{"word":"cat","key_id":"9","s":"]}{[\\"\\\\",',  # brackets and escapes in a string
    b'{"word":"cat","key_id":"9","drawing" :0,',  # a spaced "drawing" before
    b'{"word":"cat","key_id":"9","a":{',  # an object left open
    b'{"word":"cat","key_id":"9"}{',  # closed before it
    b'{"word":"cat","key_id":"9","a":1}, {"b":2,',  # two objects
    b' {"word":"cat","key_id":"9",',  # a space first
    b'{"word":"cat","key_id":"9","recognized":true,"drawing":[[[1],[2]]],',  # drawing twice
]
tricky_lines = st.builds(
    lambda fields, strokes: (
        fields + b'"drawing":' + json.dumps([list(s) for s in strokes], separators=(",", ":")).encode() + b"}\n"
    ),
    st.sampled_from(TRICKY_FIELDS),
    st.lists(strokes_of_n, min_size=1, max_size=3),
)
edits = st.lists(
    st.tuples(
        st.integers(0, 2000),
        st.sampled_from("insert delete replace".split()),
        st.sampled_from(b'0123456789[],}" \n\r-.a{'),
    ),
    max_size=2,
)


def _counting(fast_chunk, taken: list[bool]):
    """``fast_chunk``, noting in ``taken`` for each chunk whether it was read the fast way."""

    def counted(*args):
        result = fast_chunk(*args)
        taken.append(result is not fastpath.FALLBACK)
        return result

    return counted


def _edit(line: bytes, changes) -> bytes:
    b = bytearray(line)
    for at, how, byte in changes:
        at %= len(b) + 1
        if how == "insert":
            b[at:at] = bytes([byte])
        elif b and at < len(b):
            b[at : at + 1] = b"" if how == "delete" else bytes([byte])
    return bytes(b)


@given(
    st.lists(
        st.one_of(
            google_lines,
            st.builds(_edit, google_lines, edits),
            tricky_lines,
            st.sampled_from(real_lines("cat")[:3] + [b"\n", b" \n", b"   \n", b"\r\n"]),
        ),
        max_size=12,
    ),
    st.sampled_from([None, 1, 2, 5]),
    st.booleans(),
    st.sampled_from([1024, 3, 1]),
    st.booleans(),
)
def test_the_fast_path_reads_exactly_what_the_line_by_line_path_reads(lines, limit, recognized_only, chunk, newline):
    """The numpy path for simplified files must give the same drawings, keys, skip counts,
    reasons and examples, in the same order, as _read_chunk, whatever the lines (a chunk
    it does not plainly understand goes to _read_chunk whole)."""
    data = b"".join(lines)
    if not newline:
        data = data.rstrip(b"\n")  # a file whose last line has no newline
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cat.ndjson"
        path.write_bytes(data)
        got, taken = [], []
        counted = _counting(fastpath.read_chunk, taken)
        for fast in (True, False):
            with pytest.MonkeyPatch.context() as m:
                m.setattr(ndjson, "FAST", fast)
                m.setattr(ndjson, "CHUNK", chunk)
                m.setattr(fastpath, "read_chunk", counted)
                seen, skipped = {"5201136883597313"}, Skipped()  # a key another file had
                d = ndjson.read_ndjson(path, "simplified", "cat", limit, recognized_only, seen, skipped)
                got.append((d.rows.dtype, d.rows.tobytes(), d.offsets.tolist(), d.keys, skipped.as_dict(), seen))
        event(f"chunks read the fast way: {'all' if all(taken) else 'some' if any(taken) else 'none'}")
        assert got[0] == got[1]


def test_the_fast_path_reads_every_real_file_as_the_line_by_line_path_does(monkeypatch):
    """Every real simplified file beside the repository (or in tests/data), both ways."""
    from helpers import SHARED

    folders = [SHARED / f for f in ("simplified", "bulk")] if (SHARED / "bulk").is_dir() else [DATA / "simplified"]
    files = [f for folder in folders for f in sorted(folder.glob("*.ndjson"))]
    assert len(files) >= 5
    taken: list[bool] = []
    monkeypatch.setattr(fastpath, "read_chunk", _counting(fastpath.read_chunk, taken))
    for path in files:
        got = []
        for fast in (True, False):
            monkeypatch.setattr(ndjson, "FAST", fast)
            skipped = Skipped()
            d = ndjson.read_ndjson(path, "simplified", path.stem, recognized_only=False, skipped=skipped)
            got.append((d.rows.tobytes(), d.offsets.tolist(), d.keys, skipped.as_dict()))
        assert got[0] == got[1], path
    assert all(taken) and len(taken) >= len(files)  # Google's files: never line by line
