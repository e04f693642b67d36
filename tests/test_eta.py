"""Wait estimates, the arithmetic: no database needed."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iqms.core.queue.eta import (
    Ahead,
    DepartmentState,
    Server,
    ServiceStats,
    arrival_rates,
    estimate_wait,
    lognormal_bounds,
    overtaking_rate,
    residual_minutes,
    service_stats,
    time_to_free_slot,
)

TARGETS = {1: 0.0, 2: 10.0, 3: 60.0, 4: 120.0, 5: 240.0}
NO_ARRIVALS = dict.fromkeys(range(1, 6), 0.0)
DOC_A = uuid.UUID(int=1)
DOC_B = uuid.UUID(int=2)
DOC_C = uuid.UUID(int=3)


def _state(
    *servers: Server, rates: dict[int, float] | None = None, mean: float = 12.0
) -> DepartmentState:
    stats = ServiceStats(mean, 0.5, 0)
    return DepartmentState(
        servers=tuple(servers),
        stats=stats,
        doctor_stats={s.doctor_id: ServiceStats(s.mean_minutes, s.cv, 10) for s in servers},
        arrival_rates=rates or NO_ARRIVALS,
        targets=TARGETS,
    )


def _idle(doctor: uuid.UUID, mean: float = 12.0) -> Server:
    return Server(doctor, mean, 0.5, 0.0)


# ---- service times -------------------------------------------------------------------------
def test_without_history_the_department_default_is_used() -> None:
    stats = service_stats([], prior_mean=15.0)
    assert stats.mean_minutes == 15.0
    assert stats.samples == 0


def test_history_pulls_the_service_time_away_from_the_default() -> None:
    stats = service_stats([20.0] * 30, prior_mean=10.0)
    assert 19.0 < stats.mean_minutes <= 20.0
    assert stats.samples == 30


def test_recent_consultations_weigh_more_than_old_ones() -> None:
    slowing_down = service_stats([8.0] * 10 + [20.0] * 10, prior_mean=12.0)
    speeding_up = service_stats([20.0] * 10 + [8.0] * 10, prior_mean=12.0)
    assert slowing_down.mean_minutes > 14.0 > speeding_up.mean_minutes


def test_one_long_consultation_does_not_swing_a_fresh_estimate() -> None:
    stats = service_stats([90.0], prior_mean=12.0)
    assert stats.mean_minutes < 35.0


def test_unusable_durations_are_ignored() -> None:
    stats = service_stats([0.0, -3.0, float("nan")], prior_mean=12.0)
    assert stats.mean_minutes == 12.0
    assert stats.samples == 0


def test_spread_reflects_variable_consultations() -> None:
    steady = service_stats([12.0, 12.5, 11.5] * 10, prior_mean=12.0)
    erratic = service_stats([3.0, 25.0, 8.0, 14.0] * 8, prior_mean=12.0)
    assert steady.cv < 0.2 < erratic.cv


# ---- the patient already in the room -------------------------------------------------------
def test_a_consultation_just_begun_has_its_whole_length_ahead() -> None:
    assert residual_minutes(12.0, 0.5, 0.0) == pytest.approx(12.0)


def test_a_running_consultation_has_less_left() -> None:
    assert residual_minutes(12.0, 0.5, 8.0) < 12.0


def test_an_overrunning_consultation_is_never_expected_to_end_at_once() -> None:
    assert residual_minutes(12.0, 0.5, 60.0) > 0.5


# ---- turns of doctors ----------------------------------------------------------------------
def test_one_doctor_takes_a_patient_every_mean_service_time() -> None:
    doctor = Server(DOC_A, 10.0, 0.5, 4.0)
    assert time_to_free_slot([doctor], 1) == pytest.approx(4.0)
    assert time_to_free_slot([doctor], 3) == pytest.approx(24.0)


def test_two_doctors_drain_a_queue_twice_as_fast() -> None:
    one = time_to_free_slot([Server(DOC_A, 10.0, 0.5, 10.0)], 11)
    two = time_to_free_slot([Server(DOC_A, 10.0, 0.5, 10.0), Server(DOC_B, 10.0, 0.5, 10.0)], 22)
    assert one == pytest.approx(two)


def test_an_idle_doctor_takes_the_next_patient_now() -> None:
    assert time_to_free_slot([_idle(DOC_A), Server(DOC_B, 10.0, 0.5, 7.0)], 1) == 0.0


# ---- whole estimates -----------------------------------------------------------------------
def test_next_in_line_with_an_idle_doctor_waits_nothing() -> None:
    estimate = estimate_wait(_state(_idle(DOC_A)), Ahead(0), doctor_id=None, due_in_minutes=120)
    assert estimate.p50_minutes == 0.0
    assert estimate.position == 0
    assert estimate.servers == 1


def test_more_tickets_ahead_mean_a_longer_wait_and_a_range() -> None:
    state = _state(_idle(DOC_A), _idle(DOC_B))
    near = estimate_wait(state, Ahead(2), doctor_id=None, due_in_minutes=120)
    far = estimate_wait(state, Ahead(10), doctor_id=None, due_in_minutes=120)
    assert far.p50_minutes > near.p50_minutes > 0
    assert far.p90_minutes > far.p50_minutes
    assert far.position == 10
    # ten ahead, two doctors at twelve minutes each: about an hour
    assert 45 < far.p50_minutes < 70


def test_more_doctors_mean_a_shorter_wait() -> None:
    one = estimate_wait(_state(_idle(DOC_A)), Ahead(6), doctor_id=None, due_in_minutes=120)
    three = estimate_wait(
        _state(_idle(DOC_A), _idle(DOC_B), _idle(DOC_C)),
        Ahead(6),
        doctor_id=None,
        due_in_minutes=120,
    )
    assert three.p50_minutes < one.p50_minutes / 2


def test_slower_consultations_mean_a_longer_wait() -> None:
    quick = estimate_wait(_state(_idle(DOC_A, 8.0)), Ahead(4), doctor_id=None, due_in_minutes=120)
    slow = estimate_wait(_state(_idle(DOC_A, 20.0)), Ahead(4), doctor_id=None, due_in_minutes=120)
    assert slow.p50_minutes > 2 * quick.p50_minutes


def test_a_ticket_for_one_doctor_waits_for_that_doctor_only() -> None:
    state = _state(_idle(DOC_A), _idle(DOC_B), _idle(DOC_C))
    ahead = Ahead(0, {DOC_A: 4, DOC_B: 1})
    mine = estimate_wait(state, ahead, doctor_id=DOC_A, due_in_minutes=120)
    pool = estimate_wait(state, ahead, doctor_id=None, due_in_minutes=120)
    assert mine.servers == 1
    assert mine.position == 4  # doctor B's patient is not ahead of a ticket for doctor A
    assert mine.p50_minutes > pool.p50_minutes
    assert 35 < mine.p50_minutes < 60


def test_tickets_for_a_doctor_who_is_off_do_not_hold_up_the_pool() -> None:
    state = _state(_idle(DOC_A))
    with_off = estimate_wait(state, Ahead(1, {DOC_C: 5}), doctor_id=None, due_in_minutes=120)
    without = estimate_wait(state, Ahead(1), doctor_id=None, due_in_minutes=120)
    assert with_off.p50_minutes == without.p50_minutes
    assert with_off.position == 6


def test_no_doctor_available_still_gives_an_estimate_and_says_so() -> None:
    estimate = estimate_wait(_state(), Ahead(3), doctor_id=None, due_in_minutes=120)
    assert estimate.servers == 0
    assert estimate.p50_minutes > 0


def test_urgent_arrivals_lengthen_a_standard_patients_wait() -> None:
    busy = {1: 0.0, 2: 0.02, 3: 0.05, 4: 0.0, 5: 0.0}
    calm = estimate_wait(_state(_idle(DOC_A)), Ahead(3), doctor_id=None, due_in_minutes=120)
    stormy = estimate_wait(
        _state(_idle(DOC_A), rates=busy), Ahead(3), doctor_id=None, due_in_minutes=120
    )
    assert stormy.p50_minutes > calm.p50_minutes * 1.1


def test_an_overdue_ticket_is_overtaken_by_nobody_but_category_one() -> None:
    rates = {1: 0.0, 2: 0.05, 3: 0.05, 4: 0.05, 5: 0.05}
    overdue = estimate_wait(
        _state(_idle(DOC_A), rates=rates), Ahead(3), doctor_id=None, due_in_minutes=-5
    )
    calm = estimate_wait(_state(_idle(DOC_A)), Ahead(3), doctor_id=None, due_in_minutes=-5)
    assert overdue.p50_minutes == calm.p50_minutes


def test_overtaking_counts_only_arrivals_due_earlier() -> None:
    rates = {1: 0.01, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.1}
    # due in 30 minutes: only category 2 (due 10 after arrival) during the first 20 minutes,
    # plus category 1 all along
    expected = 0.01 * 60 + 0.1 * 20
    got = overtaking_rate(rates, TARGETS, due_in_minutes=30, waited_minutes=60)
    assert got == pytest.approx(expected)


def test_arrival_rates_follow_recent_arrivals() -> None:
    rates = arrival_rates([(4, 1.0, 20), (2, 2.0, 2), (3, -1.0, 5)])
    assert rates[4] > 5 * rates[2] > 0
    assert rates[5] == 0.0


def test_lognormal_bounds_are_ordered_and_centred() -> None:
    p50, p90 = lognormal_bounds(30.0, 100.0)
    assert p50 < 30.0 < p90
    assert lognormal_bounds(0.0, 10.0) == (0.0, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    ahead=st.integers(min_value=0, max_value=200),
    doctors=st.integers(min_value=1, max_value=6),
    mean=st.floats(min_value=2.0, max_value=60.0),
    busy_for=st.floats(min_value=0.0, max_value=30.0),
    due_in=st.floats(min_value=-60.0, max_value=300.0),
    rate=st.floats(min_value=0.0, max_value=0.2),
)
def test_estimates_never_shrink_as_the_queue_grows(
    ahead: int, doctors: int, mean: float, busy_for: float, due_in: float, rate: float
) -> None:
    servers = [
        Server(uuid.UUID(int=i + 1), mean, 0.5, residual_minutes(mean, 0.5, busy_for) if i else 0)
        for i in range(doctors)
    ]
    state = _state(*servers, rates=dict.fromkeys(range(1, 6), rate), mean=mean)
    here = estimate_wait(state, Ahead(ahead), doctor_id=None, due_in_minutes=due_in)
    behind = estimate_wait(state, Ahead(ahead + 1), doctor_id=None, due_in_minutes=due_in)
    assert 0.0 <= here.p50_minutes <= here.p90_minutes
    assert behind.p50_minutes >= here.p50_minutes
