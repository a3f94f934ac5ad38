// Residual block explorer: the norm after every operation of a real block on a block diagram,
// |x|, |s·F(x)|, |s·F(x)+x| as numbers, and the whole 0.1x..2x sweep as a chart.
import { COLORS, bindWidget, fill, fmt, plot, readout, s } from "../common.js";

const W = 720;
const H = 190;

function box(x, y, w, label, norm, max, color) {
  const shade = 0.12 + 0.6 * Math.min(1, norm / max);
  return s(
    "g",
    { class: "op" },
    s("rect", { x, y, width: w, height: 46, rx: 6, fill: color, "fill-opacity": shade.toFixed(2), stroke: color }),
    s("text", { x: x + w / 2, y: y + 19, "text-anchor": "middle", "font-size": 13, "font-weight": 600 }, label),
    s("text", { x: x + w / 2, y: y + 36, "text-anchor": "middle", "font-size": 12 }, fmt(norm)),
  );
}

function diagram(data) {
  const ops = data.branch.filter((o) => o.name !== "input");
  const max = Math.max(data.x_norm, data.sum_norm, ...ops.map((o) => o.norm));
  const left = 70;
  const plus = W - 120;
  const step = (plus - 60 - left) / ops.length;
  const bw = Math.min(84, step - 8);
  const top = 24;
  const mid = top + 23;
  const low = 150;
  const parts = [
    s("text", { x: 4, y: mid - 10, "font-size": 14, "font-weight": 700 }, "x"),
    s("text", { x: 4, y: mid + 5, "font-size": 12 }, fmt(data.x_norm)),
    s("path", { d: `M 40 ${mid} H ${left}`, stroke: "#9ca3af", fill: "none" }),
    s("path", { d: `M 48 ${mid} V ${low} H ${plus - 14}`, stroke: COLORS.accent, "stroke-width": 3, fill: "none" }),
    s("text", { x: left + 10, y: low - 8, "font-size": 12, fill: COLORS.accent }, `shortcut (${data.shortcut.at(-1).op}): |x| = ${fmt(data.shortcut_norm)}`),
  ];
  ops.forEach((o, i) => {
    const x = left + i * step;
    parts.push(box(x, top, bw, o.name, o.norm, max, o.op.startsWith("Conv") ? COLORS.residual : "#6b7280"));
    parts.push(s("path", { d: `M ${x + bw} ${mid} H ${x + step}`, stroke: "#9ca3af", fill: "none" }));
  });
  const sx = left + ops.length * step;
  parts.push(
    s("text", { x: sx + 4, y: mid - 6, "font-size": 12, "font-weight": 700 }, `×${data.scale}`),
    s("text", { x: sx + 4, y: mid + 16, "font-size": 12 }, fmt(data.residual_norm)),
    s("path", { d: `M ${sx} ${mid} H ${plus} V ${low - 14}`, stroke: COLORS.residual, "stroke-width": 2, fill: "none" }),
    s("circle", { cx: plus, cy: low, r: 14, fill: "#fff", stroke: "#111827", "stroke-width": 2 }),
    s("text", { x: plus, y: low + 6, "text-anchor": "middle", "font-size": 18, "font-weight": 700 }, "+"),
    s("text", { x: plus - 8, y: low + 32, "text-anchor": "middle", "font-size": 12 }, `|sum| ${fmt(data.sum_norm)}`),
    s("path", { d: `M ${plus + 14} ${low} H ${W - 60}`, stroke: "#111827", "stroke-width": 2, fill: "none" }),
    s("text", { x: W - 56, y: low - 6, "font-size": 13, "font-weight": 700 }, data.form === "preact" ? "y" : "act → y"),
    s("text", { x: W - 56, y: low + 12, "font-size": 12 }, fmt(data.out_norm)),
  );
  return s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${data.form} block diagram with norms` }, parts);
}

async function render(el, data) {
  const holder = el.querySelector("[data-role=diagram]");
  fill(holder, diagram(data));
  const sw = data.sweep;
  const at = sw.reduce((best, p) => (Math.abs(p.scale - data.scale) < Math.abs(best.scale - data.scale) ? p : best), sw[0]);
  readout(el.querySelector("[data-role=readout]"), [
    ["|x|", fmt(data.x_norm)],
    ["|s·F(x)|", fmt(data.residual_norm)],
    ["|s·F(x) + x|", fmt(data.sum_norm)],
    ["block output", fmt(data.out_norm)],
    ...data.costs.flatMap((c) => [
      [`${c.form} block params`, c.params.toLocaleString("en-US")],
      [`${c.form} block FLOPs / example`, c.flops.toLocaleString("en-US")],
    ]),
  ]);
  el.querySelector("[data-role=explain]").textContent = data.explanation;
  el.querySelector("[data-role=costs]").textContent = data.cost_comparison;
  await plot(
    el.querySelector("[data-role=chart]"),
    [
      { x: sw.map((p) => p.scale), y: sw.map(() => data.shortcut_norm), name: "|x|", mode: "lines", line: { color: COLORS.accent, dash: "dot" } },
      { x: sw.map((p) => p.scale), y: sw.map((p) => p.residual_norm), name: "|s·F(x)|", mode: "lines", line: { color: COLORS.residual } },
      { x: sw.map((p) => p.scale), y: sw.map((p) => p.sum_norm), name: "|s·F(x)+x|", mode: "lines", line: { color: "#111827" } },
      { x: [at.scale, at.scale], y: [at.residual_norm, at.sum_norm], name: "now", mode: "markers", marker: { size: 10, color: COLORS.plain }, showlegend: false },
    ],
    { xaxis: { title: { text: "branch scale s" } }, yaxis: { title: { text: "norm" }, rangemode: "tozero" } },
  );
}

export default (el) => bindWidget(el, render);
