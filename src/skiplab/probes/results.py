"""Probe results in a notebook: a table (`to_frame`, `_repr_html_`) and a picture (`plot`) of any result.

One mixin for every result dataclass. Its table is the result's first field
that is a tuple of records (a flow's layers, a lesion's blocks, the path
lengths), one row per record; a result without one (a `Cost`) is one row of
its plain fields. pandas and matplotlib are imported inside the methods, only
when called (`pip install 'skiplab[notebook]'`): `import skiplab` stays light,
and the HTML table needs neither.
"""

from __future__ import annotations

import dataclasses
import html
import math
from typing import Any

__all__ = ["Tabular"]

_ROWS_SHOWN = 60  # an HTML table longer than this shows its first and last rows only


def _plain(value: Any) -> Any:
    """A table cell: numbers and strings as they are, a record as a dict, a tuple of numbers as a list."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _is_records(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) > 0
        and all(dataclasses.is_dataclass(v) and not isinstance(v, type) for v in value)
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if value is None:
        return "–"
    if isinstance(value, list) and len(value) > 6:
        return html.escape(f"[{', '.join(_cell(v) for v in value[:3])}, … {len(value)} values]")
    if isinstance(value, list):
        return html.escape(f"[{', '.join(_cell(v) for v in value)}]")
    return html.escape(str(value))


class Tabular:
    """`to_frame()`, `_repr_html_()` and `plot()` for a frozen result dataclass.

    A subclass may name the field its table comes from (`_rows_field`) or
    override `_table`, and name what it plots: `_plot_x` (a column, or None for the
    row number), `_plot_y` (columns, one line each, or bars when `_plot_kind`
    is "bar") and `_plot_log` (a log scale on y).
    """

    _rows_field: str | None = None  # the field the table comes from (None: the first tuple of records)
    _plot_x: str | None = None
    _plot_y: tuple[str, ...] = ()
    _plot_kind: str = "line"
    _plot_log: bool = False

    # ---------------------------------------------------------------- the table

    def _table(self) -> tuple[str | None, list[dict]]:
        """(name of the field the rows come from or None, the rows as dicts)."""
        if self._rows_field is not None:
            return self._rows_field, [_plain(v) for v in getattr(self, self._rows_field)]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if _is_records(value):
                return f.name, [_plain(v) for v in value]
        return None, [{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}]

    def _scalars(self, rows_field: str | None) -> dict:
        """The fields shown above the table: every one but the table's own and other tuples of records."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == rows_field or _is_records(value):
                continue
            out[f.name] = _plain(value)
        return out

    def to_frame(self):
        """The result's table as a pandas DataFrame (one row per layer, block, length...)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_frame needs pandas: pip install 'skiplab[notebook]'") from e
        return pd.DataFrame(self._table()[1])

    def _repr_html_(self) -> str:
        """An HTML table for Jupyter (no pandas needed): the plain fields, then the rows."""
        field, rows = self._table()
        parts = [f"<div class='skiplab-result'><strong>{html.escape(type(self).__name__)}</strong>"]
        if field is not None:
            scalars = self._scalars(field)
            if scalars:
                items = "".join(
                    f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{_cell(v)}</td></tr>"
                    for k, v in scalars.items()
                    if not isinstance(v, dict)
                )
                parts.append(f"<table>{items}</table>")
        columns = list(rows[0]) if rows else []
        shown = rows if len(rows) <= _ROWS_SHOWN else rows[: _ROWS_SHOWN // 2] + [None] + rows[-_ROWS_SHOWN // 2 :]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = []
        for row in shown:
            if row is None:
                body.append(f"<tr><td colspan='{len(columns)}'>… {len(rows) - _ROWS_SHOWN} more rows …</td></tr>")
            else:
                body.append("<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in columns) + "</tr>")
        caption = f"<caption>{html.escape(field)} ({len(rows)} rows)</caption>" if field else ""
        parts.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
        return "".join(parts)

    # ---------------------------------------------------------------- the picture

    def _plot_columns(self, rows: list[dict]) -> tuple[str | None, list[str]]:
        if self._plot_y:
            return self._plot_x, list(self._plot_y)
        numeric = [
            c
            for c in (rows[0] if rows else {})
            if all(isinstance(r[c], (int, float)) and not isinstance(r[c], bool) for r in rows)
        ]
        return None, numeric

    def plot(self, ax=None, **kwargs):
        """Draw the result with matplotlib on `ax` (a new figure if None) and return the axes.

        kwargs go to matplotlib's `plot` (or `bar`).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("plot needs matplotlib: pip install 'skiplab[notebook]'") from e
        _, rows = self._table()
        x_name, ys = self._plot_columns(rows)
        if ax is None:
            _, ax = plt.subplots()
        labels = [str(r[x_name]) for r in rows] if x_name else [str(x) for x in range(len(rows))]
        columns = {y: [math.nan if r[y] is None else r[y] for r in rows] for y in ys}
        draw = _bars if self._plot_kind == "bar" or len(rows) == 1 else _lines
        draw(ax, labels, columns, **kwargs)
        if self._plot_log:
            ax.set_yscale("log")
        ax.set_xlabel(x_name or "row")
        ax.set_title(type(self).__name__)
        if len(ys) > 1:
            ax.legend()
        return ax


def _bars(ax, labels: list[str], columns: dict[str, list[float]], **kwargs) -> None:
    """One group of bars per row, one bar per column."""
    width = 0.8 / max(1, len(columns))
    xs = range(len(labels))
    for i, (name, values) in enumerate(columns.items()):
        ax.bar([x + i * width for x in xs], values, width=width, label=name, **kwargs)
    ax.set_xticks([x + width * (len(columns) - 1) / 2 for x in xs], labels)


def _lines(ax, labels: list[str], columns: dict[str, list[float]], **kwargs) -> None:
    """One line per column over the rows, at most a dozen row labels on the axis."""
    xs = list(range(len(labels)))
    for name, values in columns.items():
        ax.plot(xs, values, marker=".", label=name, **kwargs)
    step = max(1, len(labels) // 12)
    ax.set_xticks(xs[::step], labels[::step], rotation=45, ha="right")
