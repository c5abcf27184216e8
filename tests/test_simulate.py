import hashlib

import numpy as np
import pandas as pd
import pytest

from churnmodel.data import validate_tables
from churnmodel.simulate import CAUSES, EVENT_TYPES, SEGMENTS, simulate, write_simulation

CONTRIBS = [f"contrib_{c}" for c in CAUSES]


@pytest.fixture(scope="module")
def sim():
    return simulate(n_partners=3000, months=36, start="2023-01-01", random_state=11)


def digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path):
    for name in ("a", "b"):
        write_simulation(simulate(n_partners=120, months=12, random_state=5), tmp_path / name)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert len(digest(tmp_path / "a")) == 6
    other = simulate(n_partners=120, months=12, random_state=6)
    assert not other.events.equals(simulate(n_partners=120, months=12, random_state=5).events)


def test_events_can_be_written_as_csv_and_read_back(tmp_path):
    result = simulate(n_partners=40, months=6, random_state=1)
    write_simulation(result, tmp_path, events_format="csv")
    back = pd.read_csv(tmp_path / "events.csv")
    assert len(back) == len(result.events)
    assert back["timestamp"].iloc[0].endswith("Z")


def test_hazard_contributions_sum_to_the_hazard(sim):
    h = sim.hazard
    np.testing.assert_allclose(h["baseline"] + h[CONTRIBS].sum(axis=1), h["logit"], atol=1e-12)
    np.testing.assert_allclose(1 / (1 + np.exp(-h["logit"])), h["hazard"], atol=1e-12)
    assert h["hazard"].between(0, 1).all()


def test_churn_dates_agree_across_partners_hazard_contracts_and_events(sim):
    p = sim.partners.set_index("partner_id")
    truth = sim.truth.set_index("partner_id")
    pd.testing.assert_series_equal(p["churned_at"], truth["churned_at"])
    churned = p["churned_at"].dropna()

    # the ground-truth month flagged as churn is the month holding the churn date; no rows after it
    flagged = sim.hazard.loc[sim.hazard["churned"]].set_index("partner_id")["month"]
    assert flagged.index.is_unique and set(flagged.index) == set(churned.index)
    month_start = churned.reindex(flagged.index).dt.tz_localize(None).dt.to_period("M").dt.start_time
    assert (month_start.dt.tz_localize("UTC") == flagged).all()
    last_row = sim.hazard.groupby("partner_id")["month"].max()
    assert (last_row.reindex(flagged.index) == flagged).all()

    # no interaction at or after leaving, none before joining
    e = sim.events
    assert not (e["timestamp"] >= e["partner_id"].map(p["churned_at"])).any()
    assert not (e["timestamp"] < e["partner_id"].map(p["joined_at"])).any()

    # contracts: nothing starts after churn; the relationship's last day is the churn date (or a
    # renewal gap of under 15 days just before it); active partners are covered at the data end
    c = sim.contracts
    effective_end = c["terminated_at"].fillna(c["end_date"])
    last_end = effective_end.groupby(c["partner_id"]).max()
    assert not (c["start_date"] >= c["partner_id"].map(p["churned_at"])).any()
    gap = (churned - last_end.reindex(churned.index)).dt.days
    assert gap.between(0, 14).all(), gap.describe()
    active = p.index[p["churned_at"].isna()]
    data_end = pd.Timestamp(sim.params["data_end"])
    assert (last_end.reindex(active) >= data_end - pd.Timedelta(days=15)).all()
    assert (c.groupby("partner_id")["start_date"].min() == p["joined_at"].reindex(c["partner_id"].unique())).all()


def test_items_resolve_after_they_open(sim):
    e = sim.events
    for opened, closed in (("ticket_opened", "ticket_resolved"), ("holdback_withheld", "holdback_released")):
        a = e.loc[e["event_type"] == opened].set_index("item_id")
        b = e.loc[e["event_type"] == closed].set_index("item_id")
        assert b.index.is_unique and b.index.isin(a.index).all()
        assert (b["timestamp"] > a.loc[b.index, "timestamp"]).all()
        assert (b["partner_id"] == a.loc[b.index, "partner_id"]).all()
    resolved = e.loc[e["event_type"] == "ticket_resolved", "amount"]
    assert (resolved > 0).all()


