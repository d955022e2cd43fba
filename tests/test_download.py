"""`qdsketch download` against a real HTTP server on 127.0.0.1."""

import json

import numpy as np
import pytest
from helpers import DATA, real_lines, repeated_lines

from qdsketch.data import download as dl
from qdsketch.data.lines import keep_line
from qdsketch.errors import DownloadError

FAST = dl.RetryPolicy(attempts=3, backoff=0.01, timeout=5)


def expected(name, fmt="simplified", limit=None, recognized_only=True):
    """The lines a download must keep: read straight from the real file."""
    out = []
    for line in real_lines(name, fmt):
        if keep_line(line, fmt, name, recognized_only) and (limit is None or len(out) < limit):
            out.append(line.rstrip(b"\n") + b"\n")  # every kept line ends in a newline
    return b"".join(out)


def test_keeps_exactly_n_recognized_drawings_and_closes_early(mirror, tmp_path):
    big = repeated_lines("cat", 20_000)  # real cats, new key_ids: about 11 MB
    mirror.add("simplified", "cat", big)
    r = dl.download_class("cat", "simplified", tmp_path / "d", limit=10, base=mirror.url, policy=FAST)
    kept = (tmp_path / "d" / "simplified" / "cat.ndjson").read_bytes()
    recognized = [line for line in big.splitlines(keepends=True) if json.loads(line)["recognized"]]
    assert kept == b"".join(recognized[:10])
    assert (r.kept, r.bytes_kept, r.exhausted) == (10, len(kept), False)
    # the client moved at most 1.1x what it kept plus one read buffer ...
    assert r.bytes_moved <= 1.1 * r.bytes_kept + dl.READ_SIZE
    # ... and the server sent a sliver of the file, not the file
    assert len(big) > 10_000_000
    assert mirror.sent[mirror.path_of("simplified", "cat")] < 1_000_000


def test_unrecognized_drawings_are_skipped_unless_all_drawings(mirror, tmp_path):
    r = dl.download_class("nail", "simplified", tmp_path, limit=None, base=mirror.url, policy=FAST)
    assert (tmp_path / "simplified" / "nail.ndjson").read_bytes() == expected("nail")
    assert r.kept == 20 and r.exhausted
    r = dl.download_class("nail", "simplified", tmp_path / "all", None, True, mirror.url, policy=FAST)
    assert r.kept == 25
    assert (tmp_path / "all" / "simplified" / "nail.ndjson").read_bytes() == (
        DATA / "simplified" / "nail.ndjson"
    ).read_bytes()


def test_a_file_that_keeps_almost_nothing_is_given_up_not_read_to_the_cap(mirror, tmp_path, monkeypatch):
    """Real cats, every one marked unrecognized, without end: once SURE_AFTER lines kept
    less than 1% of them, the download stops with an error and writes nothing."""
    monkeypatch.setattr(dl, "SURE_AFTER", 1000)
    lines = [json.loads(line) | {"recognized": False} for line in repeated_lines("cat", 5000).splitlines()]
    mirror.add("simplified", "cat", b"".join(json.dumps(obj).encode() + b"\n" for obj in lines))
    with pytest.raises(DownloadError, match=r"of the first 1,000 lines of the simplified file of 'cat', 0 were worth"):
        dl.download_class("cat", "simplified", tmp_path / "d", limit=10, base=mirror.url, policy=FAST)
    assert list((tmp_path / "d").rglob("*")) in ([], [tmp_path / "d" / "simplified"])
    assert mirror.sent[mirror.path_of("simplified", "cat")] < len(b"".join(json.dumps(o).encode() for o in lines))


