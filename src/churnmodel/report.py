"""The analyst report: one self-contained HTML file (images embedded, no network), English or Russian."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd

from churnmodel.config import LabelConfig
from churnmodel.labels import active_at, churn_spells
from churnmodel.plots import plain
from churnmodel.texts import REPORT, SEGMENT_LABELS
from churnmodel.validation import InputTables

__all__ = ["partner_retention_rate", "render_report", "retention_rate"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin-bottom:0}.sub{color:#666;margin-top:4px}.cards{display:flex;gap:16px;flex-wrap:wrap;margin:18px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:200px}.card b{font-size:1.6em;display:block}
.card small{color:#666}table{border-collapse:collapse;margin:8px 0 20px;font-size:.9em}
th,td{border-bottom:1px solid #eee;padding:5px 8px;text-align:left;vertical-align:top}th{background:#f6f6f6}
td.num{text-align:right;white-space:nowrap}.high{color:#b00020;font-weight:600}.medium{color:#b26a00}.warn{color:#b00020}
"""


def partner_retention_rate(spells: pd.DataFrame, as_of: pd.Timestamp, *, days: int = 365) -> float:
    """Partners active at ``as_of - days`` still active at ``as_of``, x 100."""
    start = as_of - pd.Timedelta(days=days)
    at_start = spells.loc[active_at(spells, start), "partner_id"].unique()
    still = spells.loc[active_at(spells, as_of), "partner_id"].unique()
    return 100.0 * len(np.intersect1d(at_start, still)) / len(at_start) if len(at_start) else float("nan")


