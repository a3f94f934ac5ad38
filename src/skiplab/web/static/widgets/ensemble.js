// Ensemble view: how many of the 2^n paths have each length, how much gradient each length carries,
// and (stored run) the accuracy left after deleting one block at a time, residual vs plain.
import { COLORS, bigCount, bindWidget, fetchJSON, fmt, plot, readout } from "../common.js";

let lesion = null; // the stored lesion study, fetched once

async function drawLesion(el) {
  const chart = el.querySelector("[data-role=lesion]");
  const prov = el.querySelector("[data-role=provenance]");
  try {
    lesion ??= await fetchJSON("/api/results/lesion");
  } catch (e) {
    prov.textContent = `Lesion study unavailable: ${e.message}`;
    return;
  }
  const traces = lesion.studies.map((st) => ({
    x: st.blocks.map((b, i) => i + 1),
    y: st.blocks.map((b) => b.accuracy),
    name: st.label,
    type: "bar",
    marker: { color: st.kind === "res" ? COLORS.residual : COLORS.plain },
    hovertemplate: `${st.label}, %{hovertext}: %{y:.3f}<extra></extra>`,
    hovertext: st.blocks.map((b) => b.name),
  }));
  for (const st of lesion.studies) {
    traces.push({ x: [0.5, st.blocks.length + 0.5], y: [st.intact_accuracy, st.intact_accuracy], mode: "lines", name: `${st.label} intact`, line: { color: st.kind === "res" ? COLORS.residual : COLORS.plain, dash: "dot" } });
  }
  await plot(chart, traces, {
    barmode: "group",
    xaxis: { title: { text: "deleted block" } },
    yaxis: { title: { text: "test accuracy" }, range: [0, 1] },
  });
  prov.textContent = `Lesion: ${lesion.summary} Produced by: ${lesion.provenance.command}.`;
}

async function render(el, data) {
  const d = data.distribution;
  const g = data.gradient;
  const ks = d.fractions.map((_, k) => k);
  readout(el.querySelector("[data-role=readout]"), [
    ["paths", bigCount(d.total_str)],
    ["mean length", `${fmt(d.mean)} ± ${fmt(d.std)}`],
    ["gradient-weighted mean length", fmt(g.mean_length)],
    ["lengths carrying 90% of the gradient", `${g.effective_range[0]} … ${g.effective_range[1]}`],
  ]);
  await plot(
    el.querySelector("[data-role=paths]"),
    [
      { x: ks, y: d.fractions, name: "share of paths", type: "bar", marker: { color: COLORS.muted } },
      { x: g.lengths.map((l) => l.length), y: g.lengths.map((l) => l.share), name: "share of gradient", mode: "lines+markers", line: { color: COLORS.residual } },
    ],
    { xaxis: { title: { text: "path length k (blocks passed through)" } }, yaxis: { title: { text: "share" }, rangemode: "tozero" } },
  );
  if (!lesion) await drawLesion(el);
}

export default (el) => bindWidget(el, render);
