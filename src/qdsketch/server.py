"""``qdsketch serve``: the page, and the HTTP around ``live.Studio``.

The standard library's ``ThreadingHTTPServer`` is enough: the page is three static files,
and streaming a sketch is one response written a line at a time (JSON lines, read by the
page with ``fetch`` as they come), which it does with no framework.

- **Sampling runs off the request threads**, on a small pool (``WORKERS``); a request thread
  only passes the lines on, so static files and other tabs are answered while sketches are
  drawn, and a request past ``QUEUE`` waiting ones is told to try again (503).
- **Bounds**: a body of at most ``MAX_BODY`` bytes, with a Content-Length; ``live``'s bounds
  on sketches, strokes and points; a request that is not JSON, or not what the page sends, is
  a 4xx with one line of JSON (``{"error": ...}``), never a traceback.
- **DNS rebinding**: a request whose Host is not this server's (by the names it answers to)
  is refused, and so is a POST whose Origin is another site's.
- **Static files** come from the package's ``web/`` folder, by a fixed table of names: no
  path from a request ever reaches the file system.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from qdsketch.errors import QdsketchError

MAX_BODY = 256 * 1024
WORKERS = 2  # sketches drawn at once: each is a batch, and the machine's cores are shared
QUEUE = 8  # requests waiting for a worker before the next is told to come back
READ_SECONDS = 30.0  # a client that sends its request slower than this is dropped

#: the page: request path -> (file in qdsketch/web, content type)
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def allowed_hosts(host: str, port: int) -> set[str]:
    """The Host headers this server answers: its own address and, on the loopback, the
    names of the loopback, each with the port."""
    names = {host, f"[{host}]" if ":" in host and not host.startswith("[") else host}
    if host in LOOPBACK or host in ("0.0.0.0", "::"):
        names |= set(LOOPBACK)
    return {f"{name}:{port}" for name in names}


class Server(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C does not wait for an open stream
    allow_reuse_address = True

    def __init__(self, address, studio, hosts: set[str] | None = None, log=None):
        self.studio = studio
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="qdsketch-draw")  # before the bind, which
        self.slots = threading.BoundedSemaphore(WORKERS + QUEUE)  # closes the server when it fails
        self.log = log  # a callable for one line a request, or None
        super().__init__(address, Handler)
        self.hosts = hosts if hosts is not None else allowed_hosts(address[0], self.server_address[1])

    def handle_error(self, request, client_address):
        """A request that failed in a way no check foresaw: one line in the log (with ``-v``),
        not the standard library's traceback on the terminal; the client's connection closes."""
        import sys

        kind = sys.exc_info()[0]
        if self.log is not None:
            self.log(f"{client_address[0]} request failed: {kind.__name__ if kind else 'unknown'}")

    def server_close(self):
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    timeout = READ_SECONDS

    def log_message(self, format, *args):  # noqa: A002 (the standard library's name)
        if self.server.log is not None:
            self.server.log(f"{self.address_string()} {format % args}")

    # --- the checks every request passes ---------------------------------------------------

    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") not in self.server.hosts:
            self._error(HTTPStatus.FORBIDDEN, "this server answers to its own address only (Host)")
            return False
        return True

    def _origin_ok(self) -> bool:
        origin = self.headers.get("Origin")
        if origin is not None and origin not in {f"http://{h}" for h in self.server.hosts}:
            self._error(HTTPStatus.FORBIDDEN, "requests from other sites are refused (Origin)")
            return False
        return True

    # --- GET: the page and what it shows first -----------------------------------------------

    def do_GET(self):
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path == "/api/models":
            self._json(HTTPStatus.OK, self.server.studio.describe())
            return
        if path not in STATIC:
            self._error(HTTPStatus.NOT_FOUND, f"no page at {path[:100]}")
            return
        name, kind = STATIC[path]
        body = resources.files("qdsketch").joinpath("web").joinpath(name).read_bytes()
        self._send(HTTPStatus.OK, kind, body)

    # --- POST: draw, and a GIF of a drawing ----------------------------------------------------

    def do_POST(self):
        if not (self._host_ok() and self._origin_ok()):
            return
        path = self.path.split("?", 1)[0]
        if path not in ("/api/draw", "/api/gif"):
            self._error(HTTPStatus.NOT_FOUND, f"no endpoint at {path[:100]}")
            return
        request = self._body()
        if request is None:
            return
        if path == "/api/gif":
            self._gif(request)
        else:
            self._draw(request)

    def _body(self) -> dict | None:
        """The request's JSON object, or ``None`` after an error was sent."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length")
            return None
        if int(length) > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"a body of at most {MAX_BODY:,} bytes")
            return None
        try:
            data = json.loads(self.rfile.read(int(length)))
        except (ValueError, UnicodeDecodeError):
            self._error(HTTPStatus.BAD_REQUEST, "the body is not JSON")
            return None
        except OSError:  # the client went away, or was too slow
            self.close_connection = True
            return None
        if not isinstance(data, dict):
            self._error(HTTPStatus.BAD_REQUEST, "the body is not a JSON object")
            return None
        return data

    def _draw(self, request: dict) -> None:
        try:
            args = draw_arguments(request)
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        if not self.server.slots.acquire(blocking=False):
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "busy drawing for others: try again in a moment")
            return
        lines: queue.Queue = queue.Queue()
        cancelled = threading.Event()

        def emit(event: dict) -> None:
            if cancelled.is_set():  # the page went away: stop drawing for it
                raise _Gone
            lines.put(event)

        def work():
            try:
                self.server.studio.draw(*args, emit=emit)
            except _Gone:
                pass
            except QdsketchError as exc:  # an unknown class, with its suggestion
                lines.put({"event": "error", "error": str(exc)})
            except Exception as exc:  # a bug: said in the stream and the log, not as a traceback to the page
                lines.put({"event": "error", "error": f"drawing failed ({type(exc).__name__})"})
                if self.server.log is not None:
                    self.server.log(f"drawing failed: {type(exc).__name__}: {exc}")
            finally:
                lines.put(None)
                self.server.slots.release()

        self.server.pool.submit(work)
        first = lines.get()
        if first is None or first["event"] == "error":  # refused before anything was drawn: a plain 4xx
            self._error(HTTPStatus.BAD_REQUEST, first["error"] if first else "nothing was drawn")
            return
        self._headers(HTTPStatus.OK, "application/x-ndjson")
        try:
            event = first
            while event is not None:
                self._chunk((json.dumps(event, separators=(",", ":")) + "\n").encode())
                event = lines.get()
            self._chunk(b"")
        except OSError:  # the page closed the stream
            cancelled.set()
            self.close_connection = True

    def _gif(self, request: dict) -> None:
        from qdsketch import render

        try:
            rows = gif_rows(request)
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        frames = render.frames(rows, 256, 2)
        self._send(HTTPStatus.OK, "image/gif", render.gif_bytes(frames, 20, 1.5))

    # --- writing -------------------------------------------------------------------------------

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: HTTPStatus, data) -> None:
        self._send(status, "application/json", json.dumps(data).encode())

    def _error(self, status: HTTPStatus, message: str) -> None:
        self.close_connection = True  # what is left of the request is not read
        self._json(status, {"error": message})

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        try:
            self._headers(status, kind, len(body))
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _headers(self, status: HTTPStatus, kind: str, length: int | None = None) -> None:
        """The status line and headers of every answer: a body of ``length`` bytes, or, with
        none, one streamed in chunks (``_chunk``); never cached, never sniffed."""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if kind.startswith("text/html"):  # the page runs its own script and style only
            self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()


