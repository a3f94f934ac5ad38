"""skiplab.experiments: the studies behind the explainer, run in parallel, stored, and shipped as results files.

Imports train, probes and store (never web or cli).
"""

from skiplab.experiments.search import assemble_search, both_halves, degradation_search, setting_label
from skiplab.experiments.studies import (
    FAMILIES,
    DegradationConfig,
    DegradationResult,
    DegradationRow,
    LesionConfig,
    LesionExperiment,
    SkipTypesConfig,
    SkipTypesResult,
    TableResult,
    degradation,
    lesion,
    lesion_job,
    recipe,
    skip_types,
)
from skiplab.experiments.verdict import KINDS, Comparison, compare, judge, rule_text, t_critical

__all__ = [
    "Comparison",
    "DegradationConfig",
    "DegradationResult",
    "DegradationRow",
    "FAMILIES",
    "KINDS",
    "LesionConfig",
    "LesionExperiment",
    "SkipTypesConfig",
    "SkipTypesResult",
    "TableResult",
    "assemble_search",
    "both_halves",
    "compare",
    "degradation_search",
    "setting_label",
    "judge",
    "rule_text",
    "t_critical",
    "degradation",
    "lesion",
    "lesion_job",
    "recipe",
    "skip_types",
]
