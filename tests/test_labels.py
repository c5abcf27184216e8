"""Hand-computed snapshots and labels for each label source: boundaries, censoring, re-joins."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnmodel.config import Config, DataConfig, FeaturesConfig, LabelConfig, SnapshotConfig
from churnmodel.data import validate_tables
from churnmodel.errors import ConfigError, DataError
from churnmodel.labels import (
    churn_spells,
    data_end,
    label_snapshots,
    make_snapshots,
    snapshot_dates,
)


def ts(text):
    return pd.Timestamp(text, tz="UTC")


def tables(partners, events, contracts=None):
    # one partner's log may be silent for a year and more: the stray-date check is for whole networks
    config = DataConfig(partners="p", events="e", max_gap_days=10_000)
    return validate_tables(pd.DataFrame(partners), pd.DataFrame(events), None if contracts is None else pd.DataFrame(contracts),
                           config=config)


def rows_of(frame):
    return {(r.partner_id, r.snapshot.strftime("%m-%d")): (None if pd.isna(r.label) else int(r.label), bool(r.censored))
            for r in frame.itertuples()}


GRID = pd.date_range("2024-02-01", "2024-05-01", freq="MS", tz="UTC").as_unit("us")
END = ts("2024-05-15")


def test_churned_at_source_boundaries_and_censoring():
    t = tables(
        {"partner_id": ["p1", "p2", "p3", "p4", "p5"],
         "joined_at": ["2024-01-10", "2024-02-01", "2024-03-01", "2024-01-01", "2024-01-01"],
         "churned_at": ["2024-03-15", None, None, "2024-03-31", "2024-04-01"]},
        {"partner_id": ["p1"], "timestamp": ["2024-01-11"], "event_type": ["order"]},
    )
    spells = churn_spells(t, LabelConfig(), end=END)
    got = rows_of(make_snapshots(spells, GRID, horizon_days=30, end=END))
    assert got == {
        ("p1", "02-01"): (0, False),  # churn 03-15 is after 02-01 + 30d = 03-02
        ("p1", "03-01"): (1, False),  # 03-15 in (03-01, 03-31]
        # p2 joined exactly at the 02-01 snapshot: nothing before it is known, so no row there (t < s everywhere)
        ("p2", "03-01"): (0, False),
        ("p2", "04-01"): (0, False),  # 04-01 + 30d = 05-01 <= data end 05-15: observed
        ("p2", "05-01"): (None, True),  # 05-31 > 05-15: censored, kept for scoring
        ("p3", "04-01"): (0, False),  # p3 joined exactly at 03-01: first row at 04-01
        ("p3", "05-01"): (None, True),
        ("p4", "02-01"): (0, False),
        ("p4", "03-01"): (1, False),  # churn exactly at snapshot + horizon counts (closed interval)
        ("p5", "02-01"): (0, False),
        ("p5", "03-01"): (0, False),  # churn 04-01 is one day after 03-31
        # p5 churned exactly at the 04-01 snapshot: no longer active there
    }


def test_churn_after_the_data_end_is_unknown():
    t = tables({"partner_id": ["a"], "joined_at": ["2024-01-01"], "churned_at": ["2024-06-01"]},
               {"partner_id": ["a"], "timestamp": ["2024-01-02"], "event_type": ["x"]})
    spells = churn_spells(t, LabelConfig(), end=END)
    assert spells["end"].isna().all()


def test_contracts_source_renewal_grace_termination_and_rejoin():
    t = tables(
        {"partner_id": ["p1"], "joined_at": ["2024-01-01"]},
        {"partner_id": ["p1"], "timestamp": ["2024-01-02"], "event_type": ["order"]},
        {"partner_id": ["p1", "p1", "p1"],
         "start_date": ["2024-01-01", "2024-03-01", "2024-06-01"],
         "end_date": ["2024-02-15", "2024-06-01", "2024-09-01"],
         "value": [1.0, 1.0, 1.0],
         "terminated_at": [None, "2024-04-10", None]},
    )
    end = ts("2024-10-01")
    spells = churn_spells(t, LabelConfig(source="contracts", grace_days=20), end=end)
    assert spells[["start", "end"]].to_numpy().tolist() == [
        [ts("2024-01-01"), ts("2024-04-10")],  # 15-day gap <= 20 days grace: a renewal; terminated early
        [ts("2024-06-01"), ts("2024-09-01")],  # 52 days later: a re-join
    ]
    grid = pd.date_range("2024-02-01", "2024-09-01", freq="MS", tz="UTC").as_unit("us")
    got = rows_of(make_snapshots(spells, grid, horizon_days=30, end=end, confirm_days=20))
    assert got == {
        ("p1", "02-01"): (0, False),
        ("p1", "03-01"): (0, False),
        ("p1", "04-01"): (1, False),  # terminated 04-10
        # back with a contract starting exactly at 06-01: rows from the next snapshot on (t < s)
        ("p1", "07-01"): (0, False),
        ("p1", "08-01"): (0, False),  # churn 09-01 is after 08-31; 08-01 + 30 + 20 = 09-20 <= 10-01: known
    }
    # a shorter data end: the end of the last contract is not confirmed until grace has passed
    late = make_snapshots(spells, grid, horizon_days=30, end=ts("2024-09-10"), confirm_days=20)
    assert rows_of(late)[("p1", "08-01")] == (None, True)


def test_contracts_source_needs_contracts():
    t = tables({"partner_id": ["a"], "joined_at": ["2024-01-01"]}, {"partner_id": ["a"], "timestamp": ["2024-01-02"], "event_type": ["x"]})
    with pytest.raises(ConfigError, match=r"label.source is 'contracts' but data.contracts is not set"):
        churn_spells(t, LabelConfig(source="contracts"), end=END)


def test_inactivity_source_fires_after_silence_and_allows_rejoin():
    t = tables(
        {"partner_id": ["p1", "p2"], "joined_at": ["2024-01-01", "2024-01-01"]},
        {"partner_id": ["p1", "p1", "p1", "p1", "p2"],
         "timestamp": ["2024-01-05", "2024-01-20", "2024-04-19", "2024-05-01", "2024-01-03"],
         "event_type": ["order", "order", "order", "portal_login", "order"]},
    )
    cfg = LabelConfig(source="inactivity", inactive_days=90, activity_types=["order"])
    spells = churn_spells(t, cfg, end=ts("2024-08-01"))
    p1 = spells.loc[spells["partner_id"] == "p1", ["start", "end"]].to_numpy().tolist()
    # 01-20 + 90 days = 04-19: silence lasted exactly 90 days when the next order came -> churn, re-join
    assert p1 == [[ts("2024-01-01"), ts("2024-04-19")], [ts("2024-04-19"), ts("2024-07-18")]]
    p2 = spells.loc[spells["partner_id"] == "p2", ["start", "end"]].to_numpy().tolist()
    assert p2 == [[ts("2024-01-01"), ts("2024-04-02")]]
    with pytest.raises(ConfigError, match=r"label.activity_types: \['visit'\] do not occur"):
        churn_spells(t, LabelConfig(source="inactivity", activity_types=["visit"]), end=END)


def test_data_end_default_and_explicit():
    t = tables({"partner_id": ["a"], "joined_at": ["2024-01-01"]},
               {"partner_id": ["a"], "timestamp": ["2024-03-10T15:00:00Z"], "event_type": ["x"]})
    assert data_end(t) == ts("2024-03-11")
    assert data_end(t, pd.Timestamp("2024-04-01").date()) == ts("2024-04-01")


def test_snapshot_grid_defaults_and_errors():
    first = ts("2023-01-15T10:00")
    dates = snapshot_dates(SnapshotConfig(), first_event=first, end=ts("2024-03-15"), lookbacks={"features.windows": 365})
    assert [d.strftime("%Y-%m-%d") for d in dates] == ["2024-02-01", "2024-03-01"]
    weekly = snapshot_dates(SnapshotConfig(freq="W-MON", start="2024-03-01"), first_event=first, end=ts("2024-03-15"), lookbacks={"features.windows": 7})
    assert [d.day for d in weekly] == [4, 11]
    with pytest.raises(DataError, match=r"no snapshot dates between 2024-03-20 and 2024-03-15 .* the 430 days of history they look back"):
        snapshot_dates(SnapshotConfig(), first_event=ts("2023-01-15"), end=ts("2024-03-15"), lookbacks={"features.windows": 430})
    with pytest.raises(ConfigError, match=r"snapshots.end 2024-06-01 is after the data end 2024-03-15"):
        snapshot_dates(SnapshotConfig(end="2024-06-01"), first_event=first, end=ts("2024-03-15"), lookbacks={"features.windows": 7})
    with pytest.raises(DataError, match=r"no snapshot dates between 2024-04-01 and 2024-03-15 at frequency MS: set snapshots.start earlier or snapshots.end later"):
        snapshot_dates(SnapshotConfig(start="2024-04-01"), first_event=first, end=ts("2024-03-15"), lookbacks={"features.windows": 7})


def test_a_short_history_is_refused_naming_the_settings_that_need_more_and_values_that_fit():
    """Five months of data with windows [7, 28] and the long-history trend and revenue window: the 365
    days come from the trend and the revenue window, so those are named (and the windows are not), with
    what ``auto`` gives here; the values suggested give a snapshot grid."""
    first, end = ts("2023-01-01"), ts("2023-06-01")
    features = FeaturesConfig(windows=[7, 28], trends=[{"recent_days": 30, "prior_days": 90}], segments={"revenue_window_days": 365})
    with pytest.raises(DataError) as err:
        snapshot_dates(SnapshotConfig(), first_event=first, end=end, lookbacks=features.lookbacks())
    text = str(err.value)
    assert "(151 days)" in text and "features.windows" not in text
    assert "features.trends[0] (120 days: recent_days + prior_days), features.segments.revenue_window_days (365 days)" in text
    assert "keep each look-back within 50 days: features.trends: auto (here [{recent_days: 7, prior_days: 21}]), " \
           "features.segments.revenue_window_days: auto (here 30)" in text
    fitted = features.model_copy(update={"trends": "auto", "segments": features.segments.model_copy(update={"revenue_window_days": "auto"})})
    assert len(snapshot_dates(SnapshotConfig(), first_event=first, end=end, lookbacks=fitted.for_history(151).lookbacks())) == 5
    with pytest.raises(DataError, match=r"history they look back over. Set snapshots.start earlier or snapshots.end later$"):
        snapshot_dates(SnapshotConfig(end="2023-01-20"), first_event=first, end=end, lookbacks=fitted.for_history(151).lookbacks())
    with pytest.raises(ValueError, match=r"features.trends, features.segments.revenue_window_days: auto depends on the history"):
        fitted.lookbacks()


@pytest.mark.parametrize(("days", "windows", "trends", "revenue"), [
    (151, [7, 14, 30], [(7, 21)], 30),
    (200, [7, 14, 30], [(14, 42)], 30),
    (400, [14, 30, 90], [(30, 90)], 90),
    (729, [14, 30, 90], [(30, 90)], 90),
    (730, [30, 90, 365], [(30, 90), (90, 90)], 365),
    (1500, [30, 90, 365], [(30, 90), (90, 90)], 365),
    (20, [6], [], 6),
])
def test_auto_look_backs_fit_a_third_of_the_history_and_keep_the_standard_ones_given_two_years(days, windows, trends, revenue):
    fitted = FeaturesConfig().for_history(days)
    assert fitted.windows == windows and [(t.recent_days, t.prior_days) for t in fitted.trends] == trends
    assert fitted.segments.revenue_window_days == revenue
    assert days >= 730 or max(fitted.lookbacks().values()) <= days // 3
    explicit = FeaturesConfig(windows=[5, 9], trends=[], segments={"revenue_window_days": 45})
    assert explicit.for_history(days) == explicit  # what the user set is kept


def test_label_snapshots_from_config_on_sample(sample_tables):
    cfg = Config.model_validate({"data": {"partners": "p", "events": "e"}, "label": {"horizon_days": 60}})
    frame = label_snapshots(sample_tables, cfg)
    assert frame["snapshot"].min() == ts("2024-01-01") and frame["snapshot"].max() == ts("2026-01-01")
    censored = frame.loc[frame["censored"], "snapshot"].unique()
    assert sorted(d.strftime("%Y-%m") for d in censored) == ["2025-12", "2026-01"]  # + 60 days runs past 2026-01-01
    assert frame.loc[~frame["censored"], "label"].notna().all()
    # every partner who churned in a labelled horizon is labelled 1 right before it
    churned = sample_tables.partners.dropna(subset=["churned_at"]).set_index("partner_id")["churned_at"]
    last = frame.groupby("partner_id")["snapshot"].max()
    both = last.index.intersection(churned.index)
    assert (churned[both] > last[both]).all()


def test_grid_unit_does_not_matter():
    t = tables({"partner_id": ["a"], "joined_at": ["2024-01-01"]}, {"partner_id": ["a"], "timestamp": ["2024-01-02"], "event_type": ["x"]})
    spells = churn_spells(t, LabelConfig(), end=END)
    us = make_snapshots(spells, GRID, horizon_days=30, end=END)
    ns = make_snapshots(spells, GRID.as_unit("ns"), horizon_days=30, end=END)
    pd.testing.assert_frame_equal(us, ns)
    assert len(us) == 4


# --------------------------------------------------------------------------- one boundary: history is t < s


def _inactivity_frame(event_days, *, inactive_days=45):
    """Features and labels of one partner joined 2023-01-01 with orders on the given days (midnight UTC,
    as in date-only exports, so some fall exactly on a month-start snapshot)."""
    from churnmodel.features import build_training_frame

    stamps = [(pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(d))).isoformat() for d in sorted(event_days)]
    t = tables({"partner_id": ["p"], "joined_at": ["2023-01-01"]},
               {"partner_id": ["p"] * len(stamps), "timestamp": stamps, "event_type": ["order"] * len(stamps)})
    cfg = Config.model_validate({
        "data": {"partners": "p", "events": "e", "extracted_at": "2024-06-01"},
        "label": {"source": "inactivity", "inactive_days": inactive_days, "horizon_days": 30},
        "snapshots": {"start": "2023-02-01"},
        "features": {"windows": [30, 90], "trends": [], "aggregations": ["count"]},
    })
    frame, _ = build_training_frame(t, cfg)
    return frame


@pytest.mark.parametrize(("seconds", "row_at_snapshot"), [(-1, True), (0, False), (1, False)],
                         ids=["just before", "exactly at", "just after"])
def test_an_event_at_the_snapshot_instant_belongs_to_its_future(seconds, row_at_snapshot):
    """A lapsed partner (silent since 2023-01-02) orders around the 2023-06-01 snapshot: only an order
    strictly before it makes the partner active there, and then the features see that order too."""
    from churnmodel.features import build_training_frame

    s = ts("2023-06-01")
    when = (s + pd.Timedelta(seconds=seconds)).tz_localize(None).isoformat()
    t = tables({"partner_id": ["p"], "joined_at": ["2023-01-01"]},
               {"partner_id": ["p", "p"], "timestamp": ["2023-01-02", when], "event_type": ["order", "order"]})
    cfg = Config.model_validate({
        "data": {"partners": "p", "events": "e", "extracted_at": "2024-01-01"},
        "label": {"source": "inactivity", "inactive_days": 45, "horizon_days": 30},
        "snapshots": {"start": "2023-02-01"}, "features": {"windows": [30], "trends": [], "aggregations": ["count"]},
    })
    frame, _ = build_training_frame(t, cfg)
    at = frame.loc[frame["snapshot"] == s]
    assert (len(at) == 1) is row_at_snapshot
    if row_at_snapshot:
        assert at["order__count_30d"].iloc[0] == 1 and at["order__days_since_last"].iloc[0] < 1 / 24
    after = frame.loc[frame["snapshot"] == ts("2023-07-01")]
    assert len(after) == 1 and after["order__days_since_last"].iloc[0] <= 30 + 1 / 86_400  # a month later: active, the order seen


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=12))
def test_rows_labels_and_features_agree_on_the_boundary(event_days):
    """Whatever the event days (many exactly on snapshots): a row exists at s only if the features at s
    show activity (joining or an order) within ``inactive_days`` before s, and its label agrees with
    the next row's existence."""
    frame = _inactivity_frame(event_days)
    for r in frame.itertuples():
        recent = min(r.order__days_since_last if r.order__days_since_last == r.order__days_since_last else float("inf"),
                     r.tenure_days)
        assert recent < 45, (r.snapshot, recent)
    # a label of 0 (observed, no churn within 30 days) means the partner is still active 30 days later:
    # on a monthly grid the next snapshot row exists when it is less than 30 days away and inside the data
    for r in frame.loc[(frame["label"] == 1)].itertuples():
        assert pd.notna(r.churn_date) and r.snapshot < r.churn_date <= r.snapshot + pd.Timedelta(days=30)


