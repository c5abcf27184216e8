import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnmodel.calibration import Calibrator
from churnmodel.errors import DataError
from churnmodel.model import ChurnModel, numeric_references
from churnmodel.train import split_by_time, train
from conftest import FUZZ_EXAMPLES


def grid(months):
    dates = pd.date_range("2024-01-01", periods=months, freq="MS", tz="UTC")
    return pd.DataFrame({"snapshot": np.repeat(dates, 2), "partner_id": ["a", "b"] * months})


def test_split_blocks_are_whole_dates_in_time_order_with_purge_gaps():
    split = split_by_time(grid(12), test_snapshots=2, valid_snapshots=2, purge_days=60)
    assert split.dates == {
        "train": ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"],  # <= 08-01 - 60 days
        "valid": ["2024-08-01", "2024-09-01"],  # the latest dates <= 11-01 - 60 days
        "test": ["2024-11-01", "2024-12-01"],
    }
    assert len(split.train) == 12 and len(split.valid) == 4 and len(split.test) == 4
    assert not set(split.train) & set(split.valid) and not set(split.valid) & set(split.test)


def test_split_refuses_too_little_history_naming_settings_that_fit():
    """Each refusal names values that split these dates (checked by splitting with them): fewer test and
    validation dates first, a shorter purge only when nothing else fits, else more snapshot dates."""
    with pytest.raises(DataError, match=r"only 4 labelled snapshot dates; train.test_snapshots \(3\) \+ train.valid_snapshots \(3\)"
                                        r".* These dates split with e.g. train.test_snapshots: 1, train.valid_snapshots: 1$"):
        split_by_time(grid(4), test_snapshots=3, valid_snapshots=3, purge_days=0)
    split_by_time(grid(4), test_snapshots=1, valid_snapshots=1, purge_days=0)
    with pytest.raises(DataError, match=r"not enough labelled snapshot dates for train \| 200-day purge.* These dates split with e.g. "
                                        r"train.test_snapshots: 2, train.valid_snapshots: 2, train.purge_days: 100 \(blocks closer"):
        split_by_time(grid(12), test_snapshots=2, valid_snapshots=2, purge_days=200)
    split_by_time(grid(12), test_snapshots=2, valid_snapshots=2, purge_days=100)
    with pytest.raises(DataError, match=r"only 2 labelled snapshot dates.* Use a more frequent snapshots.freq \(e.g. W-MON"):
        split_by_time(grid(2), test_snapshots=3, valid_snapshots=3, purge_days=0)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid", "beta", "none"])
def test_calibrator_matches_scikit_learn_keeps_the_ranking_and_never_says_0_or_1(method):
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    from churnmodel.calibration import EPS, ISOTONIC_BLEND

    rng = np.random.default_rng(0)
    raw = rng.normal(-2, 1.5, 3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(0.7 * raw - 0.5)))).astype(int)
    cal = Calibrator.fit(raw, y, method=method)
    probe = np.linspace(-8, 5, 50)
    sigmoid = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y).predict_proba(probe.reshape(-1, 1))[:, 1]
    if method == "isotonic":  # the isotonic steps, blended with a little of the sigmoid so that no two scores tie
        steps = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(raw, y).predict(probe)
        np.testing.assert_allclose(cal(probe), (1 - ISOTONIC_BLEND) * steps + ISOTONIC_BLEND * sigmoid, atol=1e-9)
    elif method == "sigmoid":
        np.testing.assert_allclose(cal(probe), sigmoid, atol=1e-9)
    elif method == "none":
        np.testing.assert_allclose(cal(probe), 1 / (1 + np.exp(-probe)), atol=1e-9)
    extreme = np.array([-1e6, -800.0, -40.0, 0.0, 40.0, 800.0, 1e6])
    p = cal(np.concatenate([probe, extreme]))
    assert (p >= EPS).all() and (p <= 1 - EPS).all()  # never exactly 0 or 1, even far out
    assert (np.diff(cal(probe)) > 0).all()  # strictly increasing: calibration never ties two scores
    assert Calibrator.from_dict(cal.__dict__) == cal
    old = {k: v for k, v in cal.__dict__.items() if k != "c"}  # model.json written before beta calibration existed
    assert Calibrator.from_dict(old).method == method


def test_calibration_keeps_the_ranking_on_the_sample(sample_training):
    from sklearn.metrics import roc_auc_score

    _, _, result, _ = sample_training
    y, p = result.predictions["label"].to_numpy(), result.predictions["probability"].to_numpy()
    raw = result.model.booster.predict(result.model.prepare(result.test_features), raw_score=True)
    assert not ((p == 0) | (p == 1)).any()
    assert roc_auc_score(y, p) >= roc_auc_score(y, raw) - 0.001


