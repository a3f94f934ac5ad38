// Skip types at a glance: a card per type (formula, ratings in words, where it is used) and the table of
// measured numbers the ratings come from. The ratings and their rule are fields of the server's answer.
import { bindWidget, bytes, count, fill, fmt, h } from "../common.js";

const NAMES = { identity: "identity", projection: "projection", dense: "dense", highway: "highway", se: "squeeze-excitation", none: "none (plain)" };
const RATED = [["params", "parameters"], ["memory", "activation memory"], ["gradient", "gradient"]];

function mathml(markup) {
  // The server sends MathML made by latex2mathml from the article's own formulas; parse it as XML, not HTML.
  const doc = new DOMParser().parseFromString(markup, "application/xml");
  return document.importNode(doc.documentElement, true);
}

function card(r) {
  return h(
    "article",
    { class: "type-card", "data-skip": r.skip },
    h("h4", {}, NAMES[r.skip] ?? r.skip),
    h("div", { class: "formula-cell" }, mathml(r.formula_mathml)),
    h(
      "dl",
      { class: "ratings" },
      RATED.flatMap(([key, label]) => [h("dt", {}, label), h("dd", { "data-rating": key }, r.ratings[key])]),
    ),
    h("p", { class: "used-in" }, h("span", {}, "used in "), r.used_in),
    h("p", { class: "when" }, r.when),
  );
}

function render(el, data) {
  fill(el.querySelector("[data-role=cards]"), data.rows.map(card));
  const head = ["skip connection", "params", "FLOPs / example", "activations / example", "peak memory (batch)", "gradient first / last"];
  const rows = data.rows.map((r) =>
    h(
      "tr",
      { "data-skip": r.skip, class: "type-row" },
      h("th", { scope: "row" }, NAMES[r.skip] ?? r.skip),
      h("td", {}, r.params.toLocaleString("en-US")),
      h("td", {}, count(r.flops_per_example)),
      h("td", {}, bytes(r.activation_bytes_per_example)),
      h("td", {}, bytes(r.peak_bytes)),
      h("td", {}, fmt(r.grad_summary.first_last_ratio)),
    ),
  );
  fill(
    el.querySelector("[data-role=table]"),
    h("caption", {}, `conv stacks of depth ${data.depth} and width ${data.width}, input ${data.input_shape.join("×")}, batch ${data.batch}`),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );
  el.querySelector("[data-role=rule]").textContent = data.rating_rule;
}

export default (el) => bindWidget(el, render);
