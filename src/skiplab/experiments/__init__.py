"""skiplab.experiments: the studies behind the explainer, run in parallel, stored, and shipped as results files.

Imports train, probes and store (never web or cli).
"""

from skiplab.experiments.studies import (
    FAMILIES,
    KINDS,
    Comparison,
    DegradationConfig,
    DegradationResult,
    DegradationRow,
    LesionConfig,
    LesionExperiment,
    SkipTypesConfig,
    SkipTypesResult,
    TableResult,
    compare,
    degradation,
    lesion,
    lesion_job,
    recipe,
    skip_types,
)

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
    "compare",
    "degradation",
    "lesion",
    "lesion_job",
    "recipe",
    "skip_types",
]
