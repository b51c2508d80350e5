"""The bank-transfer interface: every payout to a bank account (withdrawals, merchant and biller
settlements, treasury remittances) leaves through here.

A payout must never be sent twice, yet a network can swallow the answer. So every order carries a
``reference`` chosen (and stored) by the caller before sending; the partner bank deduplicates by it, and
when a send times out the caller asks :meth:`BankTransfers.status` with the same reference (or resends
it, which the bank answers with the first outcome) instead of guessing. :class:`BankUnavailableError` means
"outcome unknown", never "failed".

Two implementations: :class:`PartnerBankApi` (the partner bank's JSON API over HTTPS, in production) and
:class:`SandboxBank` (in-process, for development and tests; account numbers pick the outcome, see its
docstring). :func:`get_bank_transfers` gives the process's one instance; tests replace it with
:func:`install_bank_transfers`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import httpx

from app.core.settings import Settings, get_settings

__all__ = [
    "BankTransferRejectedError",
    "BankTransfers",
    "BankUnavailableError",
    "PartnerBankApi",
    "SandboxBank",
    "TransferNotFoundError",
    "TransferOrder",
    "TransferResult",
    "TransferStatus",
    "get_bank_transfers",
    "install_bank_transfers",
]


@dataclass(frozen=True, slots=True)
class TransferOrder:
    """One payout: ``amount`` đồng to an account at the bank with NAPAS BIN ``bank_bin``."""

    reference: str
    """Ours, unique per payout and stored before sending: the bank's deduplication key."""
    bank_bin: str
    account_number: str
    account_name: str
    amount: int
    description: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool) or self.amount <= 0:
            raise ValueError("a transfer amount is a positive integer number of đồng")
        if not self.reference or len(self.reference) > 64:
            raise ValueError("a transfer reference is 1-64 characters")


class TransferStatus(StrEnum):
    """Where a payout stands at the bank."""

    PENDING = "pending"
    """Accepted by the bank, not yet settled: ask again later."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Definitive: no money left the account, the amount can be released."""


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The bank's answer about one reference."""

    reference: str
    status: TransferStatus
    bank_reference: str | None = None
    """The bank's own transaction id (on a statement line), once it has one."""
    failure_reason: str | None = None


class BankUnavailableError(Exception):
    """The bank did not answer (timeout, dropped connection, 5xx): the outcome is unknown."""


class BankTransferRejectedError(Exception):
    """The bank refused the order itself (malformed, unknown bank BIN): nothing was sent; not retryable."""


class TransferNotFoundError(Exception):
    """The bank has no transfer with this reference: it never arrived, so resending is safe."""


