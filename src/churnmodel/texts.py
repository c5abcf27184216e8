"""The words the product shows, in English and Russian, in one catalogue: segments, retention levers,
the action per lever, and the labels of the console and report.

The retention material behind the product names the segments (strategic, prospective,
transactional), the levers (regular communication, transparency, mutual value, conflict resolution,
loyalty programmes, partner development, NPS follow-up, responsiveness) and what to do about each.
Config (``explain.actions``, ``explain.lever_names``) can replace any of these texts lever by lever.
"""

from __future__ import annotations

import re

__all__ = ["ACTIONS", "BANDS", "COLUMNS", "CONSOLE", "LANGS", "LEVER_NAMES", "MONITOR", "MONITOR_REASONS", "PLAN_SUMMARY", "REPORT", "SEGMENT_LABELS", "WORKBOOK",
           "column_title"]

#: Languages every text exists in.
LANGS = ("en", "ru")

#: Segment -> (English, Russian).
SEGMENT_LABELS = {
    "strategic": ("strategic", "стратегический"),
    "prospective": ("prospective", "перспективный"),
    "transactional": ("transactional", "транзакционный"),
}

#: Lever -> (English, Russian) name.
LEVER_NAMES = {
    "responsiveness": ("Responsiveness", "Оперативность"),
    "communication": ("Communication", "Коммуникация"),
    "transparency": ("Transparency", "Прозрачность"),
    "mutual_value": ("Mutual value", "Взаимная выгода"),
    "conflict": ("Conflict resolution", "Урегулирование конфликтов"),
    "development": ("Partner development", "Развитие партнёра"),
    "loyalty": ("Loyalty programme", "Программа лояльности"),
    "satisfaction": ("Satisfaction (NPS)", "Удовлетворённость (NPS)"),
    "profile": ("Profile", "Профиль"),
}

#: Lever -> (English, Russian) retention action.
ACTIONS = {
    "responsiveness": (
        "Escalate and clear the open ticket backlog with a dated plan; name an owner for each open item.",
        "Эскалировать и разобрать накопившиеся обращения по плану с датами; назначить ответственного за каждое."),
    "communication": (
        "Schedule a quarterly business review or a personal meeting with the partner's decision maker.",
        "Назначить квартальную бизнес-встречу (QBR) или личную встречу с руководителем партнёра."),
    "transparency": (
        "Explain withheld amounts and the payment schedule; release the holdbacks that are due.",
        "Объяснить удержанные суммы и график платежей; вернуть удержания, срок которых наступил."),
    "mutual_value": (
        "Propose mutual value: a joint project, data sharing or a volume bonus.",
        "Предложить взаимную выгоду: совместный проект, обмен данными или бонус за объём."),
    "conflict": (
        "Run the conflict-resolution routine: acknowledge the issue, make a fair proposal, document the agreement.",
        "Запустить процедуру урегулирования: признать проблему, предложить справедливое решение, зафиксировать договорённость."),
    "development": (
        "Invite to training and partner events.",
        "Пригласить на обучение и партнёрские мероприятия."),
    "loyalty": (
        "Offer the next loyalty programme tier or status.",
        "Предложить следующий уровень программы лояльности или статус."),
    "satisfaction": (
        "Follow up the NPS detractor: call, understand the reason, agree a fix.",
        "Отработать оценку критика NPS: позвонить, выяснить причину, согласовать исправление."),
}

#: The console's words (``churnmodel explain``), per language.
CONSOLE = {
    "en": {"partner": "Partner", "probability": "churn probability within {days} days", "base": "base rate",
           "protective": "protects", "context": "context", "typical": "typical"},
    "ru": {"partner": "Партнёр", "probability": "вероятность ухода в ближайшие {days} дней", "base": "базовый уровень",
           "protective": "защищает", "context": "контекст", "typical": "обычно"},
}

