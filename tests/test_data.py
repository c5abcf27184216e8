from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnmodel.config import DataConfig, load_config
from churnmodel.data import read_inputs, read_table, summarize
from churnmodel.errors import DataError
from churnmodel.outputs import OutputError, atomic_write
from churnmodel.times import TIMESTAMP_DTYPE
from churnmodel.validation import validate_tables
from conftest import FUZZ_EXAMPLES, tiny_contracts, tiny_events, tiny_partners, write_project


def validate(partners=None, events=None, contracts=None, **cfg):
    config = DataConfig(partners="partners.csv", events="events.csv", **cfg)
    return validate_tables(
        tiny_partners() if partners is None else partners,
        tiny_events() if events is None else events,
        contracts,
        config=config,
        sources={"partners": "partners.csv", "events": "events.csv", "contracts": "contracts.csv"},
    )


def with_value(frame: pd.DataFrame, column: str, row: int, value) -> pd.DataFrame:
    out = frame.copy()
    out[column] = out[column].astype(object)
    out.loc[row, column] = value
    return out


# --------------------------------------------------------------------------- the happy path


def test_valid_tables_are_typed_and_extras_kept():
    tables = validate(contracts=tiny_contracts())
    assert str(tables.events["timestamp"].dtype) == TIMESTAMP_DTYPE
    assert str(tables.partners["joined_at"].dtype) == TIMESTAMP_DTYPE
    assert tables.partners["churned_at"].isna().tolist() == [True, False, True]
    assert tables.events["amount"].dtype == np.float64
    assert tables.events["channel"].tolist() == ["web", "phone", "web", "email", "web"]
    assert tables.partners["region"].tolist() == ["North", "South", "North"]
    assert tables.contracts["terminated_at"].notna().tolist() == [False, True]
    assert tables.warnings == ()


def test_inputs_are_never_modified():
    partners, events, contracts = tiny_partners(), tiny_events(), tiny_contracts()
    before = [f.copy() for f in (partners, events, contracts)]
    validate(partners, events, contracts)
    for original, now in zip(before, (partners, events, contracts), strict=True):
        pd.testing.assert_frame_equal(original, now)


def test_time_zones_are_normalised_to_utc():
    events = tiny_events().assign(
        timestamp=["2024-01-05T13:00:00+03:00", "2024-01-05T10:00:00Z", "2024-01-05T05:00:00-05:00",
                   "2024-01-05T10:00:00+00:00", "2024-01-05T12:00:00+02:00"]
    )
    ts = validate(events=events).events["timestamp"]
    assert (ts == pd.Timestamp("2024-01-05T10:00:00Z")).all()


def test_naive_timestamps_are_taken_in_the_configured_zone():
    events = tiny_events().assign(timestamp=["2024-01-05 13:00:00"] * 5)
    assert validate(events=events).events["timestamp"].iloc[0] == pd.Timestamp("2024-01-05T13:00:00Z")
    moscow = validate(events=events, naive_timezone="Europe/Moscow").events["timestamp"]
    assert moscow.iloc[0] == pd.Timestamp("2024-01-05T10:00:00Z")


def test_datetime_columns_from_parquet_are_accepted():
    events = tiny_events().assign(timestamp=pd.to_datetime(tiny_events()["timestamp"]))
    naive = tiny_events().assign(timestamp=pd.to_datetime(["2024-01-05 10:00"] * 5))
    assert validate(events=events).events["timestamp"].iloc[0] == pd.Timestamp("2024-01-05T10:00Z")
    assert validate(events=naive).events["timestamp"].iloc[0] == pd.Timestamp("2024-01-05T10:00Z")


def test_numeric_ids_keep_their_identity():
    partners = tiny_partners().assign(partner_id=[1, 2, 3])
    events = tiny_events().assign(partner_id=[1.0, 1.0, 2.0, 2.0, 3.0])
    tables = validate(partners, events)
    assert tables.events["partner_id"].tolist() == ["1", "1", "2", "2", "3"]


