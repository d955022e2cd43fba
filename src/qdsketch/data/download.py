"""Fetching Quick, Draw! files: streamed, filtered, resumable and atomic.

ndjson is read line by line and the connection is closed as soon as
``limit`` drawings are kept, so the bytes moved stay close to the bytes kept
instead of the hundreds of MB of a whole class file. Each kept line is
written verbatim. Transient failures are retried with backoff and resume with
an HTTP Range request where the server allows it; a server that ignores Range
is read from the start and the bytes already processed are skipped.

Every file lands at ``<data_dir>/<format>/<class>.<ext>`` by an atomic rename,
beside a small ``.meta.json`` record of what was asked and what was kept, so
a later run knows whether the file already satisfies it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from qdsketch.classes import resolve_class, url_name
from qdsketch.errors import DataError, DownloadError, QdsketchError, UnknownClassError
from qdsketch.files import atomic_path
from qdsketch.data.lines import keep_line
from qdsketch.data.ndjson import open_ndjson
from qdsketch.data.sketchrnn import load_sketchrnn
from qdsketch.data.sources import FORMATS, class_file, class_name_of

GOOGLE_BASE_URL = "https://storage.googleapis.com/quickdraw_dataset/"
#: the longest wait between two tries, however many retries are asked for
MAX_BACKOFF = 60.0
BASE_URL_ENV = "QDSKETCH_BASE_URL"
READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries after the first one, for transient failures only
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    timeout: float = 30.0  # seconds to connect, and between bytes
    slow_bytes: int = 1024  # a transfer slower than this many bytes a second ...
    slow_seconds: float = 60.0  # ... for this long is cut, and retried (like curl's --speed-limit)
    max_bytes: int | None = None  # the most bytes one file may move [default: MAX_BYTES of its format]


#: the most bytes one class file may move, by format: several times Google's largest files
MAX_BYTES = {"simplified": 4 * 10**9, "raw": 16 * 10**9, "sketchrnn": 2 * 10**9}
#: the longest ndjson line kept; a longer one is dropped as it arrives, and counted as bad
MAX_LINE = 16 << 20


@dataclass
class Result:
    """What one class file's download or import did."""

    name: str
    fmt: str
    path: str
    status: str  # downloaded, imported, skipped, kept-existing, failed
    kept: int = 0  # drawings written (ndjson), or in the file kept; -1 where not counted (npz)
    bytes_kept: int = 0  # bytes written to the file
    bytes_moved: int = 0  # bytes read from the network or the source file
    exhausted: bool = False  # the source ran out before the limit
    retries: int = 0
    bad: int = 0  # malformed lines skipped
    url: str = ""
    why: str = ""  # a skipped file: why it was left as it is; a failed one: the error and its fix


class Reporter(Protocol):
    def begin(self, files: int) -> None: ...  # several files at once follow (download_classes)
    def start(self, label: str, total: int | None, unit: str) -> None: ...
    def update(self, label: str, completed: int, moved: int) -> None: ...
    def finish(self, label: str) -> None: ...
    def done(self, name: str) -> None: ...  # one of download_classes' files is over (downloaded or skipped)
    def retry(self, label: str, what: str) -> None: ...  # a transient failure, and when the next try comes
    def failed(self, label: str) -> None: ...  # this file failed for good; the others go on


class SilentReporter:
    def begin(self, files):
        pass

    def done(self, name):
        pass

    def retry(self, label, what):
        pass

    def failed(self, label):
        pass

    def start(self, label, total, unit):
        pass

    def update(self, label, completed, moved):
        pass

    def finish(self, label):
        pass


def base_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get(BASE_URL_ENV) or GOOGLE_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"base URL {redact(url)!r} is not http(s)", "pass --base-url http://host/path/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a port past 65535 or not a number raises here)
    except ValueError:
        raise DownloadError(
            f"base URL {redact(url)!r} is not a valid URL", "pass --base-url http://host/path/"
        ) from None
    if not parts.hostname or " " in parts.netloc:
        raise DownloadError(f"base URL {redact(url)!r} has no valid host", "pass --base-url http://host/path/")
    return url if url.endswith("/") else url + "/"