def _expected_rows(stamps: list[pd.Timestamp], joined: pd.Timestamp, grid: pd.DatetimeIndex, end: pd.Timestamp, *,
                   inactive: pd.Timedelta, horizon: pd.Timedelta) -> dict:
    """The documented rule, computed from the raw stamps: activity points are the joining and the events; a
    silence of ``inactive`` ends a spell (churn dated last activity + ``inactive``); the partner is active at
    ``s`` when its latest point strictly before ``s`` is less than ``inactive`` ago; label 1 when the churn date
    is in ``(s, s + horizon]``, unknown when ``s + horizon`` is after the data end."""
    points = sorted([joined, *stamps])
    out = {}
    for s in grid:
        before = [p for p in points if p < s]
        if not before or s - before[-1] >= inactive:
            continue
        later = [p for p in points if p >= before[-1]]
        churn = next((a + inactive for a, b in zip(later, [*later[1:], None], strict=True) if b is None or b - a >= inactive), None)
        churn = churn if churn is not None and churn <= end else None
        label = None if s + horizon > end else int(churn is not None and churn <= s + horizon)
        out[s] = (label, (s - max(p for p in stamps if p < s)).total_seconds() / 86_400 if any(p < s for p in stamps) else None)
    return out


@settings(max_examples=60, deadline=None)
@given(days=st.lists(st.integers(min_value=0, max_value=500), max_size=8),
       near=st.lists(st.tuples(st.integers(min_value=1, max_value=16), st.sampled_from([-1, 0, 1])), min_size=1, max_size=4))