def test_exact_duplicate_events_are_dropped_with_a_count_and_the_rule_that_applied():
    events = pd.concat([tiny_events(), tiny_events().iloc[[0, 2]]], ignore_index=True)
    tables = validate(events=events)
    assert len(tables.events) == 5
    assert tables.warnings == ("events.csv: 2 exact duplicate event(s) dropped (first at rows 6, 7); the first copy of each is "
                               "kept (data.duplicate_events: drop). If identical rows are real events (two same-day orders "
                               "of the same amount), set data.duplicate_events: keep",)


def test_identical_events_are_kept_or_refused_as_configured():
    """A purchase log whose identical rows are real orders keeps them all (nothing said); ``error`` names the rows."""
    events = pd.concat([tiny_events(), tiny_events().iloc[[0, 2]]], ignore_index=True)
    kept = validate(events=events, duplicate_events="keep")
    assert len(kept.events) == 7 and kept.warnings == ()
    assert kept.events["timestamp"].value_counts().max() == 2  # both copies, each a real event
    with pytest.raises(DataError, match=r"events.csv: 2 event\(s\) repeat an earlier event in every column \(first at rows 6, 7\) "
                                        r"\(data.duplicate_events: error\); remove the copies, or set data.duplicate_events: drop"):
        validate(events=events, duplicate_events="error")
    assert len(validate(events=tiny_events(), duplicate_events="error").events) == 5  # no copies: nothing to refuse
    with pytest.raises(ValueError, match="duplicate_events"):
        DataConfig(partners="p", events="e", duplicate_events="merge")


@settings(max_examples=min(FUZZ_EXAMPLES, 40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["p1", "p2", " p1", "p3"]), st.integers(0, 3), st.sampled_from(["order", "ticket_opened", "order "]),
                          st.sampled_from([0.0, -0.0, 1.5, float("nan")]), st.sampled_from(["web", "phone"])), min_size=1, max_size=40))
def test_duplicates_and_membership_match_their_plain_definitions(rows_):
    """The hashed duplicate filter and the per-block membership counts give exactly what pandas' own
    duplicated() over every column (after cleaning) and a row-by-row comparison give."""
    events = pd.DataFrame(rows_, columns=["partner_id", "day", "event_type", "amount", "channel"])
    events = events.assign(timestamp=[f"2024-06-{28 + d:02d}T00:00:00Z" if d < 3 else "2024-07-01T00:00:00Z" for d in events.pop("day")])
    tables = validate(events=events)
    typed = events.assign(partner_id=events["partner_id"].str.strip(), event_type=events["event_type"].str.strip(),
                          timestamp=pd.to_datetime(events["timestamp"], utc=True).astype(TIMESTAMP_DTYPE),
                          amount=events["amount"].astype("float64"))
    expected = typed.loc[~typed.duplicated()].reset_index(drop=True)
    pd.testing.assert_frame_equal(tables.events.reset_index(drop=True), expected, check_dtype=False)
    dropped = int(typed.duplicated().sum())
    assert any(f"{dropped} exact duplicate" in w for w in tables.warnings) == (dropped > 0)
    churned = expected["partner_id"].map(tiny_partners().set_index("partner_id")["churned_at"]).fillna("2999-01-01")
    late = int((expected["timestamp"] >= pd.to_datetime(churned, utc=True)).sum())
    assert any(f"{late} event(s) dated on or after" in w for w in tables.warnings) == (late > 0)


def test_parquet_is_read_as_written_with_or_without_a_saved_index(tmp_path):
    events = tiny_events().set_index("partner_id", drop=False).rename_axis("idx")
    events.to_parquet(tmp_path / "indexed.parquet")  # pandas stores the index as an extra column
    tiny_events().to_parquet(tmp_path / "plain.parquet", index=False)
    indexed = read_table(tmp_path / "indexed.parquet", table="events")
    plain = read_table(tmp_path / "plain.parquet", table="events")
    pd.testing.assert_frame_equal(indexed.reset_index(drop=True), plain)
    assert list(plain.columns) == list(tiny_events().columns)


