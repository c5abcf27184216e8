"""Spark engine on a real local Spark (local[2], Java 17): same features, labels and scores as the local engine."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnmodel import spark as engine
from churnmodel.cli import app
from churnmodel.config import SparkConfig, load_config
from churnmodel.errors import DataError
from churnmodel.score import score as local_score
from conftest import tiny_events, write_project

pytestmark = [pytest.mark.spark, pytest.mark.slow]
AS_OF = pd.Timestamp("2026-01-01", tz="UTC")
SNAPSHOTS = "snapshots:\n  start: 2024-02-01\n  end: 2024-04-01\n  freq: MS\n"
#: The JVM's quick compiler only, and the serial collector: on the tests' small frames a local JVM spent 62 s of CPU
#: with HotSpot's defaults and 36 s with these on the sample's training frame (the same results: JIT flags only)
QUICK_JVM = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


@pytest.fixture(scope="module")
def spark():
    session = engine.session(SparkConfig(master="local[2]", partitions=4, conf=QUICK_JVM))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_inputs(spark, sample_config):
    return engine.read_inputs(spark, sample_config.data)


def assert_same(local: pd.DataFrame, remote: pd.DataFrame) -> None:
    assert list(local.columns) == list(remote.columns)
    assert len(local) == len(remote)
    for col in local.columns:
        a, b = local[col], remote[col]
        assert a.dtype == b.dtype, col
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-9, atol=1e-9, err_msg=col)
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col


def test_training_frame_equals_the_local_engine_on_the_sample(sample_training, spark_inputs, sample_config):
    frame, plan, _, _ = sample_training
    sframe, splan = engine.training_frame(spark_inputs, sample_config)
    assert splan.to_json() == plan.to_json()
    remote = engine.to_pandas(sframe, splan)
    local = frame.sort_values(["snapshot", "partner_id"], kind="stable").reset_index(drop=True)
    assert_same(local, remote)
    assert remote["label"].notna().sum() > 1000 and remote["segment"].nunique() == 3


@pytest.mark.parametrize("partitions", [1, 7])
def test_partitioning_changes_nothing(spark, tmp_path, partitions):
    """Network features (revenue share, strategic core) cross partners: they must not depend on the split."""
    from churnmodel.data import read_inputs
    from churnmodel.features import build_training_frame
    from churnmodel.simulate import simulate, write_simulation

    write_simulation(simulate(150, 24, random_state=3), tmp_path)
    (tmp_path / "config.yaml").write_text(
        "data:\n  partners: partners.csv\n  events: events.parquet\n  contracts: contracts.csv\n"
        f"spark:\n  partitions: {partitions}\n")
    cfg = load_config(tmp_path / "config.yaml")
    local, plan = build_training_frame(read_inputs(cfg.data), cfg)
    sframe, _ = engine.training_frame(engine.read_inputs(spark, cfg.data), cfg)
    remote = engine.to_pandas(sframe, plan)
    assert_same(local.sort_values(["snapshot", "partner_id"], kind="stable").reset_index(drop=True), remote)
    assert (remote["segment"] == "strategic").any()


def test_spark_scoring_equals_local_scoring(sample_training, sample_tables, spark_inputs, sample_config):
    model = sample_training[2].model
    local = local_score(model, sample_tables, as_of=AS_OF, config=sample_config, model_name="m", model_version="3")
    features = engine.scoring_frame(spark_inputs, model.plan, sample_config, AS_OF)
    scores, drift = engine.score(model, features, config=sample_config, model_name="m", model_version="3")
    remote = engine.collect(scores)
    for col in ("as_of", "scored_at"):
        remote[col] = pd.to_datetime(remote[col]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    assert_same(local.scores, remote)
    assert (remote["driver_1"] != "").sum() > 50  # reason codes came along
    assert set(drift["feature"]) == set(local.drift["feature"])


def test_spark_scoring_carries_the_retention_actions(campaigns, spark):
    """A model with uplift models: the Spark list has the best action, its lever, effect and gain, as the local one."""
    from churnmodel.data import read_inputs
    from churnmodel.model import ChurnModel

    _, config, folder, _ = campaigns
    cfg, model = load_config(config), ChurnModel.load(folder)
    local = local_score(model, read_inputs(cfg.data), as_of=AS_OF, config=cfg).scores
    scores, _ = engine.score(model, engine.scoring_frame(engine.read_inputs(spark, cfg.data), model.plan, cfg, AS_OF), config=cfg)
    remote = engine.collect(scores)
    for col in ("as_of", "scored_at"):
        remote[col] = pd.to_datetime(remote[col]).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
    assert_same(local, remote)
    assert {"best_action", "expected_gain"} <= set(remote.columns) and (remote["best_action"] != "").sum() > 100


def test_spark_scoring_carries_the_survival_curves(sample_training, sample_tables, spark_inputs, sample_config):
    import copy

    from churnmodel.hazard import horizon_columns
    from churnmodel.labels import data_end
    from churnmodel.person_period import observed_times, partner_folds
    from churnmodel.survival import fit_hazard

    frame, _, result, cfg = sample_training
    model = copy.copy(result.model)  # a quick hazard model (50 rounds): the engines must agree, whatever its quality
    time, event = observed_times(frame, observed_until=data_end(sample_tables))
    role = (partner_folds(frame["partner_id"].to_numpy(), folds=5, random_state=0) == 0).astype(int)
    model.hazard = fit_hazard(model.prepare(frame), time, event, role, horizons=cfg.label.horizons, params=result.params,
                              rounds=50, patience=10, countdowns=["contract__days_to_end"])
    local = local_score(model, sample_tables, as_of=AS_OF, config=cfg).scores
    scored, _ = engine.score(model, engine.scoring_frame(spark_inputs, model.plan, cfg, AS_OF), config=cfg)
    remote = engine.collect(scored)
    columns = horizon_columns(model.hazard.horizons)
    assert list(remote.columns[8:14]) == columns
    left, right = local.set_index("partner_id")[columns].sort_index(), remote.set_index("partner_id")[columns].sort_index()
    np.testing.assert_allclose(right.to_numpy(), left.to_numpy(), rtol=0, atol=1e-12)  # NaN medians in the same places


def test_registered_pyfunc_as_spark_udf_gives_the_same_probabilities(sample_training, sample_tables, spark_inputs, sample_config, tmp_path,
                                                                    fresh_store):
    import mlflow
    from pyspark.sql import functions as F

    from churnmodel.tracking import log_training

    _, _, result, cfg = sample_training
    cfg = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"uri": fresh_store(tmp_path / "mlflow.db")})})
    info = log_training(result, config=cfg, tables=sample_tables)
    mlflow.set_tracking_uri(cfg.tracking.uri)
    model = result.model
    features = engine.scoring_frame(spark_inputs, model.plan, sample_config, AS_OF)
    udf = mlflow.pyfunc.spark_udf(spark_inputs.spark, info.model_uri, result_type="double", env_manager="local")
    got = features.select("partner_id", udf(F.struct(*[F.col(f"`{c}`") for c in model.input_columns])).alias("p"))
    got = engine.collect(got)
    expected = local_score(model, sample_tables, as_of=AS_OF, config=sample_config).scores.set_index("partner_id")["churn_probability"]
    np.testing.assert_allclose(got.set_index("partner_id")["p"].reindex(expected.index), expected, atol=1e-12)


def test_bad_event_log_names_file_and_columns(spark, tmp_path):
    events = tiny_events()
    events.loc[1, "timestamp"] = "yesterday"
    events.loc[2, "amount"] = -5.0
    events.loc[3, "partner_id"] = "ghost"
    events.loc[4, "amount"] = 1.7e308
    events.loc[0, "timestamp"] = "9999-12-31T00:00:00Z"
    config = write_project(tmp_path, events=events)
    cfg = load_config(config)
    with pytest.raises(DataError) as err:
        engine.read_inputs(spark, cfg.data)
    text = str(err.value)
    assert "events.csv: column 'timestamp': 1 value(s) that are not dates" in text and "'yesterday'" in text
    assert "events.csv: column 'amount ': " not in text and "column 'amount': 1 negative amount" in text
    assert "column 'timestamp': 1 date(s) outside the supported range 1900-01-01 to 2200-01-01" in text and "9999-12-31" in text
    assert "column 'amount': 1 value(s) beyond +/-1e+15" in text
    events.loc[1, "timestamp"] = "2024-01-06T11:30:00Z"
    events.loc[0, "timestamp"] = "2024-01-05T10:00:00Z"
    events.loc[2, "amount"] = 5.0
    events.loc[4, "amount"] = 50.0
    config = write_project(tmp_path, events=pd.concat([events, events.iloc[[0]]]), extra_yaml="  unknown_partners: drop\n")
    inputs = engine.read_inputs(spark, load_config(config).data)
    assert inputs.events.count() == 4  # duplicate and the unknown partner's event dropped, each with a warning
    assert len(inputs.warnings) == 2 and "ghost" in inputs.warnings[0] and "1 exact duplicate" in inputs.warnings[1]
    assert "(data.duplicate_events: drop)" in inputs.warnings[1]
    # data.duplicate_events as on the local engine: keep both copies, or refuse them
    keep = write_project(tmp_path, events=pd.concat([events, events.iloc[[0]]]), extra_yaml="  unknown_partners: drop\n  duplicate_events: keep\n")
    inputs = engine.read_inputs(spark, load_config(keep).data)
    assert inputs.events.count() == 5 and len(inputs.warnings) == 1
    refuse = write_project(tmp_path, events=pd.concat([events, events.iloc[[0]]]), extra_yaml="  unknown_partners: drop\n  duplicate_events: error\n")
    with pytest.raises(DataError, match=r"events.csv: 1 event\(s\) repeat an earlier event in every column \(data.duplicate_events: error\)"):
        engine.read_inputs(spark, load_config(refuse).data)


def test_spark_scoring_refuses_inputs_without_what_the_model_needs(sample_training, spark, tmp_path):
    """Same contract as local scoring: attribute columns, linked item ids and contracts must be there."""
    model = sample_training[2].model
    partners = pd.DataFrame({"partner_id": ["p1", "p2"], "joined_at": ["2023-01-15", "2023-03-01"], "partner_type": "reseller",
                             "industry": "retail", "loyalty_tier": "gold"})
    events = tiny_events().iloc[:4].assign(item_id=["", None, "", ""])
    cfg = load_config(write_project(tmp_path, partners=partners, events=events))
    with pytest.raises(DataError) as err:
        engine.scoring_frame(engine.read_inputs(spark, cfg.data), model.plan, cfg, pd.Timestamp("2024-04-01", tz="UTC"))
    text = str(err.value)
    assert "partners.csv: missing partner column(s) ['region']" in text
    assert "events.csv: column 'item_id': 1 ticket_opened/ticket_resolved event(s) without an item id" in text
    assert "the model uses contract features but the config has no data.contracts" in text


def test_cli_runs_spark_in_a_real_process_and_bad_input_exits_2(spark, tmp_path):
    """A real process (which starts its own JVM) on a good project; the same command on a project whose event log
    has a bad timestamp, in this process (on the session the module's tests share: one JVM fewer to start)."""
    yaml = SNAPSHOTS + "features:\n  windows: [30]\n  trends: []\n  segments: {revenue_window_days: 30}\nengine: spark\nspark:\n  master: local[2]\n"
    yaml += f"  conf: {json.dumps(QUICK_JVM)}\n"  # JSON is YAML
    for folder in ("good", "bad"):
        (tmp_path / folder).mkdir()
    config = write_project(tmp_path / "good", extra_yaml=yaml)
    bad = tiny_events()
    bad.loc[0, "timestamp"] = "not a date"
    bad_config = write_project(tmp_path / "bad", events=bad, extra_yaml=yaml)
    out, out2 = tmp_path / "good" / "features.parquet", tmp_path / "bad" / "bad.parquet"
    script = str(Path(sys.executable).parent / "churnmodel")
    proc = subprocess.Popen([script, "features", "--config", str(config), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    refused = CliRunner().invoke(app, ["features", "--config", str(bad_config), "--out", str(out2)])
    _, good_err = proc.communicate(timeout=300)
    assert proc.returncode == 0, good_err
    written = pd.read_parquet(out)
    local = CliRunner().invoke(app, ["features", "--config", str(config), "--engine", "local", "--out", str(tmp_path / "l.parquet")])
    assert local.exit_code == 0, local.output
    expected = pd.read_parquet(tmp_path / "l.parquet")
    written = written.sort_values(["snapshot", "partner_id"]).reset_index(drop=True)[expected.columns]
    np.testing.assert_allclose(written.select_dtypes("number").to_numpy(float), expected.select_dtypes("number").to_numpy(float), rtol=1e-9, equal_nan=True)
    assert refused.exit_code == 2, refused.output
    assert "events.csv: column 'timestamp'" in refused.output and "'not a date'" in refused.output
    assert not out2.exists() and not list((tmp_path / "bad").glob(".bad.parquet*"))
    missing = CliRunner().invoke(app, ["features", "--config", str(config), "--out", str(tmp_path / "no" / "f.parquet")])
    assert missing.exit_code == 2 and "output folder does not exist" in missing.output


def test_a_campaign_log_with_hold_outs_gives_the_local_frame(spark, tmp_path):
    """A log with retention actions and hold-out rows (simulated campaigns): Spark reads the hold-out flag and
    leaves those rows out of the features and the profile exactly as the local engine does."""
    from churnmodel.data import read_inputs
    from churnmodel.features import build_training_frame
    from churnmodel.simulate import simulate, write_simulation

    write_simulation(simulate(150, 24, random_state=4, campaigns=True), tmp_path)
    actions = "".join(f"      {a}: {{lever: communication}}\n" for a in ("escalation_call", "qbr_offer", "holdback_release", "loyalty_bonus"))
    (tmp_path / "config.yaml").write_text("data:\n  partners: partners.csv\n  events: events.parquet\n  contracts: contracts.csv\n"
                                          f"  actions:\n    types:\n{actions}")
    cfg = load_config(tmp_path / "config.yaml")
    local, plan = build_training_frame(read_inputs(cfg.data), cfg)
    sframe, splan = engine.training_frame(engine.read_inputs(spark, cfg.data), cfg)
    assert splan.columns == plan.columns and "qbr_offer__count_30d" in plan.columns
    assert_same(local.sort_values(["snapshot", "partner_id"], kind="stable").reset_index(drop=True), engine.to_pandas(sframe, plan))
    events = pd.read_parquet(tmp_path / "events.parquet")
    bad = events.assign(control=events["control"].astype("string"))  # a text column, as an export might have it
    bad.loc[bad.index[0], "control"] = "maybe"  # an order row: not a flag, and not an action either
    bad.loc[bad.index[1], "control"] = "yes"
    bad.to_parquet(tmp_path / "events.parquet")
    with pytest.raises(DataError) as err:
        engine.read_inputs(spark, cfg.data)
    assert "column 'control': 1 value(s) that are not yes/no flags" in str(err.value)
    assert "column 'control': 1 hold-out row(s) whose event_type is not an action in data.actions.types" in str(err.value)
