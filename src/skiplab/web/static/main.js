// Start every widget on the page. Each module draws the JSON of one endpoint; none computes.
import { holdPlotly } from "./common.js";
import anatomy from "./widgets/anatomy.js";
import bypass from "./widgets/bypass.js";
import degradation from "./widgets/degradation.js";
import dense from "./widgets/dense.js";
import ensemble from "./widgets/ensemble.js";
import gradflow from "./widgets/gradflow.js";
import imagenet from "./widgets/imagenet.js";
import landscape from "./widgets/landscape.js";
import preact from "./widgets/preact.js";
import shortcut from "./widgets/shortcut.js";
import transformer from "./widgets/transformer.js";
import types from "./widgets/types.js";
import unet from "./widgets/unet.js";
import variants from "./widgets/variants.js";

const WIDGETS = { anatomy, bypass, degradation, dense, ensemble, gradflow, imagenet, landscape, preact, shortcut, transformer, types, unet, variants };

const widgets = [...document.querySelectorAll("[data-widget]")];
// plotly.js takes the main thread for a while when it runs: first let every widget show its numbers
// (a slow one holds the charts back at most PLOTLY_WAIT_MS).
const PLOTLY_WAIT_MS = 800;
const shown = widgets.map((el) => new Promise((resolve) => el.addEventListener("numbers", resolve, { once: true })));
holdPlotly(Promise.race([Promise.all(shown), new Promise((resolve) => setTimeout(resolve, PLOTLY_WAIT_MS))]));
for (const el of widgets) WIDGETS[el.dataset.widget](el)();
document.documentElement.dataset.ready = "true";
