"""Shared fixtures: real drawings, and a real HTTP mirror on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

# tiny models run fastest on one thread, and the suite should not fight whatever else runs
torch.set_num_threads(1)

DATA = Path(__file__).parent / "data" / "quickdraw"
FIVE = ["cat", "clock", "house", "nail", "tent"]
#: the real drawings beside the repository (CI lays ../shared there); slow tests use its bulk/ files
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "quickdraw"
needs_shared = pytest.mark.skipif(not (SHARED / "bulk").is_dir(), reason=f"needs the real drawings in {SHARED}")


def real_lines(name: str, folder: str = "simplified") -> list[bytes]:
    return (DATA / folder / f"{name}.ndjson").read_bytes().splitlines(keepends=True)


def repeated_lines(name: str, count: int) -> bytes:
    """``count`` lines: the real drawings of ``name`` over and over, each
    copy with a new key_id, for tests that need a large file."""
    lines = [json.loads(line) for line in real_lines(name) + real_lines(name, "next")]
    out = []
    for i in range(count):
        obj = dict(lines[i % len(lines)], key_id=str(9_000_000_000_000_000 + i))
        out.append(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
    return b"".join(out)


class Mirror:
    """A folder in Google's bucket layout, served over HTTP on 127.0.0.1.

    ``faults[url_path]`` is a list of faults served in order, one per request:
    ``"drop"`` (send half the body, then close the connection) or ``"500"``.
    ``sent`` counts the body bytes the server got into the socket per path.
    ``latency`` (seconds) is waited before each response and after every 64 KiB
    of body, as a distant server's round trips would (benchmarks/download_jobs.py).
    """

    def __init__(self, root: Path):
        self.root = root
        self.faults: dict[str, list[str]] = {}
        self.sent: Counter = Counter()
        self.requests: list[tuple[str, str | None]] = []
        self.honour_range = True
        self.latency = 0.0
        self.redirects: dict[str, str] = {}  # url path -> where a 302 sends it
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # a small send buffer keeps what the kernel queues ahead of the client small
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)

            def do_GET(self):
                mirror.requests.append((self.path, self.headers.get("Range")))
                time.sleep(mirror.latency)
                if self.path in mirror.redirects:
                    self.send_response(302)
                    self.send_header("Location", mirror.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = mirror.root / unquote(self.path).lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                queue = mirror.faults.get(self.path)
                fault = queue.pop(0) if queue else None
                if fault == "500":
                    self.send_error(500)
                    return
                body = path.read_bytes()
                size = len(body)
                start = 0
                wanted = self.headers.get("Range")
                if wanted and mirror.honour_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(size - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                body = body[start:]
                if fault == "drop":
                    body = body[: len(body) // 2]
                try:
                    for i in range(0, len(body), 8192):
                        self.wfile.write(body[i : i + 8192])
                        mirror.sent[self.path] += len(body[i : i + 8192])
                        if mirror.latency and (i + 8192) % 65536 == 0:
                            time.sleep(mirror.latency)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if fault == "drop":
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        # shutdown() waits for the server's next poll: 0.05 s instead of the default 0.5 s per test
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def path_of(self, fmt: str, name: str) -> str:
        folder = "sketchrnn" if fmt == "sketchrnn" else f"full/{fmt}"
        ext = "npz" if fmt == "sketchrnn" else "ndjson"
        return f"/{folder}/{name.replace(' ', '%20')}.{ext}"

    def add(self, fmt: str, name: str, data: bytes) -> Path:
        path = self.root / unquote(self.path_of(fmt, name)).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path


@pytest.fixture
def mirror(tmp_path):
    """The shipped simplified and raw files, served in Google's layout."""
    root = tmp_path / "mirror"
    for fmt in ("simplified", "raw"):
        target = root / "full" / fmt
        target.mkdir(parents=True)
        for f in (DATA / fmt).glob("*.ndjson"):
            shutil.copy(f, target / f.name)
    m = Mirror(root)
    m.thread.start()
    yield m
    m.server.shutdown()
    m.server.server_close()


@pytest.fixture
def run(tmp_path, monkeypatch):
    """The CLI, in-process, from ``tmp_path`` (so relative defaults such as
    data/ and runs/ land there): ``run("sample", "cat", "-o", path)``; any
    argument is passed as ``str(arg)``."""
    from click.testing import CliRunner

    from qdsketch.cli import cli

    monkeypatch.chdir(tmp_path)
    return lambda *args: CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def data_copy(tmp_path):
    """A data directory holding the shipped drawings, as `download --from` leaves it."""
    target = tmp_path / "data"
    for fmt in ("simplified", "raw"):
        shutil.copytree(DATA / fmt, target / fmt)
    return target


@pytest.fixture(scope="session")
def dataset_path(tmp_path_factory):
    """The five reference classes from the shipped drawings, as `preprocess` writes them."""
    from qdsketch.data import build_dataset, save_dataset

    path = tmp_path_factory.mktemp("dataset") / "dataset.npz"
    save_dataset(build_dataset(DATA, FIVE), path)
    return path


@pytest.fixture(scope="session")
def sharded_path(tmp_path_factory):
    """The same drawings as ``dataset_path``, as a sharded dataset of small
    shards (about 10 drawings), so that every split spans several."""
    from qdsketch.data import Plan
    from qdsketch.shards import write_shards

    path = tmp_path_factory.mktemp("sharded") / "five"
    write_shards(Plan.of(DATA, FIVE), path, shard_drawings=10)
    return path
