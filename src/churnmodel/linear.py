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
from scipy import sparse

__all__ = ["CoxBaseline", "LinearScore", "efron", "linear_preprocessor"]


def _signed_log(a):
    a = np.asarray(a, dtype=np.float64)
    out = np.abs(a)
    np.log1p(out, out=out)
    return np.copysign(out, a, out=out)


def _dense(Z) -> np.ndarray:
    return np.asarray(Z.todense() if hasattr(Z, "todense") else Z, dtype=np.float64)


def _median(values: np.ndarray) -> float:
    """The median of one column's present values, 0 when it has none (SimpleImputer's own rule for an
    empty column). sklearn's ``strategy="median"`` sorts a masked copy of the whole matrix: 2.0 s of a
    2.6 s fit on 100,000 x 167; column by column this is 0.2 s, the same values."""
    return float(np.median(values)) if len(values) else 0.0


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
                              SimpleImputer(strategy=_median, add_indicator=True, keep_empty_features=True), StandardScaler()), numeric),
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
    def from_fitted(cls, prep, beta: np.ndarray, X: pd.DataFrame, *, Z: np.ndarray | None = None) -> LinearScore:
        """Fold a fitted :func:`linear_preprocessor` and coefficients on its output into weights;
        ``X``: the rows to centre the contributions on (the fitting rows); ``Z``: the preprocessing's
        output for them, when already known (it is not computed again).

        The centres come from ``Z``'s column means (each output column is a weight times the feature's
        signed log, its missing indicator or a level's indicator, shifted and scaled), so the score is
        exactly ``Z @ beta`` and the contributions' means on ``X`` are zero, without applying the
        score to ``X`` a column at a time."""
        beta = np.asarray(beta, dtype=np.float64).ravel()
        zbar = np.asarray((_dense(prep.transform(X)) if Z is None else Z).mean(axis=0)).ravel()
        numeric_names = list(prep.transformers_[0][2])
        categorical_names = list(prep.transformers_[1][2])
        width = [prep.named_transformers_[n].transform(X.iloc[:1][cols]).shape[1] if cols else 0
                 for n, cols in (("num", numeric_names), ("cat", categorical_names))]
        b_num, b_cat = beta[: width[0]], beta[width[0]: width[0] + width[1]]
        numeric, centre = {}, {}
        if numeric_names:
            _, imputer, scaler = (step for _, step in prep.named_transformers_["num"].steps)
            step = b_num / scaler.scale_[: len(b_num)]  # per transformed column, after scaling
            mean_part = step * (zbar[: width[0]] * scaler.scale_ + scaler.mean_)  # each column's mean before scaling, weighted
            missing, mean_missing = np.zeros(len(numeric_names)), np.zeros(len(numeric_names))
            if imputer.indicator_ is not None:
                missing[imputer.indicator_.features_] = step[len(numeric_names):]
                mean_missing[imputer.indicator_.features_] = mean_part[len(numeric_names):]
            fills = np.nan_to_num(imputer.statistics_, nan=0.0)  # an all-empty column is imputed with 0
            for i, n in sorted(enumerate(numeric_names), key=lambda x: x[1]):
                numeric[n] = (float(fills[i]), float(step[i]), float(missing[i]))
                centre[n] = float(mean_part[i] + mean_missing[i])
        categorical, at = {}, 0
        if categorical_names:
            encoder = prep.named_transformers_["cat"].steps[-1][1]
            for n, levels in zip(categorical_names, encoder.categories_, strict=True):
                categorical[n] = {str(level): float(b_cat[at + j]) for j, level in enumerate(levels)}
                centre[n] = float(b_cat[at: at + len(levels)] @ zbar[width[0] + at: width[0] + at + len(levels)])
                at += len(levels)
            categorical = dict(sorted(categorical.items()))
        # the score is Z @ beta: its mean on X (the contributions' sum is centred there)
        return cls(float(zbar @ beta), numeric, categorical, {n: centre[n] for n in [*numeric, *categorical]})

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
    """Cox proportional hazards on the same features and preprocessing, ridge-penalised: lifelines'
    ``CoxPHFitter(penalizer=0.1)`` model (Efron ties, columns standardised, penalty ``n * 0.1 / 2 *
    |beta|^2``, Breslow baseline interpolated linearly), fitted by Newton steps whose Hessian is one
    matrix product (:func:`efron`). Why not lifelines itself: it loops over the tied event times and
    builds the Hessian with einsum, 4-5 s per fit on 10,000 rows; this is 0.3 s for the same
    coefficients (``tests/test_linear.py`` checks them against lifelines)."""

    def __init__(self, *, penalizer: float = 0.1, max_rows: int = 10_000, random_state: int = 0) -> None:
        self.penalizer, self.max_rows, self.random_state = penalizer, max_rows, random_state

    def fit(self, X: pd.DataFrame | None, time: np.ndarray, event: np.ndarray, *, cut: float, inputs=None,
            rows: np.ndarray | None = None) -> CoxBaseline:
        """``inputs``: ``(prep, Z)``, a :func:`linear_preprocessor` already fitted (it never sees an outcome)
        and its dense output for the rows of ``X``, so that several fits on the same rows share it (``X`` is
        then not needed: None); ``rows``: the rows of that ``Z`` that are ``X``'s (default: all; only those
        sampled are copied)."""
        n = len(X) if inputs is None else len(inputs[1]) if rows is None else len(rows)
        keep = np.arange(n)
        if n > self.max_rows:
            keep = np.sort(np.random.default_rng(self.random_state).choice(n, self.max_rows, replace=False))
        time, event = time[keep], event[keep]
        if inputs is None:
            self.prep = linear_preprocessor(X)
            Z = _dense(self.prep.fit_transform(X.iloc[keep]))
        else:
            self.prep, Z = inputs[0], inputs[1][keep if rows is None else rows[keep]]
        self.keep = Z.std(axis=0) > 1e-9
        Z = Z[:, self.keep]
        T, E = np.minimum(time, cut).astype(np.float64), np.asarray(event & (time <= cut), dtype=bool)
        self.mean, std = Z.mean(axis=0), Z.std(axis=0, ddof=1)
        Zn = (Z - self.mean) / std
        beta = np.zeros(Zn.shape[1])
        loglik, grad, hess = efron(Zn, T, E, beta, self.penalizer)
        for _ in range(50):  # Newton with step halving: the penalised partial likelihood is strictly concave
            delta = np.linalg.solve(-hess, grad)
            step = 1.0
            while efron(Zn, T, E, beta + step * delta, self.penalizer, derivatives=False)[0] < loglik and step >= 1e-4:
                step /= 2
            previous, beta = loglik, beta + step * delta
            loglik, grad, hess = efron(Zn, T, E, beta, self.penalizer)
            if np.linalg.norm(step * delta) < 1e-9 or abs(loglik - previous) <= 1e-12 * abs(previous):
                break
        self.beta = beta / std
        # Breslow's baseline cumulative hazard at every distinct duration
        self.times, at = np.unique(T, return_inverse=True)
        risk = np.bincount(at, np.exp(Zn @ beta))[::-1].cumsum()[::-1]
        self.cumulative_hazard = np.cumsum(np.bincount(at, E.astype(np.float64)) / risk)
        return self

    def curve(self, X: pd.DataFrame | None, horizons, *, Z: np.ndarray | None = None) -> np.ndarray:
        """P(churn within each horizon), (rows, horizons). ``Z``: the preprocessing's output for ``X``, when known
        (``X`` is then not needed: None)."""
        Z = _dense(self.prep.transform(X)) if Z is None else Z
        beta = np.zeros(Z.shape[1])
        beta[self.keep] = self.beta  # the constant columns left out weigh nothing: no copy of Z without them
        hazard = np.exp(Z @ beta - self.mean @ self.beta)
        baseline = np.interp(np.asarray(horizons, dtype=np.float64), self.times, self.cumulative_hazard)
        return 1.0 - np.exp(-np.outer(hazard, baseline))


