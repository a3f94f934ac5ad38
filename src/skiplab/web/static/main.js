// Start every widget on the page. Each module draws the JSON of one endpoint; none computes.
import anatomy from "./widgets/anatomy.js";
import bypass from "./widgets/bypass.js";
import degradation from "./widgets/degradation.js";
import dense from "./widgets/dense.js";
import ensemble from "./widgets/ensemble.js";
import gradflow from "./widgets/gradflow.js";
import preact from "./widgets/preact.js";
import shortcut from "./widgets/shortcut.js";
import types from "./widgets/types.js";

const WIDGETS = { anatomy, bypass, degradation, dense, ensemble, gradflow, preact, shortcut, types };

for (const el of document.querySelectorAll("[data-widget]")) WIDGETS[el.dataset.widget](el)();
document.documentElement.dataset.ready = "true";
