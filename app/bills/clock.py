"""Business days are taken in Asia/Ho_Chi_Minh: a bill due on the 15th is due until midnight in Huế."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from app.core.db import utcnow

__all__ = ["VN_TZ", "local_date", "local_today"]

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_date(moment: datetime) -> date:
    """The calendar day in Huế at ``moment`` (an aware datetime)."""
    return moment.astimezone(VN_TZ).date()


def local_today() -> date:
    return local_date(utcnow())
