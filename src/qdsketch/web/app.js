// qdsketch serve: draw with the model. Plain JavaScript, no build step, no dependencies.
// The pad holds the person's strokes in its own pixels (0..PAD). A draw request streams
// JSON lines: "start" (where the person's strokes lie once simplified), a "step" per
// point the model adds to each sketch, then "end" (the sketches as ndjson and SVG, and
// the judge's guesses). Each result card draws its sketch as the steps arrive.
"use strict";

const PAD = 512; // the pad's canvas pixels; the person's strokes are sent in these
const $ = (id) => document.getElementById(id);
const pad = $("pad");
const padContext = pad.getContext("2d");
const mine = []; // the person's strokes: [[x, y], ...] each
let classes = {}; // class -> the model that draws it
let running = null; // the AbortController of the request being drawn

// --- the person's strokes ----------------------------------------------------------------

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [
    Math.round(((event.clientX - box.left) * PAD) / box.width * 10) / 10,
    Math.round(((event.clientY - box.top) * PAD) / box.height * 10) / 10,
  ];
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  mine.push([padPoint(event)]);
  drawPad();
});
pad.addEventListener("pointermove", (event) => {
  if (!pad.hasPointerCapture(event.pointerId) || !mine.length) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) mine[mine.length - 1].push(padPoint(e));
  drawPad();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, (event) => {
    if (pad.hasPointerCapture(event.pointerId)) pad.releasePointerCapture(event.pointerId);
  });
}

function drawPad() {
  padContext.clearRect(0, 0, PAD, PAD);
  strokePaths(padContext, mine, "#1d1d1f", 4);
  $("clear").disabled = !mine.length;
}

function strokePaths(context, strokes, color, width) {
  context.strokeStyle = color;
  context.fillStyle = color;
  context.lineWidth = width;
  context.lineCap = "round";
  context.lineJoin = "round";
  for (const stroke of strokes) {
    if (stroke.length === 1) {
      context.beginPath();
      context.arc(stroke[0][0], stroke[0][1], width / 2, 0, 2 * Math.PI);
      context.fill();
      continue;
    }
    context.beginPath();
    context.moveTo(stroke[0][0], stroke[0][1]);
    for (const [x, y] of stroke.slice(1)) context.lineTo(x, y);
    context.stroke();
  }
}

// --- a sketch as it is drawn -----------------------------------------------------------------

// A sketch in pad pixels: the person's strokes (grey), then the model's. ``place`` maps a
// simplified pixel to the pad: the person's strokes' own place, or, on an empty page, a
// start near the top left with a drawing's usual size (255 simplified pixels) over 3/4 of it.
class Sketch {
  constructor(card, given, place) {
    this.card = card;
    this.canvas = card.querySelector("canvas");
    this.context = this.canvas.getContext("2d");
    this.place = place;
    this.given = given.map((stroke) => stroke.map((p) => this.toPad(p)));
    this.strokes = [];
    const last = given.length ? given[given.length - 1] : null;
    this.position = last ? last[last.length - 1].slice() : [0, 0];
    this.lifted = Boolean(last); // the person's last stroke is finished: the model starts anew
    if (!last) this.strokes.push([this.toPad(this.position)]);
    this.done = false;
    this.dirty = true;
  }

  toPad([x, y]) {
    return [this.place.left + x / this.place.scale, this.place.top + y / this.place.scale];
  }

  move(dx, dy, pen) {
    if (this.done) return;
    if (pen === 2) { this.done = true; return; } // the end: its move is not part of the sketch
    this.position = [this.position[0] + dx, this.position[1] + dy];
    const point = this.toPad(this.position);
    if (this.lifted) this.strokes.push([point]);
    else this.strokes[this.strokes.length - 1].push(point);
    this.lifted = pen === 1;
    this.dirty = true;
  }

  render() {
    if (!this.dirty) return;
    this.dirty = false;
    const every = [...this.given, ...this.strokes].flat();
    // the sketch's box, at least half the pad wide (so that its first strokes are not blown
    // up), with a margin: the view follows the sketch as it grows
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [x, y] of every) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
    const side = Math.max(x1 - x0, y1 - y0, PAD / 2) * 1.15;
    const size = this.canvas.width;
    const scale = size / side;
    const c = this.context;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.clearRect(0, 0, size, size);
    c.setTransform(scale, 0, 0, scale, size / 2 - ((x0 + x1) / 2) * scale, size / 2 - ((y0 + y1) / 2) * scale);
    const width = (size / 100) / scale; // about 1% of the card, however far the view zooms
    strokePaths(c, this.given, "#a8a8b0", width);
    strokePaths(c, this.strokes, "#1d1d1f", width);
  }
}

function newCard(index) {
  const card = $("card").content.firstElementChild.cloneNode(true);
  card.dataset.index = index;
  $("results").append(card);
  return card;
}

// --- drawing with the model ------------------------------------------------------------------

