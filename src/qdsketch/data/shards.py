"""The sharded dataset: a directory of memory-mappable ``.npy`` shards and a manifest.

``qdsketch preprocess -o DIR`` writes one, class by class, in bounded memory;
``load_shards`` maps it without reading it (``np.load(mmap_mode="r")``).
docs/data-format.md describes the layout:

    DIR/manifest.json              written last: its presence means complete
    DIR/{split}-{k:05d}.rows.npy        int16 (R, 3)  stroke-3 rows
    DIR/{split}-{k:05d}.offsets.npy     int64 (N + 1,) drawing i is rows[offsets[i]:offsets[i + 1]]
    DIR/{split}-{k:05d}.labels.npy      int64 (N,)
    DIR/{split}-{k:05d}.keys.npy        uint8 (B,)    every key_id, UTF-8, back to back
    DIR/{split}-{k:05d}.key_offsets.npy int64 (N + 1,) key i is keys[key_offsets[i]:key_offsets[i + 1]]

A shard holds whole classes of one split, about ``shard_drawings`` drawings.
The output is built in a hidden sibling directory and renamed into place at
the end, so a killed run leaves nothing that looks complete, and an existing
dataset stays whole until the new one is.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qdsketch.data import pool
from qdsketch.data.dataset import SPLITS, Dataset, Shard, Split, check
from qdsketch.data.drawings import Drawings, Skipped, select_rows, take_ragged
from qdsketch.data.plan import Moments, Plan, check_class, split_indices
from qdsketch.data.sources import iter_class
from qdsketch.errors import DataError
from qdsketch.files import atomic_path, sweep_parts, temp_dir

FORMAT = "qdsketch-shards"
VERSION = 1
MANIFEST = "manifest.json"
#: drawings per shard, roughly: a shard closes after the class that passes this
SHARD_DRAWINGS = 1 << 20
SPLIT_BLOCK = 1024  # drawings of a class's split cut, copied and written at a time
RELEASE_ABOVE = 4 << 20  # bytes of a class's spill files kept mapped until the class is written
ARRAYS = {  # name: (dtype, shape after the first axis)
    "rows": ("<i2", (3,)),
    "offsets": ("<i8", ()),
    "labels": ("<i8", ()),
    "keys": ("|u1", ()),
    "key_offsets": ("<i8", ()),
}
HEADER = 128  # bytes reserved for an .npy header, written when the shard closes
SYNC_EVERY = 32 << 20  # bytes appended to a shard file between two background fsyncs


class Syncer:
    """fsync in a background thread, a file at a time, so that the disk writes a shard back
    while it is still being written instead of all at once when it closes (about a
    tenth of preprocess's time). An error (a full disk) is raised by ``wait``."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="qdsketch-fsync")

    def sync(self, fd: int):
        return self.pool.submit(os.fsync, fd)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class NpyAppender:
    """An ``.npy`` file written in pieces: the header is written last, once the length is known."""

    def __init__(self, path: Path, dtype: str, tail: tuple, syncer: Syncer | None = None):
        self.path, self.dtype, self.tail, self.n = path, np.dtype(dtype), tail, 0
        self.handle = open(path, "wb")
        self.handle.write(b"\0" * HEADER)
        self.syncer, self.syncing, self.unsynced = syncer, None, 0
        self.row_bytes = self.dtype.itemsize * int(np.prod(tail))

    def append(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array, dtype=self.dtype)
        assert array.shape[1:] == self.tail, (self.path, array.shape)
        self.handle.write(array.data)
        self._appended(len(array), array.nbytes)

    def reserve(self, count: int) -> int:
        """Room for ``count`` items after those so far, for another process to write: where it starts."""
        at = HEADER + self.n * self.row_bytes
        self._appended(count, count * self.row_bytes)
        return at

    def _appended(self, count: int, nbytes: int) -> None:
        self.n += count
        self.unsynced += nbytes
        if self.syncer is not None and self.unsynced >= SYNC_EVERY and (self.syncing is None or self.syncing.done()):
            self.wait()
            self.handle.flush()
            self.syncing, self.unsynced = self.syncer.sync(self.handle.fileno()), 0

    def wait(self) -> None:
        """Wait for the background fsync, if any; raise its error."""
        if self.syncing is not None:
            self.syncing.result()
            self.syncing = None

    def close(self) -> int:
        """Write the header; returns the file's size."""
        header = {"descr": self.dtype.str, "fortran_order": False, "shape": (self.n, *self.tail)}
        text = repr(header).encode("latin1")
        text += b" " * (HEADER - 10 - len(text) - 1) + b"\n"
        self.handle.seek(0)
        self.handle.write(b"\x93NUMPY\x01\x00" + (HEADER - 10).to_bytes(2, "little") + text)
        self.handle.flush()
        try:
            self.wait()
            os.fsync(self.handle.fileno())  # little is left to flush: the background fsyncs did the rest
        finally:
            size = self.handle.seek(0, os.SEEK_END)
            self.handle.close()
        return size


class ShardWriter:
    """The shards of one split, class by class: here, a class's place in the open shard is
    reserved and its offsets and labels appended (``reserve``), in class order; a worker
    writes its rows and keys in that place (``cut_class``). A shard that holds enough
    drawings after a class closes once that class is written (shards end between classes)."""

    def __init__(self, folder: Path, split: str, shard_drawings: int, syncer: Syncer | None = None):
        self.folder, self.split, self.limit, self.syncer = folder, split, shard_drawings, syncer
        self.done: list[dict] = []
        self.files: dict[str, NpyAppender] | None = None
        self.full: list[tuple[int, str, dict[str, NpyAppender]]] = []  # (last class, name, files): to close

    def reserve(self, offsets: np.ndarray, key_offsets: np.ndarray, label: int) -> tuple[str, int, str, int]:
        """Room for drawings of class ``label`` whose rows end at ``offsets[1:]`` and whose keys
        (UTF-8) end at ``key_offsets[1:]``: ``(rows file, byte offset, keys file, byte offset)``."""
        if self.files is None:
            self.name = f"{self.split}-{len(self.done) + len(self.full):05d}"
            self.files = {
                k: NpyAppender(self.folder / f"{self.name}.{k}.npy", *spec, self.syncer) for k, spec in ARRAYS.items()
            }
            self.files["offsets"].append(np.zeros(1, np.int64))
            self.files["key_offsets"].append(np.zeros(1, np.int64))
            self.rows = self.key_bytes = 0
        f = self.files
        n_rows, n_bytes = int(offsets[-1]), int(key_offsets[-1])
        place = (str(f["rows"].path), f["rows"].reserve(n_rows), str(f["keys"].path), f["keys"].reserve(n_bytes))
        f["offsets"].append(offsets[1:] + self.rows)
        f["labels"].append(np.full(len(offsets) - 1, label, np.int64))
        f["key_offsets"].append(key_offsets[1:] + self.key_bytes)
        self.rows += n_rows
        self.key_bytes += n_bytes
        if f["labels"].n >= self.limit:
            self.full.append((label, self.name, f))
            self.files = None
        return place

    def written(self, label: int) -> None:
        """Class ``label`` and those before it are written: close the shards they filled."""
        while self.full and self.full[0][0] <= label:
            _, name, files = self.full.pop(0)
            self._close(name, files)

    def close(self) -> None:
        """Every class is written: close the shards left."""
        for _, name, files in self.full:
            self._close(name, files)
        self.full.clear()
        if self.files is not None:
            self._close(self.name, self.files)
            self.files = None

    def _close(self, name: str, files: dict[str, NpyAppender]) -> None:
        n, rows = files["labels"].n, files["rows"].n
        sizes = {k: a.close() for k, a in files.items()}
        self.done.append({"name": name, "drawings": n, "rows": rows, "bytes": sizes})


def encode_keys(keys: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """Keys as UTF-8 back to back, and where each ends."""
    text = "".join(keys)
    if text.isascii():  # Google's key_ids: a byte a character, no per-key work
        return text.encode("ascii"), np.cumsum(np.fromiter(map(len, keys), np.int64, len(keys)))
    encoded = [k.encode("utf-8", "surrogatepass") for k in keys]
    return b"".join(encoded), np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)))


