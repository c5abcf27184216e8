"""Exact TreeSHAP for shallow LightGBM trees as table look-ups.

Path-dependent TreeSHAP (what LightGBM's ``pred_contrib`` and ``shap.TreeExplainer`` compute) gives a
feature the Shapley value of the game ``v(S) = E[tree(x) | x_S]``, where the expectation walks the tree
following ``x`` at nodes that split on a feature in ``S`` and weighing both children by their training
counts elsewhere (Lundberg et al. 2018, Algorithm 1). So within one tree a row's values depend only on
which way it goes at each split: its *pattern*, one bit per internal node. A tree of depth 3 has at
most 7 splits, so 128 patterns; for each, the values of the (at most 7) features it uses are computed
once, exactly, from ``v`` over all subsets of those features. Explaining a row is then one comparison
per split and one gather per tree, vectorised over the rows.

The decisions follow LightGBM's own (``Tree::NumericalDecision`` / ``CategoricalDecision``): a missing
value goes the default way when the split learned one (missing type NaN), is read as 0 otherwise;
zero goes the default way for missing type Zero; a categorical value goes left when its code is in the
split's set, and missing or negative codes go right. Everything is read from the text model, thresholds
at full precision. Trees with more than ``max_splits`` splits are not tabled (the caller falls back to
``pred_contrib``): the tables grow as 4 to the number of splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
import pandas as pd

__all__ = ["PatternShap"]

_ZERO = 1e-35  # LightGBM's kZeroThreshold


@dataclass(frozen=True)
class _Split:
    feature: int
    threshold: float
    categorical: bool
    categories: frozenset[int]
    default_left: bool
    missing: int  # 0 none, 1 zero, 2 NaN


@dataclass(frozen=True)
class _Table:
    splits: tuple[_Split, ...]
    features: np.ndarray  # the distinct features the tree splits on (columns of ``values``)
    values: np.ndarray  # (2 ** splits, features): each pattern's SHAP values
    expected: float  # v(empty set): the tree's expected value (LightGBM's ExpectedValue)


def _parse_trees(text: str) -> list[dict]:
    """The trees of a LightGBM text model, each as {key: list of numbers} (the text is the exact model)."""
    trees = []
    for block in text.split("\nTree=")[1:]:
        fields = {}
        for line in block.split("\n\n", 1)[0].splitlines()[1:]:
            key, _, value = line.partition("=")
            fields[key] = value.split(" ") if value else []
        trees.append(fields)
    return trees


def _shapley_weights(m: int) -> np.ndarray:
    """W (2**m, m): phi = v @ W, with W[S, i] = |S|-1)!(m-|S|)!/m! if i in S else -|S|!(m-|S|-1)!/m!."""
    W = np.zeros((1 << m, m))
    for s in range(1 << m):
        size = bin(s).count("1")
        for i in range(m):
            if s >> i & 1:
                W[s, i] = factorial(size - 1) * factorial(m - size) / factorial(m)
            else:
                W[s, i] = -factorial(size) * factorial(m - size - 1) / factorial(m)
    return W


def _table(tree: dict, max_splits: int) -> _Table | None:
    n = int(tree["num_leaves"][0]) - 1
    leaf_value = [float(v) for v in tree["leaf_value"]]
    if n == 0:
        return _Table((), np.zeros(0, dtype=np.int64), np.zeros((1, 0)), leaf_value[0])
    if n > max_splits:
        return None
    feature = [int(v) for v in tree["split_feature"]]
    threshold = [float(v) for v in tree["threshold"]]
    decision = [int(v) for v in tree["decision_type"]]
    left, right = [int(v) for v in tree["left_child"]], [int(v) for v in tree["right_child"]]
    leaf_count = [float(v) for v in tree["leaf_count"]]
    internal_count = [float(v) for v in tree["internal_count"]]
    bounds = [int(v) for v in tree.get("cat_boundaries", [])]
    words = [int(v) for v in tree.get("cat_threshold", [])]
    splits = []
    for j in range(n):
        cats: frozenset[int] = frozenset()
        if decision[j] & 1:
            k = int(threshold[j])
            cats = frozenset(32 * w + b for w, word in enumerate(words[bounds[k]:bounds[k + 1]]) for b in range(32) if word >> b & 1)
        splits.append(_Split(feature[j], threshold[j], bool(decision[j] & 1), cats, bool(decision[j] & 2), (decision[j] >> 2) & 3))
    distinct = sorted(set(feature))
    m, patterns = len(distinct), 1 << n
    slot = {f: i for i, f in enumerate(distinct)}
    goes_left = (np.arange(patterns)[:, None] >> np.arange(n)[None, :]) & 1  # (patterns, splits)
    in_s = (np.arange(1 << m)[:, None] >> np.arange(m)[None, :]) & 1  # (subsets, features)

    def expected(node: int) -> np.ndarray:  # v(S) of the subtree for every (pattern, subset)
        if node < 0:
            return np.full((patterns, 1 << m), leaf_value[~node])
        a, b = expected(left[node]), expected(right[node])
        count = lambda c: internal_count[c] if c >= 0 else leaf_count[~c]  # noqa: E731
        blend = (count(left[node]) * a + count(right[node]) * b) / internal_count[node]
        follow = in_s[:, slot[feature[node]]][None, :].astype(bool)
        chosen = np.where(goes_left[:, node][:, None].astype(bool), a, b)
        return np.where(follow, chosen, blend)

    v = expected(0)
    return _Table(tuple(splits), np.array(distinct, dtype=np.int64), v @ _shapley_weights(m), float(v[0, 0]))


class PatternShap:
    """Exact path-dependent TreeSHAP of a LightGBM booster by per-tree pattern tables.

    >>> import lightgbm as lgb
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    >>> booster = lgb.train({"objective": "binary", "max_depth": 2, "num_leaves": 4, "verbosity": -1},
    ...                     lgb.Dataset(X, (X["a"] + X["b"] > 0).astype(int)), num_boost_round=5)
    >>> bool(np.allclose(PatternShap.of(booster).contributions(X), booster.predict(X, pred_contrib=True)))
    True
    """

    def __init__(self, tables: list[_Table], base: float, n_features: int, categories: list[list] | None) -> None:
        self.tables, self.base, self.n_features, self.categories = tables, base, n_features, categories

    @classmethod
    def of(cls, booster, *, max_splits: int = 8) -> PatternShap | None:
        """The tables of ``booster``, or None when a tree has more than ``max_splits`` splits."""
        tables = [_table(tree, max_splits) for tree in _parse_trees(booster.model_to_string())]
        if any(t is None for t in tables):
            return None
        base = sum(t.expected for t in tables)  # the base value: the sum of the trees' expected values
        return cls(tables, base, booster.num_feature(), getattr(booster, "pandas_categorical", None))

    def _columns(self, X: pd.DataFrame, used: set[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The columns the trees split on, as LightGBM reads them (numbers as float64, categories as their
        training codes), each as (value with missing read as 0, missing)."""
        out, c = {}, 0
        for i, name in enumerate(X.columns):
            col = X[name]
            categorical = isinstance(col.dtype, pd.CategoricalDtype)
            if i in used:
                if categorical:
                    known = self.categories[c] if self.categories is not None and c < len(self.categories) else list(col.cat.categories)
                    values = pd.Categorical(col, categories=known).codes.astype(np.float64)
                    values[values < 0] = np.nan
                else:
                    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
                missing = np.isnan(values)
                out[i] = (np.where(missing, 0.0, values), missing)
            c += categorical
        return out

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """(rows, features + 1): SHAP values in raw score, the last column the expected value."""
        if X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} feature columns, got {X.shape[1]}")
        columns = self._columns(X, {s.feature for t in self.tables for s in t.splits})
        out = np.zeros((self.n_features + 1, len(X)))
        for table in self.tables:
            if not len(table.splits):
                continue
            pattern = np.zeros(len(X), dtype=np.int64)
            for j, s in enumerate(table.splits):
                pattern |= self._left(s, *columns[s.feature]).astype(np.int64) << j
            out[table.features] += table.values.T[:, pattern]
        out[-1] = self.base
        return out.T

    @staticmethod
    def _left(s: _Split, filled: np.ndarray, missing: np.ndarray) -> np.ndarray:
        if s.categorical:
            codes = np.where(missing | (filled < 0), -1, np.floor(filled)).astype(np.int64)
            return np.isin(codes, list(s.categories)) & (codes >= 0)
        if s.missing == 2:  # NaN: missing values go the default way
            return np.where(missing, s.default_left, filled <= s.threshold)
        if s.missing == 1:  # Zero: missing is read as 0, and 0 goes the default way
            return np.where(np.abs(filled) <= _ZERO, s.default_left, filled <= s.threshold)
        return filled <= s.threshold  # None: missing is read as 0
