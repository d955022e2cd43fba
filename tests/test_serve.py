"""`qdsketch serve`: the server over real HTTP on 127.0.0.1, the command, and the page in a
real browser (headless Chromium, from the distribution's packages: .ci/run installs it)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA

from qdsketch import strokes
from qdsketch.live import MAX_SKETCHES, Studio, person_strokes
from qdsketch.sample import draw, ndjson_lines
from qdsketch.server import MAX_BODY, QUEUE, WORKERS, serve


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    """ndjson's timestamp says when a sketch was drawn: fixed, so a page's and sample's compare."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")


@pytest.fixture(scope="module")
def server():
    """The shipped models' page, served on a free port of 127.0.0.1 for this module."""
    srv = serve(Studio(None, "cpu"), "127.0.0.1", 0, log=print)  # shown with a failure
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(server, method: str, path: str, body=None, headers=None, raw: bytes | None = None):
    """``(status, headers, body bytes)`` of one request, on a connection of its own."""
    port = server.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    sent = {"Host": f"127.0.0.1:{port}", **(headers or {})}
    if data is not None and "Content-Length" not in sent:
        sent["Content-Length"] = str(len(data))
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for key, value in sent.items():
        if value is not None:
            conn.putheader(key, value)
    conn.endheaders(data)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), payload


def events(payload: bytes) -> list[dict]:
    return [json.loads(line) for line in payload.decode().splitlines()]


def rows_from_moves(lines: list[dict], n: int) -> list[np.ndarray]:
    """Each sketch's stroke-3 rows, rebuilt from the streamed steps as the page builds them."""
    moves: list[list] = [[] for _ in range(n)]
    for event in lines:
        if event["event"] == "step":
            for i, dx, dy, pen in event["moves"]:
                moves[i].append((dx, dy, pen))
    rows = []
    for m in moves:
        ends = [k for k, (_, _, pen) in enumerate(m) if pen == 2]
        kept = np.array(m[: ends[0] if ends else len(m)], dtype=np.float64).reshape(-1, 3)
        kept[:, 2] = kept[:, 2] == 1
        if len(kept):
            kept[-1, 2] = 1
        rows.append(kept)
    return rows


# --- the server over HTTP ---------------------------------------------------------------------


def test_a_drawing_streams_step_by_step_and_is_exactly_sample_s(server):
    status, headers, payload = request(server, "POST", "/api/draw", {"class": "bicycle", "n": 3, "seed": 11})
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson"
    lines = events(payload)
    assert lines[0] == {
        "event": "start",
        "class": "bicycle",
        "model": "all",
        "seed": 11,
        "n": 3,
        "temperature": 0.25,
        "prefix": None,
        "placed": None,
    }
    steps = [e for e in lines if e["event"] == "step"]
    assert [e["t"] for e in steps] == list(range(len(steps))) and len(steps) > 10
    end = lines[-1]
    assert end["event"] == "end" and end["command"] == "qdsketch sample 'bicycle' -n 3 --seed 11 --temperature 0.25"
    drawn = draw(None, ["bicycle"], 3, 11)  # what the command line draws
    assert [s["ndjson"] for s in end["sketches"]] == ndjson_lines(drawn.generated.rows, drawn.words, drawn.seeds)
    for streamed, rows in zip(rows_from_moves(lines, 3), drawn.generated.rows):  # the steps are the sketch
        np.testing.assert_allclose(streamed, rows, atol=2e-3)
    for sketch in end["sketches"]:  # the judge of all 345 classes says what it sees
        names = [name for name, _ in sketch["judge"]]
        assert len(names) == 3 and all(n is None or isinstance(n, str) for n in names)
        assert sketch["svg"].startswith("<svg") and sketch["ended"] in (True, False)