async function draw() {
  const name = $("class").value.trim();
  if (!name) { say("pick a class first", true); $("class").focus(); return; }
  if (running) running.abort();
  const controller = new AbortController();
  running = controller;
  const n = Number($("count").value);
  const body = { class: name, n, temperature: Number($("temperature").value) };
  if (mine.length) body.prefix = mine.map((stroke) => [stroke.map((p) => p[0]), stroke.map((p) => p[1])]);
  $("results").replaceChildren();
  if (window.matchMedia("(max-width: 720px)").matches) $("results").scrollIntoView({ behavior: "smooth" });
  say(`drawing ${n} ${name}${mine.length ? " from your strokes" : ""}…`);
  let sketches = [];
  try {
    const response = await fetch("/api/draw", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({ error: response.statusText }));
      say(problem.error, true);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let frame = null;
    const paint = () => { frame = null; for (const s of sketches) s.render(); };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const event = JSON.parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 1);
        sketches = handle(event, sketches) || sketches;
      }
      if (!frame) frame = requestAnimationFrame(paint);
    }
    paint();
  } catch (error) {
    if (error.name !== "AbortError") say(`the server did not answer (${error.message})`, true);
  } finally {
    if (running === controller) running = null;
  }
}

function handle(event, sketches) {
  if (event.event === "start") {
    const given = event.prefix || [];
    const place = event.placed || { left: PAD * 0.2, top: PAD * 0.15, scale: 255 / (PAD * 0.6) };
    document.title = `${event.class} · qdsketch`;
    return Array.from({ length: event.n }, (_, i) => {
      const card = newCard(i);
      card.querySelector(".what").textContent = `${event.class} · ${event.model} · drawing…`;
      return new Sketch(card, given.map((s) => s[0].map((x, k) => [x, s[1][k]])), place);
    });
  }
  if (event.event === "step") {
    for (const [i, dx, dy, pen] of event.moves) sketches[i].move(dx, dy, pen);
    return null;
  }
  if (event.event === "end") {
    event.sketches.forEach((result, i) => finish(sketches[i], result, event));
    const again = event.command ? ` The same from a terminal: ${event.command}` : "";
    say(`done: ${event.sketches.length} × ${event.class} by ${event.model}, seed ${event.seed}.${again}`);
    return null;
  }
  if (event.event === "error") say(event.error, true);
  return null;
}

function finish(sketch, result, event) {
  const card = sketch.card;
  const number = Number(card.dataset.index) + 1;
  card.querySelector(".what").textContent =
    `${event.class} · ${event.model} · ${number} of ${event.sketches.length}, seed ${event.seed}` +
    (result.ended ? "" : " · cut at the length limit");
  const verdict = card.querySelector(".verdict");
  if (result.judge) {
    const [top, p] = result.judge[0];
    const names = result.judge.map(([n]) => n ?? "none of these");
    const hit = top === event.class;
    verdict.classList.toggle("yes", hit);
    verdict.textContent = hit
      ? `judge: a ${top} (${Math.round(p * 100)}%)`
      : `judge sees: ${names.join(", ")}`;
  } else {
    verdict.textContent = "no judge for this model";
  }
  const base = `${event.class.replaceAll(" ", "-")}-${event.seed}-${number}`;
  for (const button of card.querySelectorAll("[data-save]")) {
    button.disabled = false;
    button.onclick = () => save(button.dataset.save, result, base, button);
  }
}

async function save(kind, result, base, button) {
  if (kind === "svg") return download(new Blob([result.svg], { type: "image/svg+xml" }), `${base}.svg`);
  if (kind === "ndjson") return download(new Blob([result.ndjson + "\n"], { type: "application/x-ndjson" }), `${base}.ndjson`);
  button.disabled = true;
  try {
    const response = await fetch("/api/gif", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ndjson: result.ndjson }),
    });
    if (!response.ok) { say((await response.json()).error, true); return; }
    download(await response.blob(), `${base}.gif`);
  } finally {
    button.disabled = false;
  }
}

function download(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function say(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// --- set-up ------------------------------------------------------------------------------------

$("draw").addEventListener("click", draw);
$("clear").addEventListener("click", () => { mine.length = 0; drawPad(); });
$("temperature").addEventListener("input", () => { $("temperature-value").textContent = $("temperature").value; });
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.isComposing && event.target.tagName !== "BUTTON") { event.preventDefault(); draw(); }
  if (event.key === "Escape") { mine.length = 0; drawPad(); }
});

async function start() {
  drawPad();
  try {
    const response = await fetch("/api/models");
    const info = await response.json();
    classes = info.classes;
    const names = Object.keys(classes);
    $("classes").replaceChildren(...names.map((name) => Object.assign(document.createElement("option"), { value: name })));
    const t = info.default_temperature;
    $("temperature").value = t;
    $("temperature-value").textContent = t;
    $("temperature-marks").replaceChildren(Object.assign(document.createElement("option"), { value: t, label: "default" }));
    $("temperature-default").textContent = `default ${t}: the head's best; lower is tidier, higher wilder`;
    const models = info.checkpoint ? `the model at ${info.checkpoint}` : `the shipped models (${info.models.join(", ")})`;
    $("about").textContent = `${names.length} classes, drawn by ${models}. Pick a class, or draw a start and let the model finish it.`;
    $("count").querySelectorAll("option").forEach((o) => { o.disabled = Number(o.value) > info.limits.sketches; });
  } catch (error) {
    say(`could not load the models (${error.message})`, true);
  }
}

start();
