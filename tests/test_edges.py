"""The edges catalogue: what a careless or hostile user can do to the files around the data.

Each case runs a command like a user (the CLI, in the project folder) and asserts the exit status,
the message, that nothing was left behind (no output, no temporary file) and that every input is
byte-identical (SHA-256). The tolerated cases (open-ended dates, ids like "NA", formulas and markup
in the data, any column name) must work and show the data as data.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from churnmodel.cli import app
from churnmodel.data import EXACT_FLOATS
from churnmodel.errors import DataError
from churnmodel.outputs import TEMP_SUFFIX, check_finite, neutralise_formulas, write_frame
from conftest import FUZZ_EXAMPLES
from test_bad_inputs import Project

runner = CliRunner()
AS_OF = "2024-04-01"
CHURNMODEL = [sys.executable, "-m", "churnmodel.cli"]


@pytest.fixture(scope="module")
def model_dir(sample_training, tmp_path_factory):
    return sample_training[2].model.save(tmp_path_factory.mktemp("model") / "model")


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _ids(p: Project, new: list[str]) -> None:
    """Give the three partners new ids everywhere."""
    m = dict(zip(["p1", "p2", "p3"], new, strict=True))
    p.partners = p.partners.assign(partner_id=p.partners["partner_id"].map(m))
    p.events = p.events.assign(partner_id=p.events["partner_id"].map(m))
    p.contracts = p.contracts.assign(partner_id=p.contracts["partner_id"].map(m))


def _quoted(p: Project) -> None:
    """Write every input with all fields quoted (how an export carries a carriage return inside a value)."""
    for name in ("partners", "events", "contracts"):
        p.raw[f"{name}.csv"] = getattr(p, name).to_csv(index=False, quoting=csv.QUOTE_ALL, lineterminator="\n").encode()


@dataclass(frozen=True)
class Edge:
    id: str
    args: tuple[str, ...]  # the command and its arguments; {model} is the sample's model folder
    expect: tuple[str, ...]  # fragments of the message
    change: Callable[[Project], None] = lambda p: None
    prepare: Callable[[Path], None] = lambda root: None  # after the inputs are written


def _set(frame: str, row: int, column: str, value):
    def change(p: Project) -> None:
        table = getattr(p, frame).astype({column: object}) if column in getattr(p, frame) else getattr(p, frame)
        table.loc[row, column] = value
        setattr(p, frame, table)

    return change


def _raw(name: str, content: bytes):
    return lambda p: p.raw.__setitem__(name, content)


SCORE = ("score", "--as-of", AS_OF, "--model", "{model}")
EDGES = [
    # ---- outputs are never inputs, and never each other
    Edge("score over the event log", (*SCORE, "--out", "events.csv"), ("events.csv: this output path is an input (data.events",)),
    Edge("features over the partners", ("features", "--out", "partners.csv"), ("this output path is an input (data.partners",)),
    Edge("metadata over the contracts", ("features", "--out", "f.parquet", "--metadata", "contracts.csv"),
         ("contracts.csv: this output path is an input (data.contracts",)),
    Edge("summary over the config", ("train", "--summary", "config.yaml"), ("config.yaml: this output path is an input (the config file",)),
    Edge("features and metadata to one file", ("features", "--out", "f.csv", "--metadata", "f.csv"),
         ("the same path is given for two outputs",)),
    Edge("scores over the feature table read", (*SCORE, "--features", "events.csv", "--out", "events.csv"),
         ("this output path is an input",)),
    Edge("scores into the model folder", (*SCORE, "--out", "{model}/scores.csv"), ("this output path is an input (the model folder read",)),
    Edge("report over the config", (*SCORE, "--out", "s.csv", "--report", "config.yaml"), ("config.yaml: this output path is an input (the config file",)),
    Edge("summary over the tracking store", ("train", "--summary", "mlflow.db"),
         ("mlflow.db: this output path is an input (the MLflow tracking store, tracking.uri",)),
    Edge("scores into the artifact store", (*SCORE, "--out", "mlartifacts/s.csv"),
         ("this output path is an input (the MLflow artifact store beside tracking.uri",), prepare=lambda root: (root / "mlartifacts").mkdir()),
    # ---- operating system errors: one line naming the path and the cause
    Edge("output onto a folder", (*SCORE, "--out", "afolder.csv"), ("afolder.csv: cannot write: it is an existing folder",),
         prepare=lambda root: (root / "afolder.csv").mkdir()),
    Edge("output under a file", (*SCORE, "--out", "notes.txt/s.csv"), ("notes.txt is a file, not a folder",),
         prepare=lambda root: (root / "notes.txt").write_text("a note")),
    Edge("report in a missing folder", (*SCORE, "--out", "s.csv", "--report", "nowhere/r.html"), ("output folder does not exist",)),
    # ---- dates
    Edge("event in year 9999", ("validate",), ("events.csv: column 'timestamp': 1 date(s) outside the supported range 1900-01-01 to "
                                               "2200-01-01 at row 2", "9999-12-31"),
         _set("events", 1, "timestamp", "9999-12-31T00:00:00Z")),
    Edge("partner joined in 1850", ("validate",), ("partners.csv: column 'joined_at': 1 date(s) outside the supported range", "row 1"),
         _set("partners", 0, "joined_at", "1850-01-01")),
    Edge("stray event a century later", ("features", "--out", "f.parquet"),
         ("events.csv: column 'timestamp': 1 event(s) at row 5 (e.g. '2150-03-02') lie more than 366 days from the rest of the log",
          "data.max_gap_days"), _set("events", 4, "timestamp", "2150-03-02T08:00:00Z")),
    Edge("stray event a century earlier", ("validate",), ("1 event(s) at row 1 (e.g. '1901-01-05') lie more than 366 days",),
         _set("events", 0, "timestamp", "1901-01-05T10:00:00Z")),
    Edge("partner joined long after the data", ("validate",),
         ("partners.csv: column 'joined_at': 1 date(s) at row 3 (e.g. '2150-02-10') more than 366 days after the data ends",),
         _set("partners", 2, "joined_at", "2150-02-10")),
    Edge("as-of in year 9999", ("score", "--as-of", "9999-12-31", "--model", "{model}", "--out", "s.csv"),
         ("--as-of 9999-12-31 is", "days after the data ends (2024-07-01)", "score.max_days_past_data_end")),
    Edge("as-of in 1677", ("score", "--as-of", "1677-09-21", "--model", "{model}", "--out", "s.csv"),
         ("--as-of 1677-09-21 is before the data starts (events.csv: first event 2024-01-05)",)),
    Edge("explain a year after the data", ("explain", "--as-of", "2025-09-01", "--partner", "p1", "--model", "{model}"),
         ("--as-of 2025-09-01 is 427 days after the data ends",)),
    # ---- headers and numbers
    Edge("duplicated CSV header", ("validate",), ("partners.csv: duplicated column name(s): 'region' (columns 4, 5)",),
         _raw("partners.csv", b"partner_id,joined_at,churned_at,region,region\np1,2023-01-15,,North,South\n"
                              b"p2,2023-03-01,2024-06-30,South,South\np3,2024-02-10,,North,North\n")),
    Edge("duplicated Parquet column", ("validate",), ("events.parquet: duplicated column name(s): 'amount' (columns 4, 7)",),
         lambda p: (setattr(p, "events_name", "events.parquet"),
                    p.raw.__setitem__("events.parquet", _parquet_with_names(p.events, [*p.events.columns, "amount"])))),
    Edge("duplicated Excel header", ("validate",), ("events.xlsx: duplicated column name(s): 'amount' (columns 4, 5)",),
         lambda p: (setattr(p, "events_name", "events.xlsx"),
                    p.raw.__setitem__("events.xlsx", _xlsx([["partner_id", "timestamp", "event_type", "amount", "amount"],
                                                            ["p1", "2024-01-05", "order", 10, 11]])))),
    Edge("hold-out flag that is not a flag", ("validate", "--set", "data.actions.types.meeting.lever=communication"),
         ("events.csv: column 'control': 1 value(s) that are not yes/no flags at row 1 (e.g. 'maybe')",),
         _set("events", 0, "control", "maybe")),
    Edge("hold-out flag on a row that is not an action", ("validate", "--set", "data.actions.types.meeting.lever=communication"),
         ("events.csv: column 'control': 1 hold-out row(s) at row 1 whose event_type is not an action in data.actions.types",),
         _set("events", 0, "control", "yes")),
    Edge("amount near the float maximum", ("validate",), ("events.csv: column 'amount': 1 value(s) beyond +/-1e+15 at row 1",
                                                          "e.g. 1.7e+308"), _set("events", 0, "amount", 1.7e308)),
    Edge("contract value of 1e300", ("validate",), ("contracts.csv: column 'value': 1 value(s) beyond +/-1e+15 at row 2",),
         _set("contracts", 1, "value", 1e300)),
]


def _xlsx(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _parquet_with_names(frame: pd.DataFrame, names: list[str]) -> bytes:
    table = pa.Table.from_pandas(frame.assign(extra=frame["amount"]), preserve_index=False).rename_columns(names)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _run(root: Path, args: tuple[str, ...], model: Path | None):
    argv = [a.replace("{model}", str(model)) for a in args]
    command, rest = argv[0], argv[1:]
    rest = [str(root / a) if a.endswith((".csv", ".parquet", ".yaml", ".html", ".xlsx", ".db")) and "=" not in a and not a.startswith("/") else a for a in rest]
    return runner.invoke(app, [command, "--config", str(root / "config.yaml"), *rest])


@pytest.mark.parametrize("edge", EDGES, ids=[e.id for e in EDGES])
def test_edge_exits_2_names_the_problem_and_leaves_nothing(edge: Edge, model_dir, tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    project = Project()
    edge.change(project)
    project.write(root)
    edge.prepare(root)
    before, model_before = _snapshot(root), _snapshot(model_dir)
    (tmp_path / "store").mkdir()
    args = edge.args
    if args[0] == "train" and "mlflow.db" not in args:  # else the project's own store
        args = (*args, "--set", f"tracking.uri=sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    result = _run(root, args, model_dir)
    assert result.exit_code == 2, result.output
    for fragment in edge.expect:
        assert fragment in result.output, f"{fragment!r} not in:\n{result.output}"
    assert "Traceback" not in result.output
    assert _snapshot(root) == before, "an output was written or an input was changed"
    assert _snapshot(model_dir) == model_before
    assert not list(root.rglob(f"*{TEMP_SUFFIX}"))


def test_the_edges_catalogue_is_large_enough():
    assert len(EDGES) >= 20


# ---- tolerated: open-ended dates, ids like NA, formulas and markup in the data


def _ok(tmp_path: Path, project: Project, *args: str, model: Path | None = None):
    root = tmp_path / "project"
    root.mkdir()
    project.write(root)
    before = _snapshot(root)
    result = _run(root, args, model)
    assert result.exit_code == 0, result.output
    after = _snapshot(root)
    assert {n: after[n] for n in before} == before, "an input was modified"
    assert not list(root.rglob(f"*{TEMP_SUFFIX}"))
    return result, root


def test_open_ended_placeholder_dates_read_as_empty_with_a_count(tmp_path):
    p = Project()
    _set("partners", 1, "churned_at", "9999-12-31")(p)
    _set("contracts", 0, "end_date", "9999-12-31")(p)
    _set("contracts", 1, "terminated_at", "3000-01-01")(p)
    result, root = _ok(tmp_path, p, "validate")
    assert "partners.csv: column 'churned_at': 1 date(s) on or after 2200-01-01 at row 2 (e.g. '9999-12-31') read as empty" in result.output
    assert "contracts.csv: column 'end_date': 1 date(s) on or after 2200-01-01 at row 1" in result.output
    assert "contracts.csv: column 'terminated_at': 1 date(s)" in result.output
    assert "3 (3 active, 0 churned)" in result.output
    features = _run(root, ("features", "--out", "f.parquet", "--set", "features.windows=[7]"), None)  # the grid ends with the data
    assert features.exit_code == 0, features.output
    assert pd.read_parquet(root / "f.parquet")["snapshot"].max() <= pd.Timestamp("2024-07-01", tz="UTC")


def test_an_infinite_value_is_never_written(tmp_path):
    frame = pd.DataFrame({"partner_id": ["a", "b", "c"], "revenue_at_risk": [1.0, np.inf, -np.inf]})
    with pytest.raises(DataError, match=r"s\.csv: column 'revenue_at_risk' would hold infinite values \(rows 2, 3\); nothing was written"):
        check_finite(frame, tmp_path / "s.csv")
    check_finite(frame.assign(revenue_at_risk=[1.0, np.nan, 2.0]), tmp_path / "s.csv")  # missing is an empty cell


def test_ids_that_look_missing_are_ids(model_dir, tmp_path):
    p = Project()
    _ids(p, ["NA", "null", "None"])
    _, root = _ok(tmp_path, p, *SCORE, "--out", "s.csv", model=model_dir)
    scores = pd.read_csv(root / "s.csv", keep_default_na=False)
    assert sorted(scores["partner_id"]) == ["NA", "None", "null"]
    assert "3 (2 active, 1 churned)" in _run(root, ("validate",), None).output


def test_an_empty_id_cell_is_still_missing(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    p = Project()
    p.raw["partners.csv"] = p.partners.assign(partner_id=["p1", "p2", ""]).to_csv(index=False).encode()
    p.write(root)
    result = _run(root, ("validate",), None)
    assert result.exit_code == 2 and "partners.csv: column 'partner_id': 1 empty value(s) at row 3" in result.output


def test_formulas_in_ids_are_text_in_xlsx_and_neutralised_in_csv(model_dir, tmp_path):
    p = Project()
    live = ["=1+2", '@SUM(A1)', "-2+3+cmd|' /C calc'!A0"]
    _ids(p, live)
    p.partners = p.partners.assign(region=["+49 region", "\tTAB", "-7"])
    _, root = _ok(tmp_path, p, *SCORE, "--out", "s.xlsx", model=model_dir)
    sheet = openpyxl.load_workbook(root / "s.xlsx").active
    cells = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert cells and all(c.data_type == "s" for c in cells)  # never "f" (formula)
    assert sorted(c.value for c in sheet["B"][1:]) == sorted(live)  # rank first, then the partner

    _run(root, (*SCORE, "--out", "s.csv"), model_dir)
    scores = pd.read_csv(root / "s.csv", keep_default_na=False, encoding="utf-8-sig")
    assert sorted(scores["partner_id"]) == sorted("'" + v for v in live)
    _run(root, (*SCORE, "--out", "raw.csv", "--set", "output.csv_formula_guard=false"), model_dir)
    assert sorted(pd.read_csv(root / "raw.csv", keep_default_na=False)["partner_id"]) == sorted(live)
    _run(root, (*SCORE, "--out", "s.parquet"), model_dir)
    assert sorted(pd.read_parquet(root / "s.parquet")["partner_id"]) == sorted(live)


def test_markup_in_the_data_is_printed_as_it_is(model_dir, tmp_path):
    p = Project()
    p.partners = p.partners.assign(region=["[/]", "[bold red]x[/bold red]", ":warning:"])
    result, root = _ok(tmp_path, p, *SCORE, "--out", "s.csv", model=model_dir)
    assert "'[/]' (1), '[bold red]x[/bold red]' (1), ':warning:' (1)" in result.output
    result = _run(root, ("explain", "--as-of", AS_OF, "--partner", "[/]x", "--model", str(model_dir)), None)
    assert result.exit_code == 2 and "--partner '[/]x' is not in partners.csv" in result.output


def test_mathtext_and_html_in_ids_render_as_text_in_the_report(model_dir, tmp_path):
    p = Project()
    _ids(p, ["$x^2$", r"$\frac{", "<script>alert(1)</script>"])
    _, root = _ok(tmp_path, p, *SCORE, "--out", "s.csv", "--report", "r.html", "--set", "explain.scope=all", model=model_dir)
    page = (root / "r.html").read_text()
    assert "$x^2$" in page and r"$\frac{" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page


def test_a_carriage_return_inside_an_id_survives_a_round_trip(model_dir, tmp_path):
    p = Project()
    _ids(p, ["a\rb", "c\nd", 'e"f'])
    _quoted(p)
    _, root = _ok(tmp_path, p, *SCORE, "--out", "s.csv", model=model_dir)
    assert sorted(pd.read_csv(root / "s.csv")["partner_id"]) == sorted(["a\rb", "c\nd", 'e"f'])
    arrow = pacsv.read_csv(root / "s.csv", parse_options=pacsv.ParseOptions(newlines_in_values=True))
    assert sorted(arrow.column("partner_id").to_pylist()) == sorted(["a\rb", "c\nd", 'e"f'])


def test_a_stale_temporary_file_of_a_killed_run_is_removed_by_the_next_write(model_dir, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    p = Project()
    root = tmp_path / "project"
    root.mkdir()
    p.write(root)
    stale = root / f".s.csv.{dead.pid}.0123abcd{TEMP_SUFFIX}"
    stale.write_text("half a list")
    foreign = root / ".s.csv.tmp"  # not ours: left alone
    foreign.write_text("someone else's")
    reused = root / f".s.csv.{os.getppid()}.4567cdef{TEMP_SUFFIX}"  # its writer's id now runs another process
    reused.write_text("half a list, two days old")
    os.utime(reused, (time.time() - 2 * 86_400,) * 2)
    fresh = root / f".s.csv.{os.getppid()}.89abcdef{TEMP_SUFFIX}"  # a live writer's: kept
    fresh.write_text("being written")
    assert _run(root, (*SCORE, "--out", "s.csv"), model_dir).exit_code == 0
    assert not stale.exists() and not reused.exists() and foreign.exists() and fresh.exists()


@pytest.mark.slow
def test_sigkill_mid_write_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    """A real kill: the simulator writes its biggest file last-but-one; SIGKILL it while it writes."""
    out = tmp_path / "sim"
    proc = subprocess.Popen([*CHURNMODEL, "simulate", "--partners", "3000", "--months", "36", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # poll until a temporary file appears, then kill
        if out.exists() and list(out.rglob(f"*{TEMP_SUFFIX}")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    left = list(out.rglob(f"*{TEMP_SUFFIX}"))
    if not left:
        pytest.skip("the run finished before a temporary file was seen")
    result = subprocess.run([*CHURNMODEL, "simulate", "--partners", "20", "--months", "3", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not list(out.rglob(f"*{TEMP_SUFFIX}"))


# ---- operating system errors in a real process


def _child(limit_bytes: int | None = None, as_nobody: bool = False):
    def setup() -> None:
        if limit_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
        if as_nobody:
            os.setgid(65534)
            os.setuid(65534)

    return setup


def test_a_full_disk_exits_2_and_leaves_neither_list_nor_report(model_dir, tmp_path):
    p = Project()
    root = tmp_path / "project"
    root.mkdir()
    p.write(root)
    before = _snapshot(root)
    result = subprocess.run([*CHURNMODEL, "score", "--config", str(root / "config.yaml"), "--as-of", AS_OF, "--model", str(model_dir),
                             "--out", str(root / "s.csv"), "--report", str(root / "r.html")],
                            capture_output=True, text=True, preexec_fn=_child(limit_bytes=8_000))  # the list fits, its report does not
    assert result.returncode == 2, result.stderr
    assert "cannot write: file too large for this file system or limit; nothing was written" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    assert _snapshot(root) == before


def test_a_read_only_folder_exits_2_naming_it(model_dir, tmp_path):
    """Not root: a folder without write permission. Root writes anywhere, so there: a read-only mount."""
    p = Project()
    root = tmp_path / "project"
    (root / "out").mkdir(parents=True)
    p.write(root)
    out = root / "out"
    if os.geteuid() != 0:
        out.chmod(0o555)
        expected = f"s.csv: cannot write: no permission to write in {out}"
    else:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(out)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"root without mount permission: {mounted.stderr.decode().strip()}")
        expected = f"s.csv: cannot write: {out} is on a read-only file system"
    try:
        before = _snapshot(root)
        result = subprocess.run([*CHURNMODEL, "score", "--config", str(root / "config.yaml"), "--as-of", AS_OF, "--model", str(model_dir),
                                 "--out", str(out / "s.csv"), "--report", str(root / "r.html")], capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert _snapshot(root) == before
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(out)], check=True)
        else:
            out.chmod(0o755)


# ---- names: any column name a CRM export can have


CRM_NAMES = ["Region/Zone", 'Tier "A"', "Owner: team", "City, country", "Регион продаж", "🙂 mood", "=cmd", "[/]markup", "$\\frac{ cost"]


@pytest.mark.slow
def test_any_partner_column_name_trains_a_model_that_loads_and_scores(tmp_path, fresh_store):
    from churnmodel.simulate import simulate, write_simulation

    write_simulation(simulate(300, 36, random_state=1), tmp_path / "sim")
    partners = pd.read_csv(tmp_path / "sim" / "partners.csv")
    rng = np.random.default_rng(0)
    for i, name in enumerate(CRM_NAMES):
        partners[name] = rng.choice(["a", "b", "=1+1", "$x$"], len(partners)) if i % 2 == 0 else rng.normal(size=len(partners))
    partners.to_csv(tmp_path / "sim" / "partners.csv", index=False)
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  partners: sim/partners.csv\n  events: sim/events.parquet\n  contracts: sim/contracts.csv\n"
                      "label:\n  horizons: null\ntrain:\n  bootstrap: 0\n  baseline: false\n"
                      f"tracking:\n  uri: {fresh_store(tmp_path / 'store.db')}\n")
    trained = runner.invoke(app, ["train", "--config", str(config)])
    assert trained.exit_code == 0, trained.output
    assert "(champion)" in trained.output
    scored = subprocess.run([*CHURNMODEL, "score", "--config", str(config), "--as-of", "2026-01-01", "--out", str(tmp_path / "s.xlsx"),
                             "--report", str(tmp_path / "r.html")], capture_output=True, text=True)
    assert scored.returncode == 0, scored.stderr
    from churnmodel.model import ChurnModel

    model = ChurnModel.load(next((tmp_path / "mlartifacts").rglob("model.json")).parent)
    labels = model.plan.info().set_index("label_en")
    assert set(CRM_NAMES) <= set(labels.index)  # the readable names are kept for people
    assert len(pd.read_excel(tmp_path / "s.xlsx")) > 100


def test_a_model_its_own_loader_refuses_is_not_saved(sample_training, tmp_path):
    import dataclasses

    model = sample_training[2].model
    bad_plan = dataclasses.replace(model.plan, features=(*model.plan.features[:-1],
                                                         dataclasses.replace(model.plan.features[-1], name="a/b")))
    broken = dataclasses.replace(model, plan=bad_plan)
    with pytest.raises(DataError, match=r"does not load back the same, so it was not saved: .*unsafe feature"):
        broken.save(tmp_path / "m")
    assert list((tmp_path / "m").iterdir()) == []


# ---- fuzzing the writers: whatever the text, it comes back as text


_TEXT = st.text(alphabet=st.one_of(st.characters(codec="utf-8", exclude_categories=("Cs",)),
                                   st.sampled_from(list("=+-@\t\r\n\"',;[]/$\\<>&{}\x00\x01\x0b\x1b\x7f"))), max_size=12)
_LIVE_PREFIX = ("=", "+", "-", "@", "\t", "\r")


@st.composite
def _frames(draw):
    n = draw(st.integers(1, 6))
    ids = draw(st.lists(st.one_of(_TEXT.filter(bool), st.sampled_from(["NA", "null", "None", "nan", "=1+2", "-3", "+49 1", "@x"])),
                        min_size=n, max_size=n))
    notes = draw(st.lists(_TEXT, min_size=n, max_size=n))
    values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), min_size=n, max_size=n))
    return pd.DataFrame({"partner_id": ids, "note": notes, "value": values})


def _read_csv_both(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    by_pandas = pd.read_csv(path, dtype={"partner_id": str, "note": str}, keep_default_na=False, na_values={"value": [""]},
                            **EXACT_FLOATS)
    arrow = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                           convert_options=pacsv.ConvertOptions(column_types={"partner_id": pa.string(), "note": pa.string(),
                                                                              "value": pa.float64()}, strings_can_be_null=False))
    return by_pandas, arrow.to_pandas()


@settings(max_examples=FUZZ_EXAMPLES // 3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=_frames(), guard=st.booleans())
def test_fuzzed_csv_we_write_parses_back_to_the_same_frame(frame, guard, tmp_path):
    path = write_frame(frame, tmp_path / "f.csv", formula_guard=guard)
    expected = neutralise_formulas(frame) if guard else frame
    expected = expected.assign(**{c: expected[c].str.replace("\x00", "\\x00") for c in ("partner_id", "note")})  # a NUL is written as text
    for read in _read_csv_both(path):
        assert read["partner_id"].tolist() == expected["partner_id"].tolist()
        assert read["note"].tolist() == expected["note"].tolist()
        np.testing.assert_array_equal(read["value"].to_numpy(), frame["value"].to_numpy())
        if guard:  # nothing a spreadsheet would run is left
            live = [v for v in (*read["partner_id"], *read["note"]) if v.startswith(_LIVE_PREFIX)]
            assert all(_is_plain_number(v) for v in live), live


def _is_plain_number(text: str) -> bool:
    try:
        float(text.rstrip("%").replace(",", "."))
    except ValueError:
        return False
    return text.strip() == text


@settings(max_examples=FUZZ_EXAMPLES // 6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=_frames())
def test_fuzzed_xlsx_text_cells_are_strings_never_formulas(frame, tmp_path):
    path = write_frame(frame, tmp_path / "f.xlsx")
    sheet = openpyxl.load_workbook(path).active
    rows = list(sheet.iter_rows(min_row=2))
    for row, (pid, note) in zip(rows, frame[["partner_id", "note"]].itertuples(index=False), strict=True):
        assert row[0].data_type == "s" and row[0].value == _xlsx_text(pid)
        assert row[1].value == (_xlsx_text(note) or None) and row[1].data_type in ("s", "n")  # an empty text is an empty cell


def _xlsx_text(text: str) -> str:
    """What an .xlsx holds for a text: characters XML 1.0 cannot carry as \\xHH; line ends as XML normalises them."""
    import re

    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", lambda m: f"\\x{ord(m.group()):02x}", text)


@settings(max_examples=FUZZ_EXAMPLES // 3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXT.filter(lambda t: t and "\x00" not in t))
def test_fuzzed_console_messages_show_data_as_it_is(text, project, model_dir):
    result = runner.invoke(app, ["explain", "--config", str(project), "--as-of", AS_OF, "--partner", text, "--model", str(model_dir)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"--partner {text!r} is not in partners.csv" in result.output


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(_TEXT.filter(lambda t: t.strip() and "\x00" not in t and "\r" not in t and "\n" not in t), min_size=3,
                    max_size=3, unique=True))
def test_fuzzed_ids_show_as_text_in_the_report(ids, model_dir, tmp_path_factory):
    p = Project()
    _ids(p, ids)
    root = tmp_path_factory.mktemp("report")
    _quoted(p)
    p.write(root)
    result = _run(root, (*SCORE, "--out", "s.csv", "--report", "r.html", "--set", "explain.scope=all"), model_dir)  # every id listed
    if result.exit_code == 2:  # ids that differ only in surrounding spaces collide once trimmed: a named error, not a crash
        assert "duplicated partner id" in result.output, result.output
        return
    assert result.exit_code == 0, result.output
    page = (root / "r.html").read_text()
    for pid in ids:
        assert html.escape(pid.strip()) in page
