// Pitfall: dense connections' activation memory grows quadratically with depth; identity skips grow linearly.
import { COLORS, bindWidget, plot } from "../common.js";

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
}

export default (el) => bindWidget(el, render);
