// U-Net long skips: the stored pair of runs per seed (masks drawn beside input and truth, IoU and boundary F,
// the verdict of the stated rule) and a fresh pair trained live, each net's epoch drawn as it arrives.
import { COLORS, fetchJSON, fmt, h, markReady, numbersShown, plot, restoreSettings, saveSettings, setBusy, settingsOf, showError, table } from "../common.js";
import { liveJob } from "../live.js";

const NET = { true: "with long skips", false: "without long skips" };
const METRIC = { iou: "IoU", boundary_f: "boundary F" };

const bits = (rows) => rows.map((r) => [...r].map((c) => c === "1"));
const greys = (rows) => rows.map((r) => Array.from({ length: r.length / 2 }, (_, i) => parseInt(r.slice(2 * i, 2 * i + 2), 16)));

// One image as a canvas, one canvas pixel per image pixel (CSS scales it up, pixelated).
function canvas(kind, pixel, size, title) {
  const c = h("canvas", { width: size, height: size, "data-kind": kind, title, role: "img", "aria-label": title });
  const ctx = c.getContext("2d");
  const img = ctx.createImageData(size, size);
  let on = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [r, g, b, lit] = pixel(y, x);
      on += lit ? 1 : 0;
      img.data.set([r, g, b, 255], 4 * (y * size + x));
    }
  }
  ctx.putImageData(img, 0, 0);
  c.dataset.on = String(on);
  return c;
}

const hex = (color) => {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color.trim());
  return m ? m.slice(1).map((v) => parseInt(v, 16)) : [0, 0, 0];
};

// A mask against the truth: shape pixels found (ink), missed (red), drawn where there is none (orange).
function maskPixel(mask, truth) {
  const [ink, missed, extra, paper] = [[31, 41, 55], [252, 165, 165], hex(COLORS.plain), [243, 244, 246]];
  return (y, x) => {
    const p = mask[y][x];
    const t = truth ? truth[y][x] : p;
    if (p && t) return [...ink, true];
    if (t) return [...missed, false];
    if (p) return [...extra, true];
    return [...paper, false];
  };
}

function drawMasks(el, data, seed, live) {
  const size = data.examples.inputs[0].length;
  const stored = (ls) => data.runs.find((r) => r.long_skips === ls && r.seed === seed);
  const columns = [
    ["input", "input", null],
    ["truth", "true mask", null],
    ["with", `${NET.true}, seed ${seed}`, stored(true)?.predictions],
    ["without", `${NET.false}, seed ${seed}`, stored(false)?.predictions],
  ];
  for (const ls of [true, false]) {
    if (live?.nets[ls]) columns.push([`live-${ls ? "with" : "without"}`, `live, ${NET[ls]}, epoch ${live.nets[ls].epoch}`, live.nets[ls].predictions]);
  }
  const grid = el.querySelector("[data-role=masks]");
  grid.style.setProperty("--columns", columns.length);
  const cells = columns.map(([kind, label]) => h("div", { class: "mask-head", "data-kind": kind }, label));
  data.examples.inputs.forEach((input, i) => {
    const truth = bits(data.examples.truths[i]);
    for (const [kind, label, predictions] of columns) {
      const title = `held-out image ${data.examples.indices[i]}: ${label}`;
      if (kind === "input") {
        const g = greys(input);
        cells.push(canvas(kind, (y, x) => [g[y][x], g[y][x], g[y][x], false], size, title));
      } else if (kind === "truth") {
        cells.push(canvas(kind, maskPixel(truth, null), size, title));
      } else {
        cells.push(canvas(kind, maskPixel(bits(predictions[i]), truth), size, title));
      }
    }
  });
  grid.replaceChildren(...cells);
}

function drawTables(el, data, seed, live) {
  const rows = data.seeds.map((s, i) => [`seed ${s}`, ...["iou", "boundary_f"].flatMap((m) => [fmt(data.rows[0][m][i]), fmt(data.rows[1][m][i])])]);
  if (live && (live.nets.true || live.nets.false)) {
    const v = (ls, m) => (live.nets[ls] ? fmt(live.nets[ls][m]) : "—");
    rows.push([`live, seed ${live.seed} (epoch ${live.nets.true?.epoch ?? 0}/${live.epochs})`, v(true, "iou"), v(false, "iou"), v(true, "boundary_f"), v(false, "boundary_f")]);
  }
  const scores = el.querySelector("[data-role=scores]");
  table(scores, ["run", `IoU, ${NET.true}`, `IoU, ${NET.false}`, `boundary F, ${NET.true}`, `boundary F, ${NET.false}`], rows);
  scores.querySelectorAll("tbody tr").forEach((tr, i) => tr.classList.toggle("selected", data.seeds[i] === seed));
  table(
    el.querySelector("[data-role=rule]"),
    ["metric", "gain per seed (with − without)", "smallest gain", "seed spread", "verdict"],
    data.comparisons.map((c) => [METRIC[c.metric] ?? c.metric, c.gains.map((g) => fmt(g)).join(" / "), fmt(c.smallest_gain), fmt(c.spread), c.summary]),
  );
}

