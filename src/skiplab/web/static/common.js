// What every widget shares: settings kept in the URL, one request at a time with a busy state,
// readable server errors, and plotly drawing with the article's look. Widgets only draw JSON.
//
// The rule for what a widget shows: either figures for exactly the settings its controls show, or a message
// saying why there are none — never stale figures beside new settings, never an empty box without a word.
// - A setting in the URL that a control cannot take is corrected before anything is asked: a value that is
//   not a number (or not one of a select's options) falls back to the control's default, a number outside
//   the control's range is clamped to it and rounded to its step; the corrected value is written back.
// - A change the server refuses (a 422, a budget, an outage) is reported in words, and the controls and the
//   URL go back to the settings of the figures still shown, so the figures stay current.
// - When there are no figures to go back to (the first request failed), the figures are hidden and only
//   the message shows.

const params = () => new URLSearchParams(window.location.search);
const controls = (form) => [...form.elements].filter((e) => e.name);
const valueOf = (input) => (input.type === "checkbox" ? String(input.checked) : input.value);

// The value the page was written with (the HTML's value / checked / selected), which `form.reset()` restores.
function defaultOf(input) {
  if (input.type === "checkbox") return String(input.defaultChecked);
  if (input.tagName === "SELECT") {
    const chosen = [...input.options].find((o) => o.defaultSelected) ?? input.options[0];
    return chosen ? chosen.value : "";
  }
  return input.defaultValue;
}

// The nearest value `input` can take to `raw` (a string from the URL), as the string to put in the control.
export function validValue(input, raw) {
  if (input.type === "checkbox") return raw === "true" || raw === "false" ? raw : defaultOf(input);
  if (input.tagName === "SELECT") return [...input.options].some((o) => o.value === raw) ? raw : defaultOf(input);
  if (input.type !== "range" && input.type !== "number") return raw;
  const text = String(raw).trim();
  const v = text === "" ? NaN : Number(text);
  if (!Number.isFinite(v)) return defaultOf(input);
  const min = input.min === "" ? -Infinity : Number(input.min);
  const max = input.max === "" ? Infinity : Number(input.max);
  const step = input.step === "" || input.step === "any" ? (input.step === "any" ? 0 : 1) : Number(input.step);
  let x = Math.min(max, Math.max(min, v));
  if (step > 0) {
    const base = Number.isFinite(min) ? min : 0;
    x = base + Math.round((x - base) / step) * step;
    if (x > max) x -= step;
    const decimals = (String(step).split(".")[1] ?? "").length;
    x = Number(x.toFixed(decimals));
  }
  return String(x);
}

function setValue(input, value) {
  if (input.type === "checkbox") input.checked = value === "true";
  else input.value = value;
}

function showOutput(input) {
  const out = input.parentElement.querySelector("output");
  if (out) out.textContent = input.value;
}

