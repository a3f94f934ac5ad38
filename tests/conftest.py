import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# Hypothesis profiles: `quick` in the normal test run, `fuzz` (`make fuzz`) for the thorough API fuzzing.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("quick", max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz", max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile("quick")