#: The analyst report's words, per language: each figure with its one-sentence definition.
REPORT = {
    "en": {
        "title": "Partner churn risk", "as_of": "as of", "model": "Model",
        "millions": "M", "thousands": "k", "days_short": "{d} d", "points": "percentage points",
        "scored": "Partners scored", "scored_def": "partners active on {d}",
        "expected": "Expected churners", "expected_def": "the sum of the churn probabilities: how many will leave within {h} days",
        "rar": "Revenue at risk",
        "rar_note": "{h}-day churn probability x 12-month revenue (or 12 x the contract's monthly value)",
        "prr": "Partner Retention Rate, last 12 months", "prr_note": "partners active a year ago and still active now, x 100",
        "no_action": "Listed: partners with a recommended action. No action needed for the other {n} (low risk).",
        "bands": "Risk bands", "bands_def": "High: a churn probability of {high:.0%} or more; medium: {medium:.0%} to {high:.0%}; low: below {medium:.0%}.",
        "bands_share_def": "High: the riskiest {high_share:.0%} of partners when the model was trained (a churn probability of {high:.0%} "
                           "or more); medium: the next {medium_share:.0%} ({medium:.0%} to {high:.0%}); low: the rest. At the training "
                           "churn rate fixed thresholds would put most partners in the high band.",
        "distribution": "Churn probability distribution",
        "distribution_def": "How many partners have each churn probability within {h} days; the dashed lines are the band thresholds.",
        "top": "Top partners by revenue at risk",
        "top_def": "The main driver is what raises the partner's probability most; the action is its lever's retention step.",
        "why": "Why they are at risk", "why_def": "Each bar is one driver's share of the churn probability, in percentage points: "
                                                  "red adds risk, green protects. The bars and the base rate add up to the probability.",
        "base": "base rate {p:.0%}",
        "segment": "By segment", "segment_def": "Strategic: a large share of revenue; prospective: new or growing; transactional: the rest.",
        "lever": "By retention lever (first driver)",
        "lever_def": "Revenue at risk grouped by the lever of each partner's main driver: where retention effort protects most revenue.",
        "drift": "Data check",
        "drift_ok": "Today's data looks like the data the model learned from: no input moved enough to matter. Nothing to do.",
        "drift_bad": "{n} input(s) look different from the data the model learned from: {names}.",
        "drift_do": "What to do: check the data extraction for these inputs first. If the change is real (a new policy, "
                    "market or system), retrain the model (churnmodel train) before acting on these scores.",
        "appendix": "Appendix: technical detail",
        "psi_def": "Population stability index (PSI) of each input against the same calendar month of the training data; "
                   "above {w} counts as shifted. The score's own PSI: {s}.",
        "cols": {"rank": "#", "partner_id": "Partner", "churn_probability": "Churn prob.", "risk_band": "Band",
                 "segment": "Segment", "revenue_at_risk": "Revenue at risk", "driver_1": "Main driver",
                 "action_1": "Action", "partners": "Partners", "expected": "Expected churners",
                 "lever_1": "Lever", "feature": "Column", "label": "Input", "psi": "PSI", "share": "Share",
                 "best_action": "Best action", "best_action_lever": "Lever", "expected_gain": "Value kept, net",
                 "expected_effect_points": "Churn prob. removed (mean)", "budget": "Budget", "value_plan": "Plan",
                 "value_risk": "Highest risk first", "value_revenue_at_risk": "Highest revenue at risk first"},
        "actions": "Which retention action pays, and for whom",
        "actions_def": "From past campaigns, the model knows how much each action changes each partner's churn probability. "
                       "Per action: the partners for whom it keeps the most value net of its cost. The chart: the expected value "
                       "kept at each budget by the plan (churnmodel plan) against approaching the riskiest, or the largest revenue "
                       "at risk, first with the action that works best on average.",
        "no_best": "{n} partner(s): no action pays for itself.",
        "footer": "Probabilities are calibrated; drivers are exact SHAP contributions in probability points.",
        "high": "high", "medium": "medium", "low": "low",
        "curves": "When will they leave: risk curves of the top partners",
        "curves_note": "Probability of having left within each horizon (hazard model); a steep start means act this month, "
                       "a slow climb means a drift over the year.",
        "days": "days from {d}", "left": "probability of having left", "median": "Median months to churn",
        "beyond": "more than {m}",
    },
    "ru": {
        "title": "Риск ухода партнёров", "as_of": "на", "model": "Модель",
        "millions": " млн", "thousands": " тыс.", "days_short": "{d} дн.", "points": "процентные пункты",
        "scored": "Оценено партнёров", "scored_def": "партнёры, активные на {d}",
        "expected": "Ожидаемый отток", "expected_def": "сумма вероятностей ухода: сколько партнёров уйдёт за {h} дн.",
        "rar": "Выручка под риском",
        "rar_note": "вероятность ухода за {h} дн. x выручка за 12 мес. (или 12 x месячная стоимость контракта)",
        "prr": "Коэффициент удержания партнёров за 12 месяцев", "prr_note": "партнёры, активные год назад и активные сейчас, x 100",
        "no_action": "В списке — партнёры с рекомендованным действием. Остальным {n} действий не нужно (низкий риск).",
        "bands": "Уровни риска", "bands_def": "Высокий: вероятность ухода от {high:.0%}; средний: от {medium:.0%} до {high:.0%}; низкий: ниже {medium:.0%}.",
        "bands_share_def": "Высокий: {high_share:.0%} партнёров с наибольшим риском при обучении модели (вероятность ухода от {high:.0%}); "
                           "средний: следующие {medium_share:.0%} (от {medium:.0%} до {high:.0%}); низкий: остальные. При такой доле "
                           "ушедших в обучении фиксированные пороги отнесли бы к высокому риску почти всех.",
        "distribution": "Распределение вероятности ухода",
        "distribution_def": "Сколько партнёров имеют каждую вероятность ухода за {h} дн.; пунктир — границы уровней риска.",
        "top": "Партнёры с наибольшей выручкой под риском",
        "top_def": "Главный фактор сильнее всего повышает вероятность ухода; действие — шаг удержания по его рычагу.",
        "why": "Почему они под риском", "why_def": "Каждая полоса — вклад фактора в вероятность ухода в процентных пунктах: "
                                                   "красный повышает риск, зелёный защищает. Вместе с базовым уровнем они дают вероятность.",
        "base": "базовый уровень {p:.0%}",
        "segment": "По сегментам", "segment_def": "Стратегический: большая доля выручки; перспективный: новый или растущий; транзакционный: остальные.",
        "lever": "По рычагам удержания (главный фактор)",
        "lever_def": "Выручка под риском по рычагу главного фактора каждого партнёра: где удержание сохранит больше выручки.",
        "drift": "Проверка данных",
        "drift_ok": "Сегодняшние данные похожи на данные, на которых училась модель: ни один признак заметно не сдвинулся. Действий не нужно.",
        "drift_bad": "Признаков, отличающихся от данных обучения: {n}: {names}.",
        "drift_do": "Что делать: сначала проверить выгрузку этих данных. Если изменение настоящее (новая политика, рынок "
                    "или система), переобучить модель (churnmodel train), прежде чем действовать по этим оценкам.",
        "appendix": "Приложение: технические детали",
        "psi_def": "Индекс стабильности популяции (PSI) каждого признака относительно того же месяца в данных обучения; "
                   "выше {w} — сдвиг. PSI самой оценки: {s}.",
        "cols": {"rank": "№", "partner_id": "Партнёр", "churn_probability": "Вероятность", "risk_band": "Уровень",
                 "segment": "Сегмент", "revenue_at_risk": "Выручка под риском", "driver_1": "Главный фактор",
                 "action_1": "Действие", "partners": "Партнёров", "expected": "Ожидаемый отток",
                 "lever_1": "Рычаг", "feature": "Столбец", "label": "Признак", "psi": "PSI", "share": "Доля",
                 "best_action": "Лучшее действие", "best_action_lever": "Рычаг", "expected_gain": "Сохранено за вычетом затрат",
                 "expected_effect_points": "Снижение вероятности (среднее)", "budget": "Бюджет", "value_plan": "План",
                 "value_risk": "Сначала высокий риск", "value_revenue_at_risk": "Сначала наибольшая выручка под риском"},
        "actions": "Какое действие по удержанию окупается и для кого",
        "actions_def": "По прошлым кампаниям модель знает, насколько каждое действие меняет вероятность ухода каждого партнёра. "
                       "По каждому действию: партнёры, для которых оно сохраняет больше всего за вычетом его стоимости. График: "
                       "ожидаемо сохранённое при каждом бюджете по плану (churnmodel plan) против подхода к самым рискованным или "
                       "к наибольшей выручке под риском в первую очередь с действием, которое в среднем работает лучше всего.",
        "no_best": "{n} партнёр(ов): ни одно действие не окупается.",
        "footer": "Вероятности откалиброваны; факторы — точные вклады SHAP в процентных пунктах.",
        "high": "высокий", "medium": "средний", "low": "низкий",
        "curves": "Когда уйдут: кривые риска партнёров с наибольшей выручкой под риском",
        "curves_note": "Вероятность уйти в пределах каждого горизонта (модель рисков); крутой старт — действовать в этом месяце, "
                       "медленный рост — отдаление в течение года.",
        "days": "дней от {d}", "left": "вероятность ухода", "median": "Медиана месяцев до ухода",
        "beyond": "больше {m}",
    },
}


