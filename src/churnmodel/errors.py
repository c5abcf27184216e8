"""Exception types. Everything the user can fix is a :class:`ChurnModelError` (CLI exit status 2)."""

from __future__ import annotations

__all__ = ["ChurnModelError", "ConfigError", "DataError"]


class ChurnModelError(Exception):
    """Base class for errors caused by the user's input (config, data, arguments)."""


class ConfigError(ChurnModelError, ValueError):
    """The configuration file or an override is invalid. The message names the key path."""


class DataError(ChurnModelError, ValueError):
    """An input table is invalid. The message names the file, column, example rows and the fix."""
