// Start every widget on the page. Each module draws the JSON of one endpoint; none computes.
import bypass from "./widgets/bypass.js";
import anatomy from "./widgets/anatomy.js";
import gradflow from "./widgets/gradflow.js";
import degradation from "./widgets/degradation.js";
import types from "./widgets/types.js";
import ensemble from "./widgets/ensemble.js";
import shortcut from "./widgets/shortcut.js";
import preact from "./widgets/preact.js";
import dense from "./widgets/dense.js";

const WIDGETS = { bypass, anatomy, gradflow, degradation, types, ensemble, shortcut, preact, dense };

for (const el of document.querySelectorAll("[data-widget]")) {
  const start = WIDGETS[el.dataset.widget];
  const update = start(el);
  update();
}
document.documentElement.dataset.ready = "true";
