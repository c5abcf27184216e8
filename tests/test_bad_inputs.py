"""The bad-input catalogue: every command, fed what CRM and accounting exports really look like.

Each failing case asserts exit status 2, a message naming the file, column and row (where they
apply) and the fix, no traceback, nothing new in the project folder and the inputs byte-identical.
The tolerated cases (duplicates, BOM, cp1251, Excel, unseen values) must work and say what they did.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnmodel.cli import app
from conftest import tiny_contracts, tiny_events, tiny_partners

runner = CliRunner()
AS_OF = "2024-04-01"


@dataclass
class Project:
    """A tiny project shaped like the sample (so the sample's model can score it); cases edit it."""

    partners: pd.DataFrame = field(default_factory=lambda: tiny_partners().assign(
        partner_type=["reseller", "supplier", "contractor"], region=["Central", "South", "Volga"],
        industry="retail", loyalty_tier="gold"))
    events: pd.DataFrame = field(default_factory=lambda: tiny_events().assign(item_id=["", "t1", "", "", ""]))
    contracts: pd.DataFrame | None = field(default_factory=tiny_contracts)
    events_name: str = "events.csv"
    yaml: str = ""
    raw: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes written as is

    def write(self, root: Path) -> Path:
        self.partners.to_csv(root / "partners.csv", index=False)
        if self.events_name.endswith(".parquet"):
            self.events.to_parquet(root / self.events_name, index=False)
        else:
            self.events.to_csv(root / self.events_name, index=False)
        lines = ["data:", "  partners: partners.csv", f"  events: {self.events_name}"]
        if self.contracts is not None:
            self.contracts.to_csv(root / "contracts.csv", index=False)
            lines.append("  contracts: contracts.csv")
        for name, content in self.raw.items():
            (root / name).write_bytes(content)
        (root / "config.yaml").write_text("\n".join(lines) + "\n" + self.yaml)
        return root / "config.yaml"


@dataclass(frozen=True)
class Bad:
    id: str
    command: str
    change: Callable[[Project], None]
    expect: tuple[str, ...]  # fragments the message must contain (file, column, row, fix)
    args: tuple[str, ...] = ()


def _set(frame_name: str, row: int, column: str, value):
    def change(p: Project) -> None:
        frame = getattr(p, frame_name).astype({column: "object"}) if column in getattr(p, frame_name) else getattr(p, frame_name)
        frame.loc[row, column] = value
        setattr(p, frame_name, frame)

    return change


def _do(*steps):
    def change(p: Project) -> None:
        for step in steps:
            step(p)

    return change


def _attr(name, func):
    return lambda p: setattr(p, name, func(getattr(p, name)))


def _yaml(text: str):
    return lambda p: setattr(p, "yaml", p.yaml + text)


def _raw(name: str, content: bytes):
    return lambda p: p.raw.__setitem__(name, content)


def _semicolons(p: Project) -> None:
    p.raw["partners.csv"] = p.partners.to_csv(index=False, sep=";").encode()


def _cp1251(p: Project) -> None:
    p.raw["partners.csv"] = p.partners.assign(region=["Центр", "Юг", "Волга"]).to_csv(index=False).encode("cp1251")


def _integer_timestamps(p: Project) -> None:
    p.events_name = "events.parquet"
    p.events = p.events.assign(timestamp=[1704448800, 1704541800, 1706778000, 1709283600, 1709366400])


CASES = [
    # ---- columns, types and values (validate: the contract itself)
    Bad("renamed column", "validate", _attr("events", lambda e: e.rename(columns={"event_type": "type"})),
        ("events.csv: missing required column 'event_type'", "nearest column in the file: 'type'",
         "data.columns.events.event_type: type", "Column diff")),
    Bad("missing column", "validate", _attr("partners", lambda f: f.drop(columns="joined_at")),
        ("partners.csv: missing required column 'joined_at'", "data.columns.partners.joined_at", "-joined_at")),
    Bad("decimal comma", "validate", _set("events", 1, "amount", "12,5"),
        ("events.csv: column 'amount': 1 non-numeric value(s) at row 2", "write 12.5, not 12,5")),
    Bad("text in a number column", "validate", _set("contracts", 0, "value", "twelve"),
        ("contracts.csv: column 'value': 1 non-numeric value(s) at row 1", "expected a number")),
    Bad("unparseable timestamp", "validate", _set("events", 2, "timestamp", "yesterday"),
        ("events.csv: column 'timestamp': 1 unparseable date/time value(s) at row 3", "'yesterday'", "expected ISO-8601")),
    Bad("mixed time zones", "validate", _set("events", 3, "timestamp", "2024-03-01 09:00:00"),
        ("events.csv: column 'timestamp': mixes timestamps with a UTC offset (rows 1, 2, 3", "and without one (row 4)",
         "data.naive_timezone")),
    Bad("timestamps as integers", "validate", _integer_timestamps,
        ("events.parquet: column 'timestamp': expected dates or timestamps, got int64",)),
    Bad("event without a time", "validate", _set("events", 4, "timestamp", ""),
        ("events.csv: column 'timestamp': 1 event(s) without a timestamp (NaT) at row 5", "every event needs a time")),
    Bad("event without a type", "validate", _set("events", 0, "event_type", " "),
        ("events.csv: column 'event_type': 1 empty value(s) at row 1", "every event needs a type")),
    Bad("empty partner id", "validate", _set("partners", 1, "partner_id", ""),
        ("partners.csv: column 'partner_id': 1 empty value(s) at row 2", "every row needs a partner_id")),
    Bad("duplicate partner ids", "validate", _set("partners", 2, "partner_id", "p2"),
        ("partners.csv: column 'partner_id': 1 duplicated partner id(s) (e.g. 'p2') at rows 2, 3",
         "exactly one row per partner")),
    Bad("events for unknown partners", "validate", _set("events", 4, "partner_id", "p9"),
        ("events.csv: column 'partner_id': 1 event(s) for 1 partner id(s) not in the partners table (e.g. 'p9') at row 5",
         "data.unknown_partners: drop")),
    Bad("contracts for unknown partners", "validate", _set("contracts", 1, "partner_id", "p7"),
        ("contracts.csv: column 'partner_id': 1 contract(s) for partner id(s) not in the partners table (e.g. 'p7') at row 2",)),
    Bad("negative amount", "validate", _set("events", 0, "amount", -1200.0),
        ("events.csv: column 'amount': 1 negative amount(s) at row 1", "{'order': 1}", "data.signed_amount_types")),
    Bad("infinite amount", "validate", _set("events", 2, "amount", "inf"),
        ("events.csv: column 'amount': 1 infinite value(s) at row 3", "expected a finite number")),
    Bad("NaN contract value", "validate", _set("contracts", 1, "value", None),
        ("contracts.csv: column 'value': 1 empty value(s) at row 2", "0 is allowed")),
    Bad("negative contract value", "validate", _set("contracts", 0, "value", -5.0),
        ("contracts.csv: column 'value': 1 negative value(s) at row 1",)),
    Bad("churned before joining", "validate", _set("partners", 1, "churned_at", "2022-01-01"),
        ("partners.csv: column 'churned_at': 1 partner(s) churned before they joined at row 2", "on or after joined_at")),
    Bad("contract ends before it starts", "validate", _set("contracts", 0, "end_date", "2022-01-15"),
        ("contracts.csv: column 'end_date': 1 contract(s) end before they start at row 1",)),
    # ---- files
    Bad("empty file", "validate", _raw("partners.csv", b""),
        ("partners.csv: the file is empty (0 bytes)", "expected a header row")),
    Bad("header only", "validate", _raw("events.csv", b"partner_id,timestamp,event_type,amount\n"),
        ("events.csv: the file has a header but no rows",)),
    Bad("semicolon export, comma configured", "validate", _do(_semicolons, _yaml("  csv_delimiter: ','\n")),
        ("partners.csv: the file reads as a single column", "semicolon-delimited", "data.csv_delimiter: ';'")),
    Bad("cp1251 export", "validate", _cp1251,
        ("partners.csv: not valid utf-8 text", "Windows-1251", "data.csv_encoding: cp1251")),
    Bad("ragged CSV", "validate", _raw("contracts.csv", b"partner_id,start_date,end_date,value\np1,2023-01-15,2024-01-15,1000,EXTRA\n"),
        ("contracts.csv: cannot parse as CSV with delimiter ','", "as many fields as the header")),
    Bad("broken Excel workbook", "validate", _do(_raw("partners.xlsx", b"partner_id,joined_at\np1,2023-01-01\n"),
                                                 _yaml("  partners: partners.xlsx\n")),
        ("partners.xlsx: not a readable Excel workbook",)),
    Bad("unsupported file type", "validate", _do(_raw("events.json", b"[]"), _yaml("  events: events.json\n")),
        ("events.json: unsupported file type '.json' for data.events", "use .csv")),
    Bad("missing input file", "features", _yaml("  contracts: nowhere.csv\n"),
        ("data.contracts: file not found", "nowhere.csv"), ("--out", "f.parquet")),
    # ---- config
    Bad("unknown config key", "features", _yaml("  evnts: x.csv\n"), ("data.evnts: unknown key",), ("--out", "f.parquet")),
    Bad("wrong config type", "train", _yaml("label:\n  horizon_days: soon\n"),
        ("label.horizon_days: Input should be a valid integer",)),
    Bad("horizon <= 0", "train", _yaml("label:\n  horizon_days: 0\n"), ("label.horizon_days: Input should be greater than 0",)),
    Bad("windows unsorted", "features", _yaml("features:\n  windows: [90, 30]\n"),
        ("features.windows: windows must be strictly increasing",), ("--out", "f.parquet")),
    Bad("unknown time zone", "validate", _yaml("  naive_timezone: Mars/Olympus\n"),
        ("data.naive_timezone", "unknown time zone 'Mars/Olympus'", "Europe/Moscow")),
    Bad("YAML syntax error", "validate", _yaml("label: [unclosed\n"), ("config.yaml: not valid YAML",)),
    Bad("malformed --set", "train", lambda p: None, ("--set",), ("--set", "novalue")),
    Bad("too little history to train", "train", lambda p: None,
        ("only 2 labelled snapshot dates", "train.test_snapshots (3) + train.valid_snapshots (3)", "snapshots.freq")),
    Bad("too little history for the windows set", "train", _yaml("features:\n  windows: [30, 90, 365]\n"),
        ("no snapshot dates between 2025-01-04 and 2024-07-01", "Set snapshots.start earlier", "features.windows: auto (here [7, 14, 30])")),
    # ---- scoring, explaining, outputs
    Bad("events after --as-of", "score", lambda p: None,
        ("events.csv: 2 event(s) are dated after --as-of 2024-02-15", "pass the export date as --as-of"), ("--as-of", "2024-02-15")),
    Bad("model folder does not exist", "score", lambda p: None, ("model", "not found"), ("--model", "no-such-model")),
    Bad("registered model does not exist", "score", _yaml("tracking:\n  uri: sqlite:///../store/mlflow.db\n"),
        ("model models:/nobody@champion cannot be loaded",), ("--model", "models:/nobody@champion")),
    Bad("output in a missing folder", "score", lambda p: None, ("output folder does not exist",), ("--out", "missing/scores.csv")),
    Bad("unsupported output type", "features", lambda p: None, ("f.json: unsupported output type '.json'", "use .parquet"),
        ("--out", "f.json")),
    Bad("report that is not HTML", "score", lambda p: None, ("report.pdf: expected an .html file",), ("--report", "report.pdf")),
    Bad("feature table without the model's columns", "score",
        _raw("features.csv", b"partner_id,snapshot,order__count_30d\np1,2024-04-01,3\n"),
        ("feature frame is missing", "column(s) the model needs", "Build the features with the model's own plan"),
        ("--features", "features.csv")),
    Bad("partner attribute the model needs", "score", _attr("partners", lambda f: f.drop(columns="region")),
        ("partners.csv: missing partner column(s) ['region'] the model uses as features", "features.attributes")),
    Bad("linked items without ids", "score", _set("events", 1, "item_id", None),
        ("events.csv: column 'item_id': 1 ticket_opened/ticket_resolved event(s) without an item id", "fill the ids")),
    Bad("model needs contracts", "score", lambda p: setattr(p, "contracts", None),
        ("the model uses contract features but the config has no data.contracts",)),
    Bad("unknown partner to explain", "explain", lambda p: None, ("--partner 'p22' is not in partners.csv", "similar ids: 'p2'"),
        ("--partner", "p22")),
    Bad("partner joined after --as-of", "explain", lambda p: None, ("--partner 'p3' joined on 2024-02-10, after --as-of 2024-02-01",),
        ("--partner", "p3", "--as-of", "2024-02-01")),
    Bad("as-of that is not a date", "score", lambda p: None, ("--as-of", "expected a date like 2025-10-01"), ("--as-of", "last week")),
    Bad("unknown language", "score", lambda p: None, ("--lang", "'de' is not one of 'en', 'ru'"), ("--lang", "de")),
    Bad("unknown engine", "features", lambda p: None, ("--engine", "'dask' is not one of 'local', 'spark'"),
        ("--out", "f.parquet", "--engine", "dask")),
]

DEFAULT_ARGS = {
    "validate": (),
    "features": (),
    "train": ("--set", "tracking.uri=sqlite:///../store/mlflow.db"),
    "score": ("--as-of", AS_OF, "--out", "scores.csv"),
    "explain": ("--as-of", AS_OF, "--partner", "p1"),
}


@pytest.fixture(scope="module")
def model_dir(sample_training, tmp_path_factory):
    return sample_training[2].model.save(tmp_path_factory.mktemp("model") / "model")


def _invoke(command: str, root: Path, args: tuple[str, ...], model_dir: Path | None):
    """Run a command like a user in the project folder: default arguments, then the case's (which win)."""
    merged = dict(zip(DEFAULT_ARGS[command][::2], DEFAULT_ARGS[command][1::2], strict=True))
    merged.update(zip(args[::2], args[1::2], strict=True))
    if command in ("score", "explain") and "--model" not in merged:
        merged["--model"] = str(model_dir)
    argv = [command, "--config", str(root / "config.yaml")]
    for key, value in merged.items():
        if key in ("--out", "--features", "--report", "--model") and not value.startswith(("/", "models:/")):
            value = str(root / value)
        argv += [key, value]
    return runner.invoke(app, argv)


def _snapshot(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_names_the_problem_and_writes_nothing(case: Bad, tmp_path, request):
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "store").mkdir()
    project = Project()
    case.change(project)
    project.write(root)
    before = _snapshot(root)
    model = request.getfixturevalue("model_dir") if case.command in ("score", "explain") else None
    result = _invoke(case.command, root, case.args, model)
    assert result.exit_code == 2, result.output
    for fragment in case.expect:
        assert fragment in result.output, f"{fragment!r} not in:\n{result.output}"
    assert "Traceback" not in result.output
    assert _snapshot(root) == before, "an output was written or an input was changed"
    assert not list((tmp_path / "store").glob("mlartifacts"))


def test_the_catalogue_covers_every_command_and_enough_cases():
    assert len(CASES) >= 25
    assert {c.command for c in CASES} == {"validate", "features", "train", "score", "explain"}


def test_simulate_bad_arguments_exit_2_and_write_nothing(tmp_path):
    for args, fragment in ((["--start", "2023-02-10"], "YYYY-MM-01"), (["--events-format", "xml"], "'xml' is not one of 'parquet', 'csv'"),
                           (["--partners", "0"], "--partners")):
        result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "sim"), *args])
        assert result.exit_code == 2 and fragment in result.output, result.output
    assert list(tmp_path.iterdir()) == []


