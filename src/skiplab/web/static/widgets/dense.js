// Pitfall: dense connections' activation memory grows quadratically with depth; identity skips grow linearly.
// Beside it (stored measurement): DenseNet-121 against ResNet-50 as the input resolution grows.
import { COLORS, bindWidget, fetchJSON, plot } from "../common.js";

let zoo = null; // the stored ImageNet measurement, fetched once

async function drawResolution(el) {
  const note = el.querySelector("[data-role=resolution-note]");
  try {
    zoo ??= await fetchJSON("/api/results/imagenet");
  } catch (e) {
    note.textContent = `Stored resolution measurement unavailable: ${e.message}`;
    return;
  }
  const series = (name) => zoo.memory.filter((p) => p.name === name);
  const trace = (name, label, color) => ({
    x: series(name).map((p) => p.resolution),
    y: series(name).map((p) => p.activation_bytes_per_example / 2 ** 20),
    name: label,
    mode: "lines+markers",
    line: { color },
  });
  await plot(
    el.querySelector("[data-role=resolution]"),
    [trace("densenet121", "DenseNet-121", COLORS.plain), trace("resnet50", "ResNet-50", COLORS.residual)],
    {
      xaxis: { title: { text: "input resolution (pixels per side)" } },
      yaxis: { title: { text: "MiB per image" }, rangemode: "tozero" },
    },
  );
  note.textContent = `${zoo.memory_finding} Measured by: ${zoo.provenance.command}.`;
}

async function render(el, data) {
  const x = data.points.map((p) => p.depth);
  const kib = (key) => data.points.map((p) => p[key].activation_bytes_per_example / 1024);
  await plot(
    el.querySelector("[data-role=chart]"),
    [
      { x, y: kib("dense"), name: "dense (concatenate)", mode: "lines+markers", line: { color: COLORS.plain } },
      { x, y: kib("identity"), name: "identity (add)", mode: "lines+markers", line: { color: COLORS.residual } },
    ],
    {
      xaxis: { title: { text: "depth (layers)" } },
      yaxis: { title: { text: "KiB per example" }, rangemode: "tozero" },
    },
  );
  if (!zoo) await drawResolution(el);
}

export default (el) => bindWidget(el, render);
