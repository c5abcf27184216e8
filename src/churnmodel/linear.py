"""Linear models on the churn features: one preprocessing, a linear score that travels as numbers,
and the Cox proportional-hazards baseline.

The preprocessing (:func:`linear_preprocessor`) is what every linear model here sees: numbers
signed-log transformed, missing values imputed with the median plus a missing indicator, scaled;
categories one-hot (unseen ones all zero). :class:`LinearScore` folds a fitted preprocessor and
its coefficients into per-feature weights, so a model file stores numbers, never pickles, and
each feature's contribution to the score can be read off (centred on the training rows).

>>> import pandas as pd
>>> X = pd.DataFrame({"tickets": [0.0, 3.0, None, 10.0], "tier": pd.Categorical(["a", "b", "a", None])})
>>> prep = linear_preprocessor(X).fit(X)
>>> beta = np.arange(1.0, prep.transform(X).shape[1] + 1)
>>> score = LinearScore.from_fitted(prep, beta, X)
>>> bool(np.allclose(score(X), prep.transform(X) @ beta))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CoxBaseline", "LinearScore", "linear_preprocessor"]


def _signed_log(a):
    a = np.asarray(a, dtype=np.float64)
    return np.sign(a) * np.log1p(np.abs(a))


def _as_text(values) -> np.ndarray:
    """Category values as the one-hot encoder sees them: their text, ``"missing"`` when empty."""
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    return series.where(series.notna(), "missing").astype(str).to_numpy()


def _text_frame(a) -> pd.DataFrame:
    frame = pd.DataFrame(a)
    return pd.DataFrame({c: _as_text(frame[c]) for c in frame.columns})


def linear_preprocessor(X: pd.DataFrame):
    """For linear models: signed log, median imputation with indicators and scaling; categoricals one-hot."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    return ColumnTransformer([
        ("num", make_pipeline(FunctionTransformer(_signed_log, feature_names_out="one-to-one"),
                              SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()), numeric),
        ("cat", make_pipeline(FunctionTransformer(_text_frame), OneHotEncoder(handle_unknown="ignore")), categorical),
    ])


