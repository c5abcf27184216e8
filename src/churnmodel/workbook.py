"""The scored list as people read it: a formatted workbook and a spreadsheet-ready CSV, in their language.

The workbook has three sheets: the scored list (rank first, percentages, money, dates as dates, a
bold frozen header with a filter), a summary (the report's headline figures and the band table) and
the actions for the account team (one row per partner and driver: lever and action). Headers, bands
and segments are in the output language; Parquet and the machine CSV keep the data contract's names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from churnmodel.config import OutputConfig
from churnmodel.outputs import (
    CsvDialect,
    Sheet,
    check_finite,
    check_output,
    frame_writer,
    write_xlsx,
)
from churnmodel.texts import BANDS, PLAN_SUMMARY, SEGMENT_LABELS, WORKBOOK, column_title

__all__ = ["for_people", "plan_writer", "scored_list_writer", "workbook_sheets"]

_SHARE = re.compile(r"churn_probability|p_churn_\d+d")
_MONEY = ("revenue", "revenue_at_risk", "expected_gain", "action_cost")


def for_people(scores: pd.DataFrame, *, lang: str, translate_headers: bool = True) -> pd.DataFrame:
    """Rank first; bands and segments in ``lang``; headers in ``lang`` (``translate_headers``)."""
    which = 0 if lang == "en" else 1
    out = scores[["rank", *[c for c in scores.columns if c != "rank"]]] if "rank" in scores.columns else scores
    out = out.assign(**{c: out[c].map(lambda v, t=table: t.get(v, (v, v))[which] if isinstance(v, str) else v)
                        for c, table in (("risk_band", BANDS), ("segment", SEGMENT_LABELS)) if c in out.columns})
    return out.rename(columns=lambda c: column_title(c, lang)) if translate_headers else out


def _money(currency: str) -> str:
    """Excel's thousands format, with the currency after the amount when one is configured."""
    return '#,##0 "' + currency.replace('"', "") + '"' if currency else "#,##0"


def _formats(columns, lang: str, currency: str) -> dict[str, str]:
    money = _money(currency)
    formats = {}
    for c in columns:
        if _SHARE.fullmatch(c):
            formats[column_title(c, lang)] = "0.0%"
        elif c in _MONEY:
            formats[column_title(c, lang)] = money
        elif c.endswith("_points"):
            formats[column_title(c, lang)] = "+0.0%;-0.0%"  # probability points: +5.2% adds 5.2 points to the probability
        elif c in ("expected_months_active", "median_months_to_churn"):
            formats[column_title(c, lang)] = "0.0"
        elif c == "as_of":
            formats[column_title(c, lang)] = "yyyy-mm-dd"
    return formats


def workbook_sheets(scores: pd.DataFrame, *, lang: str, summary: dict, prr: float | None, as_of: pd.Timestamp,
                    model_label: str, currency: str = "") -> list[Sheet]:
    """The three sheets of the scored-list workbook."""
    t = WORKBOOK[lang]
    which = 0 if lang == "en" else 1
    people = for_people(scores, lang=lang)
    money = _money(currency)
    figures = pd.DataFrame({t["figure"]: [t["as_of"], t["model"], t["partners"], t["expected"], t["high"], t["rar"], t["prr"]],
                            t["value"]: [as_of.strftime("%Y-%m-%d"), model_label, summary["partners"], round(summary["expected_churners"], 1),
                                         summary["high_risk"], round(summary["revenue_at_risk"]),
                                         None if prr is None or prr != prr else round(prr, 1)]})
    bands = scores.groupby("risk_band", observed=True).agg(n=("partner_id", "size"), rar=("revenue_at_risk", "sum"))
    bands = bands.reindex(["high", "medium", "low"]).fillna(0).reset_index()
    band_table = pd.DataFrame({t["band"]: [BANDS[b][which] for b in bands["risk_band"]], t["count"]: bands["n"].astype(int),
                               t["rar"]: bands["rar"]})
    summary_frame = pd.concat([figures, pd.DataFrame({t["figure"]: [None], t["value"]: [None]}),
                               band_table.rename(columns={t["band"]: t["figure"], t["count"]: t["value"]})], ignore_index=True)
    rows = []
    k = 1
    while f"driver_{k}" in scores.columns:
        part = scores.loc[scores[f"driver_{k}"].fillna("") != "", ["rank", "partner_id", f"driver_{k}", f"lever_{k}", f"action_{k}"]]
        rows.append(part.set_axis(["rank", "partner_id", "driver", "lever", "action"], axis=1).assign(order=k))
        k += 1
    actions = (pd.concat(rows, ignore_index=True).sort_values(["rank", "order"]) if rows else
               pd.DataFrame(columns=["rank", "partner_id", "driver", "lever", "action", "order"]))
    actions = actions[["rank", "partner_id", "order", "driver", "lever", "action"]].set_axis(
        [t["rank"], t["partner"], t["order"], t["driver"], t["lever"], t["action"]], axis=1)
    return [Sheet(t["list"], people, _formats(scores.columns, lang, currency)),
            Sheet(t["summary"], summary_frame, {t["rar"]: money}),
            Sheet(t["actions"], actions)]


