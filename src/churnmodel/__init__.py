"""churnmodel: predict which business partners are about to leave, explain why, say what to do."""

import logging

from churnmodel.config import Config, load_config
from churnmodel.data import InputTables, read_inputs, validate_tables
from churnmodel.errors import ChurnModelError, ConfigError, DataError
from churnmodel.score import ScoreResult, score
from churnmodel.simulate import SimulationResult, simulate

__version__ = "0.1.0"

logging.getLogger("churnmodel").addHandler(logging.NullHandler())

__all__ = [
    "ChurnModelError",
    "Config",
    "ConfigError",
    "DataError",
    "InputTables",
    "ScoreResult",
    "SimulationResult",
    "__version__",
    "load_config",
    "read_inputs",
    "score",
    "simulate",
    "validate_tables",
]
