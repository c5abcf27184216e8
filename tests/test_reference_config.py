"""configs/reference.yaml documents every key: it must load, and hold every default."""

import yaml

from churnmodel.config import Config
from conftest import REPO


def _keys(model_fields, prefix=""):
    keys = set()
    for name, field in model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        sub = getattr(annotation, "model_fields", None)
        if sub:
            keys |= _keys(sub, prefix + name + ".")
    return keys


def _yaml_keys(node, prefix=""):
    keys = set()
    for name, value in node.items():
        keys.add(prefix + name)
        free_form = name in ("levers", "amount_units") or prefix == "data.columns."  # user-chosen keys
        if isinstance(value, dict) and not free_form:
            keys |= _yaml_keys(value, prefix + name + ".")
    return keys


def test_reference_config_loads_and_documents_every_key():
    path = REPO / "configs" / "reference.yaml"
    raw = yaml.safe_load(path.read_text())
    cfg = Config.model_validate(raw)
    assert cfg.model_dump(exclude={"data"}) == Config.model_validate({"data": raw["data"]}).model_dump(exclude={"data"})
    documented = _yaml_keys(raw)
    missing = sorted(k for k in _keys(Config.model_fields) if k not in documented and not k.startswith("data.columns."))
    assert missing == []
