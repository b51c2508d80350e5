"""The working-day calendar, against dates worked out by hand from ../shared/data/vn_holidays.json.

Office hours 07:00–11:30 and 13:30–17:00 (Asia/Ho_Chi_Minh), so a working day is 8 working hours and
"N working days from t" lands at the same clock time N working days later. Every expected instant below was
counted by hand from the file; the comment under each test shows the count.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.core.settings import ConfigError, load_settings
from app.services.calendar import (
    HolidayDay,
    OfficeHours,
    Timeliness,
    WorkCalendar,
    classify,
    parse_holiday_file,
)
from app.services.catalogue import HOLIDAYS_FILE, load_json

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Huế."""
    return datetime(year, month, day, hour, minute, tzinfo=HCM)


@pytest.fixture(scope="module")
def calendar() -> WorkCalendar:
    years = parse_holiday_file(load_json(HOLIDAYS_FILE))
    days = [
        HolidayDay(day=d.date, kind=d.kind, name_vi=d.name_vi, status=d.status)
        for body in years.values()
        for d in body.days
    ]
    return WorkCalendar(days, [year for year, body in years.items() if body.announced])


def test_the_file_announces_2025_and_2026_but_not_2027() -> None:
    years = parse_holiday_file(load_json(HOLIDAYS_FILE))
    assert {year: body.announced for year, body in years.items()} == {2025: True, 2026: True, 2027: False}


def test_default_office_day_is_eight_working_hours() -> None:
    # 07:00–11:30 is 4 h 30, 13:30–17:00 is 3 h 30: 8 h (DOMAIN.md "8 working hours a day").
    assert OfficeHours().working_day == timedelta(hours=8)


def test_across_tet_2025(calendar: WorkCalendar) -> None:
    # Received Fri 24/01/2025 10:00, 3 working days. Fri: 1 h 30 + 3 h 30 = 5 h (19 h left).
    # Sat 25 – Sun 02/02 is the official 9-day Tết break. Mon 03/02: 8 h (11 h left); Tue 04/02: 8 h (3 h
    # left); Wed 05/02: 07:00 + 3 h = 10:00.
    due = calendar.add_working_days(at(2025, 1, 24, 10), 3)
    assert due.at == at(2025, 2, 5, 10)
    assert due.at.tzinfo == UTC
    assert not due.provisional


def test_across_tet_2026(calendar: WorkCalendar) -> None:
    # Received Fri 13/02/2026 16:30, 1 working day: Fri 30 min (7 h 30 left); the break runs Sat 14 – Sun
    # 22/02; Mon 23/02: 07:00–11:30 (3 h left), 13:30 + 3 h = 16:30.
    assert calendar.add_working_days(at(2026, 2, 13, 16, 30), 1).at == at(2026, 2, 23, 16, 30)


def test_swapped_weekday_off_that_the_holidays_package_does_not_know(calendar: WorkCalendar) -> None:
    # Fri 02/01/2026 is a swap_off (Công văn 12729/VPCP-KGVX), missing from the holidays package.
    # Received Wed 31/12/2025 16:00, 1 working day: Wed 1 h (7 h left); Thu 01/01 holiday; Fri 02/01
    # swap_off; weekend; Mon 05/01: 07:00–11:30 (2 h 30 left), 13:30 + 2 h 30 = 16:00.
    due = calendar.add_working_days(at(2025, 12, 31, 16), 1)
    assert due.at == at(2026, 1, 5, 16)
    assert not due.provisional


def test_swapped_day_off_around_reunification_day_2025(calendar: WorkCalendar) -> None:
    # Received Tue 29/04/2025 14:00, 2 working days: Tue 3 h (13 h left); Wed 30/04 and Thu 01/05
    # holidays; Fri 02/05 swap_off; weekend; Mon 05/05 8 h (5 h left); Tue 06/05 4 h 30 (30 min left),
    # 13:30 + 30 min = 14:00.
    assert calendar.add_working_days(at(2025, 4, 29, 14), 2).at == at(2025, 5, 6, 14)


