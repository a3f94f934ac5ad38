// Beyond vision: a pretrained MiniLM's residual stream for the reader's sentence, per sublayer, with lesions,
// and post-LN vs pre-LN gradients at initialisation. Every number and sentence drawn is a field of the JSON.
import { COLORS, bindWidget, fetchJSON, fill, fmt, h, plot, readout, table } from "../common.js";

const SUBLAYER = { attention: "attn", ffn: "ffn" };
const label = (s) => `${s.layer}·${SUBLAYER[s.sublayer]}`;

let init = null; // post- vs pre-LN at initialisation: the same for every sentence, fetched once

function cutKeys(form) {
  return form.elements.lesion.value.split(",").filter(Boolean);
}

// One toggle per sublayer, laid out as the network is: a column per layer, attention above feed-forward.
// A toggle edits the hidden `lesion` setting and asks for the new view like any other control.
function drawToggles(el, data) {
  const form = el.querySelector("form");
  const cut = new Set(cutKeys(form));
  const box = el.querySelector("[data-role=toggles]");
  box.style.setProperty("--layers", data.layers);
  const buttons = ["attention", "ffn"].flatMap((sub) =>
    data.sublayers
      .filter((s) => s.sublayer === sub)
      .map((s) => {
        const key = `${s.layer}.${s.sublayer}`;
        const b = h("button", { type: "button", "data-key": key, "aria-pressed": String(cut.has(key)), title: `cut layer ${s.layer}'s ${s.sublayer === "ffn" ? "feed-forward" : "attention"} sublayer` }, label(s));
        b.style.gridColumn = String(s.layer + 1);
        b.style.gridRow = sub === "attention" ? "1" : "2";
        b.addEventListener("click", () => {
          const keys = new Set(cutKeys(form));
          if (keys.has(key)) keys.delete(key);
          else keys.add(key);
          form.elements.lesion.value = [...keys].join(",");
          form.elements.lesion.dispatchEvent(new Event("change", { bubbles: true }));
        });
        return b;
      }),
  );
  fill(box, buttons);
}

function describe(el, data) {
  const e = data.lesion;
  fill(el.querySelector("[data-role=architecture]"), h("strong", {}, `${data.model}: `), data.statement, ".");
  fill(el.querySelector("[data-role=tokens]"), `${data.tokens[0].length} tokens: `, h("code", {}, data.tokens[0].join(" ")));
  const pairs = [];
  if (e) {
    const drop = e.lesions[0].drop === "branch" ? "F(x) dropped, skip kept" : "F(x) kept, skip dropped";
    pairs.push(
      ["cut", `${e.lesions.map((c) => label(c)).join(", ")} (${drop})`],
      ["sentence embedding vs intact (cosine)", fmt(e.mean_embedding_cosine, 3)],
      ["pair ranking kept", e.ranking_kept ? "yes" : "no", e.ranking_kept ? "good" : "bad"],
      ["Kendall's τ of the pair similarities", fmt(e.rank_correlation)],
    );
  } else {
    pairs.push(["cut", "nothing (toggle a sublayer above)"]);
  }
  readout(el.querySelector("[data-role=readout]"), pairs);
  table(
    el.querySelector("[data-role=pairs]"),
    ["sentence pair", "similarity, intact", ...(e ? ["cut"] : [])],
    data.pairs.map((p) => [`${p.a} / ${p.b}`, fmt(p.intact), ...(e ? [fmt(p.lesioned)] : [])]),
  );
}

async function drawStream(el, data) {
  const x = ["embeddings", ...data.sublayers.map(label)];
  const stream = (subs) => [data.hidden_norms[0], ...subs.map((s) => s.stream_norm_out)];
  const traces = [{ x, y: stream(data.sublayers), name: "intact", mode: "lines+markers", line: { color: COLORS.residual, width: 2 } }];
  const ratios = [{ x: x.slice(1), y: data.sublayers.map((s) => s.branch_ratio), name: "intact", type: "bar", marker: { color: COLORS.residual } }];
  const notes = [];
  if (data.lesion) {
    traces.push({ x, y: stream(data.lesion.streams), name: "cut", mode: "lines+markers", line: { color: COLORS.plain, width: 2, dash: "dash" } });
    ratios.push({ x: x.slice(1), y: data.lesion.streams.map((s) => s.branch_ratio), name: "cut", type: "bar", marker: { color: COLORS.plain } });
    // A cut sublayer's branch is still computed (its bar); a label above marks the sublayers whose sum changed.
    const cut = new Set(data.lesion.lesions.map((c) => c.key));
    data.lesion.streams.forEach((s, i) => {
      if (!cut.has(`${s.layer}.${s.sublayer}`)) return;
      const top = Math.max(s.branch_ratio, data.sublayers[i].branch_ratio);
      notes.push({ x: label(s), y: top, text: "cut", showarrow: false, yanchor: "bottom", font: { color: COLORS.plain, size: 11 } });
    });
  }
  // Each chart gets layout objects of its own: plotly writes its autorange into the layout it is given.
  const axis = () => ({ title: { text: "sublayer" }, type: "category", tickangle: -60, automargin: true });
  await Promise.all([
    plot(el.querySelector("[data-role=norms]"), traces, { xaxis: axis(), yaxis: { title: { text: "stream norm |x| per token" }, rangemode: "tozero" } }),
    plot(el.querySelector("[data-role=ratio]"), ratios, { barmode: "group", annotations: notes, xaxis: axis(), yaxis: { title: { text: "|F(x)| / |x|" }, rangemode: "tozero" } }),
  ]);
}

async function drawInit(el) {
  const finding = el.querySelector("[data-role=init-finding]");
  try {
    init ??= await fetchJSON("/api/transformer/init");
  } catch (e) {
    finding.textContent = `Post-LN vs pre-LN at initialisation could not be computed: ${e.message}`;
    return;
  }
  const layers = init.post_ln.layer_grad.map((_, i) => i);
  const line = (f, name, color) => ({ x: layers, y: f.layer_grad, name, mode: "lines+markers", line: { color, width: 2 } });
  const c = init.config;
  fill(finding, h("strong", {}, `At initialisation, random ${c.layers}-layer models of hidden width ${c.hidden}: `), `${init.finding}. `, h("span", { class: "provenance" }, `Reference — ${init.reference}. Loss: ${init.loss}; initialisation: ${init.initialisation}.`));
  await plot(el.querySelector("[data-role=init]"), [line(init.post_ln, `post-LN (${init.post_ln.model})`, COLORS.plain), line(init.pre_ln, `pre-LN (${init.pre_ln.model})`, COLORS.residual)], {
    xaxis: { title: { text: "layer (input → output)" }, dtick: 1, zeroline: false },
    yaxis: { title: { text: "|dL/dθ| of the layer" }, type: "log", dtick: Math.log10(2), tickformat: ".2~g" },
  });
}

async function render(el, data) {
  drawToggles(el, data);
  describe(el, data);
  await Promise.all([drawStream(el, data), drawInit(el)]);
}

export default (el) => {
  const update = bindWidget(el, render);
  // The first request after the server starts loads MiniLM into a worker: say so instead of looking stuck.
  return () => {
    const sent = update();
    if (el.dataset.state === "busy") {
      el.querySelector(".status").textContent = "Loading MiniLM into the server's worker — the first request after a start takes a few seconds…";
    }
    return sent;
  };
};
