"""skiplab.probes: measurements of real networks (gradient flow, anatomy, bypass, cost, paths, lesions)."""

from skiplab.probes.anatomy import BlockAnatomy, block_anatomy
from skiplab.probes.bypass import BypassMetrics, bypass_metrics
from skiplab.probes.cost import Cost, count_params, measure_cost, stack_cost
from skiplab.probes.gradflow import FlowSummary, GradientFlow, gradient_flow, stack_gradient_flow
from skiplab.probes.hessian import HessianSpectrum, hessian_spectrum
from skiplab.probes.landscape import Landscape, LandscapeRow, landscape_stream, loss_landscape
from skiplab.probes.lesion import LesionResult, lesion_study
from skiplab.probes.paths import PathDistribution, PathGradients, gradient_by_path_length, path_length_distribution
from skiplab.probes.skip_types import SkipTypeComparison, compare_skip_types

__all__ = [
    "BlockAnatomy",
    "BypassMetrics",
    "Cost",
    "FlowSummary",
    "GradientFlow",
    "HessianSpectrum",
    "Landscape",
    "LandscapeRow",
    "LesionResult",
    "PathDistribution",
    "PathGradients",
    "SkipTypeComparison",
    "block_anatomy",
    "bypass_metrics",
    "compare_skip_types",
    "count_params",
    "gradient_by_path_length",
    "gradient_flow",
    "hessian_spectrum",
    "landscape_stream",
    "loss_landscape",
    "lesion_study",
    "measure_cost",
    "stack_cost",
    "path_length_distribution",
    "stack_gradient_flow",
]
