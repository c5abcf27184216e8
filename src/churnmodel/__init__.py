"""churnmodel: predict which business partners are about to leave, explain why, say what to do.

The public API is the application layer, :mod:`churnmodel.pipeline`: the functions the command line
calls (``validate``, ``features``, ``fit``, ``score``, ``explain``, ``simulate``), each taking a config
(or the path of a YAML file) and returning a result::

    from churnmodel import pipeline
    fitted = pipeline.fit("configs/partner_churn.yaml")          # = churnmodel train
    run = pipeline.score("configs/partner_churn.yaml", as_of="2026-01-01", model=fitted.model)

``fit`` and ``validate`` are also here at the top; the names of stage modules (``features``,
``explain``, ``score``, ``simulate``) stay the modules. Names load on first use, so the command line
answers ``--help`` without importing LightGBM and scikit-learn.
"""

import importlib
import logging

from churnmodel.errors import ChurnModelError, ConfigError, DataError

__version__ = "0.1.0"

logging.getLogger("churnmodel").addHandler(logging.NullHandler())

#: Public name -> the module it comes from (loaded on first access).
_PUBLIC = {
    "Config": "churnmodel.config",
    "load_config": "churnmodel.config",
    "read_inputs": "churnmodel.data",
    "InputTables": "churnmodel.validation",
    "validate_tables": "churnmodel.validation",
    "ChurnModel": "churnmodel.model",
    "fit": "churnmodel.pipeline",
    "validate": "churnmodel.preflight",  # pipeline.validate itself, without the training stack
    "Explanation": "churnmodel.runs",
    "FeaturesRun": "churnmodel.runs",
    "FitResult": "churnmodel.runs",
    "ScoreRun": "churnmodel.runs",
    "Simulated": "churnmodel.runs",
    "Validation": "churnmodel.preflight",
}

__all__ = ["ChurnModelError", "ConfigError", "DataError", "__version__", "pipeline", *sorted(_PUBLIC)]


def __getattr__(name: str):
    if name == "pipeline":
        return importlib.import_module("churnmodel.pipeline")
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'churnmodel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
