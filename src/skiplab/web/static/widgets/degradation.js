// Degradation: stored training curves of plain vs residual nets at two depths, drawn at once,
// and a live run streamed epoch by epoch over server-sent events, with a cancel button.
import { COLORS, fetchJSON, fmt, h, markReady, numbersShown, plot, restoreSettings, saveSettings, setBusy, settingsOf, showError, table } from "../common.js";
import { liveJob } from "../live.js";

const DEPTH_SHADE = { 20: 0.45, 56: 1 };

function storedTraces(data, key) {
  return data.curves.map((c) => ({
    x: c.epochs.map((e) => e.epoch),
    y: c.epochs.map((e) => e[key]),
    name: `${c.kind === "res" ? "residual" : "plain"}-${c.depth}`,
    legendgroup: `${c.kind}${c.depth}`,
    showlegend: c.seed === data.seeds[0],
    mode: "lines",
    opacity: DEPTH_SHADE[c.depth] ?? 0.8,
    line: { color: c.kind === "res" ? COLORS.residual : COLORS.plain, dash: c.kind === "res" ? "solid" : "dash", width: c.depth >= 56 ? 2 : 1.3 },
    hovertemplate: `${c.run}: %{y:.3f}<extra></extra>`,
  }));
}

const liveName = (live) => `${live.skip === "identity" ? "residual" : "plain"}-${live.depth}`;

function liveTrace(live, key) {
  return {
    x: live.epochs.map((e) => e.epoch),
    y: live.epochs.map((e) => e[key]),
    name: `live ${liveName(live)}${live.epochs.length ? "" : " (no epoch yet)"}`,
    mode: "lines+markers",
    line: { color: "#111827", width: 4, dash: live.skip === "identity" ? "solid" : "dash" },
  };
}

function draw(el, stored, live) {
  const drawings = [];
  for (const [role, key, title, type] of [
    ["loss", "train_loss", "training loss", "log"],
    ["error", "train_error", "training error", "linear"],
  ]) {
    const traces = stored ? storedTraces(stored, key) : [];
    if (live) traces.push(liveTrace(live, key));
    const plotted = plot(el.querySelector(`[data-role=${role}]`), traces, {
      xaxis: { title: { text: "epoch" } },
      yaxis: { title: { text: title }, type, rangemode: type === "linear" ? "tozero" : undefined, dtick: type === "log" ? 1 : undefined, exponentformat: type === "log" ? "power" : undefined },
      showlegend: role === "loss",
    });
    drawings.push(plotted);
  }
  return Promise.all(drawings);
}

function summarise(el, stored) {
  const seeds = stored.seeds.join(", ");
  const errorOf = (c) => (stored.error_comparisons || []).find((e) => e.kind === c.kind && e.shallow === c.shallow && e.deep === c.deep);
  const rows = stored.comparisons.map((c) => {
    const best = (depth) => stored.rows.find((r) => r.kind === c.kind && r.depth === depth).best_train_loss.map((v) => fmt(v)).join(" / ");
    const t = c.t_stat === null ? "—" : fmt(c.t_stat);
    const crit = c.t_critical === null ? "—" : fmt(c.t_critical);
    return [c.kind === "res" ? "residual" : "plain", best(c.shallow), best(c.deep), `×${fmt(c.ratio)}`, `${t} (needs ${crit})`, c.summary, errorOf(c)?.summary ?? "—"];
  });
  const [shallow, deep] = [stored.comparisons[0].shallow, stored.comparisons[0].deep];
  table(el.querySelector("[data-role=stats]"), ["family", `best ${shallow}-layer loss`, `best ${deep}-layer loss`, "deep ÷ shallow (geometric mean)", "t", "deeper, on loss", "deeper, on training error"], rows);
  const recomputed = stored.verdict_recomputed ? ` Verdict recomputed from the stored runs by: ${stored.verdict_recomputed.command}.` : "";
  el.querySelector("[data-role=provenance]").textContent =
    `Stored runs, seeds ${seeds} (per-seed values separated by /). ${stored.verdict} Rule: ${stored.rule} Produced by: ${stored.provenance.command}` +
    (stored.provenance.git_revision ? ` at revision ${stored.provenance.git_revision.slice(0, 10)}` : "") + "." + recomputed;
}