def redact(url: str) -> str:
    """``url`` without a password (``http://user:secret@host`` -> ``http://user:***@host``), for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@")[-1]
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def source_url(base: str, fmt: str, name: str) -> str:
    """Google's layout: ``full/simplified/<class>.ndjson``, ``sketchrnn/<class>.npz``."""
    folder = "sketchrnn" if fmt == "sketchrnn" else f"full/{fmt}"
    return f"{base}{folder}/{url_name(name)}.{FORMATS[fmt]}"


def target_path(data_dir: Path, fmt: str, name: str) -> Path:
    return Path(data_dir) / fmt / f"{resolve_class(name)}.{FORMATS[fmt]}"


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _satisfied(path: Path, limit: int | None, all_drawings: bool) -> tuple[str, str, dict] | None:
    """Why the file at ``path`` can stay as it is: ``(status, why, its record)``; ``None`` to fetch it."""
    if not path.exists():
        return None
    meta_path = _meta_path(path)
    if not meta_path.exists():  # not written by qdsketch: never overwrite without --force
        return "kept-existing", "not written by qdsketch; --force replaces it", {}
    try:
        meta = json.loads(meta_path.read_text())
        if not _whole(path, meta):  # cut short or changed by hand since: fetch it again
            return None
        complete = "complete; --force fetches again"
        if meta["fmt"] == "sketchrnn":
            return "skipped", complete, meta
        if meta["all_drawings"] is not all_drawings:
            return None
        enough = limit is not None and int(meta["kept"]) >= limit
        return ("skipped", complete, meta) if enough or meta["exhausted"] is True else None
    except (ValueError, TypeError, KeyError, AttributeError):  # a record we cannot read: fetch again
        return None


def _left_as_is(name: str, fmt: str, path: Path, left: tuple[str, str, dict], url: str) -> Result:
    """The result for a file that stays: what its record says it holds, and why it stays."""
    status, why, meta = left
    result = Result(name, fmt, str(path), status, url=url, why=why)
    if meta:  # a file qdsketch wrote: what it holds
        result.kept, result.bytes_kept = int(meta.get("kept", 0)), path.stat().st_size
        result.exhausted = meta.get("exhausted") is True
    return result


def _failed(name: str, fmt: str, data_dir: Path, why: str) -> Result:
    """The result for a class file that failed for good, where it would have gone, and why."""
    return Result(name, fmt, str(target_path(data_dir, fmt, name)), "failed", why=why)