# ---- tolerated: these exports must work, and say what was done


def _ok(command: str, project: Project, tmp_path: Path, model_dir: Path | None = None, *args: str):
    root = tmp_path / "project"
    root.mkdir()
    (tmp_path / "store").mkdir()
    project.write(root)
    before = {n: h for n, h in _snapshot(root).items()}
    result = _invoke(command, root, args, model_dir)
    assert result.exit_code == 0, result.output
    after = _snapshot(root)
    assert {n: after[n] for n in before} == before, "an input was modified"
    return result, root


def test_exact_duplicate_events_are_counted_dropped_and_named(tmp_path):
    p = Project()
    p.events = pd.concat([p.events, p.events.iloc[[1, 1, 3]]], ignore_index=True)
    result, _ = _ok("validate", p, tmp_path)
    assert "events.csv: 3 exact duplicate event(s) dropped (first at rows 6, 7, 8)" in result.output
    assert "5 from 2024-01-05" in result.output  # 8 rows read, 5 kept


def test_utf8_bom_export_works(tmp_path):
    p = Project()
    p.raw["partners.csv"] = p.partners.to_csv(index=False).encode("utf-8-sig")
    result, _ = _ok("validate", p, tmp_path)
    assert "3 (2 active, 1 churned)" in result.output


def test_cp1251_export_works_once_named(tmp_path):
    p = Project(yaml="  csv_encoding: cp1251\n")
    _cp1251(p)
    assert "3 (2 active" in _ok("validate", p, tmp_path)[0].output


