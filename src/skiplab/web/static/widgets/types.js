// Skip types at a glance: one row per skip type with its formula, measured cost and gradient flow.
import { bindWidget, bytes, count, fill, fmt, h } from "../common.js";

const NAMES = { identity: "identity", projection: "projection", dense: "dense", highway: "highway", se: "squeeze-excitation", none: "none (plain)" };

function mathml(markup) {
  // The server sends MathML made by latex2mathml from the article's own formulas; parse it as XML, not HTML.
  const doc = new DOMParser().parseFromString(markup, "application/xml");
  return document.importNode(doc.documentElement, true);
}

function render(el, data) {
  const head = ["skip connection", "params", "FLOPs / example", "activations / example", "peak memory (batch)", "gradient first / last block"];
  const rows = data.rows.flatMap((r) => [
    h(
      "tr",
      { "data-skip": r.skip, class: "type-row" },
      h("th", { scope: "row" }, h("div", {}, NAMES[r.skip] ?? r.skip), h("div", { class: "formula-cell" }, mathml(r.formula_mathml))),
      h("td", {}, r.params.toLocaleString("en-US")),
      h("td", {}, count(r.flops_per_example)),
      h("td", {}, bytes(r.activation_bytes_per_example)),
      h("td", {}, bytes(r.peak_bytes)),
      h("td", {}, fmt(r.grad_summary.first_last_ratio)),
    ),
    h("tr", { class: "type-when" }, h("td", { colspan: head.length }, r.when)),
  ]);
  fill(
    el.querySelector("[data-role=table]"),
    h("caption", {}, `conv stacks of depth ${data.depth} and width ${data.width}, input ${data.input_shape.join("×")}, batch ${data.batch}`),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );
}

export default (el) => bindWidget(el, render);