def _whole(path: Path, meta: dict) -> bool:
    """The file is what its record says: its size, and its SHA-256 where the record has one
    (records of qdsketch 0.2 have the size only)."""
    if path.stat().st_size != int(meta["bytes_kept"]):
        return False
    return "sha256" not in meta or meta["sha256"] == _sha256(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            h.update(block)
    return h.hexdigest()


#: lines read before a file that keeps less than 1% of them is given up (no real file comes close:
#: Google's recognise most of their drawings), rather than read to the size cap
SURE_AFTER = 100_000


class LineKeeper:
    """Consumes ndjson bytes, writing the lines worth keeping verbatim.

    ``consumed`` counts the bytes of whole lines processed, which is where a
    resumed transfer must start.
    """

    def __init__(self, out: BinaryIO, fmt: str, word: str, limit: int | None, recognized_only: bool):
        self.out, self.fmt, self.word = out, fmt, word
        self.limit, self.recognized_only = limit, recognized_only
        self.pending = bytearray()  # the start of a line whose newline has not come yet
        self.overlong = 0  # bytes of a line past MAX_LINE, dropped as they come
        self.consumed = self.kept = self.bytes_kept = self.bad = self.lines = 0

    @property
    def done(self) -> bool:
        return self.limit is not None and self.kept >= self.limit

    def feed(self, chunk: bytes) -> bool:
        """Process ``chunk``; True once ``limit`` lines are kept. Linear in the bytes
        fed: only the new chunk is searched, and a line is joined once, at its newline."""
        start = 0
        while not self.done:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            self._end_line(chunk[start : end + 1])
            start = end + 1
        if not self.done and start < len(chunk):
            rest = chunk[start:]
            if self.overlong or len(self.pending) + len(rest) > MAX_LINE:
                self.overlong += len(self.pending) + len(rest)  # too long to be a drawing: drop it as it comes
                self.pending.clear()
            else:
                self.pending += rest
        return self.done

    def _end_line(self, tail: bytes) -> None:
        if self.overlong:
            self.consumed += self.overlong + len(tail)
            self.overlong = 0
            self.bad += 1
        elif self.pending:
            self.pending += tail
            self._line(bytes(self.pending))
            self.pending.clear()
        else:
            self._line(tail)

    def finish(self) -> None:
        """The source ended: a last line without a newline still counts."""
        if (self.pending or self.overlong) and not self.done:
            self._end_line(b"")
        self.pending.clear()

    def drop_pending(self) -> None:
        self.pending.clear()
        self.overlong = 0

    def _line(self, line: bytes) -> None:
        self.consumed += len(line)
        if not line.strip():
            return
        self.lines += 1
        if self.lines == SURE_AFTER and self.kept * 100 < self.lines:  # Google's files keep most of theirs
            raise DownloadError(
                f"of the first {self.lines:,} lines of the {self.fmt} file of {self.word!r}, {self.kept:,} were "
                "worth keeping: it is not a Quick, Draw! file",
                "check --base-url, or the folder of --from (--all-drawings keeps unrecognized drawings too)",
            )
        verdict = keep_line(line, self.fmt, self.word, self.recognized_only)
        if verdict is None:
            self.bad += 1
        elif verdict:
            if not line.endswith(b"\n"):
                line += b"\n"
            self.out.write(line)
            self.kept += 1
            self.bytes_kept += len(line)


class _Transient(Exception):
    pass


class Unreachable(DownloadError):
    """The host's name does not resolve: every file would fail the same way, so all stop."""


class Cancelled(Exception):
    """Another download of the same command failed, or Ctrl-C: this one stops, its file is not written."""


def _open(session, url: str, offset: int, policy: RetryPolicy):
    """GET ``url`` from byte ``offset``; returns the response and how many of
    its leading bytes to skip (the server ignored our Range)."""
    import requests

    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = session.get(url, stream=True, headers=headers, timeout=policy.timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Transient(str(exc)) from None
    except requests.TooManyRedirects:
        raise DownloadError(f"{redact(url)} redirects in a loop", "check --base-url") from None
    except (
        requests.exceptions.InvalidSchema,
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
    ) as exc:
        # a redirect to file:// or ftp://, a port past 65535, a broken host
        raise DownloadError(f"{redact(url)} cannot be fetched ({type(exc).__name__})", "check --base-url") from None
    status = resp.status_code
    if status >= 500 or status == 429:
        resp.close()
        raise _Transient(f"HTTP {status}")
    if status == 416 and offset:  # nothing left past offset
        resp.close()
        return None, 0
    if status >= 400:
        resp.close()
        raise DownloadError(f"HTTP {status} for {redact(url)}", "check the class name, --format and --base-url")
    if offset and status == 206:
        content_range = resp.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {offset}-"):
            resp.close()
            raise DownloadError(
                f"{redact(url)} answered a resume from byte {offset} with {content_range!r}", "run again with --force"
            )
        return resp, 0
    return resp, offset  # a 200 to a Range request: skip what was already read


def _transfer(
    session, url: str, sink, policy: RetryPolicy, on_bytes, stop=None, on_retry=None
) -> tuple[int, int, bool]:
    """Feed ``url``'s body to ``sink`` until it is done or the body ends,
    retrying transient failures; ``on_retry(attempt, reason, delay)`` hears of each.
    Returns ``(bytes moved, retries, reached end)``. ``stop`` (a ``threading.Event``),
    once set, ends it with ``Cancelled``."""
    import requests
    import urllib3

    moved = retries = 0
    while True:
        try:
            resp, skip = _open(session, url, sink.consumed, policy)
            if resp is None:
                sink.finish()
                return moved, retries, True
            with resp:
                pace = _Pace(policy)
                # read1 hands over bytes as they arrive, so a transfer cut short
                # still delivers what came, and the retry resumes after it
                while chunk := resp.raw.read1(READ_SIZE):
                    moved += len(chunk)
                    pace.add(len(chunk))
                    if policy.max_bytes is not None and moved > policy.max_bytes:
                        raise DownloadError(
                            f"{redact(url)} sent more than {policy.max_bytes:,} bytes, the most one file may move",
                            "pass a larger --max-file-size if the file is really that large",
                        )
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if chunk and sink.feed(chunk):
                        on_bytes(moved)
                        return moved, retries, False
                    on_bytes(moved)
            sink.finish()
            return moved, retries, True
        except (
            _Transient,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.HTTPError,
        ) as exc:
            sink.drop_pending()
            retries += 1
            if _reason(exc) == UNRESOLVED and retries > min(1, policy.attempts):  # one quick retry at most
                host = urlsplit(url).hostname
                raise Unreachable(
                    f"cannot resolve {host}: there is no network here, or the host name is wrong",
                    "check the connection and --base-url, or import files you have with --from",
                ) from None
            if retries > policy.attempts:
                raise DownloadError(
                    f"gave up on {redact(url)} after {retries} tries ({_reason(exc)})",
                    "check the network, or --base-url, and run the command again",
                ) from None
            delay = min(policy.backoff * 2 ** (retries - 1), MAX_BACKOFF)
            if on_retry is not None:
                on_retry(retries, _reason(exc), delay)
            if stop is not None and stop.wait(delay):
                raise Cancelled from None
            if stop is None:
                time.sleep(delay)


class _Pace:
    """Cuts a transfer slower than ``slow_bytes`` a second for ``slow_seconds`` (a server that
    trickles a byte now and then never trips the read timeout)."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.since, self.bytes = time.monotonic(), 0

    def add(self, n: int) -> None:
        self.bytes += n
        elapsed = time.monotonic() - self.since
        if elapsed >= self.policy.slow_seconds:
            if self.bytes < self.policy.slow_bytes * elapsed:
                rate = self.bytes / elapsed
                raise _Transient(f"slower than {self.policy.slow_bytes:,} bytes/s ({rate:,.0f}) for {elapsed:.0f} s")
            self.since, self.bytes = time.monotonic(), 0


UNRESOLVED = "the host name does not resolve"


def _reason(exc: Exception) -> str:
    """A few words for a network failure, instead of urllib3's whole repr."""
    text = str(exc)
    resolving = ("NameResolutionError", "Failed to resolve", "Name or service not known", "name resolution")
    if any(probe.lower() in text.lower() for probe in resolving):
        return UNRESOLVED
    for probe in ("Connection refused", "Connection reset", "timed out"):
        if probe.lower() in text.lower():
            return probe.lower()
    return text if isinstance(exc, _Transient) else type(exc).__name__


class _ByteSink:
    """Writes a binary file as it arrives (for npz), resumable by offset."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.consumed = 0

    def feed(self, chunk: bytes) -> bool:
        self.out.write(chunk)
        self.consumed += len(chunk)
        return False

    def finish(self) -> None:
        pass

    def drop_pending(self) -> None:
        pass


def download_class(
    name: str,
    fmt: str = "simplified",
    data_dir: Path = Path("data"),
    limit: int | None = 10000,
    all_drawings: bool = False,
    base: str | None = None,
    force: bool = False,
    policy: RetryPolicy = RetryPolicy(),
    reporter: Reporter | None = None,
    session=None,
    stop=None,
) -> Result:
    """Download one class file into ``data_dir``; see the module docstring.
    ``stop`` (a ``threading.Event``) cancels it from another thread."""
    import requests

    name = resolve_class(name)
    reporter = reporter or SilentReporter()
    url = source_url(base_url(base), fmt, name)
    path = target_path(data_dir, fmt, name)
    left = None if force else _satisfied(path, limit, all_drawings)
    if left:
        return _left_as_is(name, fmt, path, left, url)
    session = session or requests.Session()
    label = f"{name} ({fmt})"
    if policy.max_bytes is None:
        policy = replace(policy, max_bytes=MAX_BYTES[fmt])

    def progress(completed: int, moved: int) -> None:
        if stop is not None and stop.is_set():
            raise Cancelled
        reporter.update(label, completed, moved)

    def retry(attempt: int, reason: str, delay: float) -> None:
        reporter.retry(label, f"{reason}; try {attempt + 1} of {policy.attempts + 1} in {delay:g} s")

    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        if fmt == "sketchrnn":
            sink = _ByteSink(out)
            reporter.start(label, None, "bytes")
            moved, retries, _ = _transfer(session, url, sink, policy, lambda m: progress(m, m), stop, retry)
            out.flush()
            try:
                load_sketchrnn(tmp)  # refuses a file that is not a sketchrnn npz
            except DataError:  # its message would name the temporary file, gone in a moment
                raise DownloadError(
                    f"{redact(url)} is not a sketchrnn .npz file", "check --base-url and --format"
                ) from None
            result = Result(name, fmt, str(path), "downloaded", -1, sink.consumed, moved, True, retries, url=url)
        else:
            keeper = LineKeeper(out, fmt, name, limit, not all_drawings)
            reporter.start(label, limit, "drawings")
            moved, retries, ended = _transfer(
                session, url, keeper, policy, lambda m: progress(keeper.kept, m), stop, retry
            )
            if not keeper.kept:
                raise DownloadError(f"no usable drawing of {name!r} at {redact(url)}", "check --base-url and --format")
            result = Result(
                name,
                fmt,
                str(path),
                "downloaded",
                keeper.kept,
                keeper.bytes_kept,
                moved,
                ended,
                retries,
                keeper.bad,
                url,
            )
        out.close()
        _write_meta(path, result, limit, all_drawings, tmp)
    reporter.finish(label)
    return result


def download_classes(names: list[str], jobs: int = 1, reporter: Reporter | None = None, **kw) -> list[Result]:
    """``download_class(name, reporter=reporter, **kw)`` for each name, ``jobs`` at a time,
    each thread with its own connection; results in the order of ``names``. Every class is
    tried: one that fails for good is a ``failed`` result that says why, and the others go
    on. Only what would fail every class the same way stops them all (``Unreachable``: the
    host's name does not resolve), and Ctrl-C: downloads under way stop and write nothing,
    files already complete stay."""
    reporter = reporter or SilentReporter()
    fmt = kw.get("fmt", "simplified")

    def tried(name: str, **more) -> Result:
        try:
            return download_class(name, reporter=reporter, **more, **kw)
        except Unreachable:
            raise
        except QdsketchError as exc:
            reporter.failed(f"{resolve_class(name)} ({fmt})")
            return _failed(resolve_class(name), fmt, kw.get("data_dir", Path("data")), str(exc))

    if jobs <= 1 or len(names) <= 1:
        return [tried(name) for name in names]
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import requests

    local, stop = threading.local(), threading.Event()

    def one(name: str) -> Result:
        if stop.is_set():
            raise Cancelled
        if not hasattr(local, "session"):
            local.session = requests.Session()
        result = tried(name, session=local.session, stop=stop)
        reporter.done(name)
        return result

    reporter.begin(len(names))
    with ThreadPoolExecutor(jobs, thread_name_prefix="download") as pool:
        futures = {pool.submit(one, name): i for i, name in enumerate(names)}
        try:
            done = {futures[f]: f.result() for f in as_completed(futures)}
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            raise
    return [done[i] for i in range(len(names))]


def _write_meta(path: Path, result: Result, limit: int | None, all_drawings: bool, content: Path) -> None:
    """The record beside ``path``: what was asked and kept, and the size and SHA-256 of
    ``content`` (the file about to be renamed to ``path``)."""
    meta = {**asdict(result), "limit": limit, "all_drawings": all_drawings, "time": time.time()}
    meta["sha256"] = _sha256(content)
    with atomic_path(_meta_path(path)) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))


# --- importing files copied by hand ---------------------------------------------------------


def source_folder(source: Path, fmt: str) -> Path:
    """Where ``source`` keeps files of ``fmt``: ``<fmt>/`` (as qdsketch lays out data), Google's
    bucket layout (``full/simplified/``, ``full/raw/``, ``sketchrnn/``), or, for simplified
    ndjson, ``source`` itself when it holds ``<class>.ndjson`` files directly."""
    source = Path(source)
    for folder in (source / fmt, source / "full" / fmt):
        if folder.is_dir():
            return folder
    if fmt == "simplified" and any(p.is_file() for p in (*source.glob("*.ndjson"), *source.glob("*.ndjson.gz"))):
        return source
    return source / fmt


def importable(source: Path, classes: Iterable[str] | None, formats: Iterable[str]) -> list[tuple[str, str]]:
    """``(class, format)`` pairs that ``source`` holds (``source_folder``): of ``classes``, or
    every class there. None at all is an error that says what the folder should hold."""
    source = Path(source)
    if not source.is_dir():
        raise DataError(f"{source} is not a folder", "pass the folder that holds simplified/, raw/ or sketchrnn/")
    pairs = []
    for fmt in formats:
        folder = source_folder(source, fmt)
        if classes is None:
            # regular files only: a FIFO, or a link to /dev/zero, would never end
            found = {class_name_of(p, fmt) for p in folder.glob(f"*.{FORMATS[fmt]}*") if p.is_file()}
            names = sorted(n for n in found if n is not None and _known(n))
        else:
            names = [n for n in classes if class_file(folder, n, fmt) is not None]
        pairs += [(resolve_class(n), fmt) for n in names]
    if not pairs and classes is None:
        raise DataError(
            f"no Quick, Draw! files in {source}/",
            "expect simplified/<class>.ndjson (or full/simplified/, or <class>.ndjson; .ndjson.gz too), "
            "raw/<class>.ndjson (or full/raw/) or sketchrnn/<class>.npz there",
        )
    return pairs


def import_classes(
    source: Path, classes: list[str] | None, formats: list[str], reporter: Reporter | None = None, **kw
) -> list[Result]:
    """``import_class`` for each of ``classes`` (``None``: every class ``source`` holds) in each
    of ``formats`` that ``source`` has. Every class is tried: one that ``source`` lacks, or
    whose file is unusable, is a ``failed`` result that says why, and the others go on."""
    reporter = reporter or SilentReporter()
    pairs = importable(source, classes, formats)
    results = []
    if classes is not None:
        there = {name for name, _ in pairs}
        missing = [resolve_class(n) for n in classes if resolve_class(n) not in there]
        if missing:
            held = sorted({name for name, _ in importable(source, None, formats)})  # what it has instead
            shown = ", ".join(held[:12]) + (f" and {len(held) - 12:,} more" if len(held) > 12 else "")
            if not pairs:
                raise DataError(
                    f"{source}/ has no {', '.join(missing)}", f"it holds {shown}; pass --classes from those"
                )
            fmt = formats[0] if len(formats) == 1 else "simplified"
            why = f"not in {source}/ (it holds {shown})"
            results += [_failed(name, fmt, kw.get("data_dir", Path("data")), why) for name in missing]
    for name, fmt in pairs:
        try:
            results.append(import_class(source, name, fmt, reporter=reporter, **kw))
        except QdsketchError as exc:
            reporter.failed(f"{name} ({fmt})")
            results.append(_failed(name, fmt, kw.get("data_dir", Path("data")), str(exc)))
    order = {name: i for i, name in enumerate(resolve_class(n) for n in classes)} if classes is not None else {}
    return sorted(results, key=lambda r: order.get(r.name, 0)) if order else results


def _known(name: str) -> bool:
    try:
        resolve_class(name)
    except UnknownClassError:
        return False
    return True


def import_class(
    source: Path,
    name: str,
    fmt: str,
    data_dir: Path = Path("data"),
    limit: int | None = 10000,
    all_drawings: bool = False,
    force: bool = False,
    reporter: Reporter | None = None,
) -> Result:
    """Validate ``<class>.<ext>`` in ``source_folder(source, fmt)`` and copy what passes into ``data_dir``."""
    name = resolve_class(name)
    reporter = reporter or SilentReporter()
    folder = source_folder(source, fmt)
    src = class_file(folder, name, fmt) or folder / f"{name}.{FORMATS[fmt]}"
    path = target_path(data_dir, fmt, name)
    if path.exists() and path.resolve() == src.resolve():
        raise DataError(f"{src} is already in the data directory", "pass --from a different folder than --data-dir")
    left = None if force else _satisfied(path, limit, all_drawings)
    if left:
        return _left_as_is(name, fmt, path, left, str(src))
    label = f"{name} ({fmt})"
    with atomic_path(path) as tmp:
        if fmt == "sketchrnn":
            load_sketchrnn(src)
            shutil.copyfile(src, tmp)
            size = src.stat().st_size
            result = Result(name, fmt, str(path), "imported", -1, size, size, True, url=str(src))
        else:
            reporter.start(label, limit, "drawings")
            with open(tmp, "wb") as out, open_ndjson(src) as handle:  # a .gz is decompressed as it is read
                keeper = LineKeeper(out, fmt, name, limit, not all_drawings)
                while not keeper.done and (chunk := handle.read(READ_SIZE)):
                    keeper.feed(chunk)
                    reporter.update(label, keeper.kept, keeper.consumed)
                ended = not keeper.done
                keeper.finish()
            if not keeper.kept:
                raise DataError(f"{src} holds no usable drawing", "check that it is Quick, Draw! ndjson")
            result = Result(
                name,
                fmt,
                str(path),
                "imported",
                keeper.kept,
                keeper.bytes_kept,
                keeper.consumed,
                ended,
                0,
                keeper.bad,
                str(src),
            )
        _write_meta(path, result, limit, all_drawings, tmp)
    reporter.finish(label)
    return result
