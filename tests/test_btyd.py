"""The BG/NBD model against the reference implementation (lifetimes 0.11.3) on a shared example.

The reference numbers below were computed once with ``lifetimes.BetaGeoFitter(penalizer_coef=0)``
on :func:`shared_example` (lifetimes is unmaintained and not a dependency; the example is drawn here
with numpy, not taken from a data set shipped with a BTYD package)."""

from __future__ import annotations

import numpy as np
import pytest

from churnmodel.features.btyd import BgNbd, btyd_summaries

#: lifetimes' fitted r, alpha, a, b on shared_example()
LIFETIMES_PARAMS = (0.5092318678330122, 7.59335869747658, 0.9913620877280916, 2.1643409881259568)
#: lifetimes' conditional_probability_alive and conditional_expected_number_of_purchases_up_to_time(30) for rows 0..7
LIFETIMES_P_ALIVE = [1.0, 1.0, 1.0, 0.01427876392047415, 0.6602105070149215, 0.16434935908961368, 0.3242262751771218,
                     0.023825839995568823]
LIFETIMES_EXPECTED_30 = [0.144250096008992, 0.22769977590486642, 0.11455431696741498, 0.06351377983277126, 0.23321940115929835,
                         0.2401046446783376, 0.2175500265904879, 0.013318032493897769]


def shared_example(n: int = 300, seed: int = 11):
    """BG/NBD histories drawn with numpy: rates ~ gamma(0.6, 1/8), dropout ~ beta(1.2, 3.0), ages 30-120 days."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(0.6, 1 / 8.0, n), rng.beta(1.2, 3.0, n)
    T = np.round(rng.uniform(30, 120, n), 3)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t >= T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, np.round(t_x, 3), T


def test_formulas_agree_with_lifetimes_on_its_parameters():
    x, t_x, T = shared_example()
    assert x[:8].tolist() == [0, 0, 0, 15, 1, 6, 1, 2]  # the example itself is the same draw
    ref = BgNbd(*LIFETIMES_PARAMS)
    np.testing.assert_allclose(ref.p_alive(x[:8], t_x[:8], T[:8]), LIFETIMES_P_ALIVE, rtol=1e-9)
    np.testing.assert_allclose(ref.expected(30, x[:8], t_x[:8], T[:8]), LIFETIMES_EXPECTED_30, rtol=1e-9)


def test_the_fit_reaches_lifetimes_maximum():
    x, t_x, T = shared_example()
    fitted = BgNbd.fit(x, t_x, T)
    np.testing.assert_allclose(fitted.to_list(), LIFETIMES_PARAMS, rtol=1e-3)
    ours, theirs = fitted.log_likelihood(x, t_x, T).sum(), BgNbd(*LIFETIMES_PARAMS).log_likelihood(x, t_x, T).sum()
    assert ours >= theirs - 1e-6  # the same maximum (the surface is flat there: parameters agree to ~1e-5)


def test_long_histories_do_not_overflow_and_missing_stays_missing():
    model = BgNbd(0.5, 7.6, 0.99, 2.2)
    x, t_x, T = np.array([900.0, 0.0, np.nan]), np.array([1000.0, 0.0, np.nan]), np.array([1001.0, 40.0, np.nan])
    e, p = model.expected(90, x, t_x, T), model.p_alive(x, t_x, T)
    assert np.isfinite(e[:2]).all() and np.isfinite(p[:2]).all() and np.isnan(e[2]) and np.isnan(p[2])
    assert e[0] == pytest.approx(76.80151622, rel=1e-8)  # lifetimes gives 76.80151622 (its own rate, 81, less the dropout risk)
    assert p[1] == 1.0  # no repeat purchase: BG/NBD says active


def test_summaries_by_hand():
    day = 86_400
    # partner 0 buys on days 1, 1 (twice), 4 and 20; partner 1 on day 2; snapshots on days 1, 5 and 21
    ev_p = np.array([0, 0, 0, 0, 1])
    when = np.array([1 * day, 1 * day + 3600, 4 * day, 20 * day, 2 * day])
    x, t_x, T = btyd_summaries(ev_p, when, np.array([0, 0, 0, 1]), np.array([1, 5, 21, 5]) * day)
    assert np.isnan(x[0]) and np.isnan(T[0])  # the day-1 purchase is at the snapshot instant: the future
    assert x[1:].tolist() == [1, 2, 0] and t_x[1:].tolist() == [3, 19, 0] and T[1:].tolist() == [4, 20, 3]


def test_the_consumer_scenario_is_what_bg_nbd_assumes():
    """The benchmark's consumer log, read back as BG/NBD summaries at its end, gives back about the
    rates and dropout it was drawn with (distinct purchase days count a little less than purchases)."""
    import pandas as pd

    from churnmodel.simulate.consumers import simulate_consumers
    from churnmodel.times import seconds

    log = simulate_consumers(3000, months=36, random_state=5, r=0.6, alpha=12.0, a=1.0, b=6.0)
    assert log.partners["churned_at"].isna().all() and log.truth["left_at"].notna().mean() > 0.5  # leaving is never seen
    again = simulate_consumers(3000, months=36, random_state=5)
    pd.testing.assert_frame_equal(log.events, again.events)
    codes, ids = pd.factorize(log.events["partner_id"])
    end = int(pd.Timestamp("2026-01-01", tz="UTC").timestamp())
    fitted = BgNbd.fit(*btyd_summaries(codes, seconds(log.events["timestamp"]), np.arange(len(ids)), np.full(len(ids), end)))
    assert fitted.r / fitted.alpha == pytest.approx(0.6 / 12.0, rel=0.3)  # mean purchase rate per day
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(1 / 7, rel=0.3)  # mean dropout after a purchase
