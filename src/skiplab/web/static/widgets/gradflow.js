// Gradient highway: per-layer gradient norms of plain vs residual stacks (log scale), from one real backward pass.
import { COLORS, bindWidget, fmt, gradientTrace, plot, table } from "../common.js";

async function render(el, data) {
  const rows = [
    ["first layer", ...[data.plain, data.residual].map((f) => fmt(f.layers[0].weight_grad_norm))],
    ["last layer", ...[data.plain, data.residual].map((f) => fmt(f.layers[f.layers.length - 1].weight_grad_norm))],
    ["min", ...[data.plain, data.residual].map((f) => fmt(f.weight_summary.min))],
    ["max", ...[data.plain, data.residual].map((f) => fmt(f.weight_summary.max))],
    ["variance", ...[data.plain, data.residual].map((f) => fmt(f.weight_summary.variance))],
    ["first / last", ...[data.plain, data.residual].map((f) => fmt(f.weight_summary.first_last_ratio))],
    ["growth per layer", ...[data.plain, data.residual].map((f) => fmt(f.weight_summary.growth_per_layer, 4))],
  ];
  table(el.querySelector("[data-role=stats]"), ["weight gradient", "plain", "residual"], rows);
  // Layers whose gradient norm float32 could not hold: the library counts them, the widget says why they have no number.
  const lost = [["plain", data.plain], ["residual", data.residual]].flatMap(([name, f]) => {
    const w = f.weight_summary;
    const parts = [];
    if (w.overflowed) parts.push(`${w.overflowed} of the ${name} stack's ${w.count} layers have a weight gradient too large for float32: it overflowed to infinity, so the table shows — and the chart no point`);
    if (w.underflowed) parts.push(`${w.underflowed} of the ${name} stack's ${w.count} layers have a weight gradient too small for float32: it underflowed to 0, which the table shows and the log-scale chart cannot`);
    return parts;
  });
  const range = el.querySelector("[data-role=range]");
  range.hidden = lost.length === 0;
  range.textContent = lost.length ? `${lost.join(". ")}.` : "";
  const note = el.querySelector("[data-role=note]");
  note.hidden = !data.note;
  note.textContent = data.note || "";
  const chart = el.querySelector("[data-role=chart]");
  await plot(chart, [gradientTrace(data.plain, "plain", COLORS.plain), gradientTrace(data.residual, "residual", COLORS.residual)], {
    xaxis: { title: { text: "layer (input → output)" } },
    yaxis: { title: { text: "|dL/dW|" }, type: "log", exponentformat: "power" },
  });
}

export default (el) => bindWidget(el, render);