class _Gone(Exception):
    """The page stopped reading a stream."""


def draw_arguments(request: dict) -> tuple:
    """``Studio.draw``'s arguments from a draw request, checked: ``ValueError`` says what is wrong."""
    unknown = set(request) - {"class", "n", "seed", "temperature", "prefix"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
    name = request.get("class")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ValueError("'class' must name a class")
    n = request.get("n", 1)
    if type(n) is not int:
        raise ValueError("'n' must be a whole number")
    seed = request.get("seed")
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    if type(seed) is not int or not 0 <= seed < 2**63:
        raise ValueError("'seed' must be a whole number from 0 to 2**63 - 1")
    temperature = request.get("temperature")
    if temperature is not None and (type(temperature) not in (int, float) or not 0 <= temperature <= 2):
        raise ValueError("'temperature' must be a number from 0 to 2")
    prefix = request.get("prefix")
    if prefix is not None:
        from qdsketch.live import person_strokes

        person_strokes(prefix)  # its errors before any drawing starts
    return name, n, seed, None if temperature is None else float(temperature), prefix


def gif_rows(request: dict):
    """A GIF request's drawing (``{"ndjson": LINE}``, as the page saved it) as stroke-3 rows."""
    from qdsketch import strokes
    from qdsketch.live import MAX_POINTS

    line = request.get("ndjson")
    if not isinstance(line, str):
        raise ValueError("send the drawing as {'ndjson': LINE}")
    try:
        drawing = json.loads(line)["drawing"]
        points = sum(len(s[0]) for s in drawing)
        if not drawing or points > MAX_POINTS:
            raise ValueError
        rows = strokes.drawing_to_stroke3(drawing)
    except (ValueError, KeyError, TypeError, IndexError):
        raise ValueError(f"the drawing is not Quick, Draw! ndjson of at most {MAX_POINTS} points") from None
    if not len(rows):
        raise ValueError("the drawing has no strokes")
    return rows


def serve(studio, host: str = "127.0.0.1", port: int = 8765, log=None) -> Server:
    """A server for ``studio`` at ``host:port`` (0: any free port), not yet serving."""
    return Server((host, port), studio, log=log)