def test_semicolon_export_works_by_default(tmp_path):
    p = Project()
    _semicolons(p)
    assert "3 (2 active" in _ok("validate", p, tmp_path)[0].output


def test_excel_input_works(tmp_path):
    p = Project(yaml="  partners: partners.xlsx\n")
    root = tmp_path / "project"
    root.mkdir(parents=True)
    p.partners.to_excel(root / "partners.xlsx", index=False)
    p.raw["partners.xlsx"] = (root / "partners.xlsx").read_bytes()
    (root / "partners.xlsx").unlink()
    root.rmdir()
    assert "3 (2 active" in _ok("validate", p, tmp_path)[0].output


def test_unknown_partners_can_be_dropped_with_a_warning(tmp_path):
    p = Project(yaml="  unknown_partners: drop\n")
    _set("events", 4, "partner_id", "p9")(p)
    result, _ = _ok("validate", p, tmp_path)
    assert "1 event(s) for 1 partner id(s) not in the partners table (e.g. 'p9') at row 5; dropped" in result.output


def test_unseen_event_types_and_categories_score_with_a_warning(model_dir, tmp_path):
    p = Project()
    _set("events", 4, "event_type", "webinar")(p)
    _set("partners", 2, "region", "Mars")(p)
    result, root = _ok("score", p, tmp_path, model_dir)
    assert "events.csv: 1 event(s) of 1 type(s) unseen in training, ignored by the model: 'webinar' (1)" in result.output
    assert "partners.csv: column 'region': 1 partner(s) with a value unseen in training, scored as missing: 'Mars' (1)" in result.output
    scores = pd.read_csv(root / "scores.csv")
    assert len(scores) == 3 and scores["churn_probability"].between(0, 1).all()
