"""The article page: the Jinja2 template rendered once, formulas converted to MathML on the server.

Formulas are written in LaTeX in the template (`{% filter tex %}...{% endfilter %}`) and turned into MathML by
latex2mathml when the app starts, so they render in any modern browser with
no script and no request leaving the server. Asset URLs carry a content hash
so the browser may cache them for a year.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import jinja2
from latex2mathml.converter import convert
from markupsafe import Markup

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"


VENDOR_DIR = HERE / "vendor"


def plotly_js_path() -> Path:
    """plotly.js's official "basic" bundle (scatter, bar, pie: all the article draws), from `make vendor`.

    It is a quarter of the full bundle (1.2 MB against 4.8 MB) and is parsed and
    run in about a quarter of the time, which is what brings the first visit's
    charts under two seconds on a 2-core machine (`make bench`, bench_web).
    """
    return VENDOR_DIR / "plotly.min.js"


def plotly_js_version() -> str:
    """The version in the bundle's banner, e.g. `4.1.1` from `plotly.js (basic - minified) v4.1.1`."""
    with plotly_js_path().open(encoding="utf-8") as f:
        banner = f.read(200)
    found = re.search(r"plotly\.js \(basic - minified\) v(\d+\.\d+\.\d+)", banner)
    if found is None:
        raise RuntimeError(f"{plotly_js_path()} is not plotly.js's basic bundle: run `make vendor`")
    return found.group(1)


def static_version() -> str:
    """A short hash of every static file: it changes exactly when one of them does."""
    h = hashlib.sha256()
    for p in sorted(STATIC_DIR.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(STATIC_DIR).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def tex(latex: str) -> Markup:
    """LaTeX → inline MathML. Used as a filter block, so the LaTeX needs no escaping in the template."""
    return Markup(convert(str(latex).strip(), display="inline"))


def display(latex: str) -> Markup:
    """LaTeX → block-level MathML."""
    return Markup(convert(str(latex).strip(), display="block"))


def parameter_schemas(openapi: dict) -> dict[str, dict[str, dict]]:
    """path → parameter name → its JSON schema, from the app's own OpenAPI document (query and JSON body)."""
    out: dict[str, dict[str, dict]] = {}
    components = openapi.get("components", {}).get("schemas", {})
    for path, methods in openapi["paths"].items():
        for op in methods.values():
            params = out.setdefault(path, {})
            for p in op.get("parameters", []):
                params[p["name"]] = p["schema"]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in body:
                params.update(components[body["$ref"].rsplit("/", 1)[1]].get("properties", {}))
    return out


def bounds_of(schemas: dict[str, dict[str, dict]]):
    """The template's `bounds(path, name)`: the min and max attributes of a control, from its API parameter."""

    def bounds(path: str, name: str) -> Markup:
        schema = schemas[path][name]
        # repr, not :g — a seed's bound 2**31 - 1 must not be rounded to 2.14748e+09
        return Markup(f'min="{schema["minimum"]!r}" max="{schema["maximum"]!r}"')

    return bounds


def render_article(static_url: str, plotly_url: str, openapi: dict) -> str:
    """The page, its control bounds taken from `openapi` (the app's own schema: one source for both)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(tex=tex, display=display)
    env.globals["bounds"] = bounds_of(parameter_schemas(openapi))
    return env.get_template("article.html").render(static_url=static_url, plotly_url=plotly_url)