@dataclass
class Spilled:
    """One class, read into two files of ``folder`` as it was read, never held whole:
    its stroke-3 rows (int16) and its keys (UTF-8), each cut by its offsets."""

    rows: Path
    keys: Path
    offsets: np.ndarray
    key_offsets: np.ndarray
    skipped: Skipped
    label: int = -1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def mapped(self) -> tuple[np.ndarray, np.ndarray, Callable[[], None]]:
        """``(rows, keys, release)``: the files memory-mapped (unmapped when the arrays go);
        ``release()`` lets go of the pages read so far, which count as this process's
        memory while they stay mapped, if there can be more than ``RELEASE_ABOVE`` bytes
        of them (a block's drawings come from all over a class, so its pages are read
        again after each release)."""
        maps = []
        for path in (self.rows, self.keys):
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                maps.append(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None)
        rows = np.frombuffer(maps[0], np.int16).reshape(-1, 3) if maps[0] else np.zeros((0, 3), np.int16)
        keys = np.frombuffer(maps[1], np.uint8) if maps[1] else np.zeros(0, np.uint8)

        big = sum(len(m) for m in maps if m is not None) > RELEASE_ABOVE  # below, the faults cost more

        def release() -> None:
            for m in maps:
                if big and m is not None:
                    m.madvise(mmap.MADV_DONTNEED)

        return rows, keys, release

    def remove(self) -> None:
        self.rows.unlink(missing_ok=True)
        self.keys.unlink(missing_ok=True)


