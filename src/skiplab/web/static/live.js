// A live training job driven from a widget: its Train button starts one (POST), its events stream over
// server-sent events from /api/jobs/<id>/events, its Cancel button asks it to stop. The widget says what to
// ask for and how to show each event; this module keeps the buttons, the stream and the status in step.
import { clearError, fetchJSON, markReady, showError } from "./common.js";

// request(): {url, body} of the job to start. started(body): the status text once it runs. on: {event: handler}
// for the stream's events (each handler gets the parsed data). ended(end): the status text when it ends.
// finished(): called whenever the job is over for this page (ended, interrupted), after the buttons are reset.
export function liveJob(el, { request, started, on, ended, finished = () => {} }) {
  const trainBtn = el.querySelector("[data-role=train]");
  const cancelBtn = el.querySelector("[data-role=cancel]");
  const status = el.querySelector(".status");
  let source = null;
  let jobId = null;

  function finish(message) {
    source?.close();
    source = null;
    trainBtn.disabled = false;
    cancelBtn.disabled = true;
    el.setAttribute("aria-busy", "false");
    el.dataset.job = "done";
    status.textContent = message;
    finished();
  }

  async function train() {
    const { url, body } = request();
    clearError(el);
    try {
      jobId = (await fetchJSON(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).id;
    } catch (e) {
      showError(el, e.message);
      return;
    }
    el.dataset.job = "running";
    trainBtn.disabled = true;
    cancelBtn.disabled = false;
    status.textContent = started(body);
    source = new EventSource(`/api/jobs/${jobId}/events`);
    for (const [name, handle] of Object.entries(on)) source.addEventListener(name, (ev) => handle(JSON.parse(ev.data)));
    source.addEventListener("end", (ev) => {
      finish(ended(JSON.parse(ev.data)));
      markReady(el);
    });
    source.onerror = () => {
      if (source) finish("the live stream was interrupted; the server may have stopped.");
    };
  }

  async function cancel() {
    if (!jobId) return;
    cancelBtn.disabled = true;
    status.textContent = "cancelling…";
    try {
      await fetchJSON(`/api/jobs/${jobId}/cancel`, { method: "POST" });
    } catch (e) {
      showError(el, e.message);
    }
  }

  trainBtn.addEventListener("click", train);
  cancelBtn.addEventListener("click", cancel);
  return { disable: () => (trainBtn.disabled = true) };
}
