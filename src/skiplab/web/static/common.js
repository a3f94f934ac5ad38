// What every widget shares: settings kept in the URL, one request at a time with a busy state,
// readable server errors, and plotly drawing with the article's look. Widgets only draw JSON.

const params = () => new URLSearchParams(window.location.search);

function controls(form) {
  return [...form.elements].filter((e) => e.name);
}

function valueOf(input) {
  return input.type === "checkbox" ? String(input.checked) : input.value;
}

function setValue(input, value) {
  if (input.type === "checkbox") input.checked = value === "true";
  else if (input.tagName === "SELECT") {
    if ([...input.options].some((o) => o.value === value)) input.value = value;
  } else input.value = value;
}

function showOutput(input) {
  const out = input.parentElement.querySelector("output");
  if (out) out.textContent = input.value;
}

// Read this widget's settings from the URL (keys "<widget>.<name>") into its form.
export function restoreSettings(name, form) {
  const p = params();
  for (const input of controls(form)) {
    const v = p.get(`${name}.${input.name}`);
    if (v !== null) setValue(input, v);
    showOutput(input);
  }
}

// Write the form's settings into the URL without a reload, so the view can be shared.
export function saveSettings(name, form) {
  const p = params();
  for (const input of controls(form)) p.set(`${name}.${input.name}`, valueOf(input));
  history.replaceState(null, "", `${location.pathname}?${p}${location.hash}`);
}

export function settingsOf(form) {
  return Object.fromEntries(controls(form).filter((i) => i.type !== "button").map((i) => [i.name, valueOf(i)]));
}

const BUSY_RETRIES = 30; // a 429 is retried after its Retry-After this many times before it is shown

// Resolves after `ms`, or rejects with an AbortError as soon as `signal` aborts (a newer request replaced this one).
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(new DOMException("superseded", "AbortError"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    if (signal?.aborted) abort();
    else signal?.addEventListener("abort", abort, { once: true });
  });
}

