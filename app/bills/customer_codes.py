"""Customer codes: what the user typed, normalised and checked against the biller's rule; names masked."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from app.bills.errors import INVALID_CUSTOMER_CODE
from app.bills.schemas import CustomerInput

__all__ = ["check_rule", "code_checker", "mask_name", "normalise_code"]

_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def normalise_code(rule: CustomerInput, raw: str) -> str:
    """The canonical form of ``raw`` under ``rule``, or :data:`INVALID_CUSTOMER_CODE` saying what is wrong.

    With ``rule.uppercase`` (the usual case) spaces are dropped and letters upper-cased, so
    ``pc03 dd 0123456`` and ``PC03DD0123456`` are the same household.
    """
    code = raw.strip()
    if rule.uppercase:
        code = _SPACES.sub("", code).upper()
    problem = _problem(rule, code)
    if problem is not None:
        detail_vi, detail_en = problem
        raise INVALID_CUSTOMER_CODE(
            detail_vi, detail_en, field="customer_code", example=rule.example, hint=rule.hint_vi
        )
    return code


def code_checker(rule: CustomerInput) -> Callable[[str], str | None]:
    """A fast check for many codes under one rule: the normalised code, or None when it is invalid (then
    :func:`normalise_code` says why). Meant for batch files of millions of rows."""
    matches = _compiled(rule.pattern).fullmatch
    low, high, uppercase = rule.min_length, rule.max_length, rule.uppercase

    def check(raw: str) -> str | None:
        code = raw.strip()
        if uppercase:
            if " " in code or "\t" in code:
                code = _SPACES.sub("", code)
            code = code.upper()
        if low <= len(code) <= high and matches(code) is not None:
            return code
        return None

    return check


def _problem(rule: CustomerInput, code: str) -> tuple[str, str] | None:
    label = rule.label_vi
    if not code:
        return f"Vui lòng nhập {label}", f"Enter the {rule.label_en}"
    if not (rule.min_length <= len(code) <= rule.max_length):
        span = (
            str(rule.min_length)
            if rule.min_length == rule.max_length
            else f"{rule.min_length}–{rule.max_length}"
        )
        return (
            f"{label} phải có {span} ký tự (ví dụ {rule.example})",
            f"The {rule.label_en} has {span} characters (e.g. {rule.example})",
        )
    if _compiled(rule.pattern).fullmatch(code) is None:
        return (
            f"{label} không đúng định dạng (ví dụ {rule.example})",
            f"The {rule.label_en} is not in the expected format (e.g. {rule.example})",
        )
    return None


def check_rule(rule: CustomerInput) -> str | None:
    """What is wrong with a rule an administrator declared, or None."""
    if rule.min_length > rule.max_length:
        return "min_length is greater than max_length"
    try:
        re.compile(rule.pattern)
    except re.error as exc:
        return f"pattern is not a valid regular expression: {exc}"
    example = _SPACES.sub("", rule.example).upper() if rule.uppercase else rule.example
    problem = _problem(rule, example)
    if problem is not None:
        return f"the example does not satisfy the rule: {problem[1]}"
    return None


def mask_name(name: str | None) -> str | None:
    """Keep the first letter of each word: ``Nguyễn Văn An`` -> ``N***** V** A*``.

    Enough for a payer to recognise the household, not enough to learn who lives there.
    """
    if not name:
        return None
    words = unicodedata.normalize("NFC", name).split()
    return " ".join(word[0] + "*" * (len(word) - 1) for word in words) or None
