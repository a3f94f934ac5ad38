"""Schemathesis against the app's own OpenAPI schema, in-process: every operation, no 5xx, no schema violation.

The normal run uses hypothesis's `quick` profile; `make fuzz` runs the `fuzz`
profile (1,000 cases per operation). Every other check schemathesis has runs
(server errors, response schema, status codes, headers, content type). Live training is limited to one short
job at a time, and the jobs left running are cancelled when the module ends.
"""

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from skiplab.web.app import create_app
from skiplab.web.settings import WebSettings

APP = create_app(WebSettings(warm_up=False, max_jobs=1, allowed_hosts=("testserver",)))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _stop_jobs():
    yield
    APP.state.jobs.shutdown()


@schema.parametrize()
def test_fuzz_api(case):
    # A request inside the schema's bounds may still be priced over the server's budget: that is a documented
    # 422 saying what to lower, so schema-valid data is not required to be accepted.
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    if response.status_code == 422:
        assert response.json()["detail"]
