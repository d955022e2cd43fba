"""Reading files: bad drawings are skipped and counted, never fatal."""

import json

import numpy as np
import pytest
from helpers import DATA, corrupt, real_lines

from qdsketch.data import drawings, ndjson, sketchrnn
from qdsketch.errors import DataError
from qdsketch.strokes import drawing_to_stroke3, simplify_drawing

BAD = [
    "malformed JSON",
    "empty stroke",
    "x/y length mismatch",
    "non-numeric value",
    "out-of-range value",
    "empty drawing",
    "a stroke is not [xs, ys]",
    "key_id is not a string",
]


def test_bad_drawings_are_skipped_with_file_and_line(tmp_path):
    good = real_lines("house")
    lines = [good[0]] + [corrupt(good[i + 1], how) for i, how in enumerate(BAD)] + good[len(BAD) + 1 :]
    lines.insert(3, b"[1, 2, 3]\n")
    path = tmp_path / "house.ndjson"
    path.write_bytes(b"".join(lines))
    skipped = drawings.Skipped()
    got = ndjson.read_ndjson(path, "simplified", "house", skipped=skipped)
    assert dict(skipped.reasons) == {**{b: 1 for b in BAD}, "not a Quick, Draw! drawing (no 'drawing' key)": 1}
    assert skipped.examples[0] == "house.ndjson:2: malformed JSON"
    assert "house.ndjson:4: not a Quick, Draw! drawing (no 'drawing' key)" in skipped.examples
    assert "house.ndjson:6: non-numeric value" in skipped.examples
    # what is kept is exactly the good drawings, in order
    kept = [json.loads(line) for i, line in enumerate(good) if i == 0 or i > len(BAD)]
    kept = [o for o in kept if o["recognized"]]
    assert len(got) == len(kept)
    for i, obj in enumerate(kept):
        assert got.rows[got.offsets[i] : got.offsets[i + 1]].tolist() == drawing_to_stroke3(obj["drawing"]).tolist()
        assert got.keys[i] == obj["key_id"]


def test_limit_stops_reading_and_keys_dedupe(tmp_path):
    path = DATA / "simplified" / "clock.ndjson"
    seen = set()
    first = ndjson.read_ndjson(path, "simplified", "clock", limit=7, seen=seen)
    assert len(first) == 7 and len(seen) == 7
    skipped = drawings.Skipped()
    rest = ndjson.read_ndjson(path, "simplified", "clock", seen=seen, skipped=skipped)
    assert len(rest) == 25 - 7 and skipped.duplicates == 7


def test_unrecognized_are_counted_not_bad():
    skipped = drawings.Skipped()
    got = ndjson.read_ndjson(DATA / "simplified" / "nail.ndjson", "simplified", "nail", skipped=skipped)
    assert (len(got), skipped.unrecognized, skipped.bad) == (20, 5, 0)
    assert (
        len(ndjson.read_ndjson(DATA / "simplified" / "nail.ndjson", "simplified", "nail", recognized_only=False)) == 25
    )


def test_a_word_from_another_class_is_bad(tmp_path):
    path = tmp_path / "cat.ndjson"
    path.write_bytes(b"".join(real_lines("tent")[:2]))
    skipped = drawings.Skipped()
    assert len(ndjson.read_ndjson(path, "simplified", "cat", skipped=skipped)) == 0
    assert skipped.reasons == {"word 'tent' where 'cat' was expected": 2}


def test_raw_files_are_simplified_on_the_way_in():
    got = ndjson.read_ndjson(DATA / "raw" / "tent.ndjson", "raw", "tent")
    objs = [json.loads(line) for line in real_lines("tent", "raw")]
    objs = [o for o in objs if o["recognized"]]
    assert len(got) == len(objs)
    for i in (0, len(objs) - 1):
        points = simplify_drawing(objs[i]["drawing"])
        expected = drawing_to_stroke3([[p[:, 0], p[:, 1]] for p in points])
        assert got.rows[got.offsets[i] : got.offsets[i + 1]].tolist() == expected.tolist()


def sketchrnn_file(path, drawings):
    arrays = {}
    for split in ("train", "valid", "test"):
        arrays[split] = np.empty(len(drawings), dtype=object)
        arrays[split][:] = drawings
    np.savez(path, **arrays)


def test_sketchrnn_npz_is_read_without_trusting_pickle(tmp_path):
    real = [drawing_to_stroke3(json.loads(line)["drawing"]).astype(np.int16) for line in real_lines("nail")[:4]]
    sketchrnn_file(tmp_path / "nail.npz", real)
    got = sketchrnn.read_npz(tmp_path / "nail.npz")
    assert len(got) == 12
    assert got.rows[: got.offsets[1]].tolist() == real[0].tolist()
    assert got.keys[:2] == ["nail.npz:train[0]", "nail.npz:train[1]"]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = np.empty(1, dtype=object)
    evil[0] = Evil()
    np.savez(tmp_path / "evil.npz", train=evil)
    with pytest.raises(DataError, match=r"builtins.print is not allowed in a sketchrnn file"):
        sketchrnn.read_npz(tmp_path / "evil.npz")