#: Headers of the scored list for people (CSV/XLSX with a language); p_churn_<h>d and the reason-code
#: columns are named by :func:`column_title`.
COLUMNS = {
    "rank": ("Rank", "Место"), "partner_id": ("Partner", "Партнёр"), "as_of": ("As of", "На дату"),
    "churn_probability": ("Churn probability", "Вероятность ухода"), "risk_band": ("Risk band", "Уровень риска"),
    "segment": ("Segment", "Сегмент"), "revenue": ("Revenue, 12 months", "Выручка за 12 мес."),
    "revenue_at_risk": ("Revenue at risk", "Выручка под риском"), "protective_factor": ("Protective factor", "Защитный фактор"),
    "expected_months_active": ("Expected months active", "Ожидаемо месяцев с нами"),
    "median_months_to_churn": ("Median months to churn", "Медиана месяцев до ухода"),
    "model_name": ("Model", "Модель"), "model_version": ("Model version", "Версия модели"), "scored_at": ("Scored at", "Оценено"),
    "driver": ("Driver {i}", "Фактор {i}"), "driver_points": ("Driver {i}, points", "Фактор {i}, п.п."),
    "protective_points": ("Protective factor, points", "Защитный фактор, п.п."), "lever": ("Lever {i}", "Рычаг {i}"), "action": ("Action {i}", "Действие {i}"),
    "p_churn": ("Churn within {h} days", "Уход в течение {h} дн."),
    "best_action": ("Best retention action", "Лучшее действие по удержанию"), "best_action_lever": ("Its lever", "Его рычаг"),
    "expected_effect_points": ("Churn probability it removes, points", "Снижение вероятности ухода, п.п."),
    "expected_gain": ("Expected value kept, net of cost", "Ожидаемая сохранённая выручка за вычетом затрат"),
    "planned_action": ("Planned action", "Запланированное действие"), "planned_lever": ("Its lever", "Его рычаг"),
    "plan_order": ("Order", "№"), "action_cost": ("Action cost", "Стоимость действия"),
}
BANDS = {"high": ("high", "высокий"), "medium": ("medium", "средний"), "low": ("low", "низкий")}
WORKBOOK = {
    "en": {"list": "Scored partners", "summary": "Summary", "actions": "Actions", "figure": "Figure", "value": "Value",
           "partners": "Partners scored", "expected": "Expected churners", "high": "High-risk partners",
           "rar": "Revenue at risk", "prr": "Partner Retention Rate, 12 months (%)", "as_of": "As of", "model": "Model",
           "band": "Risk band", "count": "Partners", "rank": "Rank", "partner": "Partner", "driver": "Driver", "lever": "Lever",
           "action": "Action", "order": "Order"},
    "ru": {"list": "Оценка партнёров", "summary": "Сводка", "actions": "Действия", "figure": "Показатель", "value": "Значение",
           "partners": "Оценено партнёров", "expected": "Ожидаемый отток", "high": "Партнёров с высоким риском",
           "rar": "Выручка под риском", "prr": "Коэффициент удержания партнёров за 12 месяцев (%)", "as_of": "На дату", "model": "Модель",
           "band": "Уровень риска", "count": "Партнёров", "rank": "Место", "partner": "Партнёр", "driver": "Фактор", "lever": "Рычаг",
           "action": "Действие", "order": "№"},
}