class BankTransfers(Protocol):
    """A partner bank that executes payouts, deduplicated by :attr:`TransferOrder.reference`."""

    async def send(self, order: TransferOrder) -> TransferResult:
        """Send ``order`` (or return the first outcome if this reference was sent before)."""
        ...

    async def status(self, reference: str) -> TransferResult:
        """The current outcome of ``reference``; :class:`TransferNotFoundError` if the bank never got it."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass
class SandboxBank:
    """An in-process bank for development and tests. The last four digits of the account number choose
    the outcome, so a demo or a test can play every case:

    - ``0000``: refused by the receiving bank (``failed``, reason ``account_closed``);
    - ``9999``: the send times out (:class:`BankUnavailableError`) and the transfer turns out to have failed;
    - ``8888``: the send times out but the transfer went through (``succeeded`` on a status query);
    - ``7777``: accepted as ``pending``; :meth:`settle` decides it later;
    - anything else: ``succeeded`` at once.

    ``transfers`` holds each reference once, however often it was sent: what "sent twice" would look like.
    """

    transfers: dict[str, tuple[TransferOrder, TransferResult]] = field(default_factory=dict)
    send_calls: int = 0
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, order: TransferOrder) -> TransferResult:
        self.send_calls += 1
        if known := self.transfers.get(order.reference):
            return known[1]
        if not (order.bank_bin.isdigit() and len(order.bank_bin) == 6):
            raise BankTransferRejectedError(f"unknown bank BIN {order.bank_bin!r}")
        suffix = order.account_number[-4:]
        bank_reference = f"SBX{next(self._numbers):010d}"
        if suffix == "0000":
            result = TransferResult(order.reference, TransferStatus.FAILED, None, "account_closed")
        elif suffix == "9999":
            result = TransferResult(order.reference, TransferStatus.FAILED, None, "timeout_then_failed")
        elif suffix == "7777":
            result = TransferResult(order.reference, TransferStatus.PENDING, bank_reference)
        else:
            result = TransferResult(order.reference, TransferStatus.SUCCEEDED, bank_reference)
        self.transfers[order.reference] = (order, result)
        if suffix in ("9999", "8888"):
            raise BankUnavailableError("sandbox: the bank did not answer in time")
        return result

    async def status(self, reference: str) -> TransferResult:
        if reference not in self.transfers:
            raise TransferNotFoundError(reference)
        return self.transfers[reference][1]

    def settle(self, reference: str, *, succeeded: bool) -> None:
        """Decide a ``pending`` transfer, as the bank would at the end of its clearing cycle."""
        order, result = self.transfers[reference]
        status = TransferStatus.SUCCEEDED if succeeded else TransferStatus.FAILED
        reason = None if succeeded else "returned_by_receiving_bank"
        self.transfers[reference] = (order, TransferResult(reference, status, result.bank_reference, reason))

    def succeeded_total(self) -> int:
        """Đồng that actually left: what a property test compares with the ledger."""
        return sum(o.amount for o, r in self.transfers.values() if r.status is TransferStatus.SUCCEEDED)

    async def aclose(self) -> None:
        return None


class PartnerBankApi:
    """The partner bank's payout API: ``POST /v1/transfers`` (JSON, ``Idempotency-Key`` = reference) and
    ``GET /v1/transfers/{reference}``, answering ``{reference, status, bank_reference, failure_reason}``.

    Timeouts, dropped connections and 5xx become :class:`BankUnavailableError` (ask :meth:`status` later);
    a 4xx on send is a refusal of the order itself (:class:`BankTransferRejectedError`).
    """

    def __init__(self, base_url: str, token: str, *, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, connect=3.0),
        )

    async def send(self, order: TransferOrder) -> TransferResult:
        body = {
            "reference": order.reference,
            "bank_bin": order.bank_bin,
            "account_number": order.account_number,
            "account_name": order.account_name,
            "amount": order.amount,
            "currency": "VND",
            "description": order.description,
        }
        response = await self._call(
            "POST", "/v1/transfers", json=body, headers={"Idempotency-Key": order.reference}
        )
        if 400 <= response.status_code < 500:
            raise BankTransferRejectedError(_error_text(response))
        return _result(response.json())

    async def status(self, reference: str) -> TransferResult:
        response = await self._call("GET", f"/v1/transfers/{reference}")
        if response.status_code == 404:
            raise TransferNotFoundError(reference)
        if 400 <= response.status_code < 500:
            raise BankUnavailableError(f"bank answered {response.status_code} to a status query")
        return _result(response.json())

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BankUnavailableError(f"bank unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise BankUnavailableError(f"bank answered {response.status_code}")
        return response

    async def aclose(self) -> None:
        await self._client.aclose()


def _result(payload: Any) -> TransferResult:
    try:
        return TransferResult(
            reference=str(payload["reference"]),
            status=TransferStatus(payload["status"]),
            bank_reference=payload.get("bank_reference"),
            failure_reason=payload.get("failure_reason"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BankUnavailableError("bank answered with an unreadable transfer") from exc


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return f"bank refused the transfer ({response.status_code})"
    if isinstance(payload, dict):
        return str(payload.get("message") or payload.get("error") or payload)
    return str(payload)


_bank: BankTransfers | None = None


def bank_transfers_for(settings: Settings) -> BankTransfers:
    """The partner bank's API when ``BANK_API_URL`` is set; the sandbox otherwise (never in production,
    which refuses to start without a bank)."""
    if settings.bank_api_url:
        return PartnerBankApi(settings.bank_api_url, settings.bank_api_token or "")
    return SandboxBank()


def get_bank_transfers() -> BankTransfers:
    """This process's bank (built from settings on first use)."""
    global _bank
    if _bank is None:
        _bank = bank_transfers_for(get_settings())
    return _bank


def install_bank_transfers(bank: BankTransfers | None) -> None:
    """Use ``bank`` for every payout of this process (tests install a :class:`SandboxBank` or a respx-backed
    :class:`PartnerBankApi`); ``None`` goes back to the configured one."""
    global _bank
    _bank = bank