def test_a_persons_strokes_are_simplified_as_google_did_and_continued(server):
    """A real drawing's first two strokes, as a screen would have them (twice the size, moved):
    the sketches start with them, simplified, and are sample --prefix's with them."""
    real = json.loads((DATA / "raw" / "cat.ndjson").read_text().splitlines()[0])["drawing"][:2]
    screen = [[[x * 2 + 40 for x in s[0]], [y * 2 + 30 for y in s[1]]] for s in real]
    status, _, payload = request(server, "POST", "/api/draw", {"class": "cat", "n": 2, "seed": 3, "prefix": screen})
    assert status == 200
    lines = events(payload)
    given, placed = person_strokes(screen)
    simplified = strokes.simplify_drawing(screen)
    assert lines[0]["prefix"] == [[s[:, 0].tolist(), s[:, 1].tolist()] for s in simplified]
    low = np.concatenate([np.array(s[:2]).T for s in screen]).min(axis=0)
    assert (placed["left"], placed["top"]) == (low[0], low[1])
    drawn = draw(None, ["cat"], 2, 3, prefix=given)
    end = lines[-1]
    assert (end["seed"], end["command"]) == (3, None)  # a person's strokes are in no file a terminal could read
    assert [s["ndjson"] for s in end["sketches"]] == ndjson_lines(drawn.generated.rows, drawn.words, drawn.seeds)
    for sketch in end["sketches"]:  # each saved drawing starts with the person's strokes
        saved = json.loads(sketch["ndjson"])["drawing"]
        for mine, theirs in zip(simplified, saved[:2]):
            assert len(theirs[0]) == len(mine)


@pytest.mark.parametrize(
    "body, status, error",
    [
        ({"class": "cat", "n": MAX_SKETCHES + 1}, 400, f"9 sketches at once. Ask for 1 to {MAX_SKETCHES}"),
        ({"class": "cat", "n": 0}, 400, f"0 sketches at once. Ask for 1 to {MAX_SKETCHES}"),
        ({"class": "cat", "n": "3"}, 400, "'n' must be a whole number"),
        ({"class": "bicycl"}, 400, "class 'bicycl' is not one this model knows. Did you mean 'bicycle'"),
        ({"n": 2}, 400, "'class' must name a class"),
        ({"class": "cat", "temperature": 5}, 400, "'temperature' must be a number from 0 to 2"),
        ({"class": "cat", "seed": -1}, 400, "'seed' must be a whole number from 0 to 2**63 - 1"),
        ({"class": "cat", "colour": "red"}, 400, "unknown field 'colour'"),
        ({"class": "cat", "prefix": "a line"}, 400, "the strokes are not a list of [xs, ys]"),
        ({"class": "cat", "prefix": [[[1, 2], [3]]]}, 400, "a stroke's xs and ys differ in length, or are empty"),
        ({"class": "cat", "prefix": [[[1, "2"], [3, 4]]]}, 400, "a coordinate is not a number"),
        ({"class": "cat", "prefix": [[[0, 1], [0, 1]]] * 101}, 400, "101 strokes, more than 100"),
        ({"class": "cat", "prefix": [[list(range(5001)), list(range(5001))]]}, 400, "more than 5000 points"),
        ({"class": "cat", "prefix": [[[0, 1e300], [0, 1]]]}, 400, "a coordinate is not a finite screen position"),
        ({"class": "cat", "prefix": [[[0, 10**400], [0, 1]]]}, 400, "a coordinate is not a finite screen position"),
        ([1, 2], 400, "the body is not a JSON object"),
    ],
)
def test_bad_requests_are_one_clear_4xx(server, body, status, error):
    got, headers, payload = request(server, "POST", "/api/draw", body)
    assert got == status and headers["Content-Type"] == "application/json"
    assert json.loads(payload)["error"].startswith(error)


def test_bodies_that_are_not_json_too_large_or_unsized(server):
    assert request(server, "POST", "/api/draw", raw=b"{not json")[0] == 400
    assert request(server, "POST", "/api/draw", raw=b'{"class": "cat", "seed": NaN}')[0] == 400  # JSON has no NaN
    status, _, payload = request(server, "POST", "/api/draw", raw=b" " * (MAX_BODY + 1))
    assert (status, json.loads(payload)) == (413, {"error": f"a body of at most {MAX_BODY:,} bytes"})
    huge = {"Content-Length": str(10**12)}  # said, never sent: refused before a byte is read
    assert request(server, "POST", "/api/draw", raw=b"{}", headers=huge)[0] == 413
    assert request(server, "POST", "/api/draw", raw=b"{}", headers={"Content-Length": None})[0] == 411


@pytest.mark.parametrize(
    "headers, error",
    [
        ({"Host": "evil.example:8765"}, "this server answers to its own address only (Host)"),
        ({"Host": None}, "this server answers to its own address only (Host)"),
        ({"Origin": "http://evil.example"}, "requests from other sites are refused (Origin)"),
    ],
)
def test_other_hosts_and_origins_are_refused_against_dns_rebinding(server, headers, error):
    status, _, payload = request(server, "POST", "/api/draw", {"class": "cat"}, headers=headers)
    assert (status, json.loads(payload)) == (403, {"error": error})
    if "Origin" not in headers:
        assert request(server, "GET", "/", headers=headers)[0] == 403