def efron(X: np.ndarray, T: np.ndarray, E: np.ndarray, beta: np.ndarray, penalizer: float, *,
          derivatives: bool = True) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """(log-likelihood, gradient, Hessian) of Cox's partial likelihood with Efron's ties, less the ridge
    penalty ``n * penalizer / 2 * |beta|^2``; ``derivatives=False``: the log-likelihood alone (gradient and
    Hessian None), for a line search.

    For event time j with d deaths and l = 0..d-1: phi = S0 - l/d * D0 and psi = S1 - l/d * D1 (S: sums of
    exp(x.beta) [times x] over the risk set, D: over the deaths). The Hessian's sum of S2/phi terms is
    ``X' diag(c) X`` with ``c_i`` each row's share (a cumulative sum over the event times it is at risk
    at): one matrix product instead of a p x p matrix per event time."""
    n, p = X.shape
    eta = X @ beta
    r = np.exp(eta)
    times, d = np.unique(T[E], return_counts=True)
    # the risk set of event time t_j: the rows whose latest event time at risk is t_j or later, so its sums S0
    # and S1 are reverse running sums over these groups of rows (-1: censored before the first event time)
    last = np.searchsorted(times, T, side="right") - 1
    seen = last >= 0
    S0 = np.cumsum(np.bincount(last[seen], r[seen], minlength=len(times))[::-1])[::-1]
    g = np.searchsorted(times, T[E])  # each death's event time
    D0 = np.bincount(g, r[E], minlength=len(times))
    j = np.repeat(np.arange(len(times)), d)
    frac = (np.arange(len(j)) - np.repeat(np.cumsum(d) - d, d)) / d[j]
    phi = S0[j] - frac * D0[j]
    loglik = eta[E].sum() - np.log(phi).sum() - n * penalizer * 0.5 * beta @ beta
    if not derivatives:
        return float(loglik), None, None
    # S1 and D1: the groups' sums of r * x as a sparse indicator of each row's group times X (one pass over X,
    # where a running sum over the rows in time order wrote a copy of X three times: 33 ms of 59)
    by_last = sparse.csr_array((r[seen], (last[seen], np.flatnonzero(seen))), shape=(len(times), n)) @ X
    S1 = np.cumsum(by_last[::-1], axis=0)[::-1]
    D1 = sparse.csr_array((r[E], (g, np.flatnonzero(E))), shape=(len(times), n)) @ X
    Q = (S1[j] - frac[:, None] * D1[j]) / phi[:, None]
    a, b = np.bincount(j, 1.0 / phi, minlength=len(times)), np.bincount(j, frac / phi, minlength=len(times))
    c = np.where(seen, np.cumsum(a)[np.maximum(last, 0)], 0.0)
    c[E] -= b[g]
    grad = X[E].sum(axis=0) - Q.sum(axis=0) - n * penalizer * beta
    Xc = X * np.sqrt(r * c)[:, None]  # c > 0 (a sign error would show as NaN): X' diag(rc) X as one matrix times itself,
    hess = Q.T @ Q - Xc.T @ Xc - n * penalizer * np.eye(p)  # which BLAS computes as one triangle (syrk): 4x quicker
    return float(loglik), grad, hess
