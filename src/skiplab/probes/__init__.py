"""skiplab.probes: measurements of real networks (gradient flow, anatomy, bypass, cost, paths, lesions)."""

from skiplab.probes.cost import Cost, count_params, measure_cost

__all__ = ["Cost", "count_params", "measure_cost"]
