"""Bill categories and which of them the monthly wallet limit exempts (data: ``data/categories.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import get_args

from app.bills.schemas import Category

__all__ = ["CategoryInfo", "categories", "is_limit_exempt"]

DATA = Path(__file__).with_name("data") / "categories.json"


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    code: str
    name_vi: str
    name_en: str
    limit_exempt: bool
    """Payments of this category do not count towards the 100,000,000 đồng monthly limit."""


@lru_cache(maxsize=1)
def categories() -> dict[str, CategoryInfo]:
    """Every category the API knows, read once; the data file must describe each of them exactly."""
    raw = json.loads(DATA.read_text(encoding="utf-8"))["categories"]
    known = set(get_args(Category))
    if set(raw) != known:
        raise RuntimeError(f"{DATA.name} must describe exactly the categories {sorted(known)}")
    return {
        code: CategoryInfo(code, item["name_vi"], item["name_en"], bool(item["limit_exempt"]))
        for code, item in raw.items()
    }


def is_limit_exempt(category: str) -> bool:
    """Whether the law lets payments of ``category`` stay outside the monthly wallet limit."""
    info = categories().get(category)
    return info is not None and info.limit_exempt