def test_unknown_partners_can_be_dropped_with_a_warning():
    events = with_value(tiny_events(), "partner_id", 1, "ghost")
    tables = validate(events=events, unknown_partners="drop")
    assert "ghost" not in set(tables.events["partner_id"])
    assert "1 event(s) for 1 partner id(s) not in the partners table (e.g. 'ghost') at row 2; dropped" in tables.warnings[0]


def test_events_outside_membership_are_counted():
    events = with_value(tiny_events(), "timestamp", 3, "2024-07-01T00:00:00Z")  # p2 churned 2024-06-30
    tables = validate(events=events)
    assert any("1 event(s) dated on or after the partner's churned_at" in w for w in tables.warnings)


def test_signed_types_may_be_negative():
    events = with_value(tiny_events(), "event_type", 4, "refund")
    events = with_value(events, "amount", 4, -50.0)
    assert validate(events=events, signed_amount_types=["refund"]).events["amount"].iloc[4] == -50.0


# --------------------------------------------------------------------------- bad inputs, each named


BAD = {
    "unparseable-date": (
        lambda: dict(events=with_value(tiny_events(), "timestamp", 2, "31.12.2024")),
        r"events.csv: column 'timestamp': 1 unparseable date/time value\(s\) at row 3 \(e.g. '31.12.2024'\); expected ISO-8601",
    ),
    "mixed-offsets": (
        lambda: dict(events=with_value(tiny_events(), "timestamp", 1, "2024-01-06 11:30:00")),
        r"column 'timestamp': mixes timestamps with a UTC offset \(rows 1, 3, 4 \(\+1 more\)\) and without one \(row 2\)",
    ),
    "nat-timestamp": (
        lambda: dict(events=with_value(tiny_events(), "timestamp", 4, None)),
        r"events.csv: column 'timestamp': 1 event\(s\) without a timestamp \(NaT\) at row 5",
    ),
    "duplicate-partner": (
        lambda: dict(partners=with_value(tiny_partners(), "partner_id", 2, "p1")),
        r"partners.csv: column 'partner_id': 1 duplicated partner id\(s\) \(e.g. 'p1'\) at rows 1, 3; the partners table needs exactly one row per partner",
    ),
    "empty-partner-id": (
        lambda: dict(partners=with_value(tiny_partners(), "partner_id", 1, "  ")),
        r"partners.csv: column 'partner_id': 1 empty value\(s\) at row 2",
    ),
    "unknown-partner": (
        lambda: dict(events=with_value(tiny_events(), "partner_id", 1, "ghost")),
        r"events.csv: column 'partner_id': 1 event\(s\) for 1 partner id\(s\) not in the partners table \(e.g. 'ghost'\) at row 2; add the partners, or set data.unknown_partners: drop",
    ),
    "negative-order": (
        lambda: dict(events=with_value(tiny_events(), "amount", 0, -5.0)),
        r"events.csv: column 'amount': 1 negative amount\(s\) at row 1 \(by type: \{'order': 1\}\); amounts must be >= 0",
    ),
    "non-numeric-amount": (
        lambda: dict(events=with_value(tiny_events(), "amount", 2, "12,5")),
        r"column 'amount': 1 non-numeric value\(s\) at row 3 \(e.g. '12,5'\); expected a number \(decimal commas are not accepted",
    ),
    "infinite-amount": (
        lambda: dict(events=with_value(tiny_events(), "amount", 2, np.inf)),
        r"column 'amount': 1 infinite value\(s\) at row 3",
    ),
    "numeric-dates": (
        lambda: dict(partners=tiny_partners().assign(joined_at=[1, 2, 3])),
        r"partners.csv: column 'joined_at': expected dates or timestamps, got int64 values",
    ),
    "empty-event-type": (
        lambda: dict(events=with_value(tiny_events(), "event_type", 3, "")),
        r"events.csv: column 'event_type': 1 empty value\(s\) at row 4",
    ),
    "missing-join-date": (
        lambda: dict(partners=with_value(tiny_partners(), "joined_at", 0, None)),
        r"partners.csv: column 'joined_at': 1 empty value\(s\) at row 1; a date is required",
    ),
    "churn-before-join": (
        lambda: dict(partners=with_value(tiny_partners(), "churned_at", 0, "2022-01-01")),
        r"partners.csv: column 'churned_at': 1 partner\(s\) churned before they joined at row 1",
    ),
    "contract-ends-before-start": (
        lambda: dict(contracts=with_value(tiny_contracts(), "end_date", 0, "2022-12-31")),
        r"contracts.csv: column 'end_date': 1 contract\(s\) end before they start at row 1; end_date must be on or after start_date",
    ),
    "contract-terminated-before-start": (
        lambda: dict(contracts=with_value(tiny_contracts(), "terminated_at", 1, "2020-01-01")),
        r"contracts.csv: column 'terminated_at': 1 contract\(s\) terminated before they start at row 2",
    ),
    "contract-negative-value": (
        lambda: dict(contracts=with_value(tiny_contracts(), "value", 1, -1.0)),
        r"contracts.csv: column 'value': 1 negative value\(s\) at row 2",
    ),
    "contract-unknown-partner": (
        lambda: dict(contracts=with_value(tiny_contracts(), "partner_id", 1, "zz")),
        r"contracts.csv: column 'partner_id': 1 contract\(s\) for partner id\(s\) not in the partners table \(e.g. 'zz'\)",
    ),
    "missing-column": (
        lambda: dict(events=tiny_events().rename(columns={"timestamp": "timestmp"})),
        r"events.csv: missing required column 'timestamp'; nearest column in the file: 'timestmp' \(rename it, or map it in the config: data.columns.events.timestamp: timestmp\)",
    ),
    "empty-frame": (
        lambda: dict(events=tiny_events().iloc[:0]),
        r"events.csv: no rows; expected at least one events row",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_named(case):
    make, match = BAD[case]
    with pytest.raises(DataError, match=match):
        validate(**make())


def test_all_problems_are_reported_together():
    events = with_value(with_value(tiny_events(), "amount", 0, -1.0), "partner_id", 1, "ghost")
    partners = with_value(tiny_partners(), "partner_id", 2, "p1")
    with pytest.raises(DataError, match=r"input data has 3 problems") as info:
        validate(partners, events)
    text = str(info.value)
    assert "duplicated partner id" in text and "negative amount" in text and "not in the partners table" in text


def test_missing_column_shows_a_diff():
    with pytest.raises(DataError) as info:
        validate(events=tiny_events().drop(columns=["event_type"]).rename(columns={"channel": "kind"}))
    text = str(info.value)
    assert "missing required column 'event_type'; map your column to it in the config: data.columns.events.event_type" in text
    assert "-event_type" in text and "+kind" in text


def test_wrong_frame_type():
    with pytest.raises(TypeError, match="events must be a pandas DataFrame, got list"):
        validate_tables(tiny_partners(), [1, 2])


# --------------------------------------------------------------------------- reading files


def test_read_inputs_from_csv_and_parquet(tmp_path):
    config = write_project(tmp_path, contracts=tiny_contracts(), events_name="events.parquet")
    tables = read_inputs(load_config(config).data)
    assert tables.sources == {"partners": "partners.csv", "events": "events.parquet", "contracts": "contracts.csv"}
    assert summarize(tables)["event_types"] == {"nps_response": 1, "order": 3, "ticket_opened": 1}


def test_column_mapping_from_config(tmp_path):
    events = tiny_events().rename(columns={"timestamp": "event_time", "partner_id": "Partner ID"})
    config = write_project(
        tmp_path, events=events,
        extra_yaml="  columns:\n    events:\n      timestamp: event_time\n      partner_id: Partner ID\n",
    )
    tables = read_inputs(load_config(config).data)
    assert {"timestamp", "partner_id"} <= set(tables.events.columns)
    assert "event_time" not in tables.events.columns


def test_misnamed_column_in_file_names_file_and_fix(tmp_path):
    config = write_project(tmp_path, events=tiny_events().rename(columns={"event_type": "Event_Type"}))
    with pytest.raises(DataError, match=r"events.csv: missing required column 'event_type'; nearest column in the file: 'Event_Type'"):
        read_inputs(load_config(config).data)


def test_ids_with_leading_zeros_are_kept(tmp_path):
    partners = tiny_partners().assign(partner_id=["007", "010", "100"])
    events = tiny_events().assign(partner_id=["007", "007", "010", "010", "100"])
    config = write_project(tmp_path, partners=partners, events=events)
    tables = read_inputs(load_config(config).data)
    assert tables.partners["partner_id"].tolist() == ["007", "010", "100"]


def test_utf8_bom_is_handled(tmp_path):
    config = write_project(tmp_path)
    path = tmp_path / "events.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(read_inputs(load_config(config).data).events) == 5


def test_cp1251_export_is_named_then_read(tmp_path):
    partners = tiny_partners().assign(region=["Москва", "Казань", "Пермь"])
    config = write_project(tmp_path)
    partners.to_csv(tmp_path / "partners.csv", index=False, encoding="cp1251")
    with pytest.raises(DataError, match=r"partners.csv: not valid utf-8 text .* It decodes as Windows-1251 \(Cyrillic\): set data.csv_encoding: cp1251"):
        read_inputs(load_config(config).data)
    tables = read_inputs(load_config(config, ["data.csv_encoding=cp1251"]).data)
    assert tables.partners["region"].tolist() == ["Москва", "Казань", "Пермь"]


def test_delimiter_is_sniffed_or_named(tmp_path):
    config = write_project(tmp_path)
    tiny_events().to_csv(tmp_path / "events.csv", index=False, sep=";")
    assert len(read_inputs(load_config(config).data).events) == 5  # auto
    with pytest.raises(DataError, match=r"events.csv: the file reads as a single column .* it looks semicolon-delimited. Set data.csv_delimiter: ';'"):
        read_inputs(load_config(config, ["data.csv_delimiter=','"]).data)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"events.csv: the file is empty \(0 bytes\)"),
        (b"partner_id,timestamp,event_type,amount\n", r"events.csv: the file has a header but no rows"),
        (b"partner_id,timestamp,event_type\np1,2024-01-01,order,5,extra\n", r"events.csv: cannot parse as CSV with delimiter ','"),
    ],
    ids=["zero-bytes", "header-only", "ragged-row"],
)
def test_broken_csv_files(tmp_path, content, match):
    config = write_project(tmp_path)
    (tmp_path / "events.csv").write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_inputs(load_config(config).data)


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(DataError, match=r"data.events: file not found: .*nothere.csv"):
        read_table(tmp_path / "nothere.csv", table="events")
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(DataError, match=r"e.json: unsupported file type '.json' for data.events; use .csv"):
        read_table(tmp_path / "e.json", table="events")
    (tmp_path / "e.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"e.parquet: not a readable Parquet file"):
        read_table(tmp_path / "e.parquet", table="events")


def test_excel_input_is_read(tmp_path):
    tiny_events().to_excel(tmp_path / "events.xlsx", index=False)
    frame = read_table(tmp_path / "events.xlsx", table="events")
    assert frame["partner_id"].tolist() == ["p1", "p1", "p2", "p2", "p3"]


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="output folder does not exist"):
        atomic_write(tmp_path / "missing" / "x.csv", lambda tmp: None)
    atomic_write(target, lambda tmp: tmp.write_text("ok"))
    assert target.read_text() == "ok"