// The measured search for a setting where both halves of the claim show: every setting tried, with its outcome.
async function showSearch(el) {
  let search;
  try {
    search = await fetchJSON("/api/results/degradation-search");
  } catch {
    return; // no search shipped with this install: the stored runs above stand alone
  }
  let box = el.querySelector("[data-role=search]");
  if (!box) {
    box = h("div", { "data-role": "search", class: "search-record" });
    el.querySelector("[data-role=provenance]").after(box);
  }
  const label = { plain: "plain", res: "residual" };
  const rows = search.settings.flatMap((s) =>
    s.comparisons.map((c) => [
      s.label, label[c.kind] ?? c.kind, `×${fmt(c.ratio)}`,
      `${c.t_stat === null ? "—" : fmt(c.t_stat)} (needs ${c.t_critical === null ? "—" : fmt(c.t_critical)})`,
      c.summary, s.both_halves ? "yes" : "no",
    ]),
  );
  const tbl = h("table", { class: "stats" });
  table(tbl, ["setting tried", "net", "deep ÷ shallow best loss", "t", "verdict", "both halves?"], rows);
  box.replaceChildren(
    h("p", {}, `What was tried to find a setting where plain deeper is worse and residual deeper is better: ${search.finding}`),
    tbl,
    h("p", { class: "provenance" }, `Search record made by: ${search.provenance.command}. Each setting's runs were made by the command listed with it.`),
  );
}

export default function degradation(el) {
  const form = el.querySelector("form");
  const status = el.querySelector(".status");
  let stored = null;
  let live = null;
  let lastEpoch = null;
  restoreSettings("degradation", form);
  form.addEventListener("change", () => saveSettings("degradation", form));

  liveJob(el, {
    request() {
      saveSettings("degradation", form);
      const settings = settingsOf(form);
      return { url: "/api/jobs", body: { depth: Number(settings.depth), skip: settings.skip, epochs: Number(settings.epochs) } };
    },
    started(body) {
      // The stored figures stay current while a run trains: the widget is not faded, only the status moves.
      live = { ...body, asked: body.epochs, epochs: [] }; // asked: the epochs requested; epochs: those done
      lastEpoch = null;
      el.dataset.liveEpochs = "0";
      draw(el, stored, live); // the previous live run's curve goes now, not when this one's first epoch ends
      return `training ${liveName(live)}: starting the training process…`;
    },
    on: {
      progress(p) {
        status.textContent = `training ${liveName(live)}: epoch ${p.epoch}/${live.asked}, batch ${p.step} of ${p.steps}` + (lastEpoch ? ` — last epoch: training loss ${fmt(lastEpoch.train_loss)}` : "");
      },
      epoch(m) {
        live.epochs.push(m);
        lastEpoch = m;
        status.textContent = `training ${liveName(live)}: epoch ${m.epoch}/${live.asked} done: training loss ${fmt(m.train_loss)}, training error ${fmt(m.train_error)}`;
        el.dataset.liveEpochs = String(live.epochs.length);
        draw(el, stored, live);
      },
    },
    ended(end) {
      const last = live.epochs.at(-1);
      return `live run ${end.status} after ${live.epochs.length} epoch(s)` + (last ? `: best training loss so far ${fmt(Math.min(...live.epochs.map((e) => e.train_loss ?? Infinity)))}` : "") + (end.message ? ` — ${end.message}` : ".");
    },
    finished: () => draw(el, stored, live), // the live trace's name and points are this run's, whatever it reached
  });

  return async function load() {
    setBusy(el, true);
    try {
      stored = await fetchJSON(el.dataset.endpoint);
      summarise(el, stored);
      await showSearch(el);
      numbersShown(el);
      await draw(el, stored, live);
      markReady(el);
    } catch (e) {
      showError(el, e.message);
    }
  };
}
