"""Every MLflow call: the run (config, data fingerprint, versions, metrics, plots), the model and the registry.

The model is logged as an MLflow pyfunc built from code (:mod:`churnmodel.mlflow_model`) with the
model's plain files as artifacts and this package's code bundled, so it loads without pickle and
without churnmodel installed. No partner rows are logged: only aggregates, metadata and plots.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnmodel import plots
from churnmodel.config import Config
from churnmodel.errors import ChurnModelError
from churnmodel.explain import contributions, global_importance
from churnmodel.features import safe_name
from churnmodel.hazard import horizon_columns
from churnmodel.model import ChurnModel
from churnmodel.validation import InputTables

__all__ = [
    "TrackingError",
    "TrainSummary",
    "check_tracking",
    "data_fingerprint",
    "flatten",
    "load_churn_model",
    "log_training",
    "model_label",
    "model_signature",
    "resolve_model",
    "store_lock",
]

log = logging.getLogger("churnmodel")
PACKAGES = ("churnmodel", "lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow", "mlflow", "shap", "pydantic", "pyyaml")


class TrackingError(ChurnModelError):
    """The tracking server or store cannot be used."""


@dataclass
class TrainSummary:
    run_id: str
    experiment_id: str
    model_uri: str
    registered_name: str
    registered_version: str
    promoted: bool
    champion_version: str | None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def check_tracking(uri: str, *, timeout: float) -> None:
    """Fail before any training if the tracking store cannot be reached."""
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                if response.status != 200:
                    raise TrackingError(f"tracking server {uri} answered {response.status} on /health; is it an MLflow server?")
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(
                f"tracking server {uri} is not reachable ({reason}); start it, fix tracking.uri, "
                "or leave tracking.uri empty to use the embedded sqlite store"
            ) from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise TrackingError(f"tracking.uri {uri}: folder {folder} does not exist")


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"a.b.c": "value"} for MLflow params."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(value, default=str) if not isinstance(value, str) else value}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(config: Config, tables: InputTables, *, events_summary: dict | None = None) -> dict[str, Any]:
    """Hashes, sizes, row counts and date ranges of the inputs: enough to know the data, no rows.

    ``events_summary`` (rows, first, last, by_type) when the event log is not in ``tables`` (Spark)."""
    files = {"partners": config.data.partners, "events": config.data.events, "contracts": config.data.contracts}
    out: dict[str, Any] = {}
    for name, path in files.items():
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():  # a folder of Parquet parts (Spark): the hash of its parts' hashes
            parts = sorted(p for p in path.rglob("*") if p.is_file())
            sha = hashlib.sha256("".join(_sha256(p) for p in parts).encode()).hexdigest()
            out[name] = {"file": path.name, "sha256": sha, "bytes": sum(p.stat().st_size for p in parts)}
        else:
            out[name] = {"file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size}
    out["partners"]["rows"] = len(tables.partners)
    e = tables.events
    out["events"].update(events_summary or {
        "rows": len(e),
        "first": str(e["timestamp"].min()),
        "last": str(e["timestamp"].max()),
        "by_type": {str(k): int(v) for k, v in e["event_type"].value_counts().sort_index().items()},
    })
    if tables.contracts is not None:
        out["contracts"]["rows"] = len(tables.contracts)
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _git_commit(folder: Path) -> dict[str, str]:
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if commit.returncode != 0:
        return {}
    return {"git_commit": commit.stdout.strip(), "git_dirty": str(bool(dirty.stdout.strip())).lower()}


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise writers of an embedded sqlite store across processes (a lock file beside the database).

    Two trainings started together on a fresh store otherwise race to create its tables and one
    fails; MLflow's server stores handle their own concurrency, so other URIs are not locked.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as MLflow itself
        yield
        return
    path = Path(uri.removeprefix("sqlite:///") + ".lock")
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _experiment(mlflow, config: Config) -> str:
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(config.tracking.experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if config.tracking.uri.startswith("sqlite:///"):  # artifacts beside the database they belong to
        location = (Path(config.tracking.uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(config.tracking.experiment, artifact_location=location)
    except MlflowException:  # another training on the same server created it meanwhile
        found = client.get_experiment_by_name(config.tracking.experiment)
        if found is None:
            raise
        return found.experiment_id


def _requirements() -> list[str]:
    versions = _versions()
    return [f"{name}=={versions[name]}" for name in PACKAGES if name in versions and name != "churnmodel"]


def log_training(result, *, config: Config, tables: InputTables, promote: bool = False,
                 events_summary: dict | None = None) -> TrainSummary:
    """Log a :class:`~churnmodel.train.TrainingResult` as one MLflow run and register its model.

    The config file itself is logged too when ``config`` was loaded from one (``config.source``)."""
    import os
    import warnings

    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", message=".*input example was not provided.*")  # by design: no partner rows
    warnings.filterwarnings("ignore", message=".*AnyType.*")  # categoricals accept strings or categories on purpose
    mlflow.set_tracking_uri(config.tracking.uri)
    mlflow.set_registry_uri(config.tracking.uri)
    with store_lock(config.tracking.uri):
        return _log_run(mlflow, result, config=config, tables=tables, promote=promote, events_summary=events_summary)


def _log_run(mlflow, result, *, config, tables, promote, events_summary) -> TrainSummary:
    experiment_id = _experiment(mlflow, config)
    model = result.model
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mlflow.log_params({k: v[:6000] for k, v in flatten(config.model_dump(mode="json")).items()})
        mlflow.set_tags({**{f"version.{k}": v for k, v in _versions().items()},
                         **(_git_commit(config.source.parent) if config.source is not None else {}),
                         "label.source": config.label.source, "calibration": model.metadata["calibration"]})
        if config.source is not None:
            mlflow.log_artifact(str(config.source), "config")
        (tmp / "resolved_config.json").write_text(config.model_dump_json(indent=2))
        (tmp / "data_fingerprint.json").write_text(json.dumps(data_fingerprint(config, tables, events_summary=events_summary), indent=2))
        (tmp / "split.json").write_text(json.dumps(result.split.dates, indent=2))
        for name in ("resolved_config.json", "data_fingerprint.json", "split.json"):
            mlflow.log_artifact(str(tmp / name), "run")
        metrics = {f"test_{k}" if not k.startswith(("valid_", "baseline_", "cv_", "hazard_", "cox_", "single_oot_")) else k: v
                   for k, v in result.metrics.items()}
        for _, row in result.segments.iterrows():
            for key in ("auc", "churn_rate", "predicted_churn_rate", "lift_top", "prr_observed", "prr_predicted"):
                if pd.notna(row[key]):
                    metrics[f"segment_{row['segment']}_{key}"] = float(row[key])
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if pd.notna(v)})
        result.segments.to_csv(tmp / "segments.csv", index=False)
        model.plan.info().to_csv(tmp / "features.csv", index=False)
        mlflow.log_artifact(str(tmp / "segments.csv"), "evaluation")
        mlflow.log_artifact(str(tmp / "features.csv"), "evaluation")
        _log_plots(mlflow, result, tmp)
        _log_explanations(mlflow, result, tmp)

        model_dir = model.save(tmp / "model")
        signature = model_signature(model)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("mlflow_model.py")),
            artifacts={"model": str(model_dir)},
            code_paths=[str(Path(__file__).parent)],
            signature=signature,
            pip_requirements=_requirements(),
            registered_model_name=config.tracking.model_name,
        )
        version = str(info.registered_model_version)
        promoted, champion = _aliases(mlflow, config, version, metrics.get("test_auc"), force=promote)
        mlflow.set_tags({"registered_version": version, "promoted": str(promoted).lower()})
    return TrainSummary(run.info.run_id, experiment_id, f"models:/{config.tracking.model_name}/{version}",
                        config.tracking.model_name, version, promoted, champion,
                        {k: float(v) for k, v in metrics.items()})


def model_signature(model):
    """Feature columns in, ``churn_probability`` (and the survival columns, with a hazard model) out. Every input is optional (missing values are
    data); categoricals accept strings or pandas categories, the model maps them to its categories."""
    from mlflow.models import ModelSignature
    from mlflow.types import DataType
    from mlflow.types.schema import AnyType, ColSpec, Schema

    categorical = {f.name for f in model.plan.features if f.unit == "category"}
    inputs = Schema([ColSpec(AnyType() if name in categorical else DataType.double, name, required=False)
                     for name in model.features])
    outputs = ["churn_probability"]
    if model.hazard is not None:
        outputs += horizon_columns(model.hazard.horizons)
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(DataType.double, name) for name in outputs]))


def model_label(uri: str) -> tuple[str, str]:
    """models:/NAME@ALIAS or models:/NAME/VERSION -> (NAME, ALIAS or VERSION); other URIs -> (URI, "")."""
    if not uri.startswith("models:/"):
        return uri, ""
    rest = uri.removeprefix("models:/")
    name, sep, alias = rest.partition("@")
    if sep:
        return name, alias
    name, _, version = rest.partition("/")
    return name, version


def resolve_model(config: Config, model: ChurnModel | str | None) -> tuple[ChurnModel, str, str]:
    """(model, name, version): a model in memory, or loaded from a URI or folder (default: the
    configured name's champion), checking the tracking store first. An alias (models:/NAME@champion)
    is resolved to the registered version number it points at."""
    if isinstance(model, ChurnModel):
        return model, "(in memory)", ""
    uri = model or f"models:/{config.tracking.model_name}@champion"
    if ":/" in uri and not Path(uri).exists():
        check_tracking(config.tracking.uri, timeout=config.tracking.timeout_seconds)
    loaded = load_churn_model(uri, tracking_uri=config.tracking.uri)
    name, version = model_label(uri)
    if uri.startswith("models:/") and "@" in uri:
        import mlflow

        version = str(mlflow.MlflowClient(config.tracking.uri).get_model_version_by_alias(name, version).version)
    return loaded, name, version


def load_churn_model(uri: str, *, tracking_uri: str | None = None):
    """A :class:`~churnmodel.model.ChurnModel` from a folder or any MLflow model URI (models:/, runs:/, ...)."""
    local = Path(uri)
    if local.exists():
        for candidate in (local, local / "artifacts" / "model"):
            if (candidate / "model.json").is_file():
                return ChurnModel.load(candidate)
        raise TrackingError(f"{uri}: no churnmodel model here (expected model.json, or an MLflow model folder)")
    if ":/" not in uri:
        raise TrackingError(f"model {uri!r} not found: not a folder and not an MLflow URI (models:/name@champion, runs:/...)")
    import mlflow
    from mlflow.exceptions import MlflowException

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    try:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri.rstrip("/") + "/artifacts/model"))
    except (MlflowException, OSError) as exc:
        raise TrackingError(f"model {uri} cannot be loaded from {tracking_uri or 'the tracking store'}: {str(exc).splitlines()[0]}") from None
    return ChurnModel.load(folder)


def _log_explanations(mlflow, result, tmp: Path) -> None:
    """Global SHAP: mean |SHAP| per feature and per lever, the lever chart and dependence plots."""
    import matplotlib.pyplot as plt

    sample = result.test_features.sample(n=min(5000, len(result.test_features)), random_state=0)
    contrib = contributions(result.model, sample)
    per_feature, per_lever = global_importance(result.model, contrib)
    per_feature.to_csv(tmp / "shap_features.csv", index=False)
    per_lever.to_csv(tmp / "shap_levers.csv", index=False)
    mlflow.log_artifact(str(tmp / "shap_features.csv"), "explain")
    mlflow.log_artifact(str(tmp / "shap_levers.csv"), "explain")
    mlflow.log_metrics({f"shap_lever_{r.lever}": float(r.mean_abs_shap) for r in per_lever.itertuples()})
    figures = {"shap_levers.png": plots.plot_levers(per_lever)}
    X = result.model.prepare(sample)
    for rank, feature in enumerate(per_feature["feature"].head(4), start=1):
        j = result.model.features.index(feature)
        name = f"dependence_{rank}_{safe_name(feature)}.png"  # a name, never a path
        figures[name] = plots.plot_dependence(X[feature], contrib[:, j], title=per_feature["label_en"].iloc[rank - 1])
    for name, fig in figures.items():
        fig.savefig(tmp / name, dpi=100)
        plt.close(fig)
        mlflow.log_artifact(str(tmp / name), "plots")


def _log_plots(mlflow, result, tmp: Path) -> None:
    import matplotlib.pyplot as plt

    test = result.predictions
    y = test["label"].to_numpy()
    curves = {"LightGBM (calibrated)": test["probability"].to_numpy()}
    if "baseline_probability" in test:
        curves["logistic baseline"] = test["baseline_probability"].to_numpy()
    figures = {
        "roc.png": plots.plot_roc(y, curves),
        "pr.png": plots.plot_pr(y, curves),
        "calibration.png": plots.plot_calibration(y, test["probability"].to_numpy()),
        "lift_gain.png": plots.plot_lift(y, curves),
        "feature_importance.png": plots.plot_importance(result.model.booster, result.model.plan.info()),
    }
    figures["shap_summary.png"] = plots.plot_shap_summary(result.model, result.test_features)
    if result.survival is not None:
        figures["survival.png"] = plots.plot_survival(result.survival.curves, list(result.survival.hazard.horizons), result.metrics)
    for name, fig in figures.items():
        fig.savefig(tmp / name, dpi=100)
        plt.close(fig)
        mlflow.log_artifact(str(tmp / name), "plots")


def _aliases(mlflow, config: Config, version: str, auc: float | None, *, force: bool) -> tuple[bool, str | None]:
    """Alias the new version ``candidate``; make it ``champion`` if it beats the champion by the margin."""
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    name = config.tracking.model_name
    client.set_registered_model_alias(name, "candidate", version)
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        champion = None
    champion_auc = None
    if champion is not None and champion.run_id:
        champion_auc = client.get_run(champion.run_id).data.metrics.get("test_auc")
    # strictly better by the margin: an identical retrain stays candidate
    beats = champion is None or champion_auc is None or (auc is not None and auc > champion_auc + config.tracking.promote_margin)
    if force or beats:
        client.set_registered_model_alias(name, "champion", version)
        return True, version
    return False, str(champion.version) if champion is not None else None