# --------------------------------------------------------------------------- fuzzing: only our own errors




_CELLS = st.one_of(
    st.none(),
    st.text(max_size=10),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["2024-01-05", "2024-01-05T10:00:00Z", "2024-01-05 10:00:00+03:00", "2024-02-30", "", " ", "NaT",
                     "nan", "1e309", "-0", "12,5", "p1", "p2", "p3", "order", "refund", "ticket_opened", "2023-03-01"]),
    st.datetimes(min_value=pd.Timestamp("1900-01-01").to_pydatetime(), max_value=pd.Timestamp("2200-01-01").to_pydatetime()),
)


_BASE = {"partners": tiny_partners, "events": tiny_events, "contracts": tiny_contracts}


@st.composite
def _frames(draw, table: str) -> pd.DataFrame:
    """A valid tiny table with 0-4 random mutations: cells, whole columns, dropped columns, rows."""
    frame = _BASE[table]().astype(object)
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["cell", "cell", "cell", "column", "drop", "extra", "rows", "duplicate"]))
        if action == "cell" and len(frame) and len(frame.columns):
            frame.iloc[draw(st.integers(0, len(frame) - 1)), draw(st.integers(0, len(frame.columns) - 1))] = draw(_CELLS)
        elif action == "column" and len(frame.columns):
            column = draw(st.sampled_from(list(frame.columns)))
            frame[column] = pd.Series(draw(st.lists(_CELLS, min_size=len(frame), max_size=len(frame))), index=frame.index, dtype=object)
        elif action == "drop" and len(frame.columns):
            frame = frame.drop(columns=draw(st.sampled_from(list(frame.columns))))
        elif action == "extra":
            frame[draw(st.sampled_from(["region", "item_id", "Partner ID", ""]))] = draw(_CELLS)
        elif action == "rows":
            frame = frame.iloc[sorted(draw(st.sets(st.integers(0, max(len(frame) - 1, 0)), max_size=len(frame))))]
        elif action == "duplicate" and len(frame):
            frame = pd.concat([frame, frame.iloc[[draw(st.integers(0, len(frame) - 1))]]], ignore_index=True)
        frame = frame.astype(object)
    return frame


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partners=_frames("partners"), events=_frames("events"), contracts=st.none() | _frames("contracts"),
       signed=st.booleans(), drop=st.booleans())