def spill_class(job: tuple) -> Spilled:
    """Read one class into ``Spilled`` files, a chunk at a time (run in a worker process):
    ``job`` is ``(data_dir, name, limit, recognized_only, folder, label)``."""
    data_dir, name, limit, recognized_only, folder, label = job
    skipped = Skipped()
    rows_path, keys_path = folder / f".spill-{label:05d}.rows", folder / f".spill-{label:05d}.keys"
    offsets, key_offsets = [np.zeros(1, np.int64)], [np.zeros(1, np.int64)]
    n_rows = n_bytes = 0
    with open(rows_path, "wb") as rows, open(keys_path, "wb") as keys:
        for chunk in iter_class(data_dir, name, limit, recognized_only, skipped):
            blob, ends = encode_keys(chunk.keys)
            rows.write(np.ascontiguousarray(chunk.rows, np.int16).data)
            keys.write(blob)
            offsets.append(chunk.offsets[1:] + n_rows)
            key_offsets.append(ends + n_bytes)
            n_rows += len(chunk.rows)
            n_bytes += len(blob)
    return Spilled(rows_path, keys_path, np.concatenate(offsets), np.concatenate(key_offsets), skipped, label)


def write_shards(
    plan: Plan, output: Path, workers: int = 1, shard_drawings: int = SHARD_DRAWINGS, progress=None
) -> dict:
    """Read, split and write ``plan`` as a sharded dataset at ``output``; returns the manifest."""
    output = Path(output)
    if output.exists() and not (output / MANIFEST).is_file():
        if not output.is_dir() or any(output.iterdir()):
            raise DataError(f"{output} exists and is not a qdsketch dataset", "pass another --output")
    output.parent.mkdir(parents=True, exist_ok=True)
    sweep_parts(output)  # what a killed preprocess left: gigabytes, for large data
    work = temp_dir(output)
    syncer = Syncer()
    try:
        manifest = _write(plan, work, workers, shard_drawings, progress, syncer)
        _swap(work, output)
    except OSError as exc:  # disk full, above all: nothing is left, the old dataset stays
        raise DataError(
            f"could not write {output}: {exc.strerror or exc}", "free some disk space, or pass another --output"
        ) from None
    finally:
        syncer.close()  # before the files go: a background fsync may still hold one
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def summary(manifest: dict) -> dict:
    """``data.summarize``'s figures, from a manifest."""
    counts, meta = manifest["counts"], manifest["meta"]
    total = {s: sum(c[s] for c in counts.values()) for s in SPLITS}
    n = sum(total.values())
    mean, std = manifest["mean"], manifest["std"]
    return {
        "classes": counts,
        "total": total,
        "mean_length": manifest["lengths"]["sum"] / n if n else 0.0,
        "max_length": manifest["lengths"]["max"],
        "max_seq_len": manifest["max_seq_len"],
        "truncated": meta["truncated"],
        "skipped": meta["skipped"],
        "dx": {"mean": mean[0], "std": std[0]},
        "dy": {"mean": mean[1], "std": std[1]},
    }


