"""Batch scoring: ranked output in three formats, reproducible files, drift, bad input, interruption."""

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from browser import look
from churnmodel.cli import app
from churnmodel.evaluate import population_stability
from churnmodel.score import active_rows, score
from conftest import REPO

runner = CliRunner()
AS_OF = "2026-01-01"


@pytest.fixture(scope="module")
def model_dir(sample_training, tmp_path_factory):
    _, _, result, _ = sample_training
    return result.model.save(tmp_path_factory.mktemp("model") / "model")


def run_score(model_dir, out, *extra):
    return runner.invoke(app, ["score", "--config", "configs/partner_churn.yaml", "--model", str(model_dir),
                               "--as-of", AS_OF, "--out", str(out), *extra])


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_score_writes_a_ranked_explained_list(model_dir, tmp_path, suffix):
    out = tmp_path / f"scores{suffix}"
    result = run_score(model_dir, out)
    assert result.exit_code == 0, result.output
    assert "drift" not in result.output  # the sample's seasons and growing history are not drift (a real shift: below)
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out) if suffix == ".parquet" else pd.read_excel(out)
    if suffix == ".xlsx":  # the workbook is for people: its headers are the readable titles
        from churnmodel.texts import column_title

        frame = frame.rename(columns={column_title(c, "en"): c for c in [*frame.columns, "partner_id", "as_of", "churn_probability",
                                      "risk_band", "rank", "segment", "revenue", "revenue_at_risk", "driver_1", "lever_1",
                                      "action_1", "driver_3", "protective_factor", "model_name", "model_version", "scored_at"]})
    contract = ["partner_id", "as_of", "churn_probability", "risk_band", "rank", "segment", "revenue", "revenue_at_risk"]
    # the data contract's order in Parquet (machines); rank first where people open it (CSV for spreadsheets, XLSX)
    assert list(frame.columns[:8]) == (contract if suffix == ".parquet" else ["rank", *contract[:4], *contract[5:]])
    assert {"driver_1", "lever_1", "action_1", "driver_3", "protective_factor", "model_name", "model_version", "scored_at"} <= set(frame.columns)
    assert frame["revenue_at_risk"].is_monotonic_decreasing and frame["rank"].tolist() == list(range(1, len(frame) + 1))
    at_risk = frame["risk_band"].isin(["high", "medium"])
    assert at_risk.any() and (frame.loc[at_risk, "driver_1"].fillna("") != "").all()
    assert set(frame["risk_band"]) <= {"high", "medium", "low"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary files left


def test_same_inputs_give_the_same_file(model_dir, tmp_path):
    digests = []
    for name in ("a.parquet", "b.parquet"):
        assert run_score(model_dir, tmp_path / name).exit_code == 0
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_python_api_matches_the_model_and_uses_only_active_partners(sample_training, sample_tables, sample_config):
    _, _, result, _ = sample_training
    as_of = pd.Timestamp(AS_OF, tz="UTC")
    scored = score(result.model, sample_tables, as_of=as_of, config=sample_config)
    rows = active_rows(sample_tables, sample_config, as_of)
    assert set(scored.scores["partner_id"]) == set(rows["partner_id"])
    churned = sample_tables.partners.loc[sample_tables.partners["churned_at"] <= as_of, "partner_id"]
    assert not set(churned) & set(scored.scores["partner_id"])
    from churnmodel.features import build_features

    features = build_features(sample_tables, rows, result.model.plan)
    expected = pd.Series(result.model.churn_probability(features), index=features["partner_id"])
    np.testing.assert_allclose(scored.scores.set_index("partner_id")["churn_probability"], expected.reindex(scored.scores["partner_id"]), atol=1e-12)
    small = sample_config.model_copy(update={"score": sample_config.score.model_copy(update={"chunk_partners": 300})})
    chunked = score(result.model, sample_tables, as_of=as_of, config=small)
    pd.testing.assert_frame_equal(chunked.scores, scored.scores)  # chunking changes nothing


def test_psi_by_hand():
    ref = {"edges": [1.0], "shares": [0.5, 0.5], "missing": 0.0}
    assert population_stability(ref, np.array([0.0, 2.0] * 50)) == pytest.approx(0.0, abs=1e-9)
    shifted = population_stability(ref, np.array([2.0] * 90 + [0.0] * 10))
    assert shifted == pytest.approx((0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5), rel=1e-6)


def test_drift_warns_and_strict_stops_without_output(model_dir, tmp_path):
    events = pd.read_parquet(REPO / "data/sample/events.parquet")
    shifted = events.assign(amount=np.where(events["event_type"] == "order", events["amount"] * 20, events["amount"]))
    shifted.to_parquet(tmp_path / "events.parquet", index=False)
    common = ["--set", f"data.events={tmp_path / 'events.parquet'}"]
    out = tmp_path / "s.csv"
    result = run_score(model_dir, out, *common, "--report", str(tmp_path / "r.html"))
    assert result.exit_code == 0 and "warning: drift:" in result.output and "order__" in result.output
    page = (tmp_path / "r.html").read_text(encoding="utf-8")  # in plain words, with what to do
    assert "input(s) look different from the data the model learned from: orders:" in page and "retrain the model" in page
    (tmp_path / "r.html").unlink()
    out.unlink()
    result = run_score(model_dir, out, *common, "--strict")
    assert result.exit_code == 2 and "exceeds score.drift_fail" in result.output and not out.exists()


def test_bad_inputs_exit_2_and_write_nothing(model_dir, tmp_path, fresh_store):
    out = tmp_path / "s.csv"
    result = run_score(model_dir, tmp_path / "missing" / "s.csv")
    assert result.exit_code == 2 and "output folder does not exist" in result.output
    result = runner.invoke(app, ["score", "--config", "configs/partner_churn.yaml", "--model", str(model_dir), "--as-of", "2025-06-01", "--out", str(out)])
    assert result.exit_code == 2 and "event(s) are dated after --as-of 2025-06-01" in result.output
    result = runner.invoke(app, ["score", "--config", "configs/partner_churn.yaml", "--model", "models:/nope@champion",
                                 "--set", f"tracking.uri={fresh_store(tmp_path / 'm.db')}", "--as-of", AS_OF, "--out", str(out)])
    assert result.exit_code == 2 and "model models:/nope@champion cannot be loaded" in result.output
    assert not out.exists()


@pytest.mark.slow
def test_terminated_scoring_leaves_no_output(model_dir, tmp_path):
    out = tmp_path / "scores.parquet"
    script = Path(sys.executable).with_name("churnmodel")
    proc = subprocess.Popen([str(script), "score", "--config", "configs/partner_churn.yaml", "--model", str(model_dir), "--as-of", AS_OF,
                             "--out", str(out), "--set", "score.chunk_partners=50", "--set", "explain.scope=all"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = []
    for line in proc.stderr:  # off a terminal the CLI prints one line per finished stage: wait for the inputs
        seen.append(line.decode())
        if seen[-1].startswith("reading inputs"):
            break
    time.sleep(0.5)  # inside the chunk loop: 25 chunks, every partner explained
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert still_running, "".join(seen) + err.decode()[-2000:]
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("lang", "heading"), [("en", "Top partners by revenue at risk"), ("ru", "Партнёры с наибольшей выручкой под риском")])
def test_report_is_self_contained_with_images_and_the_top_table(model_dir, tmp_path, lang, heading):
    report = tmp_path / "report.html"
    result = run_score(model_dir, tmp_path / "s.parquet", "--report", str(report), "--lang", lang)
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3 and heading in page  # distribution, why (top partners), levers
    assert "http://" not in page and "https://" not in page and "<script" not in page  # nothing to fetch
    scored = pd.read_parquet(tmp_path / "s.parquet")
    top = scored.loc[scored["action_1"] != ""].iloc[0]  # the top list shows the partners with an action
    assert top["partner_id"] in page and ("Partner Retention Rate" in page or "Коэффициент удержания" in page)
    quiet = scored.loc[scored["action_1"] == ""]
    assert not any(f">{pid}<" in page for pid in quiet["partner_id"].head(20))  # no empty driver/action rows
    assert f"{len(quiet):,}".replace(",", "," if lang == "en" else "\u00a0") in page
    if lang == "ru":
        assert "высокий" in page and ("перспективный" in page or "транзакционный" in page)
    assert ("Nothing to do" in page or "Действий не нужно" in page) and "PSI" in page  # the data check, detail in the appendix
    seen = look(report, tmp_path)  # laid out by a real browser: nothing cut off or empty
    assert seen["problems"] == [] and seen["images"] == 3 and seen["sections"] >= 7, seen
    from PIL import Image

    pixels = np.asarray(Image.open(seen["screenshot"]).convert("L"))
    assert (pixels < 200).mean() > 0.02  # the first screen shows figures and text, not a blank page


def test_precomputed_feature_table_scores_the_same(model_dir, tmp_path, sample_training, sample_tables, sample_config):
    from churnmodel.features import build_features
    from churnmodel.model import ChurnModel

    model = ChurnModel.load(model_dir)
    rows = active_rows(sample_tables, sample_config, pd.Timestamp(AS_OF, tz="UTC"))
    build_features(sample_tables, rows, model.plan).to_parquet(tmp_path / "features.parquet")
    assert run_score(model_dir, tmp_path / "a.parquet").exit_code == 0
    result = run_score(model_dir, tmp_path / "b.parquet", "--features", str(tmp_path / "features.parquet"))
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet"))
    pd.read_parquet(tmp_path / "features.parquet").drop(columns=["open_tickets"]).to_parquet(tmp_path / "bad.parquet")
    result = run_score(model_dir, tmp_path / "c.parquet", "--features", str(tmp_path / "bad.parquet"))
    assert result.exit_code == 2 and "feature frame is missing 1 column(s) the model needs:\n  - open_tickets" in result.output


@pytest.mark.slow
def test_scores_equal_mlflow_pyfunc_on_the_feature_frame(sample_training, sample_tables, sample_config, tmp_path, fresh_store):
    import mlflow

    from churnmodel.features import build_features
    from churnmodel.tracking import log_training

    _, _, result, cfg = sample_training
    cfg = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"uri": fresh_store(tmp_path / "mlflow.db")})})
    info = log_training(result, config=cfg, tables=sample_tables)
    out = tmp_path / "s.parquet"
    done = runner.invoke(app, ["score", "--config", "configs/partner_churn.yaml", "--set", f"tracking.uri={cfg.tracking.uri}",
                               "--as-of", AS_OF, "--out", str(out)])  # default model: models:/partner-churn@champion
    assert done.exit_code == 0, done.output
    scores = pd.read_parquet(out).set_index("partner_id")
    assert scores["model_name"].iloc[0] == "partner-churn" and scores["model_version"].iloc[0] == info.registered_version  # the number, not the alias
    rows = active_rows(sample_tables, sample_config, pd.Timestamp(AS_OF, tz="UTC"))
    features = build_features(sample_tables, rows, result.model.plan)
    mlflow.set_tracking_uri(cfg.tracking.uri)
    pyfunc = mlflow.pyfunc.load_model(info.model_uri).predict(features[result.model.input_columns])
    expected = pd.Series(pyfunc["churn_probability"].to_numpy(), index=features["partner_id"])
    np.testing.assert_allclose(scores["churn_probability"], expected.reindex(scores.index), atol=1e-12)