def test_fuzzed_frames_pass_the_contract_or_raise_a_data_error(partners, events, contracts, signed, drop):
    config = DataConfig(partners="p.csv", events="e.csv", signed_amount_types=["refund"] if signed else [],
                        unknown_partners="drop" if drop else "error")
    copies = [f.copy() if f is not None else None for f in (partners, events, contracts)]
    try:
        tables = validate_tables(partners, events, contracts, config=config)
    except DataError:
        pass
    else:  # what passes meets the contract
        assert str(tables.events["timestamp"].dtype) == TIMESTAMP_DTYPE and tables.events["timestamp"].notna().all()
        assert tables.partners["partner_id"].notna().all() and tables.partners["partner_id"].is_unique
        assert tables.events["partner_id"].isin(tables.partners["partner_id"]).all()
        amount = tables.events["amount"]
        assert amount.dtype == np.float64 and not np.isinf(amount).any()
        assert ((amount >= 0) | amount.isna() | tables.events["event_type"].eq("refund")).all()
        assert not tables.events.duplicated().any()
    for before, after in zip(copies, (partners, events, contracts), strict=True):
        if before is not None:
            pd.testing.assert_frame_equal(before, after)  # inputs never modified


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
       suffix=st.sampled_from([".csv", ".tsv", ".csv.gz", ".parquet", ".xlsx"]),
       delimiter=st.sampled_from([",", ";", "auto"]), encoding=st.sampled_from(["utf-8", "cp1251"]))