def cut_class(job: tuple) -> Moments:
    """Copy a spilled class's splits into their places in the shards (``job``: ``(spilled,
    index, max_len, places)``, ``index`` the drawings of each split in order, ``places``
    what ``ShardWriter.reserve`` gave each split), ``SPLIT_BLOCK`` drawings at a time, each
    cut to ``max_len`` rows (run in a worker process). Returns the training split's moments."""
    spilled, index, max_len, places = job
    rows, keys, release = spilled.mapped()
    moments = Moments()
    for split, i, (rows_path, rows_at, keys_path, keys_at) in zip(SPLITS, index, places):
        rows_fd, keys_fd = os.open(rows_path, os.O_WRONLY), os.open(keys_path, os.O_WRONLY)
        try:
            for start in range(0, len(i), SPLIT_BLOCK):  # so that memory does not grow with the class
                block = i[start : start + SPLIT_BLOCK]
                block_rows, _ = select_rows(rows, spilled.offsets, block, max_len)
                block_keys, _ = take_ragged(keys, spilled.key_offsets, block)
                release()
                if split == "train":
                    moments.add(block_rows)
                rows_at += _write_at(rows_fd, np.ascontiguousarray(block_rows, "<i2"), rows_at)
                keys_at += _write_at(keys_fd, block_keys, keys_at)
        finally:
            os.close(rows_fd)
            os.close(keys_fd)
    del rows, keys  # unmapped
    spilled.remove()
    return moments


def _write_at(fd: int, array: np.ndarray, at: int) -> int:
    """Write ``array``'s bytes at byte ``at`` of ``fd``, all of them: how many."""
    data = array.data.cast("B")
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], at + done)
    return done