@dataclass(frozen=True)
class LinearScore:
    """``score(x) = intercept + sum of each feature's contribution``, contributions centred on the rows
    the score was built on. A number's contribution is ``weight * t + missing_weight * [missing]`` with
    ``t`` its signed log (``fill`` when missing); a category's is its level's weight (0 when unseen)."""

    intercept: float
    numeric: dict[str, tuple[float, float, float]]  # name -> (fill, weight, missing_weight)
    categorical: dict[str, dict[str, float]]  # name -> level -> weight
    centre: dict[str, float]  # name -> mean raw contribution on the fitting rows
    # (features in name order, numbers first: a file written with sorted keys sums in the same order)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @classmethod
    def from_fitted(cls, prep, beta: np.ndarray, X: pd.DataFrame) -> LinearScore:
        """Fold a fitted :func:`linear_preprocessor` and coefficients on its output into weights;
        ``X``: the rows to centre the contributions on (the fitting rows)."""
        beta = np.asarray(beta, dtype=np.float64).ravel()
        numeric_names = list(prep.transformers_[0][2])
        categorical_names = list(prep.transformers_[1][2])
        width = [prep.named_transformers_[n].transform(X.iloc[:1][cols]).shape[1] if cols else 0
                 for n, cols in (("num", numeric_names), ("cat", categorical_names))]
        b_num, b_cat = beta[: width[0]], beta[width[0]: width[0] + width[1]]
        numeric = {}
        if numeric_names:
            _, imputer, scaler = (step for _, step in prep.named_transformers_["num"].steps)
            step = b_num / scaler.scale_[: len(b_num)]  # per transformed column, after scaling
            missing = np.zeros(len(numeric_names))
            if imputer.indicator_ is not None:
                missing[imputer.indicator_.features_] = step[len(numeric_names):]
            fills = np.nan_to_num(imputer.statistics_, nan=0.0)  # an all-empty column is imputed with 0
            numeric = {n: (float(fills[i]), float(step[i]), float(missing[i])) for i, n in sorted(enumerate(numeric_names), key=lambda x: x[1])}
        categorical, at = {}, 0
        if categorical_names:
            encoder = prep.named_transformers_["cat"].steps[-1][1]
            for n, levels in zip(categorical_names, encoder.categories_, strict=True):
                categorical[n] = {str(level): float(b_cat[at + j]) for j, level in enumerate(levels)}
                at += len(levels)
            categorical = dict(sorted(categorical.items()))
        raw = cls(0.0, numeric, categorical, dict.fromkeys([*numeric, *categorical], 0.0))
        parts = raw.contributions(X)
        constant = float(np.mean(np.asarray(prep.transform(X) @ beta).ravel() - parts.sum(axis=1)))
        centre = dict(zip(raw.features, map(float, parts.mean(axis=0)), strict=True))
        return cls(constant + sum(centre.values()), numeric, categorical, centre)

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """(rows, features) in :attr:`features` order; they add up to ``score - intercept``."""
        out = np.empty((len(X), len(self.features)))
        for j, name in enumerate(self.numeric):
            fill, weight, missing_weight = self.numeric[name]
            t = _signed_log(pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
            empty = ~np.isfinite(t)  # an infinite value counts as missing (it would make the score NaN)
            out[:, j] = weight * np.where(empty, fill, t) + missing_weight * empty - self.centre[name]
        for j, name in enumerate(self.categorical, start=len(self.numeric)):
            levels = self.categorical[name]
            out[:, j] = pd.Series(_as_text(X[name])).map(levels).fillna(0.0).to_numpy(dtype=np.float64) - self.centre[name]
        return out

    def __call__(self, X: pd.DataFrame) -> np.ndarray:
        return self.intercept + self.contributions(X).sum(axis=1)

    def to_dict(self) -> dict:
        return {"intercept": self.intercept, "numeric": {n: list(v) for n, v in self.numeric.items()},
                "categorical": self.categorical, "centre": self.centre}

    @classmethod
    def from_dict(cls, data: dict) -> LinearScore:
        """The inverse of :meth:`to_dict` (as stored in model.json), type-checked."""
        def numbers(v) -> list:
            if not isinstance(v, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
                raise ValueError(f"linear score: expected a list of numbers, got {v!r}")
            return v

        numeric = {str(n): tuple(float(x) for x in numbers(v)) for n, v in sorted(data["numeric"].items())}
        categorical = {str(n): {str(k): float(w) for k, w in levels.items()} for n, levels in sorted(data["categorical"].items())}
        numbers([*(w for levels in data["categorical"].values() for w in levels.values()), *data["centre"].values(), data["intercept"]])
        if set(numeric) & set(categorical):
            raise ValueError(f"linear score: {sorted(set(numeric) & set(categorical))} both a number and a category")
        if any(len(v) != 3 for v in numeric.values()) or set(data["centre"]) != {*numeric, *categorical}:
            raise ValueError("linear score: each number needs (fill, weight, missing_weight) and every feature a centre")
        centre = {str(n): float(data["centre"][n]) for n in [*numeric, *categorical]}
        values = [float(data["intercept"]), *centre.values(), *(x for v in numeric.values() for x in v),
                  *(w for levels in categorical.values() for w in levels.values())]
        if not np.isfinite(values).all():
            raise ValueError("linear score: weights must be finite numbers")
        return cls(float(data["intercept"]), numeric, categorical, centre)


class CoxBaseline:
    """Cox proportional hazards (lifelines) on the same features and preprocessing, ridge-penalised."""

    def __init__(self, *, penalizer: float = 0.1, max_rows: int = 10_000, random_state: int = 0) -> None:
        self.penalizer, self.max_rows, self.random_state = penalizer, max_rows, random_state

    def fit(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray, *, cut: float) -> CoxBaseline:
        import warnings

        from lifelines import CoxPHFitter

        if len(X) > self.max_rows:
            keep = np.sort(np.random.default_rng(self.random_state).choice(len(X), self.max_rows, replace=False))
            X, time, event = X.iloc[keep], time[keep], event[keep]
        self.prep = linear_preprocessor(X).fit(X)
        Z = self._dense(X)
        self.keep = Z.std(axis=0) > 1e-9
        data = pd.DataFrame(Z[:, self.keep], columns=[f"x{i}" for i in np.flatnonzero(self.keep)])
        data["T"], data["E"] = np.minimum(time, cut), (event & (time <= cut)).astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lifelines warns on collinear windows; the penalty handles them
            self.cph = CoxPHFitter(penalizer=self.penalizer).fit(data, "T", "E")
        return self

    def _dense(self, X: pd.DataFrame) -> np.ndarray:
        Z = self.prep.transform(X)
        return np.asarray(Z.todense() if hasattr(Z, "todense") else Z, dtype=np.float64)

    def curve(self, X: pd.DataFrame, horizons) -> np.ndarray:
        """P(churn within each horizon), (rows, horizons)."""
        Z = self._dense(X)[:, self.keep]
        frame = pd.DataFrame(Z, columns=[f"x{i}" for i in np.flatnonzero(self.keep)])
        survival = self.cph.predict_survival_function(frame, times=list(horizons)).to_numpy().T
        return 1.0 - survival
