"""Calibration: raw log-odds to probabilities, strictly increasing and never exactly 0 or 1.

Every method keeps the ranking (no ties, so no AUC lost to calibration) and stores only numbers in
model.json. Which one ``train.calibration: auto`` picks was measured by ``benchmarks/bench_calibration.py``
(see docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = ["CALIBRATION_METHODS", "EPS", "ISOTONIC_BLEND", "Calibrator"]

#: Calibrated probabilities stay inside (EPS, 1 - EPS): never exactly 0 or 1.
EPS = 1e-9
#: Isotonic calibration is blended with this share of the sigmoid fit, so that it stays strictly
#: increasing: the isotonic steps no longer collapse the ranking into ties (no AUC lost to calibration).
ISOTONIC_BLEND = 0.05
CALIBRATION_METHODS = ("sigmoid", "beta", "isotonic", "none")


def _expit(z: np.ndarray) -> np.ndarray:
    return np.clip(expit(np.asarray(z, dtype=np.float64)), EPS, 1.0 - EPS)


def _beta_design(raw: np.ndarray) -> np.ndarray:
    """Beta calibration's inputs (Kull et al. 2017): log s and -log(1 - s) of s = sigmoid(raw)."""
    raw = np.asarray(raw, dtype=np.float64)
    return np.column_stack([-np.logaddexp(0.0, -raw), np.logaddexp(0.0, raw)])


@dataclass(frozen=True)
class Calibrator:
    """Maps raw log-odds to calibrated probabilities, strictly increasing and inside (0, 1).

    ``sigmoid``: Platt scaling ``sigmoid(a * raw + b)``. ``beta``: beta calibration
    ``sigmoid(a * log s - c * log(1 - s) + b)`` with ``s = sigmoid(raw)`` and ``a, c >= 0`` (it can bend
    where Platt cannot; falls back to Platt when a weight would be negative). ``isotonic``: the isotonic
    step function (x, y) blended with :data:`ISOTONIC_BLEND` of the sigmoid fit. ``none``: sigmoid(raw)."""

    method: str
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray, *, method: str) -> Calibrator:
        """Fit with scikit-learn on (raw log-odds, label); keep only the numbers."""
        from sklearn.linear_model import LogisticRegression

        if method not in CALIBRATION_METHODS:
            raise ValueError(f"calibration must be one of {CALIBRATION_METHODS}, got {method!r}")
        if method == "none":
            return cls("none")
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(np.reshape(raw, (-1, 1)), y)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if method == "sigmoid":
            return cls("sigmoid", a=a, b=b)
        if method == "beta":
            beta = LogisticRegression(C=1e6, max_iter=1000).fit(_beta_design(raw), y)
            wa, wc = float(beta.coef_[0, 0]), float(beta.coef_[0, 1])
            if wa < 0 or wc < 0:  # not monotone: Platt scaling is the beta family's monotone member
                return cls("beta", a=a, b=b, c=a)
            return cls("beta", a=wa, b=float(beta.intercept_[0]), c=wc)
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
        return cls("isotonic", tuple(map(float, iso.X_thresholds_)), tuple(map(float, iso.y_thresholds_)), a=a, b=b)

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        """The inverse of ``__dict__`` (as stored in model.json), type-checked."""
        cal = cls(str(data["method"]), tuple(map(float, data["x"])), tuple(map(float, data["y"])), float(data["a"]),
                  float(data["b"]), float(data.get("c", 0.0)))
        if cal.method not in CALIBRATION_METHODS or len(cal.x) != len(cal.y):
            raise ValueError(f"calibrator {cal.method!r} with {len(cal.x)} x and {len(cal.y)} y values")
        return cal

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "sigmoid":
            return _expit(self.a * raw + self.b)
        if self.method == "beta":
            design = _beta_design(raw)
            return _expit(self.a * design[:, 0] + self.c * design[:, 1] + self.b)
        if self.method == "isotonic":
            steps = np.interp(raw, self.x, self.y)  # what IsotonicRegression.predict does, clipped at the ends
            return np.clip((1 - ISOTONIC_BLEND) * steps + ISOTONIC_BLEND * _expit(self.a * raw + self.b), EPS, 1 - EPS)
        return _expit(raw)
