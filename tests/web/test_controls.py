"""Every control on the page offers exactly what its API parameter accepts: one source, the app's schema."""

from html.parser import HTMLParser

import pytest

from skiplab.web.app import create_app
from skiplab.web.article import parameter_schemas
from skiplab.web.settings import WebSettings

# The degradation and U-Net widgets show stored runs from one endpoint and train live through another.
CONTROLS_SEND_TO = {"/api/results/degradation": "/api/jobs", "/api/unet/results": "/api/unet/jobs"}


class Controls(HTMLParser):
    """(endpoint, tag, attributes, option values) of every input and select inside a widget's form."""

    def __init__(self) -> None:
        super().__init__()
        self.endpoint: str | None = None
        self.found: list[tuple[str, str, dict, list[str]]] = []
        self._select: tuple[str, dict, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-display" in a:  # how the figures are drawn (contours or a surface): never sent to the server
            return
        if tag == "figure" and "data-endpoint" in a:
            self.endpoint = CONTROLS_SEND_TO.get(a["data-endpoint"], a["data-endpoint"])
        elif tag == "input" and self.endpoint and a.get("name"):
            # data-param: the parameter the control fills, where its form name differs (live_seed sends seed)
            self.found.append((self.endpoint, tag, {**a, "name": a.get("data-param", a["name"])}, []))
        elif tag == "select" and self.endpoint:
            self._select = (self.endpoint, a, [])
        elif tag == "option" and self._select is not None:
            self._select[2].append(a.get("value"))

    def handle_data(self, data):
        if self._select is not None and self._select[2] and self._select[2][-1] is None:
            self._select[2][-1] = data.strip()

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None:
            endpoint, a, options = self._select
            self.found.append((endpoint, "select", a, options))
            self._select = None
        elif tag == "figure":
            self.endpoint = None


@pytest.fixture(scope="module")
def page_and_schemas():
    app = create_app(WebSettings(warm_up=False))
    parser = Controls()
    parser.feed(app.state.article_html)
    return parser.found, parameter_schemas(app.openapi())


def _accepts(schema: dict, value: str) -> bool:
    if "enum" in schema:
        return value in [str(v).lower() for v in schema["enum"]]
    if schema.get("type") == "boolean":
        return value in ("true", "false")
    number = float(value)
    return schema.get("minimum", -float("inf")) <= number <= schema.get("maximum", float("inf"))


def test_every_control_names_a_parameter_of_its_endpoint_and_offers_only_what_it_accepts(page_and_schemas):
    controls, schemas = page_and_schemas
    assert len(controls) >= 20
    for endpoint, tag, attrs, options in controls:
        schema = schemas[endpoint][attrs["name"]]
        if tag == "select":
            assert options and all(_accepts(schema, o) for o in options), (endpoint, attrs["name"], options)
        elif attrs.get("type") in ("range", "number"):
            # the control's whole range is the parameter's, no more and no less
            assert (float(attrs["min"]), float(attrs["max"])) == (schema["minimum"], schema["maximum"])
            assert _accepts(schema, attrs["value"])
        elif attrs.get("type") in ("text", "hidden"):
            # free text: the control takes no more characters than one value of the parameter may have
            one = schema.get("items", schema)  # a repeatable parameter: each of its values
            assert one["type"] == "string", (endpoint, attrs["name"])
            assert len(attrs.get("value", "")) <= one["maxLength"]
            if attrs["type"] == "text":
                assert int(attrs["maxlength"]) == one["maxLength"], (endpoint, attrs["name"])
        else:
            assert attrs.get("type") == "checkbox" and schema["type"] == "boolean"
