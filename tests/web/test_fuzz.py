"""Schemathesis against the app's own OpenAPI schema, in-process: every operation, no 5xx, no schema violation.

The normal run uses hypothesis's `quick` profile; `make fuzz` runs the `fuzz`
profile (1,000 cases per operation).
"""

import schemathesis

from skiplab.web.app import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
def test_fuzz_api(case):
    case.call_and_validate(headers={"Host": "127.0.0.1:8000"})