def test_rows_labels_and_features_follow_one_rule_both_ways(days, near):
    """Random orders, some exactly at, one second before or one second after a month-start snapshot: the
    row set, the labels and the features all follow ``t < s`` -- a row exists at ``s`` exactly when the
    rule says the partner is active, its label is the rule's, and the days since the last order the
    features show are measured from the latest order strictly before ``s``. Both directions: no row the
    rule does not make, none it makes missing."""
    from churnmodel.features import build_training_frame

    joined, start, end = ts("2023-01-01"), ts("2023-01-01"), ts("2024-06-01")
    stamps = sorted({*(start + pd.Timedelta(days=d) for d in days),
                     *(start + pd.DateOffset(months=m) + pd.Timedelta(seconds=o) for m, o in near)})
    t = tables({"partner_id": ["p"], "joined_at": ["2023-01-01"]},
               {"partner_id": ["p"] * len(stamps), "timestamp": [s.tz_localize(None).isoformat() for s in stamps],
                "event_type": ["order"] * len(stamps)})
    cfg = Config.model_validate({
        "data": {"partners": "p", "events": "e", "extracted_at": "2024-06-01"},
        "label": {"source": "inactivity", "inactive_days": 45, "horizon_days": 30},
        "snapshots": {"start": "2023-02-01"}, "features": {"windows": [30], "trends": [], "aggregations": ["count"]},
    })
    frame, _ = build_training_frame(t, cfg)
    grid = pd.date_range("2023-02-01", "2024-06-01", freq="MS", tz="UTC").as_unit("us")
    expected = _expected_rows(stamps, joined, grid, end, inactive=pd.Timedelta(days=45), horizon=pd.Timedelta(days=30))
    got = frame.set_index("snapshot")
    assert list(got.index) == list(expected), "rows"
    for s, (label, since) in expected.items():
        row = got.loc[s]
        assert (pd.isna(row["label"]) if label is None else row["label"] == label), (s, row["label"], label)
        assert (pd.isna(row["order__days_since_last"]) if since is None else row["order__days_since_last"] == pytest.approx(since, abs=1e-6)), s