// Read this widget's settings from the URL (keys "<widget>.<name>") into its form, corrected to what each
// control can take (see the rule above); the corrected settings are written back to the URL.
export function restoreSettings(name, form) {
  const p = params();
  for (const input of controls(form)) {
    const v = p.get(`${name}.${input.name}`);
    if (v !== null) setValue(input, validValue(input, v));
    showOutput(input);
  }
  if (controls(form).some((i) => p.has(`${name}.${i.name}`))) saveSettings(name, form);
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

// Put `settings` (as from settingsOf) back into the form's controls.
function applySettings(form, settings) {
  for (const input of controls(form)) {
    if (input.name in settings) {
      setValue(input, settings[input.name]);
      showOutput(input);
    }
  }
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

// Say in the widget's status line why it cannot show what was asked. `figures` tells what is shown instead:
// "kept" (the figures on the page are still current: the controls went back to their settings) or "none"
// (nothing to show: the figures are hidden); by default "kept" once the widget has shown numbers, else "none".
export function showError(el, message, { figures = el.dataset.numbers ? "kept" : "none", detail = "" } = {}) {
  el.dataset.state = "error";
  el.dataset.figures = figures;
  el.setAttribute("aria-busy", "false");
  const status = el.querySelector(".status");
  status.textContent = `Could not compute this view: ${message}${detail ? ` ${detail}` : ""}`;
  status.classList.add("error");
  el.dispatchEvent(new Event("numbers"));
}

export function clearError(el) {
  const status = el.querySelector(".status");
  status.textContent = "";
  status.classList.remove("error");
  el.dataset.figures = "shown";
}

export function markReady(el) {
  el.dataset.state = "ready";
  el.dataset.renders = String(Number(el.dataset.renders || 0) + 1);
  el.dataset.readyAt = String(performance.now());
  el.setAttribute("aria-busy", "false");
}

const same = (a, b) => a !== null && b !== null && JSON.stringify(a) === JSON.stringify(b);

// Bind a widget: its form drives GET <endpoint>?settings, `render(el, json, settings)` draws the answer.
// At most one request is in flight per widget. While a slider is dragged (`input` events) the request in
// flight is let finish and drawn, and the latest settings are sent when it returns (settings passed over in
// between are never sent); any other change (`change`, a select, a release) aborts a request for other
// settings and sends at once. A refused change puts the controls back (see the rule at the top).
export function bindWidget(el, render, { endpoint = el.dataset.endpoint, form = el.querySelector("form") } = {}) {
  const name = el.dataset.widget;
  let inflight = null; // {controller, settings} of the request in flight
  let queued = false; // newer settings wait for the request in flight to return
  let shown = null; // the settings the figures on the page are for
  restoreSettings(name, form);

  async function send() {
    queued = false;
    saveSettings(name, form);
    const settings = settingsOf(form);
    const controller = new AbortController();
    const mine = { controller, settings };
    inflight = mine;
    setBusy(el, true);
    try {
      const data = await fetchJSON(`${endpoint}?${new URLSearchParams(settings)}`, { signal: controller.signal });
      if (mine !== inflight) return;
      clearError(el);
      const drawing = render(el, data, settings); // numbers and diagrams now, charts when plotly is there
      shown = settings;
      numbersShown(el);
      await drawing;
      if (mine !== inflight) return;
      markReady(el);
    } catch (e) {
      if (e.name === "AbortError" || mine !== inflight) return;
      if (queued) return; // newer settings are waiting: ask for them instead of reporting these
      refused(settings, e.message);
    } finally {
      if (mine === inflight) {
        inflight = null;
        if (queued) send();
      }
    }
  }

  function refused(settings, message) {
    const changed = Object.keys(settings).filter((k) => !shown || settings[k] !== shown[k]);
    const asked = changed.map((k) => `${k} = ${settings[k]}`).join(", ");
    if (shown) {
      applySettings(form, shown);
      saveSettings(name, form);
      showError(el, message, { figures: "kept", detail: `— ${asked ? `${asked} ${changed.length > 1 ? "were" : "was"} not shown; ` : ""}the controls are back at the settings of the figures below.` });
    } else {
      showError(el, message, { figures: "none" });
    }
  }

  // Send now, aborting a request for other settings; nothing if the one in flight already asks for these.
  function update() {
    const settings = settingsOf(form);
    if (inflight ? same(inflight.settings, settings) : same(shown, settings) && el.dataset.state === "ready") {
      queued = false; // already asked for, or already shown (a slider released where its drag was drawn)
      return undefined;
    }
    inflight?.controller.abort();
    inflight = null;
    return send();
  }

  // While dragging: at most one request in flight; the latest settings go out when it returns.
  function follow() {
    if (inflight) {
      queued = !same(inflight.settings, settingsOf(form));
      return;
    }
    send();
  }

  form.addEventListener("input", (e) => {
    showOutput(e.target);
    if (e.target.type === "range") follow();
  });
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
  get bad() { return palette("bad"); },
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
    // A setting changed: the curves move to their new values rather than being redrawn from nothing.
    transition: { duration: 200, easing: "cubic-in-out" },
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

// A count the library gives as an exact decimal string (exact beyond 2^53): in full below a million, above
// it its size, and its power of two when it is one — "4,096", "2^50 ≈ 1.1×10^15", "≈ 3.2×10^7".
export function bigCount(text) {
  const n = BigInt(text);
  if (n < 1000000n) return Number(n).toLocaleString("en-US");
  const digits = n.toString();
  let exponent = digits.length - 1;
  let mantissa = Number(Number(`${digits[0]}.${digits.slice(1, 8)}`).toFixed(1));
  if (mantissa >= 10) {
    mantissa /= 10;
    exponent += 1;
  }
  const size = `${mantissa.toFixed(1)}×10^${exponent}`;
  return (n & (n - 1n)) === 0n ? `2^${n.toString(2).length - 1} ≈ ${size}` : `≈ ${size}`;
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
