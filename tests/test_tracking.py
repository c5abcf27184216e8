"""MLflow: what a run holds, the pickle-free model, aliases, a real server, failure before training."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnmodel.registry import TrackingError, check_tracking
from churnmodel.tracking import log_training
from conftest import REPO

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def _with(cfg, **tracking):
    return cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update=tracking)})


@pytest.fixture(scope="module")
def logged(sample_training, sample_tables, tmp_path_factory, fresh_store):
    _, _, result, cfg = sample_training
    project = tmp_path_factory.mktemp("project")
    cfg = _with(cfg, uri=fresh_store(project / "mlflow.db"))
    summary = log_training(result, config=cfg, tables=sample_tables)
    return summary, cfg, project, result


def _client(cfg):
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    return mlflow.MlflowClient(tracking_uri=cfg.tracking.uri, registry_uri=cfg.tracking.uri)


def test_run_holds_params_metrics_tags_and_artifacts(logged):
    summary, cfg, project, _ = logged
    client = _client(cfg)
    run = client.get_run(summary.run_id)
    assert run.data.params["label.horizon_days"] == "90" and run.data.params["train.lightgbm.max_depth"] == "3"
    for key in ("test_auc", "test_auc_ci_low", "test_pr_auc", "test_log_loss", "test_brier", "test_ece", "test_lift_top",
                "test_capture_top", "test_emp", "test_prr_observed", "test_prr_predicted", "baseline_auc",
                "segment_transactional_auc"):
        assert key in run.data.metrics, key
    assert run.data.tags["version.lightgbm"] and "git_commit" in run.data.tags
    names = {a.path for folder in ("config", "run", "evaluation", "plots") for a in client.list_artifacts(summary.run_id, folder)}
    assert {"config/partner_churn.yaml", "run/data_fingerprint.json", "evaluation/features.csv", "plots/roc.png",
            "plots/pr.png", "plots/calibration.png", "plots/lift_gain.png", "plots/feature_importance.png",
            "plots/shap_summary.png"} <= names
    assert (project / "mlartifacts").is_dir()
    local = Path(client.download_artifacts(summary.run_id, "run/data_fingerprint.json"))
    fingerprint = json.loads(local.read_text())
    import hashlib

    assert fingerprint["events"]["sha256"] == hashlib.sha256((REPO / "data/sample/events.parquet").read_bytes()).hexdigest()


def test_no_partner_rows_reach_mlflow(logged, sample_tables):
    summary, cfg, project, _ = logged
    ids = sorted(sample_tables.partners["partner_id"])
    for path in (project / "mlartifacts").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".yaml", ".txt", ".yml", ""):
            text = path.read_text(errors="ignore")
            assert not any(i in text for i in ids), path
    store = (project / "mlflow.db").read_bytes()  # params, tags, metric names, model versions
    assert not any(i.encode() in store for i in ids)
    run = _client(cfg).get_run(summary.run_id)
    assert not any(i in str(v) for i in ids[:200] for v in (*run.data.params.values(), *run.data.tags.values()))


def test_loading_a_model_never_unpickles_or_runs_stored_code(logged, monkeypatch):
    import pickle

    import mlflow

    from churnmodel.registry import load_churn_model

    summary, cfg, _project, result = logged

    def refuse(*args, **kwargs):
        raise AssertionError("a model load tried to unpickle or run the stored model code")

    for target, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (mlflow.pyfunc, "load_model")):
        monkeypatch.setattr(target, name, refuse)
    cloudpickle = pytest.importorskip("cloudpickle")
    monkeypatch.setattr(cloudpickle, "load", refuse)
    monkeypatch.setattr(cloudpickle, "loads", refuse)
    for uri in (summary.model_uri, f"models:/{cfg.tracking.model_name}@champion", f"runs:/{summary.run_id}/model"):
        model = load_churn_model(uri, tracking_uri=cfg.tracking.uri)
        np.testing.assert_allclose(model.churn_probability(result.test_features.head(50)),
                                   result.predictions["probability"].to_numpy()[:50], atol=1e-12)


def test_altered_model_files_are_refused_by_name(logged, tmp_path):
    from churnmodel.errors import DataError
    from churnmodel.model import ChurnModel

    folder = logged[3].model.save(tmp_path / "model")
    payload = json.loads((folder / "model.json").read_text())
    payload["plan"]["features"][0]["name"] = "../../../tmp/escape"
    (folder / "model.json").write_text(json.dumps(payload))
    with pytest.raises(DataError, match=r"unsafe feature\(s\) \['../../../tmp/escape'\]"):
        ChurnModel.load(folder)
    logged[3].model.save(folder)
    booster = (folder / "booster.txt").read_text()
    (folder / "booster.txt").write_text(booster[: len(booster) // 2])  # LightGBM's parser may crash on this
    with pytest.raises(DataError, match=r"booster\.txt does not match the SHA-256 recorded in model\.json"):
        ChurnModel.load(folder)


def test_model_is_pickle_free_and_scores_like_the_trained_model(logged):
    import mlflow

    summary, _cfg, project, result = logged
    model_files = [p for p in (project / "mlartifacts").rglob("*") if p.is_file() and "models" in p.parts]
    assert model_files and not [p for p in model_files if p.suffix in (".pkl", ".pickle", ".joblib", ".pyc", ".cloudpickle")]
    mlmodel = next(p for p in model_files if p.name == "MLmodel").read_text()
    # models from code: MLflow runs the logged source file, which reads booster.txt and model.json
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel and "mlflow_model.py" in mlmodel
    assert {p.name for p in model_files if p.parent.name == "model"} == {"booster.txt", "model.json"}
    loaded = mlflow.pyfunc.load_model(summary.model_uri)
    got = loaded.predict(result.test_features)["churn_probability"].to_numpy()
    np.testing.assert_allclose(got, result.predictions["probability"].to_numpy(), rtol=0, atol=1e-12)
    as_text = result.test_features.astype({c: "object" for c in result.test_features.select_dtypes("category")})
    np.testing.assert_allclose(loaded.predict(as_text)["churn_probability"].to_numpy(), got, atol=1e-12)


def test_aliases_candidate_and_champion(logged, sample_tables):
    summary, cfg, _, result = logged
    client = _client(cfg)
    name = cfg.tracking.model_name
    assert summary.promoted and str(client.get_model_version_by_alias(name, "champion").version) == summary.registered_version
    same = log_training(result, config=cfg, tables=sample_tables)  # margin 0: an identical retrain is not strictly better
    assert not same.promoted and same.champion_version == summary.registered_version
    strict = _with(cfg, promote_margin=0.5)  # the same model can never beat itself by 0.5 AUC
    second = log_training(result, config=strict, tables=sample_tables)
    assert not second.promoted and second.champion_version == summary.registered_version
    assert str(client.get_model_version_by_alias(name, "candidate").version) == second.registered_version
    forced = log_training(result, config=strict, tables=sample_tables, promote=True)
    assert forced.promoted and str(client.get_model_version_by_alias(name, "champion").version) == forced.registered_version


def test_monitoring_logs_to_the_configured_store_after_a_training_on_another(logged, tmp_path, request):
    """A notebook trains on one store, then monitors a model of another: the version is looked up and logged in
    the configured store, not in the registry the earlier training set for the process."""
    import mlflow

    from churnmodel.tracking import log_monitoring

    summary, cfg, _, _ = logged
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'other.db'}")  # what a training on another store leaves behind
    request.addfinalizer(lambda: mlflow.set_registry_uri(cfg.tracking.uri))
    runs = pd.DataFrame({"model_name": [cfg.tracking.model_name], "model_version": [summary.registered_version],
                         "as_of": [pd.Timestamp("2025-10-01", tz="UTC")], "estimated_auc": [0.8], "predicted_rate": [0.1],
                         "observed_rate": [0.12], "auc": [0.79], "verdict": ["watch"]})
    assert log_monitoring(runs, config=cfg) == [f"{cfg.tracking.model_name}/{summary.registered_version}"]
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri, registry_uri=cfg.tracking.uri)
    assert client.get_run(summary.run_id).data.metrics["monitor_auc"] == 0.79
    assert client.get_model_version(cfg.tracking.model_name, summary.registered_version).tags["monitor_verdict"] == "watch"


@pytest.mark.slow
def test_mlflow_models_predict_command(logged, tmp_path):
    summary, cfg, _project, result = logged
    rows = result.test_features.head(20)
    payload = {"dataframe_split": json.loads(rows.astype({c: "object" for c in rows.select_dtypes("category")}).to_json(orient="split", index=False))}
    (tmp_path / "in.json").write_text(json.dumps(payload))
    env = {**os.environ, "MLFLOW_TRACKING_URI": cfg.tracking.uri}
    done = subprocess.run([MLFLOW, "models", "predict", "-m", summary.model_uri, "-i", str(tmp_path / "in.json"), "-t", "json",
                           "-o", str(tmp_path / "out.json"), "--env-manager", "local"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    got = pd.DataFrame(out["predictions"])["churn_probability"].to_numpy()
    np.testing.assert_allclose(got, result.predictions["probability"].to_numpy()[:20], atol=1e-9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_tracking_server_fails_fast():
    port = _free_port()
    with pytest.raises(TrackingError, match=rf"tracking server http://127.0.0.1:{port} is not reachable"):
        check_tracking(f"http://127.0.0.1:{port}", timeout=5)


@pytest.mark.slow
def test_a_real_tracking_server_receives_the_run_and_the_model(sample_training, sample_tables, tmp_path, fresh_store):
    import mlflow

    _, _, result, cfg = sample_training
    port = _free_port()
    server = subprocess.Popen(
        [MLFLOW, "server", "--backend-store-uri", fresh_store(tmp_path / "server.db"), "--artifacts-destination",
         str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(uri + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")
        remote = _with(cfg, uri=uri, experiment="server-test", model_name="server-model")
        check_tracking(uri, timeout=5)
        summary = log_training(result, config=remote, tables=sample_tables)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        assert client.get_run(summary.run_id).data.metrics["test_auc"] == pytest.approx(result.metrics["auc"])
        assert str(client.get_model_version_by_alias("server-model", "champion").version) == "1"
        mlflow.set_tracking_uri(uri)
        got = mlflow.pyfunc.load_model("models:/server-model@champion").predict(result.test_features.head(5))
        np.testing.assert_allclose(got["churn_probability"].to_numpy(), result.predictions["probability"].to_numpy()[:5], atol=1e-12)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.slow
def test_two_trainings_at_once_on_one_store_both_land_and_are_identical(tmp_path):
    """Two processes (different PYTHONHASHSEED) train the same config on one fresh sqlite store at the
    same time: both register complete models, byte-identical, and score to identical files."""
    import hashlib

    from churnmodel.simulate import simulate, write_simulation

    write_simulation(simulate(300, 36, random_state=1), tmp_path / "sim")
    (tmp_path / "c.yaml").write_text("data:\n  partners: sim/partners.csv\n  events: sim/events.parquet\n"
                                     "  contracts: sim/contracts.csv\ntrain:\n  bootstrap: 50\ntracking:\n  uri: sqlite:///store/mlflow.db\n")
    (tmp_path / "store").mkdir()
    script = str(Path(sys.executable).with_name("churnmodel"))

    def start(seed: str, *args: str) -> subprocess.Popen:
        env = {**os.environ, "PYTHONHASHSEED": seed, "NO_COLOR": "1"}
        return subprocess.Popen([script, *args, "--config", str(tmp_path / "c.yaml")], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(procs: list[subprocess.Popen]) -> None:
        try:
            for proc in procs:
                _, err = proc.communicate(timeout=600)
                assert proc.returncode == 0, err[-3000:]
        finally:
            for proc in procs:
                proc.kill() if proc.poll() is None else None
                proc.communicate()

    finish([start(seed, "train", "--summary", str(tmp_path / f"s{seed}.json")) for seed in ("1", "2")])
    summaries = [json.loads((tmp_path / f"s{seed}.json").read_text()) for seed in ("1", "2")]
    assert sorted(s["registered_version"] for s in summaries) == ["1", "2"]
    import mlflow

    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    for s in summaries:
        run = client.get_run(s["run_id"])
        assert run.info.status == "FINISHED" and run.data.metrics["test_auc"] == s["metrics"]["test_auc"]
    models = sorted(tmp_path.glob("store/mlartifacts/**/artifacts/model"))
    digests = [{p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in m.iterdir()} for m in models]
    assert len(digests) == 2 and set(digests[0]) == {"booster.txt", "model.json"} and digests[0] == digests[1]
    finish([start(seed, "score", "--model", "models:/partner-churn/1", "--as-of", "2026-01-01",
                  "--out", str(tmp_path / f"scores{seed}.csv")) for seed in ("1", "2")])
    assert (tmp_path / "scores1.csv").read_bytes() == (tmp_path / "scores2.csv").read_bytes()
