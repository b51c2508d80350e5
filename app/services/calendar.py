"""The working-day calendar of public offices: deadlines in working hours, pauses, and timeliness.

Rules (DOMAIN.md, "Deadlines"):

- A working day is one office day: the configured opening periods (default 07:00–11:30 and 13:30–17:00 in
  Asia/Ho_Chi_Minh, 4.5 h + 3.5 h = 8 working hours). Processing time in working days is counted as that
  many office days of working time from the moment the clock starts; a dossier received outside office
  hours (after closing, at lunch, on a day off) counts from the next opening.
- Days off: Saturdays and Sundays, and the holiday table's ``holiday`` and ``swap_off`` days. A ``swap_work``
  day (a Saturday worked in exchange for a swapped day off) is a working day.
- A year whose schedule an admin has not announced (loaded) also takes Vietnam's statutory holidays from the
  ``holidays`` package (fixed dates, and its estimate of the lunar ones); a deadline whose count touches such
  a year, or a table day whose status is not ``official``, is *provisional*.
- Classification compares calendar days in Asia/Ho_Chi_Minh: finished before the due date's day is early,
  on it is on time, after it is late; more than one supplement request makes a dossier late.

This module is pure: :class:`WorkCalendar` is built from the holiday table's rows (see ``service.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

import holidays as holidays_package
import msgspec

from app.services.schemas import CalendarDayIn, CalendarYearIn, DayStatus

__all__ = [
    "BUSINESS_TZ",
    "DEFAULT_OFFICE_HOURS",
    "DayKind",
    "Deadline",
    "HolidayDay",
    "HolidayFileError",
    "OfficeHours",
    "Timeliness",
    "WorkCalendar",
    "classify",
    "day_problem",
    "parse_holiday_file",
    "statutory_holidays",
]

BUSINESS_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
OFFICIAL = "official"
_MAX_DAYS_SCANNED = 366 * 10
"""A deadline further than this is a configuration error (e.g. every day marked off), not a date."""

DayKind = Literal["holiday", "swap_off", "swap_work"]


class Timeliness(StrEnum):
    """How a finished dossier compares with its due date."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"


