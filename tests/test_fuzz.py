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
from conftest import DATA, real_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qdsketch import readers
from qdsketch.checkpoint import bundled, load_checkpoint
from qdsketch.data import load_dataset
from qdsketch.errors import QdsketchError

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


def _valid_drawings(d: readers.Drawings) -> None:
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
            skipped = readers.Skipped()
            d = readers.read_ndjson(path, fmt, "cat", skipped=skipped)
            _valid_drawings(d)
        for line in lines:
            assert readers.keep_line(line, "simplified", "cat", True) in (True, False, None)
        try:
            word, rows = readers.read_drawing(path, 1)
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
            d = readers.read_npz(path)
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
        try:
            ds = load_dataset(path)
        except QdsketchError:
            return
        for split in ds.splits.values():  # what loads is consistent
            _valid_drawings(split.drawings) if len(split) else None
            assert len(split.labels) == len(split) and (split.labels < len(ds.class_names)).all()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real checkpoint of a tiny model (the shipped one, shrunk), quick to save and load."""
    from qdsketch.checkpoint import Checkpoint, save_checkpoint
    from qdsketch.model import SketchModel, preset

    shipped = load_checkpoint(bundled())
    model = SketchModel(preset("tiny", head="gmm", mixtures=3))
    path = tmp_path_factory.mktemp("fuzz") / "tiny.pt"
    save_checkpoint(
        path, Checkpoint(model, model.cfg, shipped.class_names, shipped.mean, shipped.std, 150, shipped.train, 1)
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
    d = readers.read_ndjson(DATA / "simplified" / "cat.ndjson", "simplified", "cat")
    assert len(d) > 20
