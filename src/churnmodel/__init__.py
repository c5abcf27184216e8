"""churnmodel: predict which business partners are about to leave, explain why, say what to do.

The public API is the application layer (:mod:`churnmodel.pipeline`), the same functions the
command line calls: :func:`validate`, :func:`features`, :func:`fit`, :func:`score`, :func:`explain`
and :func:`simulate`, each taking a config (or the path of a YAML file) and returning a result.
"""

import logging

from churnmodel.config import Config, load_config
from churnmodel.data import read_inputs
from churnmodel.errors import ChurnModelError, ConfigError, DataError
from churnmodel.model import ChurnModel
from churnmodel.pipeline import (
    Explanation,
    FeaturesRun,
    FitResult,
    ScoreRun,
    Validation,
    explain,
    features,
    fit,
    score,
    simulate,
    validate,
)
from churnmodel.validation import InputTables, validate_tables

__version__ = "0.1.0"

logging.getLogger("churnmodel").addHandler(logging.NullHandler())

__all__ = [
    "ChurnModel",
    "ChurnModelError",
    "Config",
    "ConfigError",
    "DataError",
    "Explanation",
    "FeaturesRun",
    "FitResult",
    "InputTables",
    "ScoreRun",
    "Validation",
    "__version__",
    "explain",
    "features",
    "fit",
    "load_config",
    "read_inputs",
    "score",
    "simulate",
    "validate",
    "validate_tables",
]