@pytest.mark.parametrize("honour_range", [True, False])
@pytest.mark.parametrize("fault", ["drop", "500"])
def test_transient_failure_gives_a_byte_identical_file(mirror, tmp_path, fault, honour_range):
    mirror.honour_range = honour_range
    path = mirror.path_of("raw", "clock")
    clean = dl.download_class("clock", "raw", tmp_path / "clean", None, base=mirror.url, policy=FAST)
    mirror.faults[path] = [fault]
    mirror.requests.clear()
    r = dl.download_class("clock", "raw", tmp_path / "faulty", None, base=mirror.url, policy=FAST)
    a = (tmp_path / "clean" / "raw" / "clock.ndjson").read_bytes()
    b = (tmp_path / "faulty" / "raw" / "clock.ndjson").read_bytes()
    assert a == b == expected("clock", "raw")
    assert (r.retries, r.kept) == (1, clean.kept)
    if fault == "drop":  # the retry resumes where whole lines ended, by Range
        second_range = mirror.requests[1][1]
        assert second_range is not None and int(second_range[6:-1]) > 0


def test_404_is_one_line_and_non_zero(run, mirror, tmp_path):
    result = run("download", "--classes", "airplane", "--base-url", mirror.url, "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 1
    url = f"{mirror.url}full/simplified/airplane.ndjson"
    assert result.output == f"Error: HTTP 404 for {url}. Check the class name, --format and --base-url\n"
    assert not [p for p in (tmp_path / "d").rglob("*") if p.is_file()]  # nothing half-written


def test_retries_exhausted_is_an_error_and_leaves_nothing(mirror, tmp_path):
    mirror.faults[mirror.path_of("simplified", "cat")] = ["500"] * 4
    with pytest.raises(DownloadError, match=r"gave up on .*cat.ndjson after 4 tries \(HTTP 500\)"):
        dl.download_class("cat", "simplified", tmp_path / "d", base=mirror.url, policy=FAST)
    assert not [p for p in (tmp_path / "d").rglob("*") if p.is_file()]


def test_second_run_is_a_no_op_and_force_downloads_again(run, mirror, tmp_path):
    args = ["download", "--classes", "cat,The Eiffel Tower", "--base-url", mirror.url, "--data-dir", str(tmp_path)]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert len(mirror.requests) == 2
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    second = run(*args)
    assert second.exit_code == 0
    assert len(mirror.requests) == 2  # no request at all
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    lines = second.output.splitlines()
    assert sum(" complete " in line for line in lines if line.startswith("│")) == 2
    assert (
        lines[-1]
        == f"left as they are in {tmp_path}/simplified/: cat, The Eiffel Tower (complete; --force fetches again)"
    )
    listed = json.loads(run(*args, "--json").output)  # a complete file's count, path and why
    assert [(r["status"], r["kept"], r["why"]) for r in listed] == [
        ("skipped", len(expected("cat").splitlines()), "complete; --force fetches again"),
        ("skipped", len(expected("The Eiffel Tower").splitlines()), "complete; --force fetches again"),
    ]
    assert listed[1]["path"] == str(tmp_path / "simplified" / "The Eiffel Tower.ndjson")
    third = run(*args + ["--force"])
    assert third.exit_code == 0 and len(mirror.requests) == 4
    assert (tmp_path / "simplified" / "The Eiffel Tower.ndjson").read_bytes() == expected("The Eiffel Tower")


def test_a_larger_request_downloads_again_a_satisfied_one_does_not(mirror, tmp_path):
    dl.download_class("clock", "simplified", tmp_path, limit=5, base=mirror.url, policy=FAST)
    assert dl.download_class("clock", "simplified", tmp_path, limit=3, base=mirror.url).status == "skipped"
    r = dl.download_class("clock", "simplified", tmp_path, limit=8, base=mirror.url, policy=FAST)
    assert (r.status, r.kept) == ("downloaded", 8)


def test_a_file_qdsketch_did_not_write_is_never_overwritten(mirror, tmp_path):
    mine = tmp_path / "simplified" / "cat.ndjson"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own\n")
    r = dl.download_class("cat", "simplified", tmp_path, base=mirror.url)
    assert r.status == "kept-existing" and mine.read_bytes() == b"my own\n"
    assert not mirror.requests


def test_class_names_are_url_encoded(mirror, tmp_path):
    r = dl.download_class("HOT AIR balloon", "simplified", tmp_path, base=mirror.url, policy=FAST)
    assert mirror.requests[0][0] == "/full/simplified/hot%20air%20balloon.ndjson"
    assert r.path == str(tmp_path / "simplified" / "hot air balloon.ndjson")


def test_sketchrnn_npz_downloads_resumes_and_is_validated(mirror, tmp_path):
    # a sketchrnn file holds stroke-3 object arrays; this one is made of real clocks
    from qdsketch.strokes import drawing_to_stroke3

    drawings = [np.asarray(drawing_to_stroke3(json.loads(line)["drawing"]), np.int16) for line in real_lines("clock")]
    arrays = {
        k: np.empty(len(v), dtype=object)
        for k, v in {"train": drawings[:20], "valid": drawings[20:], "test": drawings[20:]}.items()
    }
    for k, v in {"train": drawings[:20], "valid": drawings[20:], "test": drawings[20:]}.items():
        arrays[k][:] = v
    src = tmp_path / "src.npz"
    np.savez(src, **arrays)
    mirror.add("sketchrnn", "clock", src.read_bytes())
    mirror.faults[mirror.path_of("sketchrnn", "clock")] = ["drop"]
    r = dl.download_class("clock", "sketchrnn", tmp_path / "d", base=mirror.url, policy=FAST)
    assert (tmp_path / "d" / "sketchrnn" / "clock.npz").read_bytes() == src.read_bytes()
    assert r.retries == 1
    mirror.add("sketchrnn", "cat", b"this is not a zip file")
    with pytest.raises(
        DownloadError, match=r"^http://127.0.0.1:\d+/sketchrnn/cat.npz is not a sketchrnn .npz file. Check"
    ):
        dl.download_class(
            "cat", "sketchrnn", tmp_path / "d", base=mirror.url, policy=FAST
        )  # names the URL, not a .part
    assert not (tmp_path / "d" / "sketchrnn" / "cat.npz").exists()


def test_from_imports_and_validates_a_folder(run, tmp_path):
    src = tmp_path / "usb"
    (src / "simplified").mkdir(parents=True)
    good = real_lines("tent")
    (src / "simplified" / "tent.ndjson").write_bytes(b"".join(good[:3]) + b"{not json\n" + good[3])
    (src / "simplified" / "notaclass.ndjson").write_bytes(good[0])
    result = run("download", "--from", str(src), "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "simplified" / "tent.ndjson").read_bytes() == b"".join(good[:4])
    assert "skipped 1 malformed lines" in result.output
    assert not (tmp_path / "data" / "simplified" / "notaclass.ndjson").exists()


def test_from_a_folder_with_no_files_is_an_error(run, tmp_path):
    result = run("download", "--from", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: no Quick, Draw! files in {tmp_path}/")
    assert result.output.count("\n") == 1


def test_default_source_is_googles_bucket():
    assert dl.source_url(dl.base_url(), "simplified", "The Eiffel Tower") == (
        "https://storage.googleapis.com/quickdraw_dataset/full/simplified/The%20Eiffel%20Tower.ndjson"
    )
    assert dl.source_url(dl.base_url(), "sketchrnn", "cat").endswith("/quickdraw_dataset/sketchrnn/cat.npz")


def test_base_url_from_the_environment(run, mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("QDSKETCH_BASE_URL", mirror.url)
    result = run("download", "--classes", "house", "--data-dir", str(tmp_path), "-q")
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "simplified" / "house.ndjson").read_bytes() == expected("house")


FIVE_FILES = ["cat", "clock", "house", "nail", "tent"]


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_concurrent_download_gives_the_files_of_the_sequential_one(mirror, tmp_path):
    for name in FIVE_FILES:  # large enough that the downloads overlap
        mirror.add("simplified", name, repeated_lines(name, 3000))
    kw = {"fmt": "simplified", "limit": 2000, "base": mirror.url, "policy": FAST}
    one = dl.download_classes(FIVE_FILES, 1, data_dir=tmp_path / "one", **kw)
    four = dl.download_classes(FIVE_FILES, 4, data_dir=tmp_path / "four", **kw)
    assert [r.name for r in four] == FIVE_FILES  # in the order asked, whatever finished first
    # bytes moved depend on how the reads fell (read1 returns what has arrived)
    strip = lambda r: {k: v for k, v in r.__dict__.items() if k not in ("path", "bytes_moved")}
    assert [strip(r) for r in one] == [strip(r) for r in four]
    a, b = _files(tmp_path / "one"), _files(tmp_path / "four")
    assert a.keys() == b.keys() and len(a) == 10  # five files and their .meta.json
    for path in a:
        if path.endswith(".meta.json"):  # they differ in the time, the path and the bytes moved only
            ma, mb = json.loads(a[path]), json.loads(b[path])
            same = lambda m: {k: v for k, v in m.items() if k not in ("time", "path", "bytes_moved")}
            assert same(ma) == same(mb)
        else:
            assert a[path] == b[path], path
    again = dl.download_classes(FIVE_FILES, 4, data_dir=tmp_path / "four", **kw)
    assert {r.status for r in again} == {"skipped"}


def test_one_failure_stops_a_concurrent_download_and_leaves_no_part_file(mirror, tmp_path):
    for name in ("cat", "clock"):
        mirror.add("simplified", name, repeated_lines(name, 3000))
    results = dl.download_classes(
        ["cat", "dog", "clock"], 3, data_dir=tmp_path, base=mirror.url, policy=FAST, limit=2000
    )
    assert [(r.name, r.status) for r in results] == [("cat", "downloaded"), ("dog", "failed"), ("clock", "downloaded")]
    assert (
        results[1].why
        == f"HTTP 404 for {mirror.url}full/simplified/dog.ndjson. Check the class name, --format and --base-url"
    )
    left = sorted(p.name for p in (tmp_path / "simplified").iterdir())
    assert left == ["cat.ndjson", "cat.ndjson.meta.json", "clock.ndjson", "clock.ndjson.meta.json"]  # no .part
    for name in ("cat", "clock"):
        assert len((tmp_path / "simplified" / f"{name}.ndjson").read_bytes().splitlines()) == 2000


def test_classes_all_with_jobs_from_the_cli(run, mirror, tmp_path):
    result = run(
        "download",
        "--classes",
        "cat,clock,house,nail,tent",
        "--jobs",
        3,
        "--base-url",
        mirror.url,
        "--data-dir",
        tmp_path / "d",
        "--max-per-class",
        5,
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "d" / "simplified").glob("*.ndjson")) == [
        f"{n}.ndjson" for n in FIVE_FILES
    ]
    every = run(
        "download",
        "--classes",
        "all",
        "--jobs",
        8,
        "--base-url",
        mirror.url,
        "--data-dir",
        tmp_path / "e",
        "--max-per-class",
        5,
        "-q",
    )
    assert every.exit_code == 1 and every.output == ""  # -q: the mirror holds seven of the 345 classes
    kept = sorted(p.name for p in (tmp_path / "e" / "simplified").glob("*.ndjson"))
    served = sorted(p.name for p in (mirror.root / "full" / "simplified").glob("*.ndjson"))
    assert kept == served and len(kept) >= 5  # every class was tried: all that the mirror has came in
    table = run("download", "--classes", "all", "--jobs", 8, "--base-url", mirror.url, "--data-dir", tmp_path / "e")
    assert table.exit_code == 1
    lines = table.output.splitlines()
    assert lines[-1] == f"{345 - len(kept)} of 345 files failed; the others are in"
    assert sum(line.startswith("failed ") and ": HTTP 404 for " in line for line in lines) == 345 - len(kept)


def test_an_endless_line_is_dropped_as_it_comes_in_linear_time_and_counted():
    import io

    out = io.BytesIO()
    keeper = dl.LineKeeper(out, "simplified", "cat", None, True)
    good = real_lines("cat")
    keeper.feed(good[0])
    for _ in range(20):  # 20 MiB with no newline: more than MAX_LINE, never held whole
        keeper.feed(b"x" * (1 << 20))
        assert len(keeper.pending) <= dl.MAX_LINE
    keeper.feed(b"\n" + b"".join(good[1:3]))
    keeper.finish()
    assert keeper.bad == 1 and keeper.kept == 3 and out.getvalue() == b"".join(good[:3])
    assert keeper.consumed == len(good[0]) + 20 * (1 << 20) + 1 + len(b"".join(good[1:3]))  # where a resume starts


def test_a_file_larger_than_its_limit_is_stopped_and_leaves_nothing(mirror, tmp_path):
    mirror.add("simplified", "cat", repeated_lines("cat", 3000))
    small = dl.RetryPolicy(attempts=0, timeout=5, max_bytes=100_000)
    with pytest.raises(
        DownloadError, match=r"sent more than 100,000 bytes, the most one file may move. Pass a larger --max-file-size"
    ):
        dl.download_class("cat", "simplified", tmp_path, limit=None, base=mirror.url, policy=small)
    assert list((tmp_path / "simplified").iterdir()) == []  # no file, no part file


def test_a_trickling_server_is_cut_and_retried_then_given_up(mirror, tmp_path):
    mirror.add("simplified", "cat", repeated_lines("cat", 3000))  # 1.7 MB: 26 round trips
    mirror.latency = 0.05  # a round trip per 64 KiB: far below the pace asked for below
    impatient = dl.RetryPolicy(attempts=1, backoff=0.01, timeout=5, slow_bytes=10**9, slow_seconds=0.2)
    with pytest.raises(
        DownloadError, match=r"gave up on .*cat.ndjson after 2 tries \(slower than 1,000,000,000 bytes/s"
    ):
        dl.download_class("cat", "simplified", tmp_path, limit=None, base=mirror.url, policy=impatient)
    assert not (tmp_path / "simplified" / "cat.ndjson").exists()


@pytest.mark.parametrize("where", ["loop", "file:///etc/passwd", "ftp://example.com/cat.ndjson"])
def test_redirects_that_go_nowhere_are_one_line(run, mirror, tmp_path, where):
    path = mirror.path_of("simplified", "cat")
    mirror.redirects[path] = path if where == "loop" else where
    result = run("download", "--classes", "cat", "--base-url", mirror.url, "--data-dir", tmp_path / "d", "--retries", 0)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    expected = "redirects in a loop" if where == "loop" else "cannot be fetched (InvalidSchema)"
    assert result.output == f"Error: {mirror.url}full/simplified/cat.ndjson {expected}. Check --base-url\n"
    assert not (tmp_path / "d" / "simplified" / "cat.ndjson").exists()


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://127.0.0.1:99999/", "is not a valid URL"),
        ("http://[::1/", "is not a valid URL"),
        ("http://bad host/", "has no valid host"),
        ("http:///path/", "has no valid host"),
    ],
)
def test_base_urls_that_cannot_work_are_one_line(run, tmp_path, url, why):
    result = run("download", "--classes", "cat", "--base-url", url, "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert result.output == f"Error: base URL {url!r} {why}. Pass --base-url http://host/path/\n"


def test_a_password_in_the_base_url_never_reaches_a_message(run, mirror, tmp_path):
    url = mirror.url.replace("http://", "http://me:s3cret@")
    result = run("download", "--classes", "dog", "--base-url", url, "--data-dir", tmp_path, "--retries", 0)
    assert result.exit_code == 1 and "s3cret" not in result.output
    assert result.output.startswith("Error: HTTP 404 for http://me:***@127.0.0.1:")


def test_from_reads_regular_files_only(run, tmp_path):
    import os as _os

    src = tmp_path / "src" / "simplified"
    src.mkdir(parents=True)
    (src / "cat.ndjson").write_bytes(b"".join(real_lines("cat")))
    _os.mkfifo(src / "clock.ndjson")  # would block a reader forever
    (src / "house.ndjson").symlink_to("/dev/zero")  # would never end
    result = run("download", "--from", tmp_path / "src", "--data-dir", tmp_path / "d", "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "d" / "simplified").glob("*.ndjson")) == ["cat.ndjson"]


def test_each_retry_is_shown_with_its_reason_and_delay(run, mirror, tmp_path):
    path = mirror.path_of("simplified", "cat")
    mirror.faults[path] = ["500"]
    result = run("download", "--classes", "cat", "--base-url", mirror.url, "--data-dir", tmp_path, "--retries", 1)
    assert result.exit_code == 0, result.output
    assert "cat (simplified): HTTP 500; try 2 of 2 in 1 s" in result.output


def slow_download(mirror, data, **popen):
    """``qdsketch download`` of 3,000 real cats as a real process from a slow mirror, once
    its temporary file exists: ``(process, the command's arguments)``."""
    import signal
    import subprocess
    import sys
    import time

    lines = repeated_lines("cat", 3000)
    mirror.add("simplified", "cat", lines)
    mirror.latency = 0.2  # slow enough to be stopped on the way
    args = [
        "download",
        "--classes",
        "cat",
        "--base-url",
        mirror.url,
        "--data-dir",
        str(data),
        "--max-per-class",
        "3000",
    ]
    # Ctrl-C's default, whatever this process inherited: a shell starts background jobs with
    # SIGINT ignored, and a child would inherit that and never see the SIGINT sent below
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen([sys.executable, "-m", "qdsketch", *args, "-q"], preexec_fn=default_sigint, **popen)
    deadline = time.time() + 30
    while not list(data.rglob("*.part")) and time.time() < deadline:
        time.sleep(0.02)
    return proc, args, lines


def test_ctrl_c_exits_130_in_one_line_and_leaves_no_part_file(mirror, tmp_path):
    import signal
    import subprocess

    proc, _, _ = slow_download(mirror, tmp_path / "d", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.decode() == "interrupted: nothing half-written was left\n"
    assert list((tmp_path / "d").rglob("*.part")) == [] and not (tmp_path / "d" / "simplified" / "cat.ndjson").exists()


def test_a_part_file_left_by_kill_9_is_removed_by_the_next_run(run, mirror, tmp_path):
    import signal
    import time

    data = tmp_path / "d"
    proc, args, lines = slow_download(mirror, data)
    time.sleep(0.3)  # some bytes in it
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    (left,) = data.rglob("*.part")  # kill -9 gives no chance to clean up
    assert left.name.startswith(f".cat.ndjson.{proc.pid}-")
    mirror.latency = 0.0
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert list(data.rglob("*.part")) == []
    recognized = [line for line in lines.splitlines(keepends=True) if json.loads(line)["recognized"]]
    assert (data / "simplified" / "cat.ndjson").read_bytes() == b"".join(recognized)


def test_only_parts_of_writers_that_are_gone_are_swept(tmp_path):
    import os
    import time

    from qdsketch.files import atomic_path

    live = tmp_path / f".out.txt.{os.getppid()}-abc.part"  # the test runner's parent: alive
    recent = tmp_path / ".out.txt.k3j_a9.part"  # an older qdsketch's, which named no writer: an hour old
    stale = tmp_path / ".out.txt.q8r_b2.part"  # the same, two days old
    other = tmp_path / ".out.txt.meta.json.999999999-x.part"  # another file's
    for p, age in ((live, 0), (recent, 3600), (stale, 2 * 86400), (other, 0)):
        p.write_text("being written")
        os.utime(p, (time.time() - age,) * 2)
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, recent.name, other.name, "out.txt"])


@pytest.mark.parametrize("layout", ["simplified", "full/simplified", "flat"])
def test_from_reads_googles_layout_ours_and_a_flat_folder(run, tmp_path, layout):
    folder = tmp_path / "src" / ("" if layout == "flat" else layout)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("cat", "clock"):
        (folder / f"{name}.ndjson").write_bytes((DATA / "simplified" / f"{name}.ndjson").read_bytes())
    if layout == "full/simplified":
        (tmp_path / "src" / "full" / "raw").mkdir()
        (tmp_path / "src" / "full" / "raw" / "cat.ndjson").write_bytes((DATA / "raw" / "cat.ndjson").read_bytes())
    result = run("download", "--from", tmp_path / "src", "--data-dir", tmp_path / "d", "-q")
    assert result.exit_code == 0, result.output
    got = sorted(p.relative_to(tmp_path / "d").as_posix() for p in (tmp_path / "d").rglob("*.ndjson"))
    raw = ["raw/cat.ndjson"] if layout == "full/simplified" else []
    assert got == raw + ["simplified/cat.ndjson", "simplified/clock.ndjson"]
    assert (tmp_path / "d" / "simplified" / "cat.ndjson").read_bytes() == expected("cat")


def test_a_file_cut_or_changed_by_hand_is_fetched_again(mirror, tmp_path):
    kw = {"base": mirror.url, "policy": FAST, "limit": None}
    dl.download_class("clock", "simplified", tmp_path, **kw)
    path = tmp_path / "simplified" / "clock.ndjson"
    whole = path.read_bytes()
    assert dl.download_class("clock", "simplified", tmp_path, **kw).status == "skipped"
    path.write_bytes(whole[: len(whole) // 2])  # truncated by hand: the record says otherwise
    assert dl.download_class("clock", "simplified", tmp_path, **kw).status == "downloaded"
    assert path.read_bytes() == whole
    path.write_bytes(whole.replace(b'"clock"', b'"clocx"', 1))  # same size, other bytes: the checksum tells
    assert dl.download_class("clock", "simplified", tmp_path, **kw).status == "downloaded"
    meta = path.with_name("clock.ndjson.meta.json")
    for record in ("[1, 2]", '{"kept": "many"}', "not json"):  # a record that cannot be read: fetch again
        meta.write_text(record)
        assert dl.download_class("clock", "simplified", tmp_path, **kw).status == "downloaded"
    assert path.read_bytes() == whole


def test_a_host_that_does_not_resolve_stops_every_class_after_one_quick_retry(run, tmp_path):
    """No network (or a wrong host): said as such after one retry, not after five per class."""
    args = ["download", "--classes", "cat,clock,tent", "--jobs", 2, "--data-dir", tmp_path / "d"]
    result = run(*args, "--base-url", "http://qdsketch-test.invalid/")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[-1] == (
        "Error: cannot resolve qdsketch-test.invalid: there is no network here, or the host name is wrong. "
        "Check the connection and --base-url, or import files you have with --from"
    )
    retries = [line for line in lines[:-1] if "the host name does not resolve; try 2 of 6 in 1 s" in line]
    assert 1 <= len(retries) <= 3 and not any("try 3" in line for line in lines)
    assert not [p for p in (tmp_path / "d").rglob("*") if p.is_file()]


HELD = "The Eiffel Tower, cat, clock, hot air balloon, house, nail, tent"  # tests/data/quickdraw/simplified


def test_from_a_folder_that_lacks_a_class_imports_the_others_and_names_what_it_holds(run, tmp_path):
    args = ["download", "--from", DATA, "--format", "simplified", "--data-dir", tmp_path / "d"]
    some = run(*args, "--classes", "cat,dog,clock")
    assert some.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "d" / "simplified").glob("*.ndjson")) == ["cat.ndjson", "clock.ndjson"]
    lines = some.output.splitlines()
    assert lines[-2:] == [
        f"failed dog (simplified): not in {DATA}/ (it holds {HELD})",
        "1 of 3 files failed; the others are in",
    ]
    none = run(*args, "--classes", "dog,bicycle")
    assert none.exit_code == 1 and none.output == (
        f"Error: {DATA}/ has no dog, bicycle. It holds {HELD}; pass --classes from those\n"
    )
