"""The person-period design: censoring by hand, earlier censorings as subsets of one binned design,
the sampled rows without churn and their weights, the evaluation's snapshot stride."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnmodel.person_period import (
    PersonPeriod,
    expand_intervals,
    observed_times,
    strided_snapshots,
)

H = [30, 90, 180, 365]


def test_censoring_on_a_hand_made_frame():
    """Data end 2024-12-31. Each snapshot keeps exactly the intervals it observed."""
    frame = pd.DataFrame({
        "snapshot": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-09-01", "2024-11-01", "2024-12-31"], utc=True),
        "churn_date": pd.to_datetime(["2024-02-15", None, "2024-10-20", "2024-12-20", None], utc=True),
    })
    time, event = observed_times(frame, observed_until=pd.Timestamp("2024-12-31", tz="UTC"))
    np.testing.assert_allclose(time, [45, 365, 49, 49, 0])
    assert event.tolist() == [True, False, True, True, False]
    rows, k, y = expand_intervals(time, event, H)
    got = sorted(zip(rows.tolist(), k.tolist(), y.tolist(), strict=False))
    assert got == [
        (0, 0, 0), (0, 1, 1),                        # churned on day 45: survived (0, 30], churned in (30, 90]
        (1, 0, 0), (1, 1, 0), (1, 2, 0), (1, 3, 0),  # a full year seen, no churn: every interval, all 0
        (2, 0, 0), (2, 1, 1),                        # churned on day 49 of 121 observed
        (3, 0, 0), (3, 1, 1),                        # churned on day 49 of 60 observed: the churn is seen
    ]                                                # row 4: a snapshot at the data end has seen nothing
    # a partner observed 60 days without churning: (30, 90] is cut by the data end, so only (0, 30] counts
    rows, k, y = expand_intervals(np.array([60.0]), np.array([False]), H)
    assert (rows.tolist(), k.tolist(), y.tolist()) == ([0], [0], [0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 500), st.booleans(), st.floats(0, 500)), min_size=1, max_size=30))
def test_a_fit_censored_earlier_takes_a_subset_of_the_shared_person_period_rows_with_the_same_outcomes(rows):
    """Out-of-time fits censor each row earlier (``until`` <= its time at the data end); they learn from
    a subset of the person-period rows binned once, and the subset is their own expansion exactly."""
    time = np.array([t for t, _, _ in rows])
    event = np.array([e for _, e, _ in rows])
    until = np.minimum(time, [u for _, _, u in rows])  # censored at ``until``: a churn after it is not seen
    early_event = event & (time <= until)
    pp = PersonPeriod(pd.DataFrame({"x": np.arange(len(rows), dtype=float)}), time, event, horizons=H, countdowns=(),
                      params={"verbosity": -1, "min_data_in_bin": 1})
    at = pp.select(until, early_event)
    own_rows, own_k, own_y = expand_intervals(until, early_event, H)
    assert (pp.rows[at].tolist(), pp.k[at].tolist(), pp.y[at].tolist()) == (own_rows.tolist(), own_k.tolist(), own_y.tolist())


def test_outcomes_that_are_not_an_earlier_censoring_are_refused():
    pp = PersonPeriod(pd.DataFrame({"x": [1.0, 2.0]}), np.array([60.0, 40.0]), np.array([False, True]), horizons=[30, 90],
                      countdowns=(), params={"verbosity": -1})
    with pytest.raises(ValueError, match="not the person-period rows' own"):
        pp.select(np.array([50.0, 40.0]), np.array([True, True]))  # a churn the data end did not show
    with pytest.raises(ValueError, match="not the person-period rows' own"):
        pp.select(np.array([60.0, 100.0]), np.array([False, False]))  # the second's churn unseen: same rows, other outcome


def test_strided_snapshots_keep_the_latest_date_and_every_nth_before_it():
    dates = pd.Series(pd.date_range("2024-01-01", periods=7, freq="MS", tz="UTC")).repeat(2)
    assert strided_snapshots(dates, stride=1).all()
    kept = dates[strided_snapshots(dates, stride=3)].dt.strftime("%Y-%m").unique().tolist()
    assert kept == ["2024-01", "2024-04", "2024-07"]  # counted back from the latest, both rows of a date together


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 500), st.booleans(), st.floats(0, 500)), min_size=1, max_size=40),
       st.sampled_from([0.3, 0.5, 1.0]), st.integers(0, 3))
def test_sampled_rows_keep_every_churn_and_weigh_the_rest_by_the_share(rows, share, seed):
    """With ``negative_share`` below 1 every churn row stays, the rows without churn are a subset weighted
    1 / share, and a fit censored earlier takes exactly its own expansion's rows that are in the sample."""
    time, event = np.array([t for t, _, _ in rows]), np.array([e for _, e, _ in rows])
    until = np.minimum(time, [u for _, _, u in rows])
    early_event = event & (time <= until)
    X = pd.DataFrame({"x": np.arange(len(rows), dtype=float)})
    full_rows, full_k, full_y = expand_intervals(time, event, H)
    pp = PersonPeriod(X, time, event, horizons=H, countdowns=(), params={"verbosity": -1, "min_data_in_bin": 1},
                      negative_share=share, random_state=seed)
    full = set(zip(full_rows.tolist(), full_k.tolist(), full_y.tolist(), strict=True))
    sampled = set(zip(pp.rows.tolist(), pp.k.tolist(), pp.y.tolist(), strict=True))
    assert sampled <= full and {r for r in full if r[2] == 1} <= sampled
    assert pp.weight.tolist() == [1.0 if y == 1 else 1.0 / share for y in pp.y.tolist()]
    at = pp.select(until, early_event)
    own = set(zip(*(a.tolist() for a in expand_intervals(until, early_event, H)), strict=True))
    assert set(zip(pp.rows[at].tolist(), pp.k[at].tolist(), pp.y[at].tolist(), strict=True)) == own & sampled


def test_sampled_rows_estimate_the_full_rows_rates_and_lightgbm_subsets_keep_their_weights():
    rng = np.random.default_rng(0)
    time = rng.exponential(400, 20_000)
    event = rng.random(20_000) < 0.6
    X = pd.DataFrame({"x": rng.normal(size=20_000)})
    full = PersonPeriod(X, time, event, horizons=H, countdowns=(), params={"verbosity": -1})
    pp = PersonPeriod(X, time, event, horizons=H, countdowns=(), params={"verbosity": -1}, negative_share=0.25, random_state=1)
    assert len(pp.rows) < 0.35 * len(full.rows)
    for j in range(len(H)):
        rate, sampled = full.y[full.k == j].mean(), np.average(pp.y[pp.k == j], weights=pp.weight[pp.k == j])
        assert abs(sampled - rate) < 0.1 * rate, (j, sampled, rate)  # unbiased: within sampling error
    at = np.flatnonzero(pp.k == 1)
    part = pp.subset(at, np.zeros(len(at)))
    np.testing.assert_array_equal(part.get_weight(), pp.weight[at])
    np.testing.assert_array_equal(part.get_label(), pp.y[at])