#: The monitoring report (churnmodel monitor).
MONITOR = {
    "en": {"title": "How past scores turned out", "data_end": "Data up to", "verdict": "Verdict",
           "fine": "fine", "watch": "watch", "retrain": "retrain",
           "auc": "Ranking quality over time", "auc_def": "AUC of each scoring run: realised once its outcomes are in (with its 95% "
           "interval), estimated from the calibrated probabilities before (confidence-based, with its 5-95% band). The dashed line "
           "is the model's test AUC at training.",
           "rate": "Predicted against observed churn", "rate_def": "Share of partners expected to leave within the horizon, and the "
           "share that did, per matured run; Partner Retention Rate = 100 - churn.",
           "runs": "Scoring runs", "runs_def": "Maturing: the horizon has not passed yet, so only the estimate can be judged. "
           "Drift: each run's scores and inputs against the training data of the same calendar month (seasons are not drift).",
           "segments": "By segment", "segments_def": "The same figures per segment, for the matured runs.",
           "drift": "What moved, over time", "score": "the score", "drift_def": "Population stability index (PSI) of the score and of "
           "the inputs that moved most, per scoring run, each against the training data of the same calendar month (so seasons "
           "are not drift); above the dotted line (0.1) an input has shifted.",
           "cols": {"as_of": "Scored", "model": "Model", "status": "Status", "partners": "Partners", "predicted_rate": "Predicted churn",
                    "observed_rate": "Observed churn", "auc": "AUC", "estimated_auc": "Estimated AUC", "verdict": "Verdict",
                    "reason": "Why", "segment": "Segment", "revenue_at_risk": "Revenue at risk", "revenue_lost": "Revenue lost",
                    "lift_top_decile": "Lift, top 10%", "score_psi": "Score drift (PSI)", "inputs_moved": "Inputs that moved most"}},
    "ru": {"title": "Как сбылись прошлые оценки", "data_end": "Данные по", "verdict": "Вывод",
           "fine": "в норме", "watch": "наблюдать", "retrain": "переобучить",
           "auc": "Качество ранжирования во времени", "auc_def": "AUC каждой оценки: фактический, когда исходы известны (с 95% "
           "интервалом), и оценённый по откалиброванным вероятностям до того (с полосой 5-95%). Пунктир: тестовый AUC модели при обучении.",
           "rate": "Прогноз и факт оттока", "rate_def": "Доля партнёров, которые по прогнозу уйдут за горизонт, и доля ушедших, по "
           "завершённым оценкам; коэффициент удержания = 100 - отток.",
           "runs": "Оценки", "runs_def": "Созревает: горизонт ещё не прошёл, судить можно только по оценке качества. "
           "Сдвиг: оценки и признаки каждого запуска против обучающих данных того же календарного месяца (сезонность не сдвиг).",
           "segments": "По сегментам", "segments_def": "Те же показатели по сегментам для завершённых оценок.",
           "drift": "Что сдвинулось со временем", "score": "оценка риска", "drift_def": "Индекс стабильности (PSI) оценки и признаков, "
           "сдвинувшихся сильнее всего, по каждой оценке, против обучающих данных того же календарного месяца (сезонность не "
           "сдвиг); выше пунктира (0,1) признак сдвинулся.",
           "cols": {"as_of": "Дата оценки", "model": "Модель", "status": "Статус", "partners": "Партнёров", "predicted_rate": "Прогноз оттока",
                    "observed_rate": "Факт оттока", "auc": "AUC", "estimated_auc": "Оценка AUC", "verdict": "Вывод",
                    "reason": "Почему", "segment": "Сегмент", "revenue_at_risk": "Выручка под риском", "revenue_lost": "Потерянная выручка",
                    "lift_top_decile": "Лифт, верхние 10%", "score_psi": "Сдвиг оценки (PSI)", "inputs_moved": "Сильнее всего сдвинулись"}},
}