def test_worked_saturday_counts(calendar: WorkCalendar) -> None:
    # Sat 10/01/2026 is a swap_work day. Received Fri 09/01/2026 10:00, 1 working day: Fri 5 h (3 h
    # left); Sat 10/01 07:00 + 3 h = 10:00.
    assert calendar.add_working_days(at(2026, 1, 9, 10), 1).at == at(2026, 1, 10, 10)
    # Sat 26/04/2025 too: received Fri 25/04/2025 16:00 -> Fri 1 h, Sat 4 h 30 + 13:30 + 2 h 30 = 16:00.
    assert calendar.add_working_days(at(2025, 4, 25, 16), 1).at == at(2025, 4, 26, 16)
    # An ordinary Saturday does not count: Fri 07/03/2025 10:00 + 1 day -> Mon 10/03/2025 10:00.
    assert calendar.add_working_days(at(2025, 3, 7, 10), 1).at == at(2025, 3, 10, 10)


def test_intake_after_closing_counts_from_next_working_morning(calendar: WorkCalendar) -> None:
    # Mon 10/03/2025 17:30 is after closing: the count starts Tue 11/03 07:00 and one day ends at 17:00.
    assert calendar.next_opening(at(2025, 3, 10, 17, 30)) == at(2025, 3, 11, 7)
    assert calendar.add_working_days(at(2025, 3, 10, 17, 30), 1).at == at(2025, 3, 11, 17)
    # Fri 04/04/2025 18:00: weekend, then Mon 07/04 Hùng Kings' day; the count starts Tue 08/04 07:00.
    assert calendar.add_working_days(at(2025, 4, 4, 18), 1).at == at(2025, 4, 8, 17)
    # Received at lunch (12:00) counts from 13:30: Mon 3 h 30 + Tue 4 h 30 -> Tue 11:30.
    assert calendar.add_working_days(at(2025, 3, 10, 12), 1).at == at(2025, 3, 11, 11, 30)
    # Received before opening (06:00) counts from 07:00 the same day -> 17:00 the same day.
    assert calendar.add_working_days(at(2025, 3, 10, 6), 1).at == at(2025, 3, 10, 17)


def test_a_deadline_ending_at_closing_stays_at_closing(calendar: WorkCalendar) -> None:
    assert calendar.add_working_time(at(2025, 3, 10, 13, 30), timedelta(hours=3, minutes=30)).at == at(
        2025, 3, 10, 17
    )


def test_unannounced_year_uses_statutory_holidays_and_is_provisional(calendar: WorkCalendar) -> None:
    # 2027 is not announced: the file has only Mùng 1 Tết (Sat 06/02/2027); its comparison section says
    # the holidays package estimates Tết 2027 as 04/02–10/02 (weekdays 04, 05, 08, 09, 10 off).
    # Received Mon 01/02/2027 10:00, 5 working days: Tue 02/02 10:00 (1), Wed 03/02 10:00 (2), then
    # Thu 04 – Wed 10/02 off, Thu 11/02 10:00 (3), Fri 12/02 10:00 (4), Mon 15/02 10:00 (5).
    due = calendar.add_working_days(at(2027, 2, 1, 10), 5)
    assert due.at == at(2027, 2, 15, 10)
    assert due.provisional


def test_counting_into_an_unannounced_year_is_provisional(calendar: WorkCalendar) -> None:
    # Thu 30/12/2026 10:00 + 2 days: Thu 31/12 10:00 (1); Fri 01/01/2027 New Year; Mon 04/01 10:00 (2).
    due = calendar.add_working_days(at(2026, 12, 30, 10), 2)
    assert due.at == at(2027, 1, 4, 10)
    assert due.provisional


def test_a_day_off_not_yet_in_law_makes_the_deadline_provisional(calendar: WorkCalendar) -> None:
    # Tue 24/11/2026 (Vietnamese Culture Day) is in the file as a policy not yet in the Labour Code.
    # Mon 23/11/2026 10:00 + 1 day: the 24th is off, so Wed 25/11 10:00, provisional.
    due = calendar.add_working_days(at(2026, 11, 23, 10), 1)
    assert due.at == at(2026, 11, 25, 10)
    assert due.provisional
    # A count that stays clear of uncertain days is firm.
    assert not calendar.add_working_days(at(2026, 11, 16, 10), 1).provisional