def scored_list_writer(scores: pd.DataFrame, out: str | Path, *, lang: str, output: OutputConfig, summary: dict,
                       prr: float | None, as_of: pd.Timestamp, model_label: str) -> tuple[Path, Callable[[Path], None]]:
    """(path, writer) of the ranked list: a formatted workbook (.xlsx), a CSV for spreadsheets in ``lang``
    or for machines (``output.csv_style``), or Parquet with the data contract's columns."""
    out = check_output(out)
    if out.suffix.lower() == ".xlsx":
        check_finite(scores, out)
        sheets = workbook_sheets(scores, lang=lang, summary=summary, prr=prr, as_of=as_of, model_label=model_label,
                                 currency=output.currency)
        return out, lambda tmp: write_xlsx(sheets, tmp)
    if out.suffix.lower() == ".csv" and output.csv_style == "spreadsheet":
        frame = for_people(scores, lang=lang, translate_headers=lang != "en")
        return out, frame_writer(frame, out, formula_guard=output.csv_formula_guard, csv_dialect=CsvDialect.spreadsheet(lang))
    return out, frame_writer(scores, out, formula_guard=output.csv_formula_guard)



def plan_writer(plan: pd.DataFrame, out: str | Path, *, lang: str, output: OutputConfig, summary: dict, as_of: pd.Timestamp,
                model_label: str) -> tuple[Path, Callable[[Path], None]]:
    """(path, writer) of a retention plan, written like the scored list: a formatted workbook (.xlsx: the
    plan and a summary of what it keeps against the ranking policies), a CSV for spreadsheets in ``lang``
    or for machines, or Parquet."""
    out = check_output(out)
    if out.suffix.lower() == ".xlsx":
        check_finite(plan, out)
        t = PLAN_SUMMARY[lang]
        figures = pd.DataFrame({WORKBOOK[lang]["figure"]: [WORKBOOK[lang]["as_of"], WORKBOOK[lang]["model"], t["budget"], t["spent"],
                                                           t["funded"], t["value_plan"], t["value_risk"], t["value_revenue_at_risk"]],
                                WORKBOOK[lang]["value"]: [as_of.strftime("%Y-%m-%d"), model_label, summary["budget"], summary["spent"],
                                                          summary["funded"], round(summary["value_plan"]), round(summary["value_risk"]),
                                                          round(summary["value_revenue_at_risk"])]})
        sheets = [Sheet(t["plan"], _plan_order_first(for_people(plan, lang=lang), lang), _formats(plan.columns, lang, output.currency)),
                  Sheet(WORKBOOK[lang]["summary"], figures)]
        return out, lambda tmp: write_xlsx(sheets, tmp)
    if out.suffix.lower() == ".csv" and output.csv_style == "spreadsheet":
        frame = _plan_order_first(for_people(plan, lang=lang, translate_headers=lang != "en"), lang if lang != "en" else None)
        return out, frame_writer(frame, out, formula_guard=output.csv_formula_guard, csv_dialect=CsvDialect.spreadsheet(lang))
    return out, frame_writer(plan, out, formula_guard=output.csv_formula_guard)


def _plan_order_first(people: pd.DataFrame, lang: str | None) -> pd.DataFrame:
    """The plan's own order before the risk rank :func:`for_people` puts first (``lang`` None: untranslated headers)."""
    first = column_title("plan_order", lang) if lang else "plan_order"
    return people[[first, *[c for c in people.columns if c != first]]]