#: Why a scoring run got its verdict (churnmodel.monitoring.verdicts).
MONITOR_REASONS = {
    "en": {"fine": "realised AUC and churn rate as trained", "fine_maturing": "maturing; estimated AUC as trained",
           "auc_interval": "realised AUC {auc:.3f} is {drop:.3f} below the model's test AUC {ref:.3f}, beyond its interval",
           "auc": "realised AUC {auc:.3f} is {drop:.3f} below the model's test AUC {ref:.3f}",
           "calibration": "observed churn {observed:.1%} against {predicted:.1%} predicted: the probabilities no longer match the outcomes",
           "streak": "a second matured run in a row at watch: ",
           "estimated": "estimated AUC {auc:.3f} is {drop:.3f} below the model's test AUC {ref:.3f} before the outcomes are in",
           "sticky": "; the run of {date} called for a retrain and this model still scores"},
    "ru": {"fine": "фактический AUC и отток как при обучении", "fine_maturing": "созревает; оценка AUC как при обучении",
           "auc_interval": "фактический AUC {auc:.3f} на {drop:.3f} ниже тестового AUC модели {ref:.3f}, за пределами его интервала",
           "auc": "фактический AUC {auc:.3f} на {drop:.3f} ниже тестового AUC модели {ref:.3f}",
           "calibration": "фактический отток {observed:.1%} при прогнозе {predicted:.1%}: вероятности больше не соответствуют исходам",
           "streak": "вторая завершённая оценка подряд на наблюдении: ",
           "estimated": "оценка AUC {auc:.3f} на {drop:.3f} ниже тестового AUC модели {ref:.3f} ещё до исходов",
           "sticky": "; оценка от {date} потребовала переобучения, а модель всё та же"},
}


