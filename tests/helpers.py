"""What the tests share besides fixtures: where the real drawings are, ways to read and
bend them, and a real HTTP mirror on 127.0.0.1 (conftest.py serves it as a fixture)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "quickdraw"
FIVE = ["cat", "clock", "house", "nail", "tent"]
#: the real drawings beside the repository (CI lays ../shared there); slow tests use its bulk/ files
SHARED = ROOT.parent / "shared" / "data" / "quickdraw"
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


def corrupt(line: bytes, how: str) -> bytes:
    """A real line, broken in the way ``how`` names (one of the reasons a reader gives)."""
    obj = json.loads(line)
    d = obj["drawing"]
    if how == "malformed JSON":
        return line[: len(line) // 2] + b"\n"
    if how == "empty stroke":
        d.append([[], []])
    elif how == "x/y length mismatch":
        d[0][1].pop()
    elif how == "non-numeric value":
        d[0][0][1] = "12"
    elif how == "out-of-range value":
        d[-1][1][0] = 300
    elif how == "empty drawing":
        obj["drawing"] = []
    elif how == "a stroke is not [xs, ys]":
        d[0] = 5
    elif how == "key_id is not a string":
        obj["key_id"] = {"a": [1]}  # unhashable: it used to crash preprocess
    return json.dumps(obj).encode() + b"\n"


def checkpoint_of(model, class_names, mean=(0.0, 0.0), std=(30.0, 30.0), max_seq_len=150, epoch=0, train=None):
    """A ``Checkpoint`` of ``model`` (its own config) for ``class_names``, as training would
    write it, with the normalisation, length limit and training config given (by default
    the default ``TrainConfig``)."""
    from qdsketch.checkpoint import Checkpoint
    from qdsketch.config import TrainConfig

    return Checkpoint(
        model=model,
        config=model.cfg,
        class_names=list(class_names),
        mean=list(mean),
        std=list(std),
        max_seq_len=max_seq_len,
        train=train if train is not None else TrainConfig(),
        epoch=epoch,
    )


def degenerate() -> dict[str, np.ndarray]:
    """What a broken generator draws: a straight line, a scribble, one shape over and over."""
    rng = np.random.default_rng(0)
    line = np.array([[5, 5, 0]] * 30 + [[0, 0, 1]], np.float32)
    walk = np.c_[rng.normal(0, 40, (120, 2)), np.zeros(120)].astype(np.float32)
    walk[-1, 2] = 1
    circle = np.c_[20 * np.cos(np.linspace(0, 2 * np.pi, 13)), 20 * np.sin(np.linspace(0, 2 * np.pi, 13))]
    points, pen = [], []
    for x in (0, 60, 120):
        for y in (0, 60, 120):
            points += (circle + [x, y]).tolist()
            pen += [0] * 12 + [1]
    points = np.array(points)
    circles = np.c_[np.diff(points, axis=0), pen[1:]].astype(np.float32)
    return {"line": line, "scribble": walk, "circles": circles}


def train_json(output: str) -> tuple[list[dict], dict]:
    """``train --json``'s JSON lines: the epochs' rows, and the summary (the last line)."""
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["event"] for line in lines] == ["epoch"] * (len(lines) - 1) + ["end"], output
    return lines[:-1], lines[-1]