@dataclass(frozen=True, slots=True)
class HolidayDay:
    """One row of the holiday table."""

    day: date
    kind: DayKind
    """``holiday`` and ``swap_off``: no work; ``swap_work``: a Saturday worked in exchange."""
    name_vi: str
    name_en: str = ""
    status: str = OFFICIAL
    """``official`` when announced; anything else (e.g. a policy not yet in the Labour Code) makes
    deadlines whose count passes this day provisional."""

    @property
    def is_day_off(self) -> bool:
        return self.kind != "swap_work"


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """The opening periods of a working day, in the business time zone."""

    periods: tuple[tuple[time, time], ...] = ((time(7, 0), time(11, 30)), (time(13, 30), time(17, 0)))
    tz: ZoneInfo = BUSINESS_TZ

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("office hours need at least one period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start >= end or (previous_end is not None and start < previous_end):
                raise ValueError("office periods must be ordered and must not overlap")
            previous_end = end

    @property
    def working_day(self) -> timedelta:
        """The working time of one working day (8 h by default)."""
        total = timedelta()
        for start, end in self.periods:
            total += datetime.combine(date.min, end) - datetime.combine(date.min, start)
        return total

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's opening periods as aware instants."""
        return [
            (datetime.combine(day, start, self.tz), datetime.combine(day, end, self.tz))
            for start, end in self.periods
        ]


DEFAULT_OFFICE_HOURS = OfficeHours()


class Deadline(NamedTuple):
    """A computed due instant (UTC) and whether the holiday schedule behind it is still provisional."""

    at: datetime
    provisional: bool


@lru_cache(maxsize=64)
def statutory_holidays(year: int) -> frozenset[date]:
    """Vietnam's public holidays in ``year`` according to the ``holidays`` package (fixed dates, lunar dates
    computed, compensatory days), used for years whose schedule has not been announced."""
    return frozenset(holidays_package.country_holidays("VN", years=year).keys())


class WorkCalendar:
    """Working days and working hours, from the holiday table plus the statutory fallback.

    ``days``: the holiday table's rows; ``announced_years``: the years whose schedule is loaded as announced
    (their days off are exactly the table's, plus weekends).
    """

    def __init__(
        self,
        days: Iterable[HolidayDay] = (),
        announced_years: Collection[int] = (),
        office_hours: OfficeHours = DEFAULT_OFFICE_HOURS,
        statutory: Callable[[int], Collection[date]] = statutory_holidays,
    ) -> None:
        self._days: Mapping[date, HolidayDay] = {d.day: d for d in days}
        self._announced = frozenset(announced_years)
        self.office_hours = office_hours
        self._statutory = statutory

    @property
    def tz(self) -> ZoneInfo:
        return self.office_hours.tz

    def entry(self, day: date) -> HolidayDay | None:
        return self._days.get(day)

    def is_announced(self, year: int) -> bool:
        return year in self._announced

    def is_working_day(self, day: date) -> bool:
        entry = self._days.get(day)
        if entry is not None:
            return not entry.is_day_off
        if day.weekday() >= 5:
            return False
        return self.is_announced(day.year) or day not in self._statutory(day.year)

    def is_certain(self, day: date) -> bool:
        """Whether the day's status (working or not) follows from an announced, official schedule."""
        if not self.is_announced(day.year):
            return False
        entry = self._days.get(day)
        return entry is None or entry.status == OFFICIAL

    def _local(self, instant: datetime) -> datetime:
        if instant.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
        return instant.astimezone(self.tz)

    def add_working_time(self, start: datetime, duration: timedelta) -> Deadline:
        """The instant at which ``duration`` of working time has passed since ``start``.

        Time outside office hours does not count, so an instant after closing counts from the next
        opening. A deadline ending exactly at closing time stays at closing time.
        """
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        cursor = self._local(start)
        remaining = duration
        day = cursor.date()
        provisional = False
        for _ in range(_MAX_DAYS_SCANNED):
            provisional = provisional or not self.is_certain(day)
            if self.is_working_day(day):
                for opens, closes in self.office_hours.intervals(day):
                    if cursor >= closes:
                        continue
                    begin = max(cursor, opens)
                    available = closes - begin
                    if remaining <= available:
                        return Deadline((begin + remaining).astimezone(UTC), provisional)
                    remaining -= available
            day += timedelta(days=1)
            cursor = datetime.combine(day, time.min, self.tz)
        raise ValueError("no working time found within ten years: check the holiday table")

    def add_working_days(self, start: datetime, days: int) -> Deadline:
        """The due instant of a procedure taking ``days`` working days, counted from ``start``."""
        if days < 0:
            raise ValueError("days must not be negative")
        return self.add_working_time(start, self.office_hours.working_day * days)

    def next_opening(self, instant: datetime) -> datetime:
        """``instant`` itself during office hours, else the next opening (when a clock really starts)."""
        return self.add_working_time(instant, timedelta(0)).at

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The working time between two instants (0 if ``end`` is not after ``start``): how long a
        supplement pause really held the clock."""
        if end <= start:
            return timedelta(0)
        begin, finish = self._local(start), self._local(end)
        total = timedelta(0)
        day = begin.date()
        while day <= finish.date():
            if self.is_working_day(day):
                for opens, closes in self.office_hours.intervals(day):
                    low, high = max(opens, begin), min(closes, finish)
                    if high > low:
                        total += high - low
            day += timedelta(days=1)
        return total


def classify(
    due_at: datetime,
    finished_at: datetime,
    *,
    supplement_requests: int = 0,
    tz: ZoneInfo = BUSINESS_TZ,
) -> Timeliness:
    """Early, on time or late (DOMAIN.md): calendar days in ``tz``; more than one supplement request for
    one dossier counts it as late whatever the dates. ``due_at`` is the statutory due date moved by the
    supplement pauses (never an apology's new date); ``finished_at`` the first of processed, result
    returned, stopped or denied."""
    if supplement_requests > 1:
        return Timeliness.LATE
    due_day = due_at.astimezone(tz).date()
    finished_day = finished_at.astimezone(tz).date()
    if finished_day < due_day:
        return Timeliness.EARLY
    if finished_day == due_day:
        return Timeliness.ON_TIME
    return Timeliness.LATE


class HolidayFileError(ValueError):
    """A holiday file cannot be loaded; the message says which entry and why."""


class _FileEntry(msgspec.Struct, kw_only=True):
    date: date
    kind: Literal["holiday", "swap_off", "swap_work"]
    name_vi: str
    name_en: str | None = None
    status: DayStatus = "official"
    note: str | None = None


class _File(msgspec.Struct, kw_only=True):
    entries: list[dict[str, object]]


def day_problem(day: date, kind: str) -> str | None:
    """Why a row cannot be in the table (None when it can): a swapped day off must replace a weekday,
    a worked day in exchange must be a weekend day."""
    weekend = day.weekday() >= 5
    if kind == "swap_off" and weekend:
        return f"{day.isoformat()} is a weekend day: a swap_off turns a working weekday into a day off"
    if kind == "swap_work" and not weekend:
        return f"{day.isoformat()} is a weekday: a swap_work is a Saturday (or Sunday) worked in exchange"
    return None


def parse_holiday_file(data: object) -> dict[int, CalendarYearIn]:
    """The years of a holiday file (``data/vn_holidays.json``'s shape: ``entries`` with ``date``, ``kind``,
    names, ``status``, ``note``). A year counts as announced when at least one of its entries is
    ``official``; the others (e.g. 2027: statutory dates only) stay provisional."""
    try:
        document = msgspec.convert(data, _File)
    except msgspec.ValidationError as exc:
        raise HolidayFileError(f"not a holiday file: {exc}") from exc
    years: dict[int, CalendarYearIn] = {}
    seen: set[date] = set()
    for index, raw in enumerate(document.entries):
        try:
            entry = msgspec.convert(raw, _FileEntry)
        except msgspec.ValidationError as exc:
            raise HolidayFileError(f"entries[{index}]: {exc}") from exc
        problem = day_problem(entry.date, entry.kind)
        if problem:
            raise HolidayFileError(f"entries[{index}]: {problem}")
        if entry.date in seen:
            raise HolidayFileError(f"entries[{index}]: {entry.date.isoformat()} appears twice")
        seen.add(entry.date)
        year = years.setdefault(entry.date.year, CalendarYearIn(announced=False, days=[]))
        year.days.append(
            CalendarDayIn(
                date=entry.date,
                kind=entry.kind,
                name_vi=entry.name_vi,
                name_en=entry.name_en,
                status=entry.status,
                note=entry.note,
            )
        )
        if entry.status == OFFICIAL:
            year.announced = True
    return years