function curves(el, data, seed, live) {
  const drawings = ["iou", "boundary_f"].map((metric) => {
    const traces = data.runs.map((r) => ({
      x: r.epochs.map((e) => e.epoch),
      y: r.epochs.map((e) => e[metric]),
      name: `${NET[r.long_skips]}, seed ${r.seed}`,
      mode: "lines",
      opacity: r.seed === seed ? 1 : 0.3,
      showlegend: metric === "iou" && r.seed === seed,
      line: { color: r.long_skips ? COLORS.residual : COLORS.plain, dash: r.long_skips ? "solid" : "dash", width: r.seed === seed ? 2.5 : 1.2 },
    }));
    for (const ls of [true, false]) {
      const points = live?.history.filter((e) => e.long_skips === ls) ?? [];
      if (points.length) traces.push({ x: points.map((e) => e.epoch), y: points.map((e) => e[metric]), name: `live, ${NET[ls]}`, mode: "lines+markers", showlegend: metric === "iou", line: { color: "#111827", width: 3.5, dash: ls ? "solid" : "dash" } });
    }
    return plot(el.querySelector(`[data-role=${metric}]`), traces, {
      xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: `held-out ${METRIC[metric]}` }, range: [0, 1] },
      showlegend: metric === "iou",
    });
  });
  return Promise.all(drawings);
}

function describe(el, data) {
  const verdict = el.querySelector("[data-role=verdict]");
  verdict.textContent = data.verdict;
  verdict.className = data.long_skips_win ? "verdict good" : "verdict"; // a finding either way, not a fault
  const p = data.params;
  el.querySelector("[data-role=provenance]").textContent =
    `Stored runs, seeds ${data.seeds.join(", ")}: ${p.with.toLocaleString("en-US")} parameters with long skips, ` +
    `${p.without.toLocaleString("en-US")} without (its up-convolutions fill the channels the skips would have). ` +
    `Boundary tolerance ${data.boundary_tolerance} px. Rule: ${data.rule} Produced by: ${data.provenance.command}` +
    (data.provenance.git_revision ? ` at revision ${data.provenance.git_revision.slice(0, 10)}` : "") + ".";
}

export default function unet(el) {
  const form = el.querySelector("form");
  const seedSelect = form.querySelector("[name=seed]");
  const status = el.querySelector(".status");
  let data = null;
  let live = null;

  async function redraw() {
    if (!data) return;
    const seed = Number(seedSelect.value);
    drawMasks(el, data, seed, live);
    drawTables(el, data, seed, live);
    numbersShown(el);
    await curves(el, data, seed, live);
    markReady(el);
  }

  form.addEventListener("change", (e) => {
    saveSettings("unet", form);
    if (e.target === seedSelect) redraw();
  });

  function onEpoch(m) {
    live.nets[m.long_skips] = m;
    live.history.push(m);
    el.dataset.liveEvents = String(live.history.length);
    el.dataset.liveFirstAt ??= String(performance.now());
    status.textContent = `live pair, seed ${live.seed}: ${NET[m.long_skips]}, epoch ${m.epoch}/${live.epochs}: held-out IoU ${fmt(m.iou)}, boundary F ${fmt(m.boundary_f)}`;
    redraw();
  }

  const job = liveJob(el, {
    request() {
      saveSettings("unet", form);
      const settings = settingsOf(form);
      return { url: "/api/unet/jobs", body: { seed: Number(settings.live_seed), epochs: Number(settings.epochs) } };
    },
    started(body) {
      live = { ...body, nets: {}, history: [] };
      delete el.dataset.liveFirstAt;
      el.dataset.liveEvents = "0";
      el.dataset.liveStartedAt = String(performance.now());
      setBusy(el, true);
      return `training a fresh pair (seed ${body.seed}, ${body.epochs} epochs each): the first masks come after one epoch of the first net…`;
    },
    on: { epoch: onEpoch },
    ended: (end) => `live pair ${end.status}` + (end.message ? ` — ${end.message}` : "") + ".",
  });

  return async function load() {
    setBusy(el, true);
    try {
      data = await fetchJSON(el.dataset.endpoint);
      seedSelect.replaceChildren(...data.seeds.map((s, i) => h("option", { value: s, selected: i === 0 }, String(s))));
      restoreSettings("unet", form);
      describe(el, data);
      await redraw();
    } catch (e) {
      job.disable(); // a live pair is drawn beside the stored inputs and truths: without them, nothing to draw on
      showError(el, e.message);
    }
  };
}