@pytest.mark.parametrize(
    "train, why",
    [
        (np.array(5), "train.npy is not a list of drawings"),  # a 0-d array
        (np.array(None, dtype=object), "train.npy is not a list of drawings"),  # a 0-d pickled one
    ],
)
def test_a_sketchrnn_file_of_the_wrong_shape_is_one_clear_error(tmp_path, train, why):
    np.savez(tmp_path / "odd.npz", train=train)
    with pytest.raises(DataError, match=rf"odd.npz is not a sketchrnn .npz file \(.*{why}"):
        sketchrnn.read_npz(tmp_path / "odd.npz")


def test_sketchrnn_bad_arrays_are_skipped(tmp_path):
    real = drawing_to_stroke3(json.loads(real_lines("nail")[0])["drawing"]).astype(np.int16)
    pen2 = real.copy()
    pen2[0, 2] = 2
    wraps = real.astype(np.int64)
    wraps[1, 0] = np.iinfo(np.int64).min  # abs() of it is itself: it used to wrap into int16
    sketchrnn_file(tmp_path / "nail.npz", [real, pen2, real[:, :2].copy(), wraps])
    skipped = drawings.Skipped()
    got = sketchrnn.read_npz(tmp_path / "nail.npz", skipped=skipped)
    assert len(got) == 3
    assert skipped.reasons == {"out-of-range value": 6, "not an (n, 3) stroke-3 array": 3}


def test_hostile_lines_are_skipped_with_a_reason_never_a_crash(tmp_path):
    good = real_lines("cat")
    hostile = [
        b'{"word":"cat","drawing":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",  # nested 100,000 deep
        b'{"word":"cat","drawing":[[[1,' + b"9" * 400 + b"],[1,2]]]}\n",  # a 400-digit integer
        b'{"word":"cat","drawing":[[[[1,2],[3]],[1,2]]]}\n',  # nested coordinate lists
        b'{"word":"cat","key_id":["a"],"drawing":[[[1,2],[1,2]]]}\n',  # an unhashable key_id
    ]
    path = tmp_path / "cat.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + good[0] + b"".join(hostile) + b"".join(good[1:]))  # a BOM first
    skipped = drawings.Skipped()
    got = ndjson.read_ndjson(path, "simplified", "cat", skipped=skipped)
    assert dict(skipped.reasons) == {
        "malformed JSON": 1,
        "out-of-range value": 1,
        "non-numeric value": 1,
        "key_id is not a string": 1,
    }
    recognized = [json.loads(line) for line in good if json.loads(line)["recognized"]]
    assert list(got.keys) == [o["key_id"] for o in recognized]  # the BOM'd first drawing is kept


def test_a_drawing_of_only_empty_strokes_is_skipped_not_a_crash(tmp_path):
    """It has no points at all; last in a chunk, or alone, it used to crash the range check."""
    path = tmp_path / "cat.ndjson"
    empty = b'{"word":"cat","drawing":[[[],[]]]}\n'
    for lines, kept in (([empty], 0), ([real_lines("cat")[0], empty], 1), ([empty, real_lines("cat")[0], empty], 1)):
        path.write_bytes(b"".join(lines))
        for fast in (True, False):
            skipped = drawings.Skipped()
            with pytest.MonkeyPatch.context() as m:
                m.setattr(ndjson, "FAST", fast)
                got = ndjson.read_ndjson(path, "simplified", "cat", skipped=skipped)
            assert len(got) == kept and dict(skipped.reasons) == {"empty stroke": len(lines) - kept}


def test_a_drawing_key_that_is_not_drawing_is_not_taken_for_it(tmp_path):
    """``"x\\"drawing":`` is the key ``x"drawing``: the line has no drawing, both ways. The
    fast path once cut the line there and kept it; it now finds the key as JSON does."""
    path = tmp_path / "cat.ndjson"
    strokes = b"[[[1,2],[3,4]]]}\n"
    good = b'{"word":"cat","key_id":"2","drawing":' + strokes
    for head, kept in (
        (b'{"word":"cat","key_id":"1","x\\"drawing":', 1),  # x"drawing: no drawing
        (b'{"word":"cat","key_id":"1","meta":{"a":0},"drawing":', 2),  # a nested object first
        (b'{"word":"cat","key_id":"1","s":"]}{[\\\\","drawing":', 2),  # brackets and an escape in a string
    ):
        path.write_bytes(head + strokes + good)
        got = []
        for fast in (True, False):
            skipped = drawings.Skipped()
            with pytest.MonkeyPatch.context() as m:
                m.setattr(ndjson, "FAST", fast)
                d = ndjson.read_ndjson(path, "simplified", "cat", skipped=skipped)
            got.append((d.rows.tobytes(), d.keys, skipped.as_dict()))
        assert got[0] == got[1] and len(got[0][1]) == kept, head
