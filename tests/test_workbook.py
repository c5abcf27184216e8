"""The scored list as people open it: the workbook read back with openpyxl, the CSV as a spreadsheet reads it."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnmodel.cli import app
from test_bad_inputs import Project

runner = CliRunner()
AS_OF = "2024-04-01"


@pytest.fixture(scope="module")
def scored(sample_training, tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    model = sample_training[2].model.save(root / "model")
    Project().write(root)
    for lang in ("en", "ru"):
        for out in (f"s_{lang}.xlsx", f"s_{lang}.csv"):
            result = runner.invoke(app, ["score", "--config", str(root / "config.yaml"), "--as-of", AS_OF, "--model", str(model),
                                         "--out", str(root / out), "--lang", lang, "--set", "output.currency=RUB"])
            assert result.exit_code == 0, result.output
    return root


def test_the_workbook_is_formatted_for_an_analyst(scored):
    book = openpyxl.load_workbook(scored / "s_en.xlsx")
    assert book.sheetnames == ["Scored partners", "Summary", "Actions"]
    sheet = book["Scored partners"]
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["Rank", "Partner", "As of", "Churn probability"] and "Revenue at risk" in header
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:") and all(c.font.b for c in sheet[1])
    row = {h: c for h, c in zip(header, sheet[2], strict=True)}
    assert row["Churn probability"].number_format == "0.0%" and 0 <= row["Churn probability"].value <= 1
    assert row["Revenue at risk"].number_format == '#,##0 "RUB"'
    assert row["As of"].number_format == "yyyy-mm-dd" and row["As of"].is_date
    assert row["Risk band"].value in ("high", "medium", "low") and row["Rank"].value == 1
    assert all(sheet.column_dimensions[c].width >= 8 for c in "ABCD")
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(min_row=2, values_only=True) if r[0]}
    assert summary["Partners scored"] == 3 and summary["As of"] == AS_OF and {"high", "medium", "low"} <= set(summary)
    assert [c.value for c in book["Actions"][1]] == ["Rank", "Partner", "Order", "Driver", "Lever", "Action"]


def test_russian_output_translates_headers_bands_and_segments(scored):
    book = openpyxl.load_workbook(scored / "s_ru.xlsx")
    assert book.sheetnames == ["Оценка партнёров", "Сводка", "Действия"]
    header = [c.value for c in book.worksheets[0][1]]
    assert header[:4] == ["Место", "Партнёр", "На дату", "Вероятность ухода"]
    bands = {c.value for c in book.worksheets[0]["E"][1:]}
    assert bands <= {"высокий", "средний", "низкий"}
    segments = {c.value for c in book.worksheets[0]["F"][1:]}
    assert segments <= {"стратегический", "перспективный", "транзакционный"}


def test_the_csv_opens_in_a_spreadsheet_of_its_language(scored):
    raw = (scored / "s_ru.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    ru = pd.read_csv(scored / "s_ru.csv", sep=";", decimal=",", encoding="utf-8-sig")
    assert list(ru.columns[:4]) == ["Место", "Партнёр", "На дату", "Вероятность ухода"]
    assert ru["Вероятность ухода"].between(0, 1).all()  # the decimal comma read back as numbers
    en = pd.read_csv(scored / "s_en.csv", encoding="utf-8-sig")
    assert list(en.columns[:2]) == ["rank", "partner_id"] and (scored / "s_en.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    machine = runner.invoke(app, ["score", "--config", str(scored / "config.yaml"), "--as-of", AS_OF, "--model", str(scored / "model"),
                                  "--out", str(scored / "m.csv"), "--lang", "ru", "--set", "output.csv_style=machine"])
    assert machine.exit_code == 0, machine.output
    assert pd.read_csv(scored / "m.csv").columns[0] == "partner_id" and not (scored / "m.csv").read_bytes().startswith(b"\xef")