def test_fuzzed_files_are_read_or_named(tmp_path_factory, content, suffix, delimiter, encoding):
    path = tmp_path_factory.mktemp("fuzz") / f"partners{suffix}"
    path.write_bytes(b"partner_id,joined_at\n" + content if suffix == ".csv" and content[:1] != b"\x00" else content)
    try:
        frame = read_table(path, table="partners", delimiter=delimiter, encoding=encoding)
    except DataError as exc:
        assert "partners" in str(exc)  # names the file or the config key
    else:
        assert {"partner_id", "joined_at"} <= set(frame.columns)


ACTIONS_CFG = DataConfig(partners="p", events="e", actions={"types": {"qbr_offer": {"lever": "communication", "cost": 300}}})


def _with_actions(control: list, types: list | None = None) -> pd.DataFrame:
    events = tiny_events().assign(control=control)
    return events if types is None else events.assign(event_type=types)


def test_hold_out_flags_are_read_as_booleans_and_only_on_actions():
    types = ["order", "qbr_offer", "qbr_offer", "order", "order"]
    t = validate_tables(tiny_partners(), _with_actions(["", "TRUE", "0", None, "no"], types), config=ACTIONS_CFG)
    assert t.events["control"].tolist() == [False, True, False, False, False] and t.events["control"].dtype == bool
    with pytest.raises(DataError) as err:
        validate_tables(tiny_partners(), _with_actions(["maybe", "1", "x", "", ""], ["order", "qbr_offer", "order", "order", "order"]),
                        config=ACTIONS_CFG)
    text = str(err.value)
    assert "events: column 'control': 2 value(s) that are not yes/no flags at rows 1, 3 (e.g. 'maybe', 'x'); expected true/false" in text
    with pytest.raises(DataError, match=r"column 'control': 1 hold-out row\(s\) at row 1 whose event_type is not an action in "
                                        r"data.actions.types \(e.g. \['order'\]\)"):
        validate_tables(tiny_partners(), _with_actions([True, False, False, False, False]), config=ACTIONS_CFG)
    renamed = DataConfig(partners="p", events="e", actions={"types": {"qbr_offer": {"lever": "communication"}}, "control_column": "holdout"})
    t = validate_tables(tiny_partners(), tiny_events().assign(holdout=[0, 1, 0, 0, 0], event_type=types), config=renamed)
    assert "holdout" not in t.events and t.events["control"].tolist() == [False, True, False, False, False]
    t = validate_tables(tiny_partners(), tiny_events(), config=ACTIONS_CFG)
    assert "control" not in t.events and any("data.actions.types: ['qbr_offer'] have no events" in w for w in t.warnings)


