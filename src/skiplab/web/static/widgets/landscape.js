// Loss landscape (Li et al. 2018): filter-normalised planes around the shipped plain and residual nets, streamed
// row by row from the server and drawn as each row arrives; the loss from initial to trained weights; the shipped
// study's Hessian extremes and roughness. Every number is a field of the server's JSON.
import { COLORS, clearError, fetchJSON, fmt, h, markReady, numbersShown, plot, restoreSettings, saveSettings, setBusy, settingsOf, showError, table } from "../common.js";
import { drawContour, drawScale, drawSurface } from "./surface.js";

const KINDS = [["plain", "plain"], ["res", "residual"]];
const BUSY_RETRIES = 30;

const wait = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("superseded", "AbortError"));
    }, { once: true });
  });

// GET a stream of JSON lines, calling onEvent(event) per line as it arrives; a 429 is retried as it asks.
async function streamLines(url, onEvent, signal) {
  let response;
  for (let attempt = 0; ; attempt++) {
    try {
      response = await fetch(url, { signal, headers: { Accept: "application/x-ndjson" } });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new Error("the server cannot be reached — is `skiplab serve` still running?");
    }
    if (response.status !== 429 || attempt >= BUSY_RETRIES) break;
    await wait(1000 * (Number(response.headers.get("Retry-After")) || 1), signal);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      /* not JSON: keep the status text */
    }
    throw new Error(`${response.status} — ${detail}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 1);
      if (!line) continue;
      const event = JSON.parse(line);
      if (event.event === "error") throw new Error(`${event.status} — ${event.detail}`);
      onEvent(event);
    }
  }
}

function drawPanel(el, kind, grid, view) {
  const canvas = el.querySelector(`[data-role=${kind}] canvas`);
  if (!grid) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    return;
  }
  if (view === "surface") drawSurface(canvas, grid.xs, grid.ys, grid.rows);
  else drawContour(canvas, grid.xs, grid.ys, grid.rows);
}

const pct = (v) => (v === null || v === undefined ? "—" : `${(100 * v).toFixed(0)}%`);

function panelNote(el, kind, grid, depth) {
  const note = el.querySelector(`[data-role=${kind}] .panel-note`);
  const end = grid?.end;
  if (!end) {
    note.textContent = grid ? `computing: ${grid.rows.filter(Boolean).length} of ${grid.ys.length} rows` : "waiting…";
    return;
  }
  note.textContent = `loss at the trained weights ${fmt(end.base_loss)} (accuracy ${pct(end.base_accuracy)}); ` +
    `non-convex at ${pct(end.roughness.non_convex_share)} of the plane's interior points; ` +
    `${end.points} points in ${fmt(end.seconds)} s (first row after ${fmt(end.first_row_seconds)} s)`;
  note.dataset.depth = String(depth);
}

function studyTable(el, subjects, depth, seed) {
  const study = subjects.study;
  const tbl = el.querySelector("[data-role=stats]");
  if (!study) {
    tbl.replaceChildren();
    return;
  }
  const of = (kind) => study.measures.find((m) => m.kind === kind && m.depth === depth && m.seed === seed);
  const [p, r] = [of("plain"), of("res")];
  if (!p || !r) {
    tbl.replaceChildren();
    return;
  }
  const g = study.config.grid;
  table(tbl, ["shipped study, seed " + seed, `plain-${depth}`, `residual-${depth}`], [
    ["loss at the trained weights", fmt(p.loss), fmt(r.loss)],
    [`non-convex share of a ${g}×${g} plane (directions seed ${study.config.direction_seed})`, pct(p.non_convex_share), pct(r.non_convex_share)],
    ["λmax: the sharpest curvature", fmt(p.lambda_max), fmt(r.lambda_max)],
    ["λmin", fmt(p.lambda_min), fmt(r.lambda_min)],
    ["|λmin / λmax|", fmt(p.ratio), fmt(r.ratio)],
    ["loss at the initial weights", fmt(p.line_init_loss), fmt(r.line_init_loss)],
    ["falls all the way from initial to trained", p.line_monotone ? "yes" : "no", r.line_monotone ? "yes" : "no"],
  ]);
}

function findingText(el, subjects, grids, settings) {
  const study = subjects.study;
  const box = el.querySelector("[data-role=finding]");
  const view = KINDS.every(([k]) => grids[k]?.end)
    ? ` In this view (seed ${settings.seed}, ${settings.grid}×${settings.grid} points, directions seed ${settings.direction_seed}), ` +
      `plain-${settings.depth} curves downward at ${pct(grids.plain.end.roughness.non_convex_share)} of its plane's interior points and ` +
      `residual-${settings.depth} at ${pct(grids.res.end.roughness.non_convex_share)}.`
    : "";
  box.textContent = (study ? `What these nets show: ${study.finding}` : "No study is shipped with this install.") + view;
  const prov = el.querySelector("[data-role=provenance]");
  prov.textContent = `Nets shipped by: ${subjects.command}.` + (study ? ` Study made by: ${study.command}. Rule: ${study.rule}.` : "") +
    (grids.plain?.end ? ` BatchNorm: ${grids.plain.end.bn_statistics}. Directions: ${grids.plain.end.directions}.` : "");
}

async function drawLines(el, lines) {
  const traces = KINDS.filter(([k]) => lines[k]).map(([k, name]) => ({
    x: lines[k].t,
    y: lines[k].loss,
    name: `${name}-${lines[k].settings.depth}`,
    mode: "lines",
    line: { color: k === "res" ? COLORS.residual : COLORS.plain, dash: k === "res" ? "solid" : "dash", width: 2 },
  }));
  await plot(el.querySelector("[data-role=line]"), traces, {
    xaxis: { title: { text: "t: 0 = initial weights, 1 = trained weights" }, zeroline: false },
    yaxis: { title: { text: "loss" }, type: "log", exponentformat: "power" },
    shapes: [0, 1].map((x) => ({ type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { color: "#9ca3af", dash: "dot", width: 1 } })),
  });
}

export default function landscape(el) {
  const form = el.querySelector("form");
  const status = el.querySelector(".status");
  let subjects = null;
  let grids = {};
  let current = null; // {controller, settings}
  let shown = null; // {settings, grids, lines}: the last view drawn in full, to go back to if a change is refused
  let visible = false;

  const redraw = () => {
    const s = settingsOf(form);
    for (const [k] of KINDS) drawPanel(el, k, grids[k], s.view);
  };

  async function compute() {
    const settings = settingsOf(form);
    saveSettings("landscape", form);
    current?.controller.abort();
    const controller = new AbortController();
    current = { controller, settings };
    const { view, ...query } = settings;
    grids = {};
    const lines = {};
    setBusy(el, true);
    clearError(el);
    studyTable(el, subjects, Number(settings.depth), Number(settings.seed));
    for (const [k, name] of KINDS) {
      el.querySelector(`[data-role=${k}] h4`).textContent = `${name}-${settings.depth}`;
      drawPanel(el, k, null, view);
      panelNote(el, k, null, settings.depth);
    }
    try {
      for (const [k, name] of KINDS) {
        status.textContent = `computing ${name}-${settings.depth}'s plane…`;
        await streamLines(`/api/landscape/plane?${new URLSearchParams({ ...query, kind: k })}`, (ev) => {
          if (ev.event === "start") grids[k] = { xs: ev.xs, ys: ev.ys, rows: ev.ys.map(() => null), end: null };
          else if (ev.event === "row") {
            grids[k].rows[ev.index] = ev.loss;
            status.textContent = `computing ${name}-${settings.depth}'s plane: row ${ev.index + 1} of ${grids[k].ys.length}`;
          } else if (ev.event === "end") grids[k].end = ev.landscape;
          drawPanel(el, k, grids[k], settingsOf(form).view);
          panelNote(el, k, grids[k], settings.depth);
          el.dataset.rows = String(KINDS.reduce((n, [kk]) => n + (grids[kk]?.rows.filter(Boolean).length ?? 0), 0));
        }, controller.signal);
      }
      findingText(el, subjects, grids, settings);
      numbersShown(el);
      status.textContent = "computing the lines from the initial to the trained weights…";
      for (const [k] of KINDS) {
        lines[k] = await fetchJSON(`/api/landscape/line?${new URLSearchParams({ kind: k, depth: query.depth, seed: query.seed, split: query.split })}`, { signal: controller.signal });
      }
      await drawLines(el, lines);
      if (current?.controller !== controller) return;
      shown = { settings, grids, lines };
      status.textContent = "";
      markReady(el);
    } catch (e) {
      if (e.name === "AbortError" || current?.controller !== controller) return;
      refused(e.message);
    }
  }

  // A change the server refused before any row came: the controls, the URL and the figures go back to the
  // last view drawn in full, and the message says so; a stream that failed later keeps the rows it drew.
  function refused(message) {
    const started = KINDS.some(([k]) => grids[k]?.rows.some(Boolean));
    if (started || !shown) {
      showError(el, message, { figures: started ? "kept" : "none" });
      return;
    }
    for (const input of form.elements) {
      if (input.name && input.name !== "view" && input.name in shown.settings) input.value = shown.settings[input.name];
    }
    saveSettings("landscape", form);
    grids = shown.grids;
    const depth = Number(shown.settings.depth);
    studyTable(el, subjects, depth, Number(shown.settings.seed));
    for (const [k, name] of KINDS) {
      el.querySelector(`[data-role=${k}] h4`).textContent = `${name}-${depth}`;
      panelNote(el, k, grids[k], depth);
    }
    redraw();
    findingText(el, subjects, grids, shown.settings);
    showError(el, message, { figures: "kept", detail: "— the controls are back at the settings of the figures below." });
  }

  form.addEventListener("change", (e) => {
    if (e.target.name === "view") {
      saveSettings("landscape", form);
      redraw();
      return;
    }
    if (visible) compute();
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  window.addEventListener("resize", redraw);

  return async function load() {
    setBusy(el, true);
    try {
      subjects = await fetchJSON("/api/landscape/subjects");
    } catch (e) {
      showError(el, e.message);
      return;
    }
    const seedSelect = form.elements.seed;
    seedSelect.replaceChildren(...subjects.seeds.map((s) => h("option", { value: String(s) }, String(s))));
    seedSelect.value = String(subjects.seeds[0]);
    seedSelect.querySelector("option").defaultSelected = true;
    restoreSettings("landscape", form);
    drawScale(el.querySelector("[data-role=scale] canvas"));
    const s = settingsOf(form);
    studyTable(el, subjects, Number(s.depth), Number(s.seed));
    findingText(el, subjects, grids, s);
    for (const [k, name] of KINDS) {
      el.querySelector(`[data-role=${k}] h4`).textContent = `${name}-${s.depth}`;
      panelNote(el, k, null, s.depth);
    }
    numbersShown(el); // the shipped study is on the page; the planes are computed when the section is in view
    markReady(el);
    status.textContent = "The planes are computed when this section scrolls into view.";
    const seen = new IntersectionObserver((entries) => {
      if (entries.some((en) => en.isIntersecting) && !visible) {
        visible = true;
        seen.disconnect();
        compute();
      }
    }, { rootMargin: "200px" });
    seen.observe(el);
  };
}
