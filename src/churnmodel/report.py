"""The analyst report: one self-contained HTML file (images embedded, no network), English or Russian."""

from __future__ import annotations

import base64
import html
import io
import re
import textwrap
import warnings

import numpy as np
import pandas as pd

from churnmodel.config import LabelConfig
from churnmodel.labels import active_at, churn_spells
from churnmodel.plots import plain
from churnmodel.texts import MONITOR, REPORT, SEGMENT_LABELS
from churnmodel.validation import InputTables

__all__ = ["partner_retention_rate", "render_monitor_report", "render_report", "retention_rate"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin-bottom:0}.sub{color:#666;margin-top:4px}.cards{display:flex;gap:16px;flex-wrap:wrap;margin:18px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:12px 16px;min-width:200px}.card b{font-size:1.6em;display:block}
.card small{color:#666}table{border-collapse:collapse;margin:8px 0 20px;font-size:.9em}
th,td{border-bottom:1px solid #eee;padding:5px 8px;text-align:left;vertical-align:top}th{background:#f6f6f6}
td.num{text-align:right;white-space:nowrap}.high{color:#b00020;font-weight:600}.medium{color:#b26a00}.warn{color:#b00020;font-weight:600}
.ok{color:#2e7d32}.def{color:#555;margin:-6px 0 10px;max-width:900px}img{max-width:100%;height:auto}
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


def _png(fig, alt: str) -> str:
    """A figure as an embedded PNG. Figures here are plain ``Figure`` objects, not pyplot's: nothing to
    close, nothing kept between reports, no display backend needed."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a label in a script the font lacks is drawn as boxes; the tables show it as text
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _number(value: float, spec: str, lang: str) -> str:
    """A number the reader's way: 1,234.5 in English, 1 234,5 in Russian."""
    text = format(value, spec)
    return text if lang == "en" else text.replace(",", "\u00a0").replace(".", ",")


def _money(value: float, lang: str, currency: str) -> str:
    return f"{_number(value, ',.0f', lang)} {currency}".strip()


def _compact(value: float, lang: str) -> str:
    """An axis tick: 2.5M, 750k (2,5 млн, 750 тыс. in Russian)."""
    units = ((REPORT[lang]["millions"], 1e6), (REPORT[lang]["thousands"], 1e3))
    for suffix, size in units:
        if abs(value) >= size:
            return f"{_number(value / size, '.3g', lang)}{suffix}"
    return _number(value, ",.0f", lang)


def _table(frame: pd.DataFrame, names: dict[str, str], *, lang: str, currency: str = "", money=frozenset(), share=frozenset(),
           band_class: dict[str, str] | None = None) -> str:
    band_class = band_class or {}
    head = "".join(f"<th>{html.escape(names.get(c, c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for c, v in zip(frame.columns, row, strict=True):
            if isinstance(v, float) and v != v:  # not known (yet): a dash, never "nan"
                cells.append('<td class="num">—</td>')
            elif c in money:
                cells.append(f'<td class="num">{html.escape(_money(v, lang, currency))}</td>')
            elif c in share:
                cells.append(f'<td class="num">{html.escape(_number(v, ".1%", lang))}</td>')
            elif isinstance(v, float):
                cells.append(f'<td class="num">{html.escape(_number(v, ",.2f", lang))}</td>')
            elif isinstance(v, int | np.integer) and not isinstance(v, bool):
                cells.append(f'<td class="num">{html.escape(_number(v, ",", lang))}</td>')
            else:
                cls = f' class="{band_class.get(v, "")}"' if c == "risk_band" else ""
                cells.append(f"<td{cls}>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _section(title: str, definition: str, body: str) -> str:
    return f'<section><h2>{html.escape(title)}</h2><p class="def">{html.escape(definition)}</p>{body}</section>'


def _risk_curves(scores: pd.DataFrame, t: dict, names: dict, as_of: pd.Timestamp, lang: str, *, top: int = 10) -> str:
    """The survival-curve section (only when the list has p_churn_<h>d columns): a chart and a table."""
    from matplotlib.figure import Figure

    columns = [c for c in scores.columns if re.fullmatch(r"p_churn_\d+d", c)]
    if not columns:
        return ""
    days = [int(c[len("p_churn_"):-1]) for c in columns]
    rows = scores.head(top)
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    for _, r in rows.iterrows():
        ax.plot([0, *days], [0, *(r[c] for c in columns)], marker="o", ms=3, label=f"#{r['rank']}")  # ids in the table below
    ax.set_xticks(days)
    ax.set_xlabel(t["days"].format(d=as_of.date()))
    ax.set_ylabel(t["left"])
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(_percent())
    ax.legend(fontsize=7, ncol=2)
    chart = _png(fig, t["curves"])
    longest = days[-1] / (365.25 / 12)
    table = rows[["rank", "partner_id", *columns]].assign(**{
        t["median"]: rows["median_months_to_churn"].map(lambda m: t["beyond"].format(m=f"{longest:.0f}") if pd.isna(m) else _number(m, ".1f", lang))})
    head = {**names, **{c: t["days_short"].format(d=d) for c, d in zip(columns, days, strict=True)}}
    return _section(t["curves"], t["curves_note"], chart + _table(table, head, lang=lang, share=set(columns)))


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


def _why(acting: pd.DataFrame, t: dict, lang: str, *, top: int = 5) -> str:
    """Per partner, the size of each driver and of the protective factor (probability points): one
    small bar chart per partner, the top partners with an action."""

    from matplotlib.figure import Figure

    drivers = sorted(c for c in acting.columns if re.fullmatch(r"driver_\d+_points", c))
    rows = acting.head(top)
    if not drivers or rows.empty:
        return ""
    fig = Figure(figsize=(7.5, 1.5 * len(rows) + 0.4))
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)
    for ax, (_, r) in zip(axes[:, 0], rows.iterrows(), strict=True):
        parts = [(r[c.removesuffix("_points")], r[c]) for c in drivers if pd.notna(r[c])]
        if "protective_points" in r and pd.notna(r["protective_points"]):
            parts.append((r["protective_factor"], r["protective_points"]))
        # a driver reads "label: value (typical ...)": the bar is named by its label
        labels = [plain(textwrap.shorten(str(text).rsplit(": ", 1)[0], 60, placeholder="...")) for text, _ in parts][::-1]
        values = [100 * v for _, v in parts][::-1]
        ax.barh(labels, values, color=["#b00020" if v > 0 else "#2e7d32" for v in values])
        ax.axvline(0, color="#444", lw=0.8)
        # the rank, as in the table above: partner ids are data, and data is shown as HTML text, not drawn
        ax.set_title(f"#{r['rank']} · {_number(r['churn_probability'], '.0%', lang)}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel(t["points"])
    fig.subplots_adjust(hspace=0.55)
    return _section(t["why"], t["why_def"], _png(fig, t["why"]))


def _data_check(drift: pd.DataFrame, t: dict, lang: str, warn: float) -> tuple[str, str]:
    """(the plain-words section, the appendix with the PSI table)."""
    inputs = drift.loc[drift["feature"] != "(score)"]
    label = inputs[f"label_{lang}"] if f"label_{lang}" in inputs else inputs["feature"]
    shifted = inputs.loc[inputs["psi"] > warn]
    score_psi = float(drift.loc[drift["feature"] == "(score)", "psi"].iloc[0]) if (drift["feature"] == "(score)").any() else float("nan")
    if len(shifted):
        names = ", ".join(label.loc[shifted.index[:5]]) + (" ..." if len(shifted) > 5 else "")
        body = (f'<p class="warn">{html.escape(t["drift_bad"].format(n=len(shifted), names=names))}</p>'
                f'<p>{html.escape(t["drift_do"])}</p>')
    else:
        body = f'<p class="ok">{html.escape(t["drift_ok"])}</p>'
    detail = pd.DataFrame({"label": label, "feature": inputs["feature"], "psi": inputs["psi"]}).head(max(10, len(shifted)))
    appendix = _section(t["appendix"], t["psi_def"].format(w=_number(warn, "g", lang), s=_number(score_psi, ".3f", lang)), _table(detail, t["cols"], lang=lang))
    return f'<section><h2>{html.escape(t["drift"])}</h2>{body}</section>', appendix


def _actions(scores: pd.DataFrame, budgets: pd.DataFrame | None, t: dict, names: dict, lang: str, currency: str) -> str:
    """With uplift models: per best action, its partners, the value kept and the probability removed; and the
    value kept against the budget by the plan and by the ranking policies."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if "best_action" not in scores:
        return ""
    chosen = scores.loc[scores["best_action"] != ""]
    table = chosen.groupby(["best_action", "best_action_lever"]).agg(
        partners=("partner_id", "size"), expected_gain=("expected_gain", "sum"),
        expected_effect_points=("expected_effect_points", "mean")).sort_values("expected_gain", ascending=False).reset_index()
    body = _table(table, names, lang=lang, currency=currency, money={"expected_gain"}, share={"expected_effect_points"})
    body += f'<p class="sub">{html.escape(t["no_best"].format(n=_number(len(scores) - len(chosen), ",", lang)))}</p>'
    if budgets is not None and len(budgets) > 1:
        fig = Figure(figsize=(7, 3))
        ax = fig.subplots()
        for key, style in (("value_plan", "o-"), ("value_risk", "s--"), ("value_revenue_at_risk", "^:")):
            ax.plot(budgets["budget"], budgets[key], style, label=names[key])
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(5))
            axis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v, lang)))
        ax.set_xlabel(f"{names['budget']}, {currency}" if currency else names["budget"])
        ax.set_ylabel(f"{names['expected_gain']}, {currency}" if currency else names["expected_gain"])
        ax.legend(fontsize=8)
        body += _png(fig, t["actions"])
    return _section(t["actions"], t["actions_def"], body)


def render_report(scores: pd.DataFrame, drift: pd.DataFrame, *, as_of: pd.Timestamp, prr: float, horizon_days: int,
                  bands: dict[str, float], drift_warn: float, model_label: str, lang: str = "en", currency: str = "",
                  top: int = 25, budgets: pd.DataFrame | None = None) -> str:
    """The report as an HTML string (write it with :func:`churnmodel.data.atomic_write`). ``budgets``: with uplift
    models, what the plan and the ranking policies keep per budget (:func:`churnmodel.planning.budget_curve`)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    t = REPORT[lang]
    names = t["cols"]
    which = 0 if lang == "en" else 1
    scores = scores.assign(segment=scores["segment"].map(lambda v: SEGMENT_LABELS.get(v, (v, v))[which]),
                           band=scores["risk_band"].map(lambda v: t.get(v, v)))
    band_counts = scores["risk_band"].value_counts().reindex(["high", "medium", "low"], fill_value=0)
    cards = [
        (t["scored"], _number(len(scores), ",", lang), t["scored_def"].format(d=as_of.date())),
        (t["expected"], _number(scores["churn_probability"].sum(), ",.1f", lang), t["expected_def"].format(h=horizon_days)),
        (t["rar"], _money(scores["revenue_at_risk"].sum(), lang, currency), t["rar_note"].format(h=horizon_days)),
        (t["prr"], _number(prr / 100, ".1%", lang) if prr == prr else "—", t["prr_note"]),  # NaN: not known (an inactivity label on Spark)
    ]
    card_html = "".join(f'<div class="card"><small>{html.escape(a)}</small><b>{html.escape(b)}</b><small>{html.escape(c)}</small></div>'
                        for a, b, c in cards)
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    ax.hist(scores["churn_probability"], bins=50, color="#4a78b5")
    for name in ("high", "medium"):
        value = bands[name]
        ax.axvline(value, ls="--", c="#b00020" if name == "high" else "#b26a00")
        ax.text(value, ax.get_ylim()[1] * 0.9, f" {t[name]}", fontsize=8)
    ax.xaxis.set_major_formatter(_percent())
    ax.set_ylabel(names["partners"])
    ax.set_xlabel(names["churn_probability"])
    distribution = _png(fig, t["distribution"])
    band_table = _table(pd.DataFrame({"risk_band": [t[b] for b in band_counts.index], "partners": band_counts.to_numpy(),
                                      "revenue_at_risk": [scores.loc[scores["risk_band"] == b, "revenue_at_risk"].sum() for b in band_counts.index]}),
                        names, lang=lang, currency=currency, money={"revenue_at_risk"}, band_class={t[b]: b for b in ("high", "medium", "low")})
    acting = scores.loc[scores["action_1"].fillna("").astype(str) != ""] if "action_1" in scores else scores.iloc[:0]
    top_rows = acting.head(top)[["rank", "partner_id", "churn_probability", "risk_band", "band", "segment", "revenue_at_risk", "driver_1", "action_1"]]
    top_rows = top_rows.assign(risk_band=top_rows["band"]).drop(columns="band")
    top_table = (_table(top_rows, names, lang=lang, currency=currency, money={"revenue_at_risk"}, share={"churn_probability"},
                        band_class={t[b]: b for b in ("high", "medium", "low")}) if len(top_rows) else "")
    top_table += f'<p class="sub">{html.escape(t["no_action"].format(n=_number(len(scores) - len(acting), ",", lang)))}</p>'
    by_segment = scores.groupby("segment", observed=True).agg(partners=("partner_id", "size"), expected=("churn_probability", "sum"),
                                                             revenue_at_risk=("revenue_at_risk", "sum")).reset_index()
    explained = scores.loc[scores["lever_1"] != ""]
    by_lever = explained.groupby("lever_1").agg(partners=("partner_id", "size"), revenue_at_risk=("revenue_at_risk", "sum")) \
        .sort_values("revenue_at_risk", ascending=False).reset_index()
    fig = Figure(figsize=(7, 0.4 * max(len(by_lever), 1) + 1))
    ax = fig.subplots()
    ax.barh([plain(v) for v in by_lever["lever_1"][::-1]], by_lever["revenue_at_risk"][::-1], color="#b26a00")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v, lang)))
    ax.set_xlabel(f"{names['revenue_at_risk']}, {currency}" if currency else names["revenue_at_risk"])
    data_check, appendix = _data_check(drift, t, lang, drift_warn)
    body = "".join([
        _section(t["bands"], t["bands_share_def" if "high_share" in bands else "bands_def"].format(**bands), band_table),
        _section(t["distribution"], t["distribution_def"].format(h=horizon_days), distribution),
        _section(t["top"], t["top_def"], top_table),
        _why(acting, t, lang),
        _risk_curves(scores, t, names, as_of, lang),
        _section(t["segment"], t["segment_def"], _table(by_segment, names, lang=lang, currency=currency, money={"revenue_at_risk"})),
        _section(t["lever"], t["lever_def"], _png(fig, t["lever"]) + _table(by_lever, names, lang=lang, currency=currency, money={"revenue_at_risk"})),
        _actions(scores, budgets, t, names, lang, currency),
        data_check, appendix])
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(t['title'])}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(t['title'])}</h1>
<p class="sub">{html.escape(t['as_of'])} {as_of.date()} · {html.escape(t['model'])}: {html.escape(model_label)}</p>
<div class="cards">{card_html}</div>
{body}
<p class="sub">{html.escape(t['footer'])}</p>
</body></html>
"""


def _drift_over_time(drift: pd.DataFrame | None, t: dict, lang: str, *, top: int = 6) -> str:
    """The inputs that moved most (largest PSI in any run) and the score, PSI per run: a line each."""
    from matplotlib.figure import Figure

    if drift is None or drift.empty or drift["as_of"].nunique() < 2:
        return ""
    drift = drift.assign(as_of=pd.to_datetime(drift["as_of"]))
    inputs = drift.loc[drift["feature"] != "(score)"]
    moved = inputs.groupby("feature")["psi"].max().sort_values(ascending=False).head(top).index
    fig = Figure(figsize=(7, 3.4))
    ax = fig.subplots()
    for feature in ["(score)", *moved]:
        part = drift.loc[drift["feature"] == feature].groupby("as_of")["psi"].mean()
        name = t["score"] if feature == "(score)" else inputs.loc[inputs["feature"] == feature, f"label_{lang}"].iloc[0]
        ax.plot(part.index, part.to_numpy(), "o-" if feature == "(score)" else ".-", lw=2.5 if feature == "(score)" else 1,
                label=plain(textwrap.shorten(str(name), 60)))
    ax.axhline(0.1, color="grey", ls=":")
    ax.set_ylabel("PSI")
    ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    return _section(t["drift"], t["drift_def"], _png(fig, t["drift"]))


def render_monitor_report(runs: pd.DataFrame, segments: pd.DataFrame, *, lang: str, data_end: pd.Timestamp, deciding: pd.Series,
                          drift: pd.DataFrame | None = None) -> str:
    """The monitoring report (:func:`churnmodel.pipeline.monitor`) as a self-contained HTML page; ``deciding``: the
    run that sets the model's verdict (:attr:`churnmodel.runs.MonitorRun.deciding`)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    t = MONITOR[lang]
    names = t["cols"]
    which = 0 if lang == "en" else 1
    dates = pd.to_datetime(runs["as_of"])
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    done = runs["status"] == "matured"
    if "auc" in runs and done.any():
        ax.errorbar(dates[done], runs.loc[done, "auc"], yerr=[runs.loc[done, "auc"] - runs.loc[done, "auc_ci_low"],
                    runs.loc[done, "auc_ci_high"] - runs.loc[done, "auc"]], fmt="o-", capsize=3, label=names["auc"])
    ax.plot(dates, runs["estimated_auc"], "s--", label=names["estimated_auc"])
    ax.fill_between(dates, runs["estimated_low"], runs["estimated_high"], alpha=0.2)
    if runs["model_test_auc"].notna().any():
        ax.axhline(runs["model_test_auc"].dropna().iloc[-1], ls=":", color="grey")
    ax.set_ylabel("AUC")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    auc_png = _png(fig, t["auc"])
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    ax.plot(dates, runs["predicted_rate"], "o-", label=names["predicted_rate"])
    ax.plot(dates[done], runs.loc[done, "observed_rate"], "s-", label=names["observed_rate"])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _number(v, ".1%", lang)))
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    rate_png = _png(fig, t["rate"])
    if lang == "ru":  # what people read, in their language
        runs = runs.assign(**{c: runs[f"{c}_ru"] for c in ("reason", "inputs_moved") if f"{c}_ru" in runs})
        deciding = deciding.copy()
        deciding["reason"] = deciding.get("reason_ru", deciding["reason"])
    shown = runs.assign(as_of=dates.dt.strftime("%Y-%m-%d"), verdict=runs["verdict"].map(t), status=runs["status"].map(
        {"matured": ("matured", "завершена"), "maturing": ("maturing", "созревает")}).map(lambda v: v[which]))
    columns = [c for c in ("as_of", "model", "status", "partners", "predicted_rate", "observed_rate", "auc", "estimated_auc", "score_psi",
                           "verdict", "reason", "inputs_moved") if c in shown]
    table = _table(shown[columns], names, lang=lang, share={"predicted_rate", "observed_rate"})
    seg = segments.loc[segments["status"] == "matured"].assign(
        as_of=lambda d: pd.to_datetime(d["as_of"]).dt.strftime("%Y-%m-%d"),
        segment=lambda d: d["segment"].map(lambda v: SEGMENT_LABELS.get(v, (v, v))[which]))
    seg_columns = [c for c in ("as_of", "segment", "partners", "predicted_rate", "observed_rate", "auc", "lift_top_decile",
                               "revenue_at_risk", "revenue_lost") if c in seg]
    seg_table = _table(seg[seg_columns], names, lang=lang, share={"predicted_rate", "observed_rate"},
                       money={"revenue_at_risk", "revenue_lost"}) if len(seg) else ""
    body = "".join([_section(t["auc"], t["auc_def"], auc_png), _section(t["rate"], t["rate_def"], rate_png),
                    _drift_over_time(drift, t, lang), _section(t["runs"], t["runs_def"], table)]
                   + ([_section(t["segments"], t["segments_def"], seg_table)] if seg_table else []))
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(t['title'])}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(t['title'])}</h1>
<p class="sub">{html.escape(t['data_end'])} {data_end.date()}</p>
<div class="cards"><div class="card"><small>{html.escape(t['verdict'])}</small><b>{html.escape(t[deciding['verdict']])}</b>
<small>{html.escape(f"{pd.Timestamp(deciding['as_of']).date()}: {deciding['reason']}")}</small></div></div>
{body}
</body></html>
"""