def test_simulated_data_meets_the_data_contract(sim):
    tables = validate_tables(sim.partners, sim.events, sim.contracts)
    assert tables.warnings == ()
    assert set(tables.events["event_type"]) == set(EVENT_TYPES)
    nps = tables.events.loc[tables.events["event_type"] == "nps_response", "amount"]
    assert nps.between(0, 10).all() and (nps == nps.round()).all()


def test_calibration_matches_the_retention_material(sim):
    p = sim.partners
    for year in (2023, 2024, 2025):
        start, end = pd.Timestamp(f"{year}-01-01", tz="UTC"), pd.Timestamp(f"{year + 1}-01-01", tz="UTC")
        at_start = (p["joined_at"] < start) & ~(p["churned_at"] < start)
        rate = ((p["churned_at"] >= start) & (p["churned_at"] < end) & at_start).sum() / at_start.sum()
        assert 0.10 <= rate <= 0.25, (year, rate)
    churners = sim.truth.dropna(subset=["churned_at"])
    # "most breakups come from accumulated unresolved problems"
    assert (churners["backlog_at_churn"] > 0).mean() >= 0.6
    assert churners["top_cause"].value_counts().index[0] == "responsiveness"
    assert set(sim.truth["segment"]) == set(SEGMENTS)
    # protective levers protect on average; every cause is active somewhere
    assert sim.hazard["contrib_development"].mean() < 0 and sim.hazard["contrib_loyalty"].mean() < 0
    assert (sim.hazard[CONTRIBS].abs().max() > 0.5).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_partners": 0}, "n_partners must be a positive integer, got 0"),
        ({"months": 0}, r"months must be an integer in \[1, 240\], got 0"),
        ({"start": "2023-01-15"}, "start must be the first day of a month as YYYY-MM-01, got '2023-01-15'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(**{"n_partners": 10, "months": 3, **kwargs})


@pytest.mark.slow
def test_campaigns_have_a_known_heterogeneous_effect_that_randomisation_recovers():
    """Retention campaigns (opt-in): action rows with campaign ids, hold-out rows only in randomised
    campaigns, each treated partner's true effect the share of its matching cause's log-odds (plus the
    backlash of those who dislike being approached), and on the randomised ones the treated-minus-control
    churn rate within a 99.9% interval of the true average effect."""
    from churnmodel.simulate.campaigns import ACTIONS

    sim = simulate(n_partners=4000, months=36, random_state=3, campaigns=True)
    assert simulate(n_partners=200, months=12, random_state=3).events.columns.tolist()[-1] == "detail"  # off: the log as before
    c, e = sim.campaigns, sim.events
    actions = e.loc[e["campaign_id"].notna()]
    assert set(actions["event_type"]) == set(ACTIONS) and len(actions) == len(c)
    assert c.loc[c["control"], "randomised"].all() and c.loc[~c["randomised"], "control"].eq(False).all()
    assert e.loc[e["campaign_id"].isna(), "control"].isna().all()
    hz = sim.hazard.set_index(["partner_id", "month"])
    cols = [f"contrib_{x}" for x in CAUSES]
    assert np.allclose(hz["baseline"] + hz[cols].sum(axis=1) + hz["action_effect"], hz["logit"])
    calls = c.loc[c["action"] == "escalation_call"].set_index(["partner_id", "month"])
    cause = hz.loc[calls.index, "contrib_responsiveness"].to_numpy()
    relief = calls["effect_logit"].to_numpy() + 0.7 * np.maximum(cause, 0)  # 0, or the backlash of one who dislikes it
    assert np.isclose(relief, 0).mean() > 0.8 and np.isclose(relief[~np.isclose(relief, 0)], 0.6).all()
    churned = sim.partners.set_index("partner_id")["churned_at"].reindex(c["partner_id"]).to_numpy()
    left = (churned >= c["month"].to_numpy()) & (churned < (c["month"] + pd.DateOffset(months=6)).to_numpy())
    r = c.assign(left=left).loc[c["randomised"]]
    for action, g in r.groupby("action"):
        treated, held = g.loc[~g["control"], "left"], g.loc[g["control"], "left"]
        observed, se = treated.mean() - held.mean(), np.sqrt(treated.var() / len(treated) + held.var() / len(held))
        # the truth holds the month's hazard for six months (the causes move on): a 99.9% interval
        assert abs(observed - (g["p_with"] - g["p_without"]).mean()) <= 3.3 * se, action