def _write(plan: Plan, work: Path, workers: int, shard_drawings: int, progress=None, syncer=None) -> dict:
    """Each class is read into spill files (in ``workers`` processes), split here, in class
    order, with one generator seeded by ``plan.seed``, and copied from its spill files into
    the places reserved for it in the shards (in the workers again): no process ever holds a
    class whole, and what must be done here, in order, is little more than the offsets."""
    writers = {s: ShardWriter(work, s, shard_drawings, syncer) for s in SPLITS}
    skipped, truncated, moments = Skipped(), 0, Moments()
    counts: dict[str, dict[str, int]] = {}
    lengths = {"sum": 0, "max": 0}
    rng = np.random.default_rng(plan.seed)
    jobs = [
        (plan.data_dir, name, plan.max_per_class, plan.recognized_only, work, label)
        for label, name in enumerate(plan.classes)
    ]

    def split(spilled: Spilled) -> tuple:
        """Here, in class order: the one generator splits the class, and its place in the
        shards is reserved for a worker to write it."""
        label = spilled.label
        assert label == len(counts), "classes split out of order"
        check_class(plan, label, len(spilled), spilled.skipped)
        index = split_indices(len(spilled), plan.fractions, rng)
        counts[plan.classes[label]] = {s: len(i) for s, i in zip(SPLITS, index)}
        rows, key_bytes = np.diff(spilled.offsets), np.diff(spilled.key_offsets)
        places = []
        for s, i in zip(SPLITS, index):
            steps = np.minimum(rows[i], plan.max_seq_len)
            offsets, key_offsets = np.zeros(len(i) + 1, np.int64), np.zeros(len(i) + 1, np.int64)
            np.cumsum(steps, out=offsets[1:])
            np.cumsum(key_bytes[i], out=key_offsets[1:])
            places.append(writers[s].reserve(offsets, key_offsets, label))
            lengths["sum"] += int(offsets[-1])
            lengths["max"] = max(lengths["max"], int(steps.max(initial=0)))
        return spilled, index, plan.max_seq_len, places

    plan.preload(workers)
    for label, (spilled, split_moments) in enumerate(pool.ordered(jobs, workers, spill_class, split, cut_class)):
        skipped.merge(spilled.skipped)
        truncated += int((np.diff(spilled.offsets) > plan.max_seq_len).sum())
        moments.merge(split_moments)
        for w in writers.values():
            w.written(label)
        if progress is not None:
            progress(label + 1, len(plan.classes))
    for w in writers.values():
        w.close()
    if not sum(c["train"] for c in counts.values()):
        raise DataError("the training split is empty", "use more drawings or a larger first --split weight")
    mean, std = moments.normalizer()
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "class_names": plan.classes,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "max_seq_len": plan.max_seq_len,
        "seed": plan.seed,
        "counts": counts,
        "lengths": lengths,
        "splits": {s: w.done for s, w in writers.items()},
        "meta": plan.meta(skipped, truncated),
    }
    with atomic_path(work / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def _swap(work: Path, output: Path) -> None:
    """Put the finished ``work`` directory at ``output``; an old dataset there goes only once the new one is in."""
    if output.exists():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
        os.replace(work, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, output)


# --- reading -----------------------------------------------------------------------


class KeyView(Sequence):
    """The key_ids of a shard, decoded one at a time from its byte arrays."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = blob, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        a, b = self.offsets[i], self.offsets[i + 1]
        return bytes(self.blob[a:b]).decode("utf-8", "surrogatepass")


def load_shards(folder: Path) -> Dataset:
    """A sharded dataset, memory-mapped: the manifest checked for its structure, every
    file against the manifest, and the whole against ``dataset.check``."""
    folder = Path(folder)
    fix = f"run `qdsketch preprocess -o {folder}` again"
    path = folder / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder} holds no {MANIFEST}: not a complete sharded dataset", fix)
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise DataError(f"{path} is not a qdsketch dataset manifest ({type(exc).__name__})", fix) from None
    if not isinstance(m, dict) or m.get("format") != FORMAT or not _is_int(m.get("version")):
        raise DataError(f"{path} is not a qdsketch dataset manifest", fix)
    if m["version"] > VERSION:
        raise DataError(f"{path} was written by a newer qdsketch (format {m['version']})", "upgrade qdsketch")
    problem = _manifest_problem(m)
    if problem:
        raise DataError(f"{path} is damaged: {problem}", fix)
    splits = {s: Split([_open_shard(folder, info, fix) for info in m["splits"][s]]) for s in SPLITS}
    for s in SPLITS:
        expected = sum(c[s] for c in m["counts"].values())
        if len(splits[s]) != expected:
            raise DataError(f"{folder}: the {s} shards hold {len(splits[s])} drawings, the manifest {expected}", fix)
    meta = {**m["meta"], "manifest": m}
    mean, std = np.asarray(m["mean"], np.float64), np.asarray(m["std"], np.float64)
    names = list(m["class_names"])
    ds = Dataset(names, splits, mean.astype(np.float32), std.astype(np.float32), m["max_seq_len"], m["seed"], meta, True)
    try:
        check(ds)
    except ValueError as exc:
        raise DataError(f"{folder} is not a usable dataset ({exc})", fix) from None
    return ds


#: a shard's name, as ``ShardWriter`` makes it: a plain file name, never a path
SHARD_NAME = re.compile(r"(train|val|test)-\d{5}")


def _is_int(value) -> bool:
    return type(value) is int  # not bool, not float


def _manifest_problem(m: dict) -> str | None:
    """What is wrong with the structure of manifest ``m`` (its format and version
    already checked), or ``None``: every field ``load_shards`` reads, of its type."""
    names = m.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        return "class_names is not a list of names"
    for key in ("mean", "std"):
        value = m.get(key)
        if not isinstance(value, list) or len(value) != 2 or not all(type(v) in (int, float) for v in value):
            return f"{key} is not two numbers"
    for key in ("max_seq_len", "seed"):
        if not _is_int(m.get(key)):
            return f"{key} is not an integer"
    if not isinstance(m.get("meta"), dict):
        return "meta is not an object"
    counts = m.get("counts")
    if not isinstance(counts, dict) or set(counts) != set(names):
        return "counts does not list the classes"
    for c in counts.values():
        if not isinstance(c, dict) or not all(_is_int(c.get(s)) and c[s] >= 0 for s in SPLITS):
            return "counts are not counts of each split"
    splits = m.get("splits")
    if not isinstance(splits, dict) or not all(isinstance(splits.get(s), list) for s in SPLITS):
        return "splits does not list the shards of train, val and test"
    for s in SPLITS:
        for info in splits[s]:
            if not isinstance(info, dict) or not SHARD_NAME.fullmatch(str(info.get("name"))):
                return f"a {s} shard has no shard name"
            sizes = info.get("bytes")
            if not (_is_int(info.get("drawings")) and _is_int(info.get("rows")) and isinstance(sizes, dict)):
                return f"shard {info['name']} does not say its size"
            if not all(_is_int(sizes.get(k)) for k in ARRAYS):
                return f"shard {info['name']} does not give the bytes of each file"
    return None


def _open_shard(folder: Path, info: dict, fix: str) -> Shard:
    arrays = {}
    for key, (dtype, tail) in ARRAYS.items():
        path = folder / f"{info['name']}.{key}.npy"
        if not path.is_file():
            raise DataError(f"{path} is missing", fix)
        if path.stat().st_size != info["bytes"][key]:
            raise DataError(f"{path} is {path.stat().st_size:,} bytes, the manifest says {info['bytes'][key]:,}", fix)
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:
            raise DataError(f"{path} is not a readable shard ({type(exc).__name__})", fix) from None
        if a.dtype != np.dtype(dtype) or a.shape[1:] != tail:
            raise DataError(f"{path} holds {a.dtype} {a.shape}, not {dtype} (n, {tail})", fix)
        arrays[key] = a
    n, rows = info["drawings"], info["rows"]
    offsets, key_offsets = arrays["offsets"], arrays["key_offsets"]
    if len(arrays["labels"]) != n or len(offsets) != n + 1 or len(arrays["rows"]) != rows or offsets[-1] != rows:
        raise DataError(f"{folder / info['name']}.*.npy disagree with the manifest", fix)
    if len(key_offsets) != n + 1 or key_offsets[0] != 0 or key_offsets[-1] != len(arrays["keys"]):
        raise DataError(f"{folder / info['name']}.key_offsets.npy does not cut its keys", fix)
    if n and (np.diff(key_offsets) < 0).any():
        raise DataError(f"{folder / info['name']}.key_offsets.npy does not cut its keys", fix)
    keys = KeyView(arrays["keys"], key_offsets)
    return Shard(Drawings(arrays["rows"], offsets, keys), arrays["labels"])
