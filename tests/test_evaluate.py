import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from churnmodel.config import CampaignConfig
from churnmodel.evaluate import (
    _weighted_auc,
    binary_metrics,
    bootstrap_auc,
    campaign_threshold,
    concordance_index,
    expected_calibration_error,
    expected_maximum_profit,
)
from churnmodel.model import reference_statistics


def test_weighted_auc_with_ties_matches_scikit_learn():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.2, 0.9])
    _, inv = np.unique(p, return_inverse=True)
    pos, neg = np.bincount(inv, weights=y), np.bincount(inv, weights=1 - y)
    assert _weighted_auc(pos, neg) == pytest.approx(roc_auc_score(y, p))


def test_bootstrap_interval_is_seeded_and_brackets_the_auc():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.1).astype(int)
    p = np.clip(0.1 + 0.3 * y + rng.normal(0, 0.2, 2000), 0, 1)
    low, high = bootstrap_auc(y, p, n=300, random_state=3)
    assert low < roc_auc_score(y, p) < high and high - low < 0.1
    assert (low, high) == bootstrap_auc(y, p, n=300, random_state=3)


def test_ece_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.95, 0.55])  # bins 0, 1, 9, 5
    # per bin |sum p - sum y|: 0.05 + 0.15 + 0.05 + 0.45 = 0.70, over 4 rows
    assert expected_calibration_error(y, p) == pytest.approx(0.175)


def test_emp_and_threshold_by_hand():
    campaign = CampaignConfig(clv=100.0, incentive_cost=10.0, contact_cost=1.0, acceptance_alpha=1e6, acceptance_beta=1e6)
    y = np.array([1, 0, 0, 0])
    p = np.array([0.9, 0.5, 0.2, 0.1])
    # acceptance ~0.5: targeting the churner alone gives (0.5 * 90 - 1) / 4 = 11 per partner
    emp, share = expected_maximum_profit(y, p, campaign)
    assert emp == pytest.approx(11.0, rel=1e-3) and share == pytest.approx(0.25)
    assert campaign_threshold(y, p, campaign) == 0.9


def test_binary_metrics_lift_capture_and_retention_rate():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.05, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    m = binary_metrics(y, p, top_share=0.1, bootstrap=0, random_state=0, campaign=CampaignConfig(), threshold=0.25)
    assert m["lift_top"] == pytest.approx(5.0) and m["capture_top"] == pytest.approx(0.5)
    assert m["prr_observed"] == pytest.approx(80.0) and m["prr_predicted"] == pytest.approx(100 * (1 - p.mean()))
    assert m["precision_at_threshold"] == pytest.approx(0.5) and m["recall_at_threshold"] == pytest.approx(0.5)
    assert np.isnan(m["auc_ci_low"])


def test_reference_statistics_have_shares_that_add_up():
    import pandas as pd

    X = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0] * 25, "c": pd.Categorical(["x", "y", None, "x"] * 25)})
    ref = reference_statistics(X, np.linspace(0, 1, 100), typical_rows=np.ones(len(X), dtype=bool))
    a = ref["features"]["a"]
    assert sum(a["shares"]) + a["missing"] == pytest.approx(1.0) and a["missing"] == 0.25
    assert ref["features"]["c"]["categories"] == {"x": 0.5, "y": 0.25, "(missing)": 0.25}
    assert sum(ref["score"]["shares"]) == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.booleans()), min_size=1, max_size=60))
def test_concordance_index_is_lifelines_count_with_tied_times_scores_and_censoring(rows):
    """Whole-day times and coarse scores: ties everywhere; no comparable pair is an error in both."""
    from lifelines.utils import concordance_index as lifelines_concordance

    time, score, event = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
    try:
        expected = lifelines_concordance(time, score, event)
    except ZeroDivisionError:
        with pytest.raises(ValueError, match="no comparable pairs"):
            concordance_index(time, score, event.astype(bool))
        return
    assert concordance_index(time, score, event.astype(bool)) == pytest.approx(expected, abs=1e-12)


def test_concordance_index_on_many_rows_is_lifelines_too():
    rng = np.random.default_rng(3)
    time, score, event = rng.integers(0, 366, 30_000).astype(float), rng.normal(size=30_000), rng.random(30_000) < 0.2
    score[::7] = 0.0  # a block of tied scores
    from lifelines.utils import concordance_index as lifelines_concordance

    assert concordance_index(time, score, event) == pytest.approx(lifelines_concordance(time, score, event), abs=1e-12)