def test_sample_model_beats_the_baseline_and_is_calibrated(sample_training):
    _, _, result, _ = sample_training
    m = result.metrics
    assert m["auc"] > m["baseline_auc"] > 0.75
    assert m["auc_ci_low"] < m["auc"] < m["auc_ci_high"]
    assert m["ece"] < 0.03 and abs(m["prr_observed"] - m["prr_predicted"]) < 2.0
    assert m["lift_top"] > 3 and m["emp"] > 0
    assert set(result.segments["segment"]) <= {"strategic", "prospective", "transactional"}
    assert result.split.dates["test"] == ["2025-08-01", "2025-09-01", "2025-10-01"]
    assert result.model.metadata["calibration"] == "sigmoid"  # auto: Platt scaling (benchmarks/bench_calibration.py)


@pytest.mark.slow
def test_same_config_twice_gives_identical_predictions(sample_training):
    frame, plan, first, cfg = sample_training
    again = train(frame, plan, cfg)
    np.testing.assert_array_equal(first.predictions["probability"], again.predictions["probability"])
    assert first.model.booster.model_to_string() == again.model.booster.model_to_string()


def test_model_round_trips_through_plain_files(sample_training, tmp_path):
    _, _, result, _ = sample_training
    folder = result.model.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["booster.txt", "model.json"]
    loaded = ChurnModel.load(folder)
    np.testing.assert_array_equal(loaded.churn_probability(result.test_features), result.predictions["probability"])


def test_scoring_a_frame_without_the_models_columns_shows_the_diff(sample_training):
    _, _, result, _ = sample_training
    frame = result.test_features.drop(columns=["open_tickets", "meeting__days_since_last"]).rename(
        columns={"tenure_days": "tenure"})
    with pytest.raises(DataError, match=r"feature frame is missing 3 column\(s\) the model needs:\n  - tenure_days   \(nearest in frame: 'tenure'\)"):
        result.model.churn_probability(frame)


def test_one_class_block_is_refused(sample_training):
    frame, plan, _, cfg = sample_training
    flat = frame.assign(label=frame["label"].where(frame["label"].isna(), 0))
    with pytest.raises(DataError, match=r"the train block \(.*\) has only one class"):
        train(flat, plan, cfg)


@pytest.mark.heavy
def test_tuning_is_seeded(sample_training):
    frame, plan, _, cfg = sample_training
    frame = frame[frame["partner_id"].isin(frame["partner_id"].drop_duplicates().iloc[::3])]  # a third of the partners is enough
    lgbm = cfg.train.lightgbm.model_copy(update={"n_estimators": 300, "early_stopping_rounds": 50})
    tuned = cfg.model_copy(update={"train": cfg.train.model_copy(update={"tuning": cfg.train.tuning.model_copy(update={"trials": 2}),
                                                                           "bootstrap": 0, "baseline": False, "lightgbm": lgbm})})
    a, b = train(frame, plan, tuned), train(frame, plan, tuned)
    assert a.params != train(frame, plan, tuned.model_copy(update={"random_state": tuned.random_state + 1})).params  # the seed matters
    assert a.params == b.params
    np.testing.assert_array_equal(a.predictions["probability"], b.predictions["probability"])


# ---- a model file that was altered, truncated or is not ours: a DataError, never a crash or code run



def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list) and node:
        yield (*prefix, 0)
        yield from _paths(node[0], (*prefix, 0))


class _Texts(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing case; keep it short
        return "<the sample model's texts>"


@pytest.fixture(scope="module")
def model_texts(sample_training):
    import json

    texts = sample_training[2].model.to_texts()
    payload = json.loads(texts["model.json"])
    reference = payload.pop("reference")
    return _Texts({**texts, "small.json": json.dumps(payload), "reference": f'"reference": {json.dumps(reference)}'})


# a fresh dict per draw: st.just({}) was one object shared by every example, and an edit into it could make it
# contain itself (json.dumps: "Circular reference detected", a failure of the test, not of the model files)
_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(), st.just("../../etc/x"),
                    st.lists(st.integers(), max_size=2), st.builds(dict))


@settings(max_examples=FUZZ_EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.booleans(), _VALUES), min_size=1, max_size=3),
       cut=st.none() | st.floats(0, 1))
def test_fuzzed_model_files_load_or_raise_a_data_error(model_texts, edits, cut):
    import json

    from churnmodel.errors import DataError
    from churnmodel.model import ChurnModel

    texts = model_texts
    payload = json.loads(texts["small.json"])  # model.json without the drift reference (large, plain numbers: not fuzzed)
    paths = list(_paths(payload))
    for index, delete, value in edits:
        path, node = paths[index % len(paths)], payload
        try:
            for key in path[:-1]:
                node = node[key]
            if delete and isinstance(node, dict):
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced the parent
    booster = texts["booster.txt"] if cut is None else texts["booster.txt"][: int(cut * len(texts["booster.txt"]))]
    try:
        document = json.dumps(payload)  # the reference spliced back in as it was (parsing 1 MB per example was most of the test)
        document = document[:-1] + (", " if payload else "") + texts["reference"] + "}"
        ChurnModel.from_texts({"model.json": document, "booster.txt": booster}, source="m")
    except DataError as exc:
        assert str(exc).startswith("m:")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.just(float("nan")), st.sampled_from([0.0, 1.0, 2.0])),
                         min_size=3, max_size=3), min_size=1, max_size=60))
