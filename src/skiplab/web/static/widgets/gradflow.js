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
