"""The trained model as an artifact: LightGBM's text model + JSON, never a pickle.

A :class:`ChurnModel` scores a feature frame (the columns of its feature plan) into calibrated
churn probabilities and follows scikit-learn's classifier conventions (``predict_proba`` of shape
``(n, 2)``, ``classes_``, ``feature_names_in_``), so ``sklearn.metrics`` and display tools take it
as it is. It saves to a folder of plain files — ``booster.txt`` (LightGBM's own text format) and
``model.json`` (calibrator, feature plan, training reference statistics, metadata) — so loading it
runs no stored bytecode. The training reference statistics (:func:`reference_statistics`: decile
bins, category shares, typical values) travel with the model for drift checks and explanations.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnmodel.booster import checked_booster
from churnmodel.calibration import Calibrator
from churnmodel.effects import ActionEffect
from churnmodel.errors import DataError
from churnmodel.features import FeaturePlan, btyd_model_values
from churnmodel.hazard import HazardModel, anchor_curve, horizon_frame
from churnmodel.shapley import PatternShap

__all__ = ["ChurnModel", "numeric_reference", "numeric_references", "reference_statistics"]

FORMAT_VERSION = 4  # 2: model.json carries the SHA-256 of booster.txt; 3: the hazard model stacks a linear score;
# 4: uplift entries carry lever_scale
_SAFE_NAME = re.compile(r"(?!.*\.\.)[^/\\\x00-\x1f\x7f]{1,200}")


@dataclass
class ChurnModel:
    """A LightGBM booster, its calibrator and the feature plan it was trained on."""

    booster: Any  # lightgbm.Booster
    calibrator: Calibrator
    plan: FeaturePlan
    threshold: float = 0.5
    metadata: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)  # training distributions (for drift checks)
    hazard: HazardModel | None = None  # when trained with label.horizons
    uplift: tuple[ActionEffect, ...] = ()  # when trained with data.actions and their campaigns: one per action

    # scikit-learn's classifier conventions: sklearn.metrics and display tools take the model as it is
    _estimator_type = "classifier"  # scikit-learn < 1.6

    def shap_tables(self) -> PatternShap | None:
        """The booster's exact SHAP tables (built once per model object), or None when its trees are too deep."""
        cached = getattr(self, "_shap_tables", None)
        if cached is None or cached[0] is not self.booster:
            self._shap_tables = cached = (self.booster, PatternShap.of(self.booster))
        return cached[1]

    def lever_risk(self, X: pd.DataFrame, levers: list[str], *, contrib: np.ndarray | None = None,
                   batch_rows: int = 50_000) -> np.ndarray:
        """(rows, levers): what the features of each lever add to the log-odds of leaving of prepared rows ``X``
        (their exact SHAP values summed, as the scored list's drivers; 0 where they lower it): the risk an action
        on that lever can address. Zeros for a lever none of the model's features belongs to. ``contrib``: the
        rows' SHAP values (rows, features + 1) when already computed."""
        of = self.plan.info().set_index("name").loc[self.features, "lever"].to_numpy()
        tables, out = self.shap_tables(), np.zeros((len(X), len(levers)))
        for i in range(0, len(X), batch_rows):
            part = X.iloc[i : i + batch_rows]
            if contrib is not None:
                phi = contrib[i : i + len(part)]
            else:
                phi = tables.contributions(part) if tables is not None else self.booster.predict(part, pred_contrib=True)
            for j, lever in enumerate(levers):
                out[i : i + len(part), j] = np.maximum(phi[:, :-1][:, of == lever].sum(axis=1), 0.0)
        return out

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(), input_tags=InputTags(allow_nan=True, categorical=True, string=True))

    def __sklearn_is_fitted__(self) -> bool:
        return self.booster is not None

    def fit(self, X=None, y=None):
        """A ChurnModel comes fitted: train one with :func:`churnmodel.fit` (or ``churnmodel train``), which
        splits by time, calibrates and evaluates; fitting it again on arbitrary rows would skip all that."""
        raise TypeError("a ChurnModel is already fitted; train a new one with churnmodel.fit(config) or `churnmodel train`")

    def __repr__(self) -> str:
        trees = self.booster.num_trees() if self.booster is not None else 0
        horizons = f", horizons={list(self.hazard.horizons)}" if self.hazard is not None else ""
        return (f"ChurnModel(features={len(self.plan.columns)}, trees={trees}, calibration={self.calibrator.method!r}, "
                f"horizon_days={self.metadata.get('horizon_days')}{horizons})")

    @property
    def classes_(self) -> np.ndarray:
        """The labels: 0 stays, 1 churns within ``label.horizon_days``."""
        return np.array([0, 1])

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The columns ``predict_proba`` reads (:attr:`input_columns`)."""
        return np.array(self.input_columns, dtype=object)

    @property
    def n_features_in_(self) -> int:
        return len(self.input_columns)

    @property
    def features(self) -> list[str]:
        """The booster's features, in order."""
        return list(self.plan.columns)

    @property
    def input_columns(self) -> list[str]:
        """The columns a feature frame must carry: the features, except those the model fills
        (:attr:`filled`), and what it fills them from."""
        filled = self.filled
        return [c for c in self.features if c not in filled] + ([f.name for f in self.plan.inputs] if filled else [])

    @property
    def filled(self) -> tuple[str, ...]:
        """Columns the model computes itself from other features (the fitted BG/NBD model's)."""
        b = self.plan.btyd
        return b.model_columns if b is not None and b.params else ()

    def check_columns(self, frame: pd.DataFrame) -> None:
        """Raise a DataError showing the column diff if ``frame`` lacks features the model needs."""
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            extra = sorted(set(frame.columns) - set(self.features))
            lines = [f"  - {c}" + (f"   (nearest in frame: {near[0]!r})" if (near := difflib.get_close_matches(c, extra, n=1)) else "")
                     for c in missing[:20]]
            more = f"\n  ... and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise DataError(
                f"feature frame is missing {len(missing)} column(s) the model needs:\n" + "\n".join(lines) + more
                + "\nBuild the features with the model's own plan (churnmodel score does this), or add the columns."
            )

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's columns in order, numeric as float64 and categoricals with the training categories,
        and the columns the model fills (:attr:`filled`) computed from the others."""
        self.check_columns(frame)
        filled = self.filled
        X = frame[self.features] if not filled else frame.reindex(columns=self.features)
        cats = self.plan.categories
        converted = btyd_model_values(self.plan.btyd, frame) if filled else {}
        for col in X.columns:
            if col in filled:
                continue
            if col in cats:
                values = X[col]
                if not isinstance(values.dtype, pd.CategoricalDtype) or list(values.cat.categories) != cats[col]:
                    text = values.astype("object").where(values.isna(), values.astype("str"))
                    values = pd.Categorical(text.where(text.isin(cats[col])), categories=cats[col])
                converted[col] = values
            elif not pd.api.types.is_float_dtype(X[col].dtype):
                try:
                    converted[col] = pd.to_numeric(X[col], errors="raise").astype(np.float64)
                except (TypeError, ValueError):
                    raise DataError(f"feature frame: column {col!r} must be numeric, got {X[col].dtype} values (e.g. {X[col].dropna().iloc[0]!r})") from None
        return X.assign(**converted) if converted else X

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``(n, 2)``: P(stays), P(churns within the horizon) per row of a feature frame, as scikit-learn
        classifiers return them (``[:, 1]`` is :meth:`churn_probability`)."""
        p = self.churn_probability(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where the churn probability reaches the campaign threshold (``threshold``), else 0."""
        return (self.churn_probability(X) >= self.threshold).astype(np.int64)

    def churn_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probabilities, one per row of a feature frame."""
        return self.probabilities(self.prepare(frame))

    @property
    def headline_horizon(self) -> int | None:
        """The horizon (days) of ``churn_probability`` on the survival curve, when the model has a hazard
        model with that horizon (else None)."""
        h = self.metadata.get("horizon_days")
        return h if self.hazard is not None and h in self.hazard.horizons else None

    def probabilities(self, X: pd.DataFrame) -> np.ndarray:
        """:meth:`churn_probability` of rows already :meth:`prepare`-d (for callers that need ``X`` too)."""
        return self.calibrator(self.booster.predict(X, raw_score=True))

    def curve(self, X: pd.DataFrame, *, probability: np.ndarray | None = None) -> np.ndarray:
        """P(churn within each of the hazard model's horizons) for prepared rows, (rows, horizons): the
        hazard model's survival curve anchored on the churn model at the headline horizon
        (:func:`~churnmodel.hazard.anchor_curve`), so that the curve there *is* ``churn_probability``
        and no horizon's probability is below a shorter one's: one coherent set of numbers.
        ``probability``: the rows' churn_probability, when already computed."""
        raw = self.hazard.curve(X)
        if self.headline_horizon is None:
            return raw
        p = self.probabilities(X) if probability is None else probability
        return anchor_curve(raw, p, self.hazard.horizons.index(self.headline_horizon))

    def horizon_frame(self, X: pd.DataFrame, *, probability: np.ndarray | None = None) -> pd.DataFrame:
        """The scored list's survival columns (``p_churn_<h>d``, expected and median months to churn) of prepared rows."""
        return horizon_frame(self.hazard, X, curve=self.curve(X, probability=probability))

    # ------------------------------------------------------------------ files

    def to_texts(self) -> dict[str, str]:
        """The model as two texts: LightGBM's text model and a JSON document (no pickle anywhere)."""
        booster = self.booster.model_to_string()
        payload = {
            "format_version": FORMAT_VERSION,
            "booster_sha256": hashlib.sha256(booster.encode()).hexdigest(),
            "calibrator": self.calibrator.__dict__,
            "threshold": self.threshold,
            "plan": json.loads(self.plan.to_json()),
            "metadata": self.metadata,
            "reference": self.reference,
        }
        texts = {"booster.txt": booster}
        if self.hazard is not None:
            texts["hazard.txt"], payload["hazard"] = self.hazard.to_texts()
        if self.uplift:
            payload["uplift"] = []
            for i, effect in enumerate(self.uplift, start=1):
                texts[f"uplift_{i}.txt"], meta = effect.to_texts()
                payload["uplift"].append(meta)
        texts["model.json"] = json.dumps(payload, ensure_ascii=False, indent=1, sort_keys=True, default=_jsonable)
        return texts

    @classmethod
    def from_texts(cls, texts: dict[str, str], *, source: str = "model") -> ChurnModel:
        """The inverse of :meth:`to_texts`."""
        try:
            payload = json.loads(texts["model.json"])
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: model.json is not valid JSON ({exc})") from None
        if not isinstance(payload, dict):
            raise DataError(f"{source}: model.json must hold an object, got {type(payload).__name__}")
        if payload.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{source}: model format {payload.get('format_version')} is not supported by this version (expected {FORMAT_VERSION})")
        booster = checked_booster(texts["booster.txt"], payload.get("booster_sha256"), source=source, name="booster.txt")
        try:
            calibrator = Calibrator.from_dict(payload["calibrator"])
            threshold, metadata, reference = float(payload["threshold"]), payload["metadata"], payload["reference"]
            if not (isinstance(metadata, dict) and isinstance(reference, dict)):
                raise TypeError("metadata and reference must be objects")
            plan = FeaturePlan.from_json(json.dumps(payload["plan"]))
            names = [f.name for f in plan.features] + [a.name for a in plan.attributes]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{source}: model.json is not a valid churnmodel model ({type(exc).__name__}: {exc})") from None
        unsafe = [n for n in names if not isinstance(n, str) or not _SAFE_NAME.fullmatch(n) or n in (".", "..")]
        if unsafe:  # names reach file names (plots) and column headers: no path parts, no control characters
            raise DataError(f"{source}: model.json names unsafe feature(s) {unsafe[:3]}; a feature name may not contain "
                            "'/', '\\', '..' or control characters. The model file was altered or is not a churnmodel model")
        if booster.feature_name() != plan.columns:
            raise DataError(f"{source}: booster.txt and model.json disagree on the features ({booster.num_feature()} vs "
                            f"{len(plan.columns)}); the two files come from different models")
        hazard = None
        if payload.get("hazard") is not None:
            if "hazard.txt" not in texts:
                raise DataError(f"{source}: model.json has a hazard model but hazard.txt is missing")
            hazard = HazardModel.from_texts(texts["hazard.txt"], payload["hazard"], source=source, features=plan.columns)
        entries = payload.get("uplift") or []
        if not isinstance(entries, list) or any(f"uplift_{i}.txt" not in texts for i in range(1, len(entries) + 1)):
            raise DataError(f"{source}: model.json lists {len(entries) if isinstance(entries, list) else 'invalid'} uplift model(s) "
                            "whose uplift_<n>.txt files are not all there")
        uplift = tuple(ActionEffect.from_texts(texts[f"uplift_{i}.txt"], meta, source=source, name=f"uplift_{i}.txt", features=plan.columns)
                       for i, meta in enumerate(entries, start=1))
        return cls(booster, calibrator, plan, threshold, metadata, reference, hazard, uplift)

    def save(self, folder: str | Path) -> Path:
        """Write the model's plain files, then load them back with :meth:`load`: a model that its own
        loader would refuse (or read differently) is never left behind as if it were usable."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        texts = self.to_texts()
        for name, text in texts.items():
            (folder / name).write_text(text)
        why = "it reads back differently"
        try:
            loaded = ChurnModel.load(folder)
            same = loaded.plan == self.plan and loaded.to_texts() == texts
        except DataError as exc:
            same, why = False, str(exc)
        if not same:
            for name in texts:
                (folder / name).unlink(missing_ok=True)
            raise DataError(f"the trained model does not load back the same, so it was not saved: {why}")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ChurnModel:
        folder = Path(folder)
        try:
            names = ("model.json", "booster.txt") + (("hazard.txt",) if (folder / "hazard.txt").is_file() else ()) \
                + tuple(sorted(p.name for p in folder.glob("uplift_*.txt")))
            texts = {name: (folder / name).read_text() for name in names}
        except FileNotFoundError as exc:
            raise DataError(f"not a churnmodel model folder: {folder} ({exc.filename} is missing)") from None
        except (UnicodeDecodeError, IsADirectoryError) as exc:
            raise DataError(f"{folder}: the model files are not text ({exc}); not a churnmodel model") from None
        return cls.from_texts(texts, source=str(folder))


def reference_statistics(X: pd.DataFrame, scores: np.ndarray, *, typical_rows: np.ndarray | None,
                         seasons: dict[int, tuple[pd.DataFrame, np.ndarray]] | None = None) -> dict:
    """What the model keeps of its training rows: decile bins and category shares of every feature and
    of the score (for drift checks), and the typical value of every feature among ``typical_rows``
    (a boolean mask, e.g. the partners who stayed; "typical" in explanations; None: not kept). ``seasons``: per calendar
    month, the features and scores of the latest snapshot of that month (``by_month``), so a scoring
    date is compared with the same season and a similar length of history."""
    out = _distributions(X, scores)
    if typical_rows is not None:
        out["typical"] = _typical_values(X.loc[typical_rows])
    if seasons:
        out["by_month"] = {str(m): _distributions(Xm, pm) for m, (Xm, pm) in sorted(seasons.items())}
    return out


def numeric_reference(values: np.ndarray, *, bins: int = 10) -> dict:
    """Decile bin edges, the share in each bin and the share missing: a numeric training distribution."""
    return numeric_references(np.asarray(values, dtype=np.float64).reshape(-1, 1), bins=bins)[0]


def numeric_references(block: np.ndarray, *, bins: int = 10) -> list[dict]:
    """:func:`numeric_reference` of every column of a 2-D float array, the quantiles taken at once
    (those of the non-missing values, as ``np.quantile`` gives them)."""
    block = np.asarray(block, dtype=np.float64)
    missing = np.isnan(block)
    ordered = np.sort(block, axis=0)  # missing values last
    quantiles = _nan_quantiles(ordered, (~missing).sum(axis=0), np.linspace(0, 1, bins + 1)[1:-1])
    out = []
    for j in range(block.shape[1]):
        finite = ordered[: len(block) - int(missing[:, j].sum()), j]
        edges = np.unique(quantiles[:, j]) if len(finite) else np.array([])
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
        out.append({"edges": edges.tolist(), "shares": (counts / max(len(block), 1)).tolist(), "missing": float(missing[:, j].mean()) if len(block) else float("nan")})
    return out


def _nan_quantiles(ordered: np.ndarray, counts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.nanquantile(block, q, axis=0)`` (linear method, bit for bit) from the column-sorted block and each
    column's count of non-missing values: numpy's nanquantile loops over columns in Python (2.7 s of the
    sample's 10-s training went there); this gathers every column's neighbours at once."""
    value = np.full((len(q), ordered.shape[1]), np.nan)
    if not len(ordered):
        return value
    virtual = (counts[None, :] - 1.0) * q[:, None]  # numpy's virtual index for the linear method
    below = np.floor(virtual)
    last = np.maximum(counts - 1, 0)[None, :]  # beyond the last value: the last value
    columns = np.arange(ordered.shape[1])[None, :]
    a = ordered[np.clip(below, 0, last).astype(np.intp), columns]
    b = ordered[np.clip(below + 1, 0, last).astype(np.intp), columns]
    gamma, diff = virtual - below, b - a
    value = a + diff * gamma  # numpy's _lerp, both halves
    np.subtract(b, diff * (1 - gamma), out=value, where=gamma >= 0.5)
    value[:, counts == 0] = np.nan
    return value


def _distributions(X: pd.DataFrame, scores: np.ndarray, *, bins: int = 10) -> dict:
    """Training distributions (decile bins, category shares) kept with the model for drift checks."""
    numeric = [c for c in X.columns if not isinstance(X[c].dtype, pd.CategoricalDtype)]
    block = np.column_stack([X[c].to_numpy(dtype=np.float64) for c in numeric] + [np.asarray(scores, dtype=np.float64)])
    references = dict(zip([*numeric, None], numeric_references(block, bins=bins), strict=True))
    out: dict = {"features": {}, "rows": len(X)}
    for col in X.columns:
        if col in references:
            out["features"][col] = references[col]
        else:
            shares = X[col].value_counts(normalize=False, dropna=False)
            out["features"][col] = {"categories": {str(k) if pd.notna(k) else "(missing)": float(v) / len(X) for k, v in shares.items()}}
    out["score"] = references[None]
    return out


def _typical_values(X: pd.DataFrame) -> dict:
    """Median (numeric) or most common value (categorical) per feature: "typical" in explanations."""
    out: dict = {}
    for col in X.columns:
        values = X[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            counts = values.value_counts()
            out[col] = str(counts.index[0]) if len(counts) and counts.iloc[0] > 0 else None
        else:
            median = float(np.nanmedian(values.to_numpy(dtype=np.float64))) if values.notna().any() else None
            out[col] = median
    return out


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