def test_drift_references_of_a_block_equal_the_column_by_column_definition(rows):
    """The deciles of every column taken at once (a model keeps them for drift checks) are those of the
    column's non-missing values alone, missing and constant columns included."""
    block = np.array(rows, dtype=np.float64)
    for j, got in enumerate(numeric_references(block)):
        finite = block[~np.isnan(block[:, j]), j]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, 11)[1:-1])) if len(finite) else np.array([])
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
        assert got == {"edges": edges.tolist(), "shares": (counts / len(block)).tolist(), "missing": float(np.isnan(block[:, j]).mean())}


def test_a_training_block_unlike_todays_partners_is_warned_about(sample_training, tmp_path):
    """A single cohort (every customer arrives in the first month): the training block holds only new
    customers, the latest snapshot only old ones, and training says so with the fix; the sample's
    steady network trains without it."""
    from churnmodel import pipeline
    from churnmodel.simulate.consumers import simulate_consumers

    assert sample_training[2].warnings == ()
    log = simulate_consumers(1500, months=36, random_state=2, arrival_days=30)
    log.partners.to_csv(tmp_path / "partners.csv", index=False)
    log.events.to_parquet(tmp_path / "events.parquet", index=False)
    (tmp_path / "churn.yaml").write_text("data:\n  partners: partners.csv\n  events: events.parquet\nrandom_state: 3\n"
                                         "label:\n  source: inactivity\n  inactive_days: 90\ntrain:\n  bootstrap: 0\n")
    said = []
    fitted = pipeline.fit(tmp_path / "churn.yaml", track=False, warn=said.append)
    shift = [w for w in fitted.warnings if w.startswith("population shift")]
    assert shift and shift[0] in said
    assert "tenure (days): median" in shift[0] and "Fix: start the grid later (snapshots.start)" in shift[0]


def test_a_feature_plan_of_ones_own_without_tenure_or_counts_trains():
    """The Python API takes any feature plan: one without ``tenure_days`` or event counts (the population-shift
    check's measures) trains; before, the check asked for ``tenure_days`` and training raised a KeyError."""
    from churnmodel.config import Config
    from churnmodel.features import FeatureInfo, FeaturePlan

    rng = np.random.default_rng(0)
    partners, dates = 300, pd.date_range("2024-01-01", periods=10, freq="MS", tz="UTC").as_unit("us")
    X = rng.normal(size=(partners * len(dates), 3))
    y = rng.random(len(X)) < 1 / (1 + np.exp(-(-2.0 + 1.5 * X[:, 0])))
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(
        partner_id=np.tile([f"P{i}" for i in range(partners)], len(dates)), snapshot=np.repeat(dates, partners), censored=False,
        label=pd.array(y.astype("int8"), dtype="Int8"))
    plan = FeaturePlan(event_types=(), amount_types=(), additive_types=(), windows=(30,), aggregations=("count",), recency=False,
                       lifetime_rate=False, trends=(), ratios=(), balances=(), scores=(), segments=None, contracts=False, attributes=(),
                       history_start="2023-01-01T00:00:00+00:00", levers={}, units={}, labels={},
                       features=tuple(FeatureInfo(n, "own", "profile", "value", n, n) for n in ("a", "b", "c")))
    config = Config.model_validate({"data": {"partners": "p", "events": "e"}, "label": {"horizon_days": 30},
                                    "train": {"test_snapshots": 2, "valid_snapshots": 2, "bootstrap": 0, "baseline": False}})
    result = train(frame, plan, config)
    assert not [w for w in result.warnings if w.startswith("population shift")] and result.metrics["auc"] > 0.7


def test_bands_and_campaign_stay_meaningful_at_a_high_churn_rate():
    """At a 40% base rate fixed thresholds (25% / 10%) would put nearly everyone in the high band: auto
    bands take the riskiest 10% / next 20% of the validation block; the campaign threshold is capped."""
    from churnmodel.config import BandsConfig, CampaignConfig
    from churnmodel.train import capped_threshold, fixed_bands

    rng = np.random.default_rng(0)
    p = rng.beta(4, 6, 5000)  # mean 0.4
    y = (rng.random(5000) < p).astype(int)
    bands = fixed_bands(BandsConfig(), p, churn_rate=0.4)
    assert bands.mode == "share" and np.mean(p >= bands.high) == pytest.approx(0.10, abs=0.005)
    assert np.mean((p >= bands.medium) & (p < bands.high)) == pytest.approx(0.20, abs=0.005)
    assert fixed_bands(BandsConfig(), p, churn_rate=0.05) == BandsConfig(mode="probability")  # a low rate: as configured
    assert fixed_bands(BandsConfig(mode="probability"), p, churn_rate=0.4).high == 0.25  # asked for: kept
    threshold, said = capped_threshold(0.05, p, y, CampaignConfig())
    assert np.mean(p >= threshold) == pytest.approx(0.5, abs=0.005)
    assert "expected profit alone would contact 100% of the validation block's partners" in said[0]
    assert "capped at train.campaign.max_share 50%" in said[0]
    assert capped_threshold(0.9, p, y, CampaignConfig()) == (0.9, [])