#: The retention plan's summary (workbook sheet, console): what the plan keeps against ranking policies at the same budget.
PLAN_SUMMARY = {
    "en": {"plan": "Retention plan", "budget": "Budget", "spent": "Spent", "funded": "Partners approached",
           "value_plan": "Expected value kept, net: this plan", "value_risk": "... highest churn risk first, usual action",
           "value_revenue_at_risk": "... highest revenue at risk first, usual action",
           "gap": "the plan is within this of the best possible plan"},
    "ru": {"plan": "План удержания", "budget": "Бюджет", "spent": "Израсходовано", "funded": "Партнёров в работе",
           "value_plan": "Ожидаемо сохранено за вычетом затрат: этот план", "value_risk": "... сначала самый высокий риск, обычное действие",
           "value_revenue_at_risk": "... сначала наибольшая выручка под риском, обычное действие",
           "gap": "план отстаёт от наилучшего возможного не более чем на"},
}


def column_title(name: str, lang: str) -> str:
    """The header people read for a scored-list column (unknown columns keep their name)."""

    which = 0 if lang == "en" else 1
    if m := re.fullmatch(r"p_churn_(\d+)d", name):
        return COLUMNS["p_churn"][which].format(h=m.group(1))
    if m := re.fullmatch(r"driver_(\d+)_points", name):
        return COLUMNS["driver_points"][which].format(i=m.group(1))
    if m := re.fullmatch(r"(driver|lever|action)_(\d+)", name):
        return COLUMNS[m.group(1)][which].format(i=m.group(2))
    return COLUMNS[name][which] if name in COLUMNS else name

