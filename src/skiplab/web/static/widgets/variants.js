// Why the shortcut must stay clean: He et al. 2016's shortcut variants, trained here on MNIST-1D (stored runs),
// each judged against the identity by the stated rule, beside the errors the paper published for ResNet-110.
import { COLORS, bindWidget, fmt, h, plot, table } from "../common.js";

const NAMES = {
  identity: "identity: F(x) + x",
  scale: "constant scaling: 0.5 F(x) + 0.5 x",
  exclusive_gate: "exclusive gating: g F(x) + (1 − g) x",
  shortcut_gate: "shortcut-only gating: F(x) + (1 − g) x",
  conv1x1: "1×1 conv shortcut: F(x) + W x",
  dropout: "dropout shortcut: F(x) + dropout(x)",
};
const STYLE = {
  identity: () => ({ color: COLORS.residual, width: 3 }),
  scale: () => ({ color: COLORS.plain }),
  exclusive_gate: () => ({ color: COLORS.accent }),
  shortcut_gate: () => ({ color: COLORS.accent, dash: "dash" }),
  conv1x1: () => ({ color: COLORS.muted }),
  dropout: () => ({ color: COLORS.bad, dash: "dot" }),
};

async function render(el, data) {
  const seeds = [...new Set(data.curves.map((c) => c.seed))];
  table(
    el.querySelector("[data-role=table]"),
    ["shortcut", "published test error (ResNet-110, CIFAR-10)", "best training loss here, per seed", "verdict here", "gradient first / last block at init"],
    data.rows.map((r) => [
      NAMES[r.variant] ?? r.variant,
      r.published_test_error === null ? "fails to converge" : `${r.published_test_error.toFixed(2)} %`,
      r.best_train_loss.map((v) => fmt(v)).join(" / "),
      r.summary,
      fmt(r.init_first_last),
    ]),
  );
  const curves = data.curves.map((c) => ({
    x: c.train_loss.map((_, i) => i + 1),
    y: c.train_loss,
    name: c.variant,
    legendgroup: c.variant,
    showlegend: c.seed === seeds[0],
    mode: "lines",
    opacity: c.seed === seeds[0] ? 1 : 0.45,
    line: STYLE[c.variant]?.() ?? {},
  }));
  const flows = data.rows.map((r) => ({
    x: r.init_grad_norms.map((_, i) => i + 1),
    y: r.init_grad_norms,
    name: r.variant,
    mode: "lines+markers",
    line: STYLE[r.variant]?.() ?? {},
  }));
  el.querySelector("[data-role=rule]").textContent = `Rule: ${data.rule}`;
  el.querySelector("[data-role=provenance]").textContent = `Published: ${data.published_source}. Trained here by: ${data.provenance.command}.`;
  await Promise.all([
    plot(el.querySelector("[data-role=curves]"), curves, {
      xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: "training loss" }, type: "log", dtick: 1, exponentformat: "power" },
    }),
    plot(el.querySelector("[data-role=flow]"), flows, {
      xaxis: { title: { text: "block (input → output)" } },
      yaxis: { title: { text: "|dL/d(block input)| at init" }, type: "log", dtick: 1, exponentformat: "power" },
      showlegend: false,
    }),
  ]);
}

export default (el) => bindWidget(el, render);
