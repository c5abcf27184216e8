from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnmodel.config import Config, DataConfig, load_config, parse_overrides
from churnmodel.errors import ConfigError
from conftest import FUZZ_EXAMPLES


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults_and_paths_relative_to_the_file(tmp_path):
    cfg = load_config(write(tmp_path, "data:\n  partners: in/p.csv\n  events: e.parquet\n"))
    assert cfg.data.partners == tmp_path.resolve() / "in" / "p.csv"
    assert cfg.data.contracts is None
    assert cfg.data.columns.events == {
        "partner_id": "partner_id", "timestamp": "timestamp", "event_type": "event_type", "amount": "amount"
    }
    assert cfg.data.naive_timezone == "UTC"
    assert cfg.random_state == 0


def test_column_mapping_merges_with_defaults(tmp_path):
    cfg = load_config(
        write(tmp_path, "data:\n  partners: p.csv\n  events: e.csv\n  columns:\n    events:\n      timestamp: event_time\n")
    )
    assert cfg.data.columns.events["timestamp"] == "event_time"
    assert cfg.data.columns.events["partner_id"] == "partner_id"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("data:\n  partners: p.csv\n  events: e.csv\n  evnts: x\n", r"data\.evnts: unknown key"),
        ("data:\n  partners: p.csv\n  events: e.csv\nlabel_typo: 1\n", r"label_typo: unknown key"),
        ("data:\n  partners: p.csv\n", r"data\.events: Field required"),
        ("data:\n  partners: p.csv\n  events: e.csv\nrandom_state: -1\n", r"random_state: .*greater than or equal to 0.*got -1"),
        ("data:\n  partners: p.csv\n  events: e.csv\nrandom_state: abc\n", r"random_state: .*integer.*got 'abc'"),
        ("data:\n  partners: p.csv\n  events: e.csv\n  unknown_partners: ignore\n", r"data\.unknown_partners: Input should be 'error' or 'drop'"),
        ("data:\n  partners: p.csv\n  events: e.csv\n  naive_timezone: Mars/Olympus\n", r"unknown time zone 'Mars/Olympus'"),
        (
            "data:\n  partners: p.csv\n  events: e.csv\n  columns:\n    events:\n      timestmp: t\n",
            r"data\.columns\.events: unknown column\(s\) \['timestmp'\].*allowed: \['amount', 'event_type', 'partner_id', 'timestamp'\]",
        ),
        ("data: [1, 2]\n", r"data: Input should be a valid dictionary"),
        ("- a\n- b\n", r"expected a mapping of settings at the top level, got list"),
        ("", r"the config file is empty"),
        ("data:\n  partners: [unclosed\n", r"not valid YAML at line 3"),
        ("data:\n  partners: p.csv\n  events: e.csv\n  actions:\n    types:\n      qbr: {lever: communication, spread: evenly}\n",
         r"data\.actions\.types\.qbr\.spread: Input should be 'lever' or 'uniform'"),
    ],
    ids=["typo-in-data", "unknown-section", "missing-events", "negative-seed", "seed-not-int",
         "bad-choice", "bad-timezone", "bad-column-key", "data-not-mapping", "top-level-list", "empty", "bad-yaml", "bad-spread"],
)
def test_invalid_configs_name_the_key_path(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(path) in str(info.value) or "YAML" in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_are_parsed_as_yaml_and_validated(tmp_path):
    path = write(tmp_path, "data:\n  partners: p.csv\n  events: e.csv\n")
    cfg = load_config(path, ["random_state=42", "data.unknown_partners=drop", "data.signed_amount_types=[refund]"])
    assert cfg.random_state == 42
    assert cfg.data.unknown_partners == "drop"
    assert cfg.data.signed_amount_types == ["refund"]
    with pytest.raises(ConfigError, match=r"data\.horizon: unknown key"):
        load_config(path, ["data.horizon=3"])


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", "data.x=[unclosed"])
def test_malformed_overrides(bad):
    with pytest.raises(ConfigError, match="--set"):
        parse_overrides([bad])


def test_config_is_immutable():
    cfg = Config(data=DataConfig(partners="p.csv", events="e.csv"))
    with pytest.raises(Exception, match=r"frozen"):
        cfg.random_state = 3


# ---- fuzzing: any YAML gives a Config or a ConfigError naming the key, never another exception


_KEYS = st.sampled_from(["data", "label", "features", "train", "score", "explain", "tracking", "spark", "snapshots", "engine",
                         "random_state", "horizon_days", "windows", "partners", "events", "lightgbm", "bands", "high",
                         "calibration", "top_n", "source", "frequency", "actions", "uri", "naive_timezone", "zzz"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=8),
                     st.sampled_from(["auto", "isotonic", "MS", "UTC", "p.csv", "../x", "inactivity", "local", "spark"]))
_TREES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
                      max_leaves=12)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(_KEYS, _TREES, max_size=5), overrides=st.lists(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["label.horizon_days", "train.top_share", "data.events", "x.y", "engine"]),
              st.text(max_size=6)), max_size=2))
def test_fuzzed_configs_load_or_name_the_key(tmp_path_factory, tree, overrides):
    import yaml

    folder = tmp_path_factory.mktemp("cfg")
    path = folder / "c.yaml"
    base = {"data": {"partners": "p.csv", "events": "e.csv"}}
    path.write_text(yaml.safe_dump({**base, **tree}, allow_unicode=True))
    try:
        load_config(path, overrides)
    except ConfigError as exc:
        assert str(exc).strip()


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_fuzzed_yaml_text_loads_or_is_named(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert "c.yaml" in str(exc) or ":" in str(exc)