def test_the_pages_own_origin_and_the_loopback_names_are_answered(server):
    port = server.server_address[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert request(server, "GET", "/api/models", headers={"Host": host})[0] == 200
    own = {"Origin": f"http://127.0.0.1:{port}"}
    assert request(server, "POST", "/api/draw", {"class": "nail", "n": 1, "seed": 1}, headers=own)[0] == 200


@pytest.mark.parametrize(
    "path", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/web/app.js", "//etc/passwd", "/app.js/../../x"]
)
def test_static_files_come_from_the_package_only(server, path):
    status, _, payload = request(server, "GET", path)
    assert status == 404 and json.loads(payload)["error"].startswith("no page at")


def test_the_page_and_its_files(server):
    status, headers, page = request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="/app.js">' in page and "default-src 'self'" in headers["Content-Security-Policy"]
    for path, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, headers, _ = request(server, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind)
    status, _, payload = request(server, "GET", "/api/models")
    info = json.loads(payload)
    assert len(info["classes"]) == 345 and info["classes"]["cat"] == "five" and info["classes"]["bicycle"] == "all"
    assert info["default_temperature"] == 0.25 and info["limits"]["sketches"] == MAX_SKETCHES


def test_a_gif_of_a_saved_drawing(server):
    line = (DATA / "simplified" / "house.ndjson").read_text().splitlines()[0]
    status, headers, gif = request(server, "POST", "/api/gif", {"ndjson": line})
    assert status == 200 and headers["Content-Type"] == "image/gif" and gif[:6] == b"GIF89a"
    status, _, payload = request(server, "POST", "/api/gif", {"ndjson": "{}"})
    assert status == 400 and "not Quick, Draw! ndjson" in json.loads(payload)["error"]


def test_two_clients_at_once_both_get_their_own_sketches(server):
    results: dict[int, list] = {}

    def client(seed):
        results[seed] = events(request(server, "POST", "/api/draw", {"class": "house", "n": 4, "seed": seed})[2])
        assert results[seed][-1]["event"] == "end", results[seed][-1]

    threads = [threading.Thread(target=client, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for seed in (1, 2):
        drawn = draw(None, ["house"], 4, seed)
        assert [s["ndjson"] for s in results[seed][-1]["sketches"]] == ndjson_lines(
            drawn.generated.rows, drawn.words, drawn.seeds
        )


def test_a_page_that_goes_away_frees_its_worker_and_a_full_queue_says_busy(server):
    port = server.server_address[1]
    sock = socket.create_connection(("127.0.0.1", port))
    body = json.dumps({"class": "aircraft carrier", "n": 8, "seed": 5}).encode()
    head = f"POST /api/draw HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
    sock.sendall(head.encode() + body)
    assert b"200 OK" in sock.recv(200)
    sock.close()  # gone mid-stream: its drawing stops at its next step
    deadline = time.time() + 60
    while server.slots._value != WORKERS + QUEUE and time.time() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert server.slots._value == WORKERS + QUEUE  # type: ignore[attr-defined]
    taken = [server.slots.acquire(blocking=False) for _ in range(WORKERS + QUEUE)]  # as if all were drawing
    try:
        status, _, payload = request(server, "POST", "/api/draw", {"class": "cat"})
        assert (status, json.loads(payload)) == (503, {"error": "busy drawing for others: try again in a moment"})
        assert request(server, "GET", "/")[0] == 200  # the page itself is still answered
    finally:
        for ok in taken:
            if ok:
                server.slots.release()


# --- the command ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def start_serve():
    """``qdsketch serve ARGS`` as a real process (no browser opens: no display); every one
    started is killed after the test, whatever its assertions did."""
    started: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}

    def start(*args) -> subprocess.Popen:
        command = [sys.executable, "-m", "qdsketch", "serve", *map(str, args)]
        started.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_prints_its_address_and_stops_cleanly(start_serve, stop):
    port = free_port()
    proc = start_serve("--port", port)
    first = proc.stdout.readline()
    assert first == f"qdsketch serve: http://127.0.0.1:{port}/  (Ctrl-C stops it)\n"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/api/models")
    assert conn.getresponse().status == 200
    for hostile in (
        b"GARBAGE\r\n\r\n",
        b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\n\r\n",
        b"\x00\xff" * 100 + b"\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:  # answered, never a traceback
            sock.sendall(hostile)
            assert sock.recv(1000)  # the standard library's error page
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (0, "", "stopped\n")


def test_serve_on_a_busy_port_and_on_every_address(start_serve):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_serve("--port", port)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out == ""
    assert err == (
        f"Error: cannot listen on 127.0.0.1:{port} (Address already in use). "
        "Pass another --port, or --port 0 for any free one\n"
    )
    port = free_port()
    proc = start_serve("--host", "0.0.0.0", "--port", port)
    warning = proc.stderr.readline()
    assert warning.startswith("warning: listening on 0.0.0.0: anyone who can reach this machine can draw")
    assert proc.stdout.readline() == f"qdsketch serve: http://127.0.0.1:{port}/  (Ctrl-C stops it)\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0


# --- the page, in a real browser ----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: skipped where no Chromium is installed, but not in CI, which installs it and says it must run
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("QDSKETCH_REQUIRE_BROWSER"),
    reason="needs chromium and chromium-driver (apt); .ci/run installs them",
)

#: the dark ink the page draws the model's strokes with (the person's are grey)
INK = "return Array.from(document.querySelectorAll('.card canvas')).map((c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && d[i] < 80) n++; return n; });"


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "saved")})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(condition, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("the page did not get there in time")


@needs_chromium
@pytest.mark.slow
@pytest.mark.parametrize("screen", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_in_a_browser_a_stroke_drawn_by_hand_is_finished_three_ways(server, browser, tmp_path, screen):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.set_window_size(*screen)
    browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
    wait_for(lambda: "345 classes" in browser.find_element(By.ID, "about").text)
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )  # no sideways scroll
    browser.find_element(By.ID, "class").send_keys("cat")
    pad = browser.find_element(By.ID, "pad")
    side = pad.size["width"]
    # a cat's head, by hand: real pointer events (WebDriver's actions), a rough circle; on the
    # phone-sized screen with a finger (touch), on the desktop with a mouse
    circle = [(np.cos(a) * side * 0.15, np.sin(a) * side * 0.15 - side * 0.1) for a in np.linspace(0, 2 * np.pi, 24)]
    if screen[0] > 720:
        hand = ActionChains(browser).move_to_element_with_offset(pad, int(circle[0][0]), int(circle[0][1]))
        hand.click_and_hold()
        for x, y in circle[1:]:
            hand.move_to_element_with_offset(pad, int(x), int(y))
        hand.release().perform()
    else:
        from selenium.webdriver.common.actions import interaction
        from selenium.webdriver.common.actions.action_builder import ActionBuilder
        from selenium.webdriver.common.actions.pointer_input import PointerInput

        finger = ActionBuilder(browser, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
        finger.pointer_action.move_to(pad, int(circle[0][0]), int(circle[0][1])).pointer_down()
        for x, y in circle[1:]:
            finger.pointer_action.move_to(pad, int(x), int(y))
        finger.pointer_action.pointer_up()
        finger.perform()
    mine = browser.execute_script("return mine")
    assert len(mine) == 1 and len(mine[0]) > 10
    browser.find_element(By.ID, "draw").click()
    wait_for(lambda: browser.find_element(By.ID, "status").text.startswith("done: 3 × cat by five"))
    captions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, ".card .what")]
    seed = browser.find_element(By.ID, "status").text.split(", seed ")[1].split(".")[0]
    assert [c.startswith(f"cat · five · {i} of 3, seed {seed}") for i, c in enumerate(captions, 1)] == [True] * 3
    ink = browser.execute_script(INK)
    assert len(ink) == 3 and all(n > 50 for n in ink), ink  # each card has the model's strokes in it
    browser.execute_script("document.getElementById('results').scrollIntoView()")
    shots = Path(os.environ.get("QDSKETCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / f"serve-{'desktop' if screen[0] > 720 else 'phone'}.png"))
    # the saved ndjson starts with the stroke drawn by hand, simplified as Google did
    browser.find_element(By.CSS_SELECTOR, ".card [data-save=ndjson]").click()
    saved = wait_for(lambda: list((tmp_path / "saved").glob("cat-*-1.ndjson")))
    drawing = json.loads(saved[0].read_text())["drawing"]
    simplified = strokes.simplify_drawing([[[p[0] for p in mine[0]], [p[1] for p in mine[0]]]])[0]
    first = np.array(drawing[0]).T
    assert len(first) == len(simplified)
    # the whole sketch was scaled into 0..255 once more: the same points, up to one scale and shift
    fit = np.polyfit(simplified[:, 0], first[:, 0], 1)
    assert np.abs(np.polyval(fit, simplified[:, 0]) - first[:, 0]).max() <= 1.5
    assert len(drawing) > 1  # and the model's strokes follow
