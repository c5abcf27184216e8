"""Hand-computed feature values for every feature kind, plus leak and independence properties."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnmodel.config import FeaturesConfig
from churnmodel.data import validate_tables
from churnmodel.errors import ConfigError, DataError
from churnmodel.features import NETWORK_FEATURES, FeaturePlan, build_features, resolve_plan


def ts(text):
    return pd.Timestamp(text, tz="UTC")


E = [  # partner, time, type, amount, item
    ("a", "2024-01-20", "order", 30.0, None),
    ("a", "2024-02-23", "order", 50.0, None),  # exactly s - 7 days: inside the 7-day window
    ("a", "2024-02-25", "order", 100.0, None),
    ("a", "2024-03-01", "order", 999.0, None),  # exactly at the 03-01 cutoff: the future
    ("a", "2024-02-01", "ticket_opened", None, 1),
    ("a", "2024-02-20", "ticket_opened", None, 2),
    ("a", "2024-02-22", "ticket_resolved", 48.0, 2),  # the younger ticket is solved first
    ("a", "2024-02-28", "ticket_opened", None, 3),
    ("a", "2024-03-01", "ticket_resolved", 24.0, 3),  # at the cutoff: still open at 03-01
    ("a", "2024-02-26", "complaint", None, None),
    ("a", "2024-01-25", "nps_response", 9.0, None),
    ("a", "2024-02-27", "nps_response", 4.0, None),
    ("a", "2024-02-01", "holdback_withheld", 10.0, 10),
    ("a", "2024-02-15", "holdback_released", 10.0, 10),
    ("a", "2024-02-10", "holdback_withheld", 20.0, 11),
    ("b", "2024-01-15", "order", 20.0, None),
]


def sample_tables(events=E, with_items=True):
    partners = pd.DataFrame({"partner_id": ["a", "b"], "joined_at": ["2023-06-01", "2024-01-10"], "region": ["North", "South"]})
    frame = pd.DataFrame(events, columns=["partner_id", "timestamp", "event_type", "amount", "item_id"])
    frame["item_id"] = frame["item_id"].astype("Int64")
    if not with_items:
        frame = frame.drop(columns=["item_id"])
    contracts = pd.DataFrame({
        "partner_id": ["a", "a", "b"],
        "start_date": ["2023-06-01", "2024-04-01", "2024-01-10"],
        "end_date": ["2024-06-01", "2025-04-01", "2024-02-20"],
        "value": [100.0, 150.0, 50.0],
        "terminated_at": ["2024-03-15", None, None],
    })
    return validate_tables(partners, frame, contracts)


ROWS = pd.DataFrame({"partner_id": ["a", "b", "a"], "snapshot": [ts("2024-03-01"), ts("2024-03-01"), ts("2024-04-01")]})
CFG = FeaturesConfig(windows=[7, 30], trends=[{"recent_days": 7, "prior_days": 14}], segments={"revenue_window_days": 365})


@pytest.fixture(scope="module")
def built():
    tables = sample_tables()
    plan = resolve_plan(tables, CFG)
    return build_features(tables, ROWS, plan), plan


def test_lifetime_features_look_back_at_most_lifetime_days():
    """A bounded lifetime: the rate counts only the last ``lifetime_days`` and divides by that span,
    and an event older than the bound is as if unseen for the recency (so a growing history is no drift)."""
    tables = sample_tables()
    cfg = CFG.model_copy(update={"lifetime_days": 40})
    X = build_features(tables, ROWS, resolve_plan(tables, cfg))
    a, b, later = X.iloc[0], X.iloc[1], X.iloc[2]
    assert a["order__per_month"] == pytest.approx(2 / (40 / 30.4375))  # 01-20 is more than 40 days before 03-01
    assert b["order__per_month"] == 0 and np.isnan(b["order__days_since_last"])  # b's one order is 46 days back
    assert a["order__days_since_last"] == 5.0
    assert later["order__days_since_last"] == 31 and later["order__per_month"] == pytest.approx(3 / (40 / 30.4375))
    unbounded = build_features(tables, ROWS, resolve_plan(tables, CFG.model_copy(update={"lifetime_days": None})))
    assert unbounded.iloc[1]["order__days_since_last"] == 46


def test_window_aggregates_boundaries(built):
    X, _ = built
    a = X.iloc[0]
    assert a["order__count_7d"] == 2 and a["order__sum_7d"] == 150 and a["order__mean_7d"] == 75 and a["order__max_7d"] == 100
    assert a["order__count_30d"] == 2 and a["order__sum_30d"] == 150  # 01-20 is before 03-01 - 30 days
    assert a["ticket_opened__count_30d"] == 3 and a["ticket_resolved__count_30d"] == 1
    assert a["ticket_resolved__mean_30d"] == 48 and "ticket_resolved__sum_30d" not in X  # hours do not add up
    assert np.isnan(X.iloc[1]["order__mean_7d"]) and X.iloc[1]["order__count_7d"] == 0
    later = X.iloc[2]  # 04-01: the order at 03-01 is now history, 31 days old (outside 30 days)
    assert later["order__count_30d"] == 0 and later["order__days_since_last"] == 31


def test_recency_lifetime_rate_and_trend(built):
    X, _ = built
    a, b = X.iloc[0], X.iloc[1]
    assert a["order__days_since_last"] == 5.0
    assert np.isnan(b["nps_response__days_since_last"])
    history_days = (ts("2024-03-01") - ts("2024-01-15")).days  # history starts at the first event (b's order)
    assert a["order__per_month"] == pytest.approx(3 / (history_days / 30.4375))
    assert b["order__per_month"] == pytest.approx(1 / max((ts("2024-03-01") - ts("2024-01-15")).days / 30.4375, 1))
    assert a["order__trend_7v14d"] == 1.0  # two orders in the last 7 days, none in the 14 before
    assert a["order__amount_trend_7v14d"] == 1.0
    assert a["complaint__trend_7v14d"] == 1.0 and b["complaint__trend_7v14d"] == 0.0
    assert a["tenure_days"] == 274 and b["tenure_days"] == 51


def test_ratios(built):
    X, plan = built
    assert {r.name for r in plan.ratios} == {"complaints_per_order", "tickets_resolved_share"}
    assert X.iloc[0]["complaints_per_order"] == 0.5  # 1 complaint / 2 orders in 30 days
    assert X.iloc[0]["tickets_resolved_share"] == pytest.approx(1 / 3)
    assert np.isnan(X.iloc[1]["tickets_resolved_share"])  # nothing opened: undefined


def test_balances_linked_by_item_and_first_in_first_out(built):
    X, plan = built
    a = X.iloc[0]
    assert [b.item_column for b in plan.balances] == ["item_id", "item_id"]
    assert a["open_tickets"] == 2 and a["open_tickets__oldest_days"] == 29  # items 1 (02-01) and 3 are open
    assert a["outstanding_holdback"] == 20 and a["outstanding_holdback__oldest_days"] == 20
    assert X.iloc[2]["open_tickets"] == 1  # item 3 resolved at 03-01
    no_items = sample_tables(with_items=False)
    fifo_plan = resolve_plan(no_items, CFG)
    fifo = build_features(no_items, ROWS, fifo_plan).iloc[0]
    assert [b.item_column for b in fifo_plan.balances] == [None, None]
    assert fifo["open_tickets"] == 2 and fifo["open_tickets__oldest_days"] == 10  # FIFO: the 02-20 ticket is the oldest open
    assert fifo["outstanding_holdback"] == 20


def test_scores(built):
    X, _ = built
    a, b = X.iloc[0], X.iloc[1]
    assert a["nps_response__last"] == 4 and a["nps_response__change"] == -5 and a["nps_response__detractor"] == 1
    assert np.isnan(b["nps_response__last"]) and np.isnan(b["nps_response__detractor"])


def test_contracts_only_what_was_known(built):
    X, _ = built
    a, b, a_later = X.iloc[0], X.iloc[1], X.iloc[2]
    # 03-01: the early termination on 03-15 and the contract starting 04-01 are still the future
    assert a["contract__active"] == 1 and a["contract__value"] == 100 and a["contract__days_to_end"] == 92
    assert a["contract__days_since_start"] == 274 and a["contract__signed_total"] == 1
    assert b["contract__active"] == 0 and b["contract__value"] == 0 and np.isnan(b["contract__days_to_end"])
    # 04-01: terminated and replaced
    assert a_later["contract__active"] == 1 and a_later["contract__value"] == 150 and a_later["contract__signed_total"] == 2
    assert a_later["contract__days_to_end"] == 365


def test_revenue_share_segments_and_attributes(built):
    X, _ = built
    assert X.iloc[0]["revenue_share"] == pytest.approx(0.9) and X.iloc[1]["revenue_share"] == pytest.approx(0.1)
    assert X["segment"].tolist()[:2] == ["strategic", "prospective"]
    assert list(X["segment"].cat.categories) == ["strategic", "prospective", "transactional"]
    assert X["region"].tolist() == ["North", "South", "North"] and X["region"].dtype == "category"


def test_unseen_category_at_scoring_becomes_missing(built):
    _, plan = built
    tables = sample_tables()
    changed = validate_tables(tables.partners.assign(region=["Arctic", "South"]), tables.events, tables.contracts)
    X = build_features(changed, ROWS, plan)
    assert pd.isna(X.iloc[0]["region"]) and X.iloc[1]["region"] == "South"


def test_metadata_and_plan_round_trip(built):
    X, plan = built
    info = plan.info()
    assert list(info.columns) == ["name", "kind", "lever", "unit", "label_en", "label_ru"]
    assert info["name"].tolist() == plan.frame_columns and list(X.columns[2:]) == plan.frame_columns
    lever = info.set_index("name")["lever"]
    assert lever["open_tickets"] == "responsiveness" and lever["outstanding_holdback"] == "transparency"
    assert lever["meeting__count_7d" if "meeting__count_7d" in lever else "order__count_7d"] in {"communication", "mutual_value"}
    assert info.set_index("name").loc["nps_response__detractor", "label_ru"] == "ответы NPS: критик (последняя оценка ниже 7)"
    again = FeaturePlan.from_json(plan.to_json())
    assert again == plan
    pd.testing.assert_frame_equal(build_features(sample_tables(), ROWS, again), X)


def test_default_config_on_the_sample_gives_a_strong_feature_set(sample_tables):
    plan = resolve_plan(sample_tables, FeaturesConfig())
    info = plan.info()
    assert len(plan.columns) > 120
    assert set(info["lever"]) >= {"responsiveness", "communication", "transparency", "mutual_value", "conflict",
                                  "development", "loyalty", "satisfaction"}
    assert {"open_tickets", "open_tickets__oldest_days", "outstanding_holdback", "nps_response__detractor",
            "revenue_share", "segment", "contract__days_to_end", "meeting__days_since_last"} <= set(plan.columns)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"event_types": ["order", "visit"]}, r"features.event_types: \['visit'\] do not occur in the events"),
        ({"ratios": [{"name": "r", "numerator": "order__count_99d", "denominator": "order__count_30d"}]},
         r"features.ratios.0.numerator: no feature named 'order__count_99d'; similar: \[.*'order__count_30d'"),
        ({"balances": [{"name": "b", "add": "order", "subtract": "visit"}]}, r"features.balances.0.subtract: event type 'visit'"),
        ({"scores": [{"event_type": "complaint"}]}, r"features.scores.0.event_type: 'complaint' has no amounts to score"),
        ({"attributes": ["tier"]}, r"features.attributes: \['tier'\] are not partner columns; available: \['region'\]"),
    ],
)
def test_plan_errors_name_the_key(cfg, match):
    with pytest.raises(ConfigError, match=match):
        resolve_plan(sample_tables(), FeaturesConfig(**{"windows": [7, 30], **cfg}))


def test_windows_must_be_sorted():
    with pytest.raises(ValueError, match=r"windows must be strictly increasing, e.g. \[30, 90, 365\]; got \[90, 30\]"):
        FeaturesConfig(windows=[90, 30])


# --------------------------------------------------------------------------- properties

TYPES = ["order", "ticket_opened", "ticket_resolved", "nps_response", "meeting"]
SNAPS = [ts("2024-02-01"), ts("2024-03-01"), ts("2024-04-01")]
START = ts("2024-01-01")


def event_strategy(partners):
    return st.tuples(
        st.sampled_from(partners),
        st.integers(0, 120 * 86_400 - 1),  # seconds after 2024-01-01
        st.sampled_from(TYPES),
        st.one_of(st.none(), st.floats(0, 1000, allow_nan=False)),
        st.integers(1, 6),
    )


def frames(events, partners=("a", "b", "c")):
    rows = [(p, START + pd.Timedelta(seconds=sec), t, amt if t != "nps_response" else (None if amt is None else round(amt) % 11), item)
            for p, sec, t, amt, item in events]
    # every type present once, so the plan's columns never depend on the draw
    rows += [("a", START, t, 1.0 if t in ("order", "ticket_resolved", "nps_response") else None, 99) for t in TYPES]
    e = pd.DataFrame(rows, columns=["partner_id", "timestamp", "event_type", "amount", "item_id"])
    p = pd.DataFrame({"partner_id": list(partners), "joined_at": ["2023-12-01"] * len(partners), "tier": ["x", "y", "x"][: len(partners)]})
    return validate_tables(p, e.drop_duplicates())


def grid(partners=("a", "b", "c")):
    return pd.DataFrame([(p, s) for s in SNAPS for p in partners], columns=["partner_id", "snapshot"])


RHYTHM = ["overdue", "gap", "regularity", "active_share"]
PROP_CFG = FeaturesConfig(windows=[7, 30, 90], trends=[{"recent_days": 7, "prior_days": 21}], segments={"revenue_window_days": 365},
                          rhythm=RHYTHM)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    base=st.lists(event_strategy(["a", "b", "c"]), max_size=40),
    future=st.lists(event_strategy(["a", "b", "c"]), min_size=1, max_size=20),
    cut=st.sampled_from(SNAPS),
)
def test_events_after_a_snapshot_never_change_it(base, future, cut):
    before = frames(base)
    plan = resolve_plan(before, PROP_CFG)
    offset = int((cut - START).total_seconds())
    # move the extra events to the cutoff or later, and change what was already there after it
    later = [(p, max(sec, offset), t, a, i) for p, sec, t, a, i in future]
    changed = [(p, sec, t if sec < offset else "meeting", a if sec < offset else 7.0, i) for p, sec, t, a, i in base]
    after = frames(changed + later)
    rows = grid()
    x0 = build_features(before, rows, plan)
    x1 = build_features(after, rows, plan)
    keep = (rows["snapshot"] <= cut).to_numpy()
    pd.testing.assert_frame_equal(x0.loc[keep], x1.loc[keep])


@SETTINGS
@given(events=st.lists(event_strategy(["a", "b", "c"]), max_size=50))
def test_removing_a_partner_never_changes_another_partners_row(events):
    full = frames(events)
    plan = resolve_plan(full, PROP_CFG)
    without_c = validate_tables(full.partners.loc[full.partners["partner_id"] != "c"],
                                full.events.loc[full.events["partner_id"] != "c"])
    x_full = build_features(full, grid(), plan)
    x_less = build_features(without_c, grid(("a", "b")), plan)
    local = [c for c in x_full.columns if c not in NETWORK_FEATURES]
    mine = x_full["partner_id"] != "c"
    pd.testing.assert_frame_equal(x_full.loc[mine, local].reset_index(drop=True), x_less[local])


# --------------------------------------------------------------------------- regressions found in review


def _tables(events, partners=("a",), item=True):
    frame = pd.DataFrame(events, columns=["partner_id", "timestamp", "event_type", "amount", "item_id"])
    frame["item_id"] = frame["item_id"].astype("Int64")
    if not item:
        frame = frame.drop(columns="item_id")
    return validate_tables(pd.DataFrame({"partner_id": list(partners), "joined_at": "2023-01-01"}), frame)


def _at(tables, plan, *dates, partner="a"):
    rows = pd.DataFrame({"partner_id": partner, "snapshot": [ts(d) for d in dates]})
    return build_features(tables, rows, plan)


def test_linked_amount_balance_counts_only_amounts_withheld_before_the_snapshot():
    t = _tables([
        ("a", "2024-02-01", "holdback_withheld", 5.0, 2),  # a top-up of item 2, listed first in the file
        ("a", "2024-01-10", "holdback_withheld", 3.0, 2),
        ("a", "2024-01-05", "holdback_released", 1.0, 9),  # releases an item opened before history
        ("a", "2024-01-01", "order", 1.0, None),
    ])
    X = _at(t, resolve_plan(t, FeaturesConfig(windows=[7])), "2024-01-20", "2024-02-15")
    assert X["outstanding_holdback"].tolist() == [3.0, 8.0]
    assert X["outstanding_holdback__oldest_days"].tolist() == [10.0, 36.0]


def test_fifo_amount_balance_pays_off_the_oldest_first():
    events = [("a", "2024-01-01", "holdback_withheld", 100.0, None), ("a", "2024-02-01", "holdback_withheld", 50.0, None),
              ("a", "2024-02-15", "holdback_released", 150.0, None),
              ("b", "2024-01-01", "holdback_withheld", 100.0, None), ("b", "2024-02-01", "holdback_withheld", 50.0, None),
              ("b", "2024-02-15", "holdback_released", 30.0, None)]
    t = _tables(events, partners=("a", "b"), item=False)
    plan = resolve_plan(t, FeaturesConfig(windows=[7]))
    X = build_features(t, pd.DataFrame({"partner_id": ["a", "b"], "snapshot": ts("2024-03-01")}), plan)
    assert X["outstanding_holdback"].tolist() == [0.0, 120.0]
    assert np.isnan(X.loc[0, "outstanding_holdback__oldest_days"])  # all paid
    assert X.loc[1, "outstanding_holdback__oldest_days"] == 60.0  # 70 of the 01-01 holdback still withheld


def test_strategic_core_has_no_rounding_gap():
    events = [("x", "2023-01-01", "order", 0.1, None), ("x", "2023-12-01", "order", 0.3, None), ("x", "2024-05-20", "order", 18.7, None),
              ("a", "2024-05-20", "order", 19.5, None), ("b", "2024-05-20", "order", 19.5, None),
              ("d", "2024-05-20", "order", 14.0, None), ("e", "2024-05-20", "order", 14.0, None), ("f", "2024-05-20", "order", 14.0, None)]
    t = _tables(events, partners=tuple("xabdef"))
    plan = resolve_plan(t, FeaturesConfig(segments={"strategic_core_share": 0.58, "revenue_window_days": 365}))
    X = build_features(t, pd.DataFrame({"partner_id": list("xabdef"), "snapshot": ts("2024-06-01")}), plan)
    assert X["segment"].tolist()[:3] == ["strategic"] * 3 and "strategic" not in X["segment"].tolist()[3:]


def test_unknown_partner_rows_get_missing_tenure_and_bad_snapshots_are_refused(built):
    _, plan = built
    tables = sample_tables()
    X = build_features(tables, pd.DataFrame({"partner_id": ["zz"], "snapshot": [ts("2024-03-01")]}), plan)
    assert np.isnan(X.loc[0, "tenure_days"]) and X.loc[0, "order__count_30d"] == 0
    with pytest.raises(DataError, match=r"rows.snapshot has 1 missing value"):
        build_features(tables, pd.DataFrame({"partner_id": ["a"], "snapshot": pd.Series([pd.NaT], dtype="datetime64[us, UTC]")}), plan)
    with pytest.raises(DataError, match=r"rows.snapshot must be whole seconds"):
        build_features(tables, pd.DataFrame({"partner_id": ["a"], "snapshot": [ts("2024-03-01T12:00:00.5")]}), plan)
    with pytest.raises(DataError, match=r"rows.snapshot must be UTC timestamps"):
        build_features(tables, pd.DataFrame({"partner_id": ["a"], "snapshot": [pd.Timestamp("2024-03-01")]}), plan)


def test_amount_balance_needs_amounts():
    with pytest.raises(ConfigError, match=r"features.balances.0.add: 'ticket_opened' has no amounts; use measure: count"):
        resolve_plan(sample_tables(), FeaturesConfig(windows=[7, 30], balances=[
            {"name": "x", "add": "ticket_opened", "subtract": "ticket_resolved", "measure": "amount"}]))


def test_lookback_covers_trends_and_revenue_window():
    cfg = FeaturesConfig(windows=[30], trends=[{"recent_days": 30, "prior_days": 90}], segments={"revenue_window_days": 60})
    assert cfg.lookback_days() == 120


def _orders(days: list[float], start: str = "2024-01-01") -> pd.DataFrame:
    t0 = pd.Timestamp(start, tz="UTC")
    return pd.DataFrame({"partner_id": "a", "timestamp": [t0 + pd.Timedelta(days=d) for d in days], "event_type": "order", "amount": 10.0})


def test_rhythm_by_hand():
    """Orders on days 0, 10, 20, 50 (Jan 1 - Feb 20) and one on the snapshot day itself (the future):
    gaps 10, 10, 30 -> typical 16.67 days, spread/mean 0.566; the snapshot on day 60 (Mar 1) is 10
    days after the last order: overdue 0.6; the 90-day window holds Jan and Feb: 2 of 2.96 months."""
    partners = pd.DataFrame({"partner_id": ["a"], "joined_at": ["2023-06-01"]})
    tables = validate_tables(partners, _orders([0, 10, 20, 50, 60]))
    plan = resolve_plan(tables, FeaturesConfig(windows=[30, 90], trends=[], segments={"revenue_type": "none"}, rhythm=RHYTHM))
    X = build_features(tables, pd.DataFrame({"partner_id": ["a"], "snapshot": [ts("2024-03-01")]}), plan).iloc[0]
    gaps = np.array([10.0, 10.0, 30.0])
    assert X["order__gap_days"] == pytest.approx(gaps.mean()) and X["order__gap_cv"] == pytest.approx(gaps.std() / gaps.mean())
    assert X["order__gap_days_90d"] == pytest.approx(gaps.mean())  # every gap ends within 90 days
    assert X["order__overdue"] == pytest.approx(10 / gaps.mean())
    assert X["order__active_share_90d"] == pytest.approx(2 / (90 / 30.4375))
    info = plan.info().set_index("name")
    assert info.loc["order__overdue", "kind"] == "rhythm" and "обычных интервалах" in info.loc["order__overdue", "label_ru"]
    only = resolve_plan(tables, FeaturesConfig(windows=[30, 90], trends=[], segments={"revenue_type": "none"}))  # the default: overdue
    assert [f.name for f in only.features if f.kind == "rhythm"] == ["order__overdue"]
    assert FeaturePlan.from_json(only.to_json()) == only
    with pytest.raises(ValueError, match="rhythm"):
        FeaturesConfig(rhythm=["overdue", "overdue"])
    # a 28-day longest window counts weeks; a single order has no gap yet
    weekly = resolve_plan(tables, FeaturesConfig(windows=[7, 28], trends=[], segments={"revenue_type": "none"}, rhythm=RHYTHM))
    W = build_features(tables, pd.DataFrame({"partner_id": ["a", "a"], "snapshot": [ts("2024-03-01"), ts("2024-01-05")]}), weekly)
    assert W.loc[0, "order__active_share_28d"] == pytest.approx(1 / 4)  # Feb 20 only
    assert W.loc[0, "order__gap_days_28d"] == 30.0  # the gap ending Feb 20 started Jan 21
    assert np.isnan(W.loc[1, "order__gap_days"]) and np.isnan(W.loc[1, "order__overdue"]) and W.loc[1, "order__active_share_28d"] == 0.25


@SETTINGS
@given(base=st.lists(event_strategy(["a", "b", "c"]), max_size=30),
       pairs=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(TYPES), st.integers(1, 5 * 86_400), st.integers(0, 4 * 86_400)),
                      min_size=1, max_size=10),
       windows=st.sampled_from([[7, 28], [7, 30, 90]]), cut=st.sampled_from([ts("2024-02-14"), ts("2024-03-13T12:00")]))
def test_rhythm_never_sees_after_the_snapshot(base, pairs, windows, cut):
    """The leakage property for every rhythm kind, with weeks and months cut mid-period: pairs of events of
    one partner and type straddle the cut (a few days before it, a few after), so a later event in the same
    week or month, or a gap that ends after the cut, would show."""
    plan_cfg = FeaturesConfig(windows=windows, trends=[{"recent_days": 7, "prior_days": 14}], rhythm=RHYTHM)
    offset = int((cut - START).total_seconds())
    before_cut = [(p, offset - x, t, 1.0, 1) for p, t, x, _ in pairs]
    after_cut = [(p, offset + y, t, 1.0, 1) for p, t, _, y in pairs]
    before = frames([*base, *before_cut])
    plan = resolve_plan(before, plan_cfg)
    after = frames([*base, *before_cut, *after_cut])
    rows = pd.DataFrame([(p, d) for d in (cut - pd.Timedelta(days=20), cut, cut + pd.Timedelta(days=30)) for p in "abc"],
                        columns=["partner_id", "snapshot"])
    keep = (rows["snapshot"] <= cut).to_numpy()
    x0, x1 = build_features(before, rows, plan), build_features(after, rows, plan)
    rhythm = [f.name for f in plan.features if f.kind == "rhythm"]
    assert len(rhythm) == 5 * len(plan.event_types)
    pd.testing.assert_frame_equal(x0.loc[keep, rhythm], x1.loc[keep, rhythm])
