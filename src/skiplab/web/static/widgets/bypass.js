// Highway bypass: a diagram of input, layers and output, with the bypass drawn when skips are on,
// each layer shaded by how much of the input is still there after it; the three measured numbers below.
import { COLORS, bigCount, bindWidget, fill, fmt, readout, s } from "../common.js";

const W = 760;
const H = 150;

function diagram(data) {
  const n = data.layers;
  const left = 70;
  const right = W - 70;
  const step = (right - left) / n;
  const bw = Math.max(3, Math.min(46, step - 6));
  const mid = 92;
  const parts = [
    s("text", { x: 6, y: mid + 5, "font-size": 14, "font-weight": 700 }, "input"),
    s("text", { x: W - 56, y: mid + 5, "font-size": 14, "font-weight": 700 }, "output"),
    s("path", { d: `M 50 ${mid} H ${W - 62}`, stroke: "#9ca3af", "stroke-width": 2, fill: "none" }),
  ];
  data.per_layer.forEach((p, i) => {
    const x = left + i * step + (step - bw) / 2;
    // Absolute scale, so views compare: pale = no more of the input than chance, full = all of it.
    const above = Math.max(0, (p.signal_retained - data.chance) / (1 - data.chance));
    const shade = 0.06 + 0.9 * Math.sqrt(above);
    parts.push(
      s("rect", { x, y: mid - 20, width: bw, height: 40, rx: 4, fill: COLORS.residual, "fill-opacity": shade.toFixed(2), stroke: COLORS.residual }, s("title", {}, `layer ${p.layer}: signal retained ${fmt(p.signal_retained)}`)),
    );
    if (data.skips) {
      const x0 = left + i * step + 2;
      const x1 = left + (i + 1) * step - 2;
      parts.push(s("path", { d: `M ${x0} ${mid - 22} C ${x0} ${mid - 58}, ${x1} ${mid - 58}, ${x1} ${mid - 22}`, stroke: COLORS.accent, "stroke-width": 2, fill: "none" }));
    }
  });
  if (data.skips) parts.push(s("text", { x: left, y: 18, "font-size": 12, fill: COLORS.accent }, "bypass: every layer can be skipped"));
  else parts.push(s("text", { x: left, y: 18, "font-size": 12, fill: COLORS.plain }, "no bypass: the signal must cross every layer"));
  parts.push(s("text", { x: left, y: H - 8, "font-size": 11, fill: COLORS.muted }, "shade: how much of the input's direction is left after each layer (pale = no more than chance)"));
  return s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${n} layers ${data.skips ? "with" : "without"} skip connections` }, parts);
}

function render(el, data) {
  fill(el.querySelector("[data-role=diagram]"), diagram(data));
  const strong = data.gradient_strength !== null && data.gradient_strength > 0.1 && data.gradient_strength < 10;
  readout(el.querySelector("[data-role=readout]"), [
    ["signal retained (chance " + fmt(data.chance) + ")", fmt(data.signal_retained), data.signal_retained > 2 * data.chance ? "good" : "bad"],
    ["shortest path", `${data.shortest_path} layer${data.shortest_path === 1 ? "" : "s"}`],
    ["mean path", `${fmt(data.mean_path)} layers`],
    ["paths", bigCount(data.paths_str)],
    ["gradient strength |d out/d in|", fmt(data.gradient_strength), strong ? "good" : "bad"],
  ]);
}

export default (el) => bindWidget(el, render);