def test_hold_out_rows_change_no_feature_and_no_label():
    """A hold-out row records an assignment, never an interaction: adding such rows to a log changes
    neither the rows, the labels (inactivity: they are no activity) nor any feature."""
    from churnmodel.config import Config
    from churnmodel.features import build_training_frame

    days = pd.date_range("2023-01-10", "2024-10-01", freq="19D")
    events = pd.DataFrame({"partner_id": "p1", "timestamp": days.strftime("%Y-%m-%dT10:00:00Z"), "event_type": "order", "amount": 5.0})
    silent = pd.date_range("2024-11-01", "2025-06-01", freq="MS")  # p1 goes quiet; only hold-out assignments follow
    held = pd.DataFrame({"partner_id": "p1", "timestamp": silent.strftime("%Y-%m-%dT01:00:00Z"), "event_type": "qbr_offer", "amount": 300.0})
    partners = pd.DataFrame({"partner_id": ["p1"], "joined_at": ["2023-01-01"]})
    cfg = Config.model_validate({"data": {"partners": "p", "events": "e", "extracted_at": "2025-07-01",
                                          "actions": {"types": {"qbr_offer": {"lever": "communication"}}}},
                                 "label": {"source": "inactivity", "inactive_days": 60, "horizon_days": 30},
                                 "features": {"windows": [30, 90], "trends": [], "segments": {"revenue_window_days": 90}}})
    both = pd.concat([events.assign(control=False), held.assign(control=True)], ignore_index=True)
    with_holdouts = build_training_frame(validate_tables(partners, both, config=cfg.data), cfg)[0]
    without = build_training_frame(validate_tables(partners, events.assign(control=False), config=cfg.data), cfg)[0]
    pd.testing.assert_frame_equal(with_holdouts, without)
    assert with_holdouts["label"].eq(1).any() and not any(c.startswith("qbr_offer") for c in with_holdouts.columns)