def retention_rate(tables: InputTables, label: LabelConfig, as_of: pd.Timestamp, *, days: int = 365) -> float:
    """:func:`partner_retention_rate` of the inputs, with churn as ``label`` defines it."""
    return partner_retention_rate(churn_spells(tables, label, end=as_of), as_of, days=days)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _table(frame: pd.DataFrame, names: dict[str, str], money: set[str] = frozenset(), share: set[str] = frozenset(),
           band_class: dict[str, str] | None = None) -> str:
    band_class = band_class or {}
    head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for c in frame.columns:
            v = row[c]
            if c in money:
                cells.append(f'<td class="num">{v:,.0f}</td>')
            elif c in share:
                cells.append(f'<td class="num">{v:.1%}</td>')
            elif isinstance(v, float):
                cells.append(f'<td class="num">{v:,.2f}</td>')
            else:
                cls = f' class="{band_class.get(v, "")}"' if c == "risk_band" else ""
                cells.append(f"<td{cls}>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _risk_curves(scores: pd.DataFrame, t: dict, names: dict, as_of: pd.Timestamp, *, top: int = 10) -> str:
    """The survival-curve section (only when the list has p_churn_<h>d columns): a chart and a table."""
    import re

    import matplotlib.pyplot as plt

    columns = [c for c in scores.columns if re.fullmatch(r"p_churn_\d+d", c)]
    if not columns:
        return ""
    days = [int(c[len("p_churn_"):-1]) for c in columns]
    rows = scores.head(top)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for _, r in rows.iterrows():
        ax.plot([0, *days], [0, *(r[c] for c in columns)], marker="o", ms=3, label=plain(r["partner_id"]))
    ax.set_xticks(days)
    ax.set_xlabel(t["days"].format(d=as_of.date()))
    ax.set_ylabel(t["left"])
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    chart = _png(fig)
    longest = days[-1] / (365.25 / 12)
    table = rows[["rank", "partner_id", *columns]].assign(**{
        t["median"]: rows["median_months_to_churn"].map(lambda m: t["beyond"].format(m=f"{longest:.0f}") if pd.isna(m) else f"{m:.1f}")})
    head = {**names, **{c: f"{d} d" if t is REPORT["en"] else f"{d} дн." for c, d in zip(columns, days, strict=True)}}
    return (f"<h2>{html.escape(t['curves'])}</h2><p class=\"sub\">{html.escape(t['curves_note'])}</p>{chart}"
            + _table(table, head, share=set(columns)))


def render_report(scores: pd.DataFrame, drift: pd.DataFrame, *, as_of: pd.Timestamp, prr: float, horizon_days: int,
                  bands: dict[str, float], drift_warn: float, model_label: str, lang: str = "en", top: int = 25) -> str:
    """The report as an HTML string (write it with :func:`churnmodel.data.atomic_write`)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    t = REPORT[lang]
    names = t["cols"]
    which = 0 if lang == "en" else 1
    scores = scores.assign(segment=scores["segment"].map(lambda v: SEGMENT_LABELS.get(v, (v, v))[which]),
                           band=scores["risk_band"].map(lambda v: t.get(v, v)))
    band_counts = scores["risk_band"].value_counts().reindex(["high", "medium", "low"], fill_value=0)
    cards = [
        (t["scored"], f"{len(scores):,}", ""),
        (t["expected"], f"{scores['churn_probability'].sum():,.1f}", t["horizon"].format(h=horizon_days)),
        (t["rar"], f"{scores['revenue_at_risk'].sum():,.0f}", t["rar_note"].format(h=horizon_days)),
        (t["prr"], f"{prr:.1f}%" if prr == prr else "—", t["prr_note"]),  # NaN: not known (an inactivity label on Spark)
    ]
    card_html = "".join(f'<div class="card"><small>{html.escape(a)}</small><b>{html.escape(b)}</b><small>{html.escape(c)}</small></div>'
                        for a, b, c in cards)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(scores["churn_probability"], bins=50, color="#4a78b5")
    for name, value in bands.items():
        ax.axvline(value, ls="--", c="#b00020" if name == "high" else "#b26a00")
        ax.text(value, ax.get_ylim()[1] * 0.9, f" {t[name]}", fontsize=8)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel(names["partners"])
    ax.set_xlabel(names["churn_probability"])
    distribution = _png(fig)
    band_table = _table(pd.DataFrame({names["risk_band"]: [t[b] for b in band_counts.index], names["partners"]: band_counts.to_numpy(),
                                      names["revenue_at_risk"]: [scores.loc[scores["risk_band"] == b, "revenue_at_risk"].sum() for b in band_counts.index]}),
                        {}, money={names["revenue_at_risk"]})
    acting = scores.loc[scores["action_1"].fillna("").astype(str) != ""] if "action_1" in scores else scores.iloc[:0]
    top_rows = acting.head(top)[["rank", "partner_id", "churn_probability", "risk_band", "band", "segment", "revenue_at_risk", "driver_1", "action_1"]]
    top_rows = top_rows.assign(risk_band=top_rows["band"]).drop(columns="band")
    top_table = (_table(top_rows, names, money={"revenue_at_risk"}, share={"churn_probability"}, band_class={t[b]: b for b in ("high", "medium", "low")})
                 if len(top_rows) else "") + f'<p class="sub">{html.escape(t["no_action"].format(n=len(scores) - len(acting)))}</p>'

    by_segment = scores.groupby("segment", observed=True).agg(partners=("partner_id", "size"), expected=("churn_probability", "sum"),
                                                             revenue_at_risk=("revenue_at_risk", "sum")).reset_index()
    segment_table = _table(by_segment, names, money={"revenue_at_risk"})
    explained = scores.loc[scores["lever_1"] != ""]
    by_lever = explained.groupby("lever_1").agg(partners=("partner_id", "size"), revenue_at_risk=("revenue_at_risk", "sum")) \
        .sort_values("revenue_at_risk", ascending=False).reset_index()
    fig, ax = plt.subplots(figsize=(7, 0.4 * max(len(by_lever), 1) + 1))
    ax.barh([plain(v) for v in by_lever["lever_1"][::-1]], by_lever["revenue_at_risk"][::-1], color="#b26a00")
    ax.set_xlabel(names["revenue_at_risk"])
    lever_plot = _png(fig)
    lever_table = _table(by_lever, names, money={"revenue_at_risk"})
    shifted = drift.loc[(drift["feature"] != "(score)") & (drift["psi"] > drift_warn)]
    score_psi = float(drift.loc[drift["feature"] == "(score)", "psi"].iloc[0]) if (drift["feature"] == "(score)").any() else float("nan")
    status = t["psi_bad"].format(n=len(shifted), w=drift_warn) if len(shifted) else t["psi_ok"].format(w=drift_warn)
    drift_table = _table(drift.loc[drift["feature"] != "(score)"].head(10), names)
    curves = _risk_curves(scores, t, names, as_of)
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(t['title'])}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(t['title'])}</h1>
<p class="sub">{html.escape(t['as_of'])} {as_of.date()} · {html.escape(t['model'])}: {html.escape(model_label)}</p>
<div class="cards">{card_html}</div>
<h2>{html.escape(t['bands'])}</h2>{band_table}
<h2>{html.escape(t['distribution'])}</h2>{distribution}
<h2>{html.escape(t['top'])}</h2>{top_table}
{curves}
<h2>{html.escape(t['segment'])}</h2>{segment_table}
<h2>{html.escape(t['lever'])}</h2>{lever_plot}{lever_table}
<h2>{html.escape(t['drift'])}</h2>
<p class="{'warn' if len(shifted) else ''}">{html.escape(status)}; {html.escape(t['score_psi'])} {score_psi:.3f}</p>{drift_table}
<p class="sub">{html.escape(t['footer'])}</p>
</body></html>
"""
