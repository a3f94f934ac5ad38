"""Every probe result in a notebook: to_frame() (pandas), _repr_html_() (no pandas) and plot() (matplotlib)."""

import math
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import torch

from skiplab.nn import StackConfig, create_model
from skiplab.probes import (
    block_anatomy,
    bypass_metrics,
    compare_skip_types,
    gradient_by_path_length,
    lesion_study,
    measure_cost,
    path_length_distribution,
    stack_gradient_flow,
)
from skiplab.probes.highway import compare_highways


class _Cells(HTMLParser):
    """The text of every <th> and <td>, in order."""

    def __init__(self):
        super().__init__()
        self.cells, self._in = [], False

    def handle_starttag(self, tag, attrs):
        self._in = tag in ("td", "th")
        if self._in:
            self.cells.append("")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.cells[-1] += data


def _results():
    cfg = StackConfig(depth=4, width=8, in_shape=(8,))
    x, y = torch.randn(16, 64), torch.randint(0, 10, (16,))
    return {
        "flow": stack_gradient_flow(cfg, batch=8),
        "cost": measure_cost(create_model("resmlp20"), (64,)),
        "lesion": lesion_study(create_model("resmlp20"), x, y),
        "paths": gradient_by_path_length(blocks=4, samples=2),
        "distribution": path_length_distribution(6),
        "anatomy": block_anatomy(width=8, size=4, batch=4),
        "bypass": bypass_metrics(layers=3),
        "skip_types": compare_skip_types(depth=2, width=4, size=4, batch=2, skips=("identity", "none")),
        "highway": compare_highways(StackConfig(depth=3, skip="none"), StackConfig(depth=3), batch=8),
    }


@pytest.fixture(scope="module")
def results():
    return _results()


def test_import_stays_light():
    code = "import sys, skiplab, skiplab.probes; print('pandas' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_frame_holds_the_results_rows(results):
    flow = results["flow"].to_frame()
    assert list(flow["name"]) == [la.name for la in results["flow"].layers]
    assert list(flow["input_grad_norm"]) == [la.input_grad_norm for la in results["flow"].layers]
    lesion = results["lesion"].to_frame()
    assert list(lesion["accuracy"]) == [b.accuracy for b in results["lesion"].blocks]
    dist = results["distribution"].to_frame()
    assert list(dist["paths"]) == [math.comb(6, k) for k in range(7)]  # by hand: C(6, k)
    cost = results["cost"].to_frame()
    assert len(cost) == 1 and cost["flops_per_example"][0] == results["cost"].flops_per_example
    highway = results["highway"].to_frame()
    assert list(highway["plain"]) == [la.weight_grad_norm for la in results["highway"].plain.layers]
    sweep = results["anatomy"].to_frame()
    assert list(sweep["scale"]) == [p.scale for p in results["anatomy"].sweep]
    for r in results.values():
        assert len(r.to_frame()) >= 1


def test_the_html_table_shows_every_row(results):
    for key, r in results.items():
        page = r._repr_html_()
        cells = _Cells()
        cells.feed(page)
        assert type(r).__name__ in page, key
        field, rows = r._table()
        assert len(rows) >= 1
        for column in rows[0]:
            assert column in cells.cells, (key, column)
    flow = results["flow"]
    cells = _Cells()
    cells.feed(flow._repr_html_())
    assert [f"{la.input_grad_norm:.4g}" for la in flow.layers] == [
        c for c in cells.cells if c in {f"{la.input_grad_norm:.4g}" for la in flow.layers}
    ]
    assert "<script" not in flow._repr_html_()


def test_html_escapes_names():
    from skiplab.probes.lesion import BlockLesion, LesionResult

    r = LesionResult(1.0, 4, "residual", (BlockLesion("<b>x</b>", "residual", 0.5, 0.5),), 0.5, "<b>x</b>")
    assert "<b>x</b>" not in r._repr_html_() and "&lt;b&gt;x&lt;/b&gt;" in r._repr_html_()


def test_plots_draw_the_numbers(results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    flow = results["flow"]
    ax = flow.plot()
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines["input_grad_norm"] == [la.input_grad_norm for la in flow.layers]
    assert lines["weight_grad_norm"] == [la.weight_grad_norm for la in flow.layers]
    assert ax.get_yscale() == "log"
    paths = results["paths"].plot()
    assert list(paths.get_lines()[0].get_ydata()) == [p.share for p in results["paths"].lengths]
    lesion = results["lesion"].plot()
    heights = [patch.get_height() for patch in lesion.patches]
    assert heights == [b.accuracy for b in results["lesion"].blocks]
    for r in results.values():
        assert r.plot() is not None
    plt.close("all")
