// Deeper is better on ImageNet: the zoo's ResNets measured (parameters, FLOPs) beside the errors He et al.
// published for them, and their plain twins' published errors. Nothing here is trained on this machine.
import { bindWidget, count, fill, h } from "../common.js";

function render(el, data) {
  const plain = Object.fromEntries(data.plain_published.map((p) => [p.depth, p]));
  const head = ["network", "layers", "parameters", "FLOPs / image", "top-1 error (published)", "plain twin (published)"];
  const rows = data.rows.map((r) =>
    h(
      "tr",
      { "data-model": r.name },
      h("th", { scope: "row" }, `ResNet-${r.depth}`),
      h("td", {}, String(r.depth)),
      h("td", {}, count(r.params)),
      h("td", {}, count(r.flops_per_example)),
      h("td", { title: r.source }, `${r.published_top1_error.toFixed(2)} %`),
      h("td", { title: plain[r.depth]?.source ?? "" }, plain[r.depth] ? `${plain[r.depth].top1_error.toFixed(2)} %` : "—"),
    ),
  );
  fill(
    el.querySelector("[data-role=table]"),
    h("caption", {}, "Measured here: parameters and forward FLOPs at 224×224 (2 per multiply-add). Published: top-1 error on the ImageNet validation set, 10-crop testing."),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows),
  );
  el.querySelector("[data-role=finding]").textContent = data.finding;
  el.querySelector("[data-role=provenance]").textContent = `Sources: ${[...new Set(data.rows.map((r) => r.source))].join("; ")}. Measured by: ${data.provenance.command}.`;
}

export default (el) => bindWidget(el, render);
