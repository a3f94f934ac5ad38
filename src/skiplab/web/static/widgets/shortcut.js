// Pitfall: an identity shortcut across a change of shape. Shows the library's own error, or what it built instead.
import { bindWidget, bytes, count, fill, h } from "../common.js";

function render(el, data) {
  const box = el.querySelector("[data-role=outcome]");
  if (!data.ok) {
    fill(
      box,
      h("p", { class: "verdict bad" }, `✗ ${data.error_type}`),
      h("pre", { class: "error-text" }, data.error),
      h("p", {}, "Pick “projection” (a 1×1 convolution, option B), “zeropad” (option A: keep one pixel in each window, zero-pad the new channels) or “pool” (average each window instead, then zero-pad) to fix it."),
    );
    return;
  }
  const c = data.cost;
  fill(
    box,
    h("p", { class: "verdict good" }, `✓ built a ${data.shortcut} shortcut`),
    h("pre", {}, data.module),
    h(
      "p",
      {},
      `${c.params.toLocaleString("en-US")} parameters, ${count(c.flops_per_example)} FLOPs and ${bytes(c.activation_bytes_per_example)} of saved activations per ${c.input_shape.join("×")} example.`,
    ),
  );
}

export default (el) => bindWidget(el, render);