def test_an_admin_announcing_the_year_makes_it_firm() -> None:
    # Same 2027 dossier once 2027 is announced with just Mùng 1 Tết off (a weekend day): no weekday off.
    announced = WorkCalendar(
        [HolidayDay(day=date(2027, 2, 6), kind="holiday", name_vi="Mùng 1 Tết")], announced_years=[2027]
    )
    due = announced.add_working_days(at(2027, 2, 1, 10), 5)
    assert due.at == at(2027, 2, 8, 10)
    assert not due.provisional


def test_supplement_pause_in_working_hours(calendar: WorkCalendar) -> None:
    # Paused Fri 24/01/2025 16:00 -> Mon 03/02/2025 09:00: Fri 1 h, the Tết break 0, Mon 07:00–09:00 2 h.
    assert calendar.working_time_between(at(2025, 1, 24, 16), at(2025, 2, 3, 9)) == timedelta(hours=3)
    # 11:00 -> 14:00 the same day: 30 min before lunch, 30 min after.
    assert calendar.working_time_between(at(2025, 3, 10, 11), at(2025, 3, 10, 14)) == timedelta(hours=1)
    # A pause over a worked Saturday counts it: Fri 09/01/2026 16:00 -> Mon 12/01 07:00 = 1 h + 8 h.
    assert calendar.working_time_between(at(2026, 1, 9, 16), at(2026, 1, 12, 7)) == timedelta(hours=9)
    assert calendar.working_time_between(at(2025, 3, 10, 14), at(2025, 3, 10, 9)) == timedelta(0)


def test_pause_moves_the_due_date_by_the_paused_working_time(calendar: WorkCalendar) -> None:
    # Due Wed 05/02/2025 10:00; a 3 h pause: 10:00–11:30 (1 h 30), then 13:30 + 1 h 30 = 15:00.
    due = calendar.add_working_days(at(2025, 1, 24, 10), 3).at
    paused = calendar.working_time_between(at(2025, 1, 24, 16), at(2025, 2, 3, 9))
    assert calendar.add_working_time(due, paused).at == at(2025, 2, 5, 15)


def test_configured_office_hours() -> None:
    settings = load_settings({"OFFICE_HOURS": "07:30-11:30,13:00-17:00"})
    hours = OfficeHours(periods=settings.office_hours)
    assert hours.working_day == timedelta(hours=8)
    cal = WorkCalendar(office_hours=hours, announced_years=[2025])
    # Mon 10/03/2025 12:00 is lunch: from 13:00, 4 h that day + 4 h Tue (07:30–11:30) -> Tue 11:30.
    assert cal.add_working_days(at(2025, 3, 10, 12), 1).at == at(2025, 3, 11, 11, 30)
    assert settings.office_hours[0] == (time(7, 30), time(11, 30))
    for bad in ("7-11", "13:00-11:00", "07:00-12:00,11:00-17:00"):
        with pytest.raises(ConfigError, match="OFFICE_HOURS"):
            load_settings({"OFFICE_HOURS": bad})


def test_classification_by_calendar_day_in_hue() -> None:
    due = at(2025, 2, 5, 10)
    assert classify(due, at(2025, 2, 4, 16)) is Timeliness.EARLY
    assert classify(due, at(2025, 2, 5, 16, 59)) is Timeliness.ON_TIME
    # 23:30 in Huế is still the due day although it is already 16:30 UTC.
    assert classify(due, at(2025, 2, 5, 23, 30)) is Timeliness.ON_TIME
    # 00:10 on the 6th in Huế is the 5th in UTC: late all the same.
    finished = at(2025, 2, 6, 0, 10)
    assert finished.astimezone(UTC).date() == date(2025, 2, 5)
    assert classify(due, finished) is Timeliness.LATE


def test_more_than_one_supplement_request_is_late() -> None:
    due = at(2025, 2, 5, 10)
    assert classify(due, at(2025, 2, 3, 9), supplement_requests=1) is Timeliness.EARLY
    assert classify(due, at(2025, 2, 3, 9), supplement_requests=2) is Timeliness.LATE


def test_naive_instants_are_refused(calendar: WorkCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_days(datetime(2025, 3, 10, 9), 1)  # noqa: DTZ001
