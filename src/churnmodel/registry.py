"""The model registry edge: reach the tracking store, load a model from a folder or any MLflow URI,
resolve aliases to versions, and promote a new version (candidate, champion).

Loading reads the model's plain files (no pickle, MLflow's stored model code is not run).
"""

from __future__ import annotations

import contextlib
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from churnmodel.config import Config
from churnmodel.errors import ChurnModelError
from churnmodel.model import ChurnModel

__all__ = ["TrackingError", "check_tracking", "client", "load_churn_model", "model_label", "promote_version", "quiet_mlflow", "resolve_model"]


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's own INFO lines ("Registered model ... already exists", "View run at ...") stay out of the
    console and notebooks while this package talks to MLflow; warnings and errors still show."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class TrackingError(ChurnModelError):
    """The tracking server or store cannot be used."""


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


def client(uri: str):
    """An MLflow client of the store at ``uri`` for runs *and* the model registry. ``MlflowClient(uri)`` alone takes
    its registry from the process's global setting when one was made (``mlflow.set_registry_uri``, as every
    training does): in a notebook that trained on another store it would look up versions there."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


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
    with quiet_mlflow():
        loaded = load_churn_model(uri, tracking_uri=config.tracking.uri)
    name, version = model_label(uri)
    if uri.startswith("models:/") and "@" in uri:
        version = str(client(config.tracking.uri).get_model_version_by_alias(name, version).version)
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


def promote_version(mlflow, config: Config, version: str, auc: float | None, *, force: bool) -> tuple[bool, str | None]:
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
