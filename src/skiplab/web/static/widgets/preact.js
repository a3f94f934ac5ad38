// Pitfall: post- vs pre-activation residual stacks, per-layer weight-gradient norms.
import { COLORS, bindWidget, fmt, gradientTrace, plot, readout } from "../common.js";

async function render(el, data) {
  const s = (f) => f.weight_summary;
  readout(el.querySelector("[data-role=readout]"), [
    ["post: min … max", `${fmt(s(data.post).min)} … ${fmt(s(data.post).max)}`],
    ["pre: min … max", `${fmt(s(data.pre).min)} … ${fmt(s(data.pre).max)}`],
    ["post: spread (var. of log10)", fmt(s(data.post).log10_variance)],
    ["pre: spread (var. of log10)", fmt(s(data.pre).log10_variance)],
  ]);
  await plot(el.querySelector("[data-role=chart]"), [gradientTrace(data.post, "post-activation", COLORS.plain), gradientTrace(data.pre, "pre-activation", COLORS.residual)], {
    xaxis: { title: { text: "block (input → output)" } },
    yaxis: { title: { text: "|dL/dW|" }, type: "log", exponentformat: "power" },
  });
}

export default (el) => bindWidget(el, render);