export async function fetchJSON(url, options = {}) {
  let response;
  for (let attempt = 0; ; attempt++) {
    try {
      response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new Error("the server cannot be reached — is `skiplab serve` still running?");
    }
    if (response.status !== 429 || attempt >= BUSY_RETRIES) break;
    // The server is computing at capacity: wait as long as it asks, then ask again.
    await pause(1000 * (Number(response.headers.get("Retry-After")) || 1), options.signal);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : text || response.statusText;
    throw new Error(`${response.status} — ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return body;
}

export function setBusy(el, busy) {
  el.setAttribute("aria-busy", String(busy));
  if (busy) el.dataset.state = "busy";
}

export function showError(el, message) {
  el.dataset.state = "error";
  el.setAttribute("aria-busy", "false");
  const status = el.querySelector(".status");
  status.textContent = `Could not compute this view: ${message} (the faded figures are for the previous settings)`;
  status.classList.add("error");
  el.dispatchEvent(new Event("numbers"));
}

export function clearError(el) {
  const status = el.querySelector(".status");
  status.textContent = "";
  status.classList.remove("error");
}

export function markReady(el) {
  el.dataset.state = "ready";
  el.dataset.renders = String(Number(el.dataset.renders || 0) + 1);
  el.dataset.readyAt = String(performance.now());
  el.setAttribute("aria-busy", "false");
}

// Bind a widget: its form drives GET <endpoint>?settings, `render(el, json, settings)` draws the answer.
// Only the latest request counts: an older one still in flight is aborted.
export function bindWidget(el, render, { endpoint = el.dataset.endpoint, form = el.querySelector("form") } = {}) {
  const name = el.dataset.widget;
  let inflight = null;
  restoreSettings(name, form);

  async function update() {
    saveSettings(name, form);
    const settings = settingsOf(form);
    inflight?.abort();
    const controller = new AbortController();
    inflight = controller;
    setBusy(el, true);
    try {
      const data = await fetchJSON(`${endpoint}?${new URLSearchParams(settings)}`, { signal: controller.signal });
      if (controller !== inflight) return;
      clearError(el);
      const drawing = render(el, data, settings); // numbers and diagrams now, charts when plotly is there
      numbersShown(el);
      await drawing;
      if (controller !== inflight) return;
      markReady(el);
    } catch (e) {
      if (e.name === "AbortError" || controller !== inflight) return;
      showError(el, e.message);
    }
  }

  form.addEventListener("input", (e) => showOutput(e.target));
  form.addEventListener("change", update);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    update();
  });
  return update;
}

// ------------------------------------------------------------------ drawing

// The palette is the stylesheet's (--plain, --residual, --good, --muted): one place for the page and its charts.
// Read when a chart is drawn, by then the stylesheet has surely applied.
const palette = (name) => getComputedStyle(document.documentElement).getPropertyValue(`--${name}`).trim();
export const COLORS = {
  get plain() { return palette("plain"); },
  get residual() { return palette("residual"); },
  get accent() { return palette("good"); },
  get muted() { return palette("muted"); },
};

// Per-layer weight-gradient norms of one GradientFlow as a log-scale line (a norm of 0, an underflow, is a gap).
export const gradientTrace = (flow, name, color) => ({
  x: flow.layers.map((_, i) => i + 1),
  y: flow.layers.map((l) => (l.weight_grad_norm > 0 ? l.weight_grad_norm : null)),
  name,
  mode: "lines",
  line: { color, width: 2 },
});

// plotly.js runs only when the first chart is drawn (see the article's <head>), and not before every widget
// has shown its numbers (or `holdPlotly`'s promise settled otherwise): one script tag, one promise.
let plotlyLoading = null;
let plotlyGate = Promise.resolve();

export function holdPlotly(until) {
  plotlyGate = until;
}

export function loadPlotly() {
  plotlyLoading ??= plotlyGate.then(
    () =>
      new Promise((resolve, reject) => {
        // Let the numbers already on the page be painted before plotly.js takes the main thread.
        requestAnimationFrame(() => setTimeout(() => inject(resolve, reject), 0));
      }),
  );
  return plotlyLoading;
}

// Tell the page this widget's numbers are on screen (or that it failed): charts may start.
export function numbersShown(el) {
  el.dataset.numbers = String(Number(el.dataset.numbers || 0) + 1);
  el.dataset.numbersAt = String(performance.now());
  el.dispatchEvent(new Event("numbers"));
}

function inject(resolve, reject) {
  const tag = document.createElement("script");
  tag.src = document.documentElement.dataset.plotly;
  tag.onload = () => resolve(window.Plotly);
  tag.onerror = () => reject(new Error("plotly.js could not be loaded from the server"));
  document.head.append(tag);
}

export async function plot(div, traces, layout = {}) {
  const Plotly = await loadPlotly();
  const base = {
    margin: { l: 60, r: 12, t: 28, b: 40 },
    font: { family: "system-ui, sans-serif", size: 12, color: "#1f2937" },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    autosize: true,
  };
  return Plotly.react(div, traces, { ...base, ...layout }, { displayModeBar: false, responsive: true });
}

export function fmt(v, digits = 3) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toLocaleString("en-US");
}

export function bytes(n) {
  for (const [unit, s] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) if (n >= s) return `${(n / s).toFixed(1)} ${unit}`;
  return `${n} B`;
}

export function count(n) {
  for (const [unit, s] of [["G", 1e9], ["M", 1e6], ["k", 1e3]]) if (Math.abs(n) >= s) return `${(n / s).toFixed(2)}${unit}`;
  return String(n);
}

// Small safe DOM builder: h("td", {class: "x"}, "text", child)
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

export function fill(container, ...children) {
  container.replaceChildren(...children.flat());
}

export function readout(dl, pairs) {
  fill(dl, pairs.map(([k, v, cls]) => h("div", {}, h("dt", {}, k), h("dd", { class: cls }, v))));
}

export function table(tbl, head, rows) {
  fill(
    tbl,
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c)))))),
  );
}

// SVG builder for the diagrams: s("rect", {x: 0, ...}, children)
export function s(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) e.setAttribute(k, v);
  for (const c of children.flat()) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