@pytest.mark.slow
def test_what_depends_on_training_comes_from_the_model(sample_training, sample_tables, sample_config, tmp_path):
    """A champion trained with other bands and another horizon is scored and described as it was trained,
    whatever the config used to score says."""
    import copy

    from churnmodel.score import for_model

    _, _, result, _ = sample_training
    model = copy.copy(result.model)
    old_style = {k: v for k, v in model.metadata.items() if k != "label"}  # saved before the label section was stored
    model.metadata = {**old_style, "horizon_days": 60, "bands": {"high": 0.5, "medium": 0.3}}
    scoring = for_model(sample_config, model)
    assert scoring.label.horizon_days == 60 and scoring.score.bands.high == 0.5 and scoring.score.bands.medium == 0.3
    assert for_model(sample_config, result.model) is sample_config  # trained with this config: nothing to change
    scores = score(model, sample_tables, as_of=pd.Timestamp("2026-01-01", tz="UTC"), config=sample_config).scores
    p = scores["churn_probability"]
    assert (scores.loc[p >= 0.5, "risk_band"] == "high").all() and (scores.loc[(p >= 0.3) & (p < 0.5), "risk_band"] == "medium").all()
    assert (scores.loc[p < 0.3, "risk_band"] == "low").all()
    # the whole label section as trained: another source (who counts as active) and horizon
    trained = {**sample_config.label.model_dump(mode="json"), "source": "inactivity", "inactive_days": 120, "horizon_days": 60,
               "horizons": None}
    model.metadata = {**model.metadata, "label": trained}
    scoring = for_model(sample_config, model)
    assert scoring.label.source == "inactivity" and scoring.label.inactive_days == 120 and scoring.label.horizon_days == 60
    from churnmodel import pipeline

    run = pipeline.score(sample_config, as_of="2026-01-01", model=model, report=tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "within 60 days" in page and "within 90 days" not in page  # the headline describes the model as trained
    assert len(run.scores) != len(scores)  # active by the model's inactivity rule, not the config's churned_at


def test_bands_set_by_shares_are_scored_and_described_as_trained(sample_training, sample_config, tmp_path):
    """A model trained at a high churn rate keeps share-based bands: scoring uses its thresholds and the
    report says they are the riskiest shares at training, in both languages."""
    import copy

    from churnmodel import pipeline
    from churnmodel.score import for_model

    model = copy.copy(sample_training[2].model)
    model.metadata = {**model.metadata, "bands": {"high": 0.3, "medium": 0.12, "mode": "share", "high_share": 0.1, "medium_share": 0.2}}
    assert for_model(sample_config, model).score.bands.mode == "share"
    for lang, text in (("en", "High: the riskiest 10% of partners when the model was trained (a churn probability of 30% or more)"),
                       ("ru", "Высокий: 10% партнёров с наибольшим риском при обучении модели (вероятность ухода от 30%)")):
        run = pipeline.score(sample_config, as_of="2026-01-01", model=model, report=tmp_path / f"r_{lang}.html", lang=lang)
        assert text in (tmp_path / f"r_{lang}.html").read_text(encoding="utf-8")
        p = run.scores["churn_probability"]
        assert (run.scores.loc[p >= 0.3, "risk_band"] == "high").all() and (run.scores.loc[p < 0.12, "risk_band"] == "low").all()
