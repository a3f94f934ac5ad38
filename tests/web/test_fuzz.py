"""Schemathesis against the app's own OpenAPI schema, in-process: every operation, no 5xx, no schema violation.

The normal run uses hypothesis's `quick` profile; `make fuzz` runs the `fuzz`
profile (1,000 cases per operation). Every other check schemathesis has runs
(server errors, response schema, status codes, headers, content type). Live training is limited to one short
job at a time, and the jobs left running are cancelled when the module ends.
"""

import json
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from skiplab.web.app import create_app
from skiplab.web.settings import WebSettings

# No compute cap and no client timeout: what a request costs in seconds depends on the machine and its load,
# and the cap's 503 is tested with a gate in test_limits. Every in-schema request must answer, however slowly.
APP = create_app(WebSettings(warm_up=False, max_jobs=1, allowed_hosts=("testserver",), compute_timeout_s=600))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


TALLY: Counter = Counter()  # (operation, generation mode, status) → cases
REPORT = Path(__file__).resolve().parents[2] / "test-artifacts" / "fuzz.json"


@pytest.fixture(scope="module", autouse=True)
def _stop_jobs_and_report():
    yield
    APP.state.jobs.shutdown()
    # What was tried, for the README's figures: cases per operation, negative (invalid) ones among them.
    REPORT.parent.mkdir(exist_ok=True)
    by_mode, by_status = Counter(), Counter()
    for (_, mode, status), n in TALLY.items():
        by_mode[mode] += n
        by_status[status] += n
    REPORT.write_text(
        json.dumps(
            {
                "operations": len({op for op, _, _ in TALLY}),
                "cases": sum(TALLY.values()),
                "by_mode": dict(by_mode),
                "by_status": dict(sorted(by_status.items())),
                "server_errors": sum(n for s, n in by_status.items() if int(s) >= 500),
            },
            indent=2,
        )
    )


@schema.parametrize()
def test_fuzz_api(case):
    # A request inside the schema's bounds may still be priced over the server's budget: that is a documented
    # 422 saying what to lower, so schema-valid data is not required to be accepted.
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance], timeout=600)
    TALLY[(case.operation.label, case.meta.generation.mode.value, str(response.status_code))] += 1
    if response.status_code == 422:
        assert response.json()["detail"]
