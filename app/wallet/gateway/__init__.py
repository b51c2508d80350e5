"""The card gateway (Stripe-compatible): the adapter, the embedded sandbox and webhook signatures.

At runtime::

    from app.wallet.gateway import get_card_gateway
    gateway = get_card_gateway()            # this process's CardGateway, built from settings on first use
    page = await gateway.list_balance_transactions(created_gte, created_lt, limit=100, starting_after=None)
    async for txn in gateway.iter_balance_transactions(created_gte, created_lt): ...

``CARD_GATEWAY_URL`` unset (development, tests) = the embedded sandbox (:func:`sandbox`), served through the
same :class:`CardGateway` over an in-process transport; production refuses to start without a real gateway.
Tests replace the instance with :func:`install_card_gateway`.
"""

from __future__ import annotations

from app.core.settings import Settings, get_settings
from app.wallet.gateway.client import (
    CardError,
    CardGateway,
    GatewayError,
    GatewayUnavailableError,
    IdempotencyError,
    InvalidRequestError,
)
from app.wallet.gateway.sandbox import SANDBOX_BASE_URL, SandboxGateway

__all__ = [
    "CardError",
    "CardGateway",
    "GatewayError",
    "GatewayUnavailableError",
    "IdempotencyError",
    "InvalidRequestError",
    "SandboxGateway",
    "card_gateway_for",
    "get_card_gateway",
    "install_card_gateway",
    "sandbox",
]

_gateway: CardGateway | None = None
_sandbox: SandboxGateway | None = None


def card_gateway_for(settings: Settings) -> tuple[CardGateway, SandboxGateway | None]:
    """The real gateway when ``CARD_GATEWAY_URL`` is set; otherwise a fresh sandbox and a client of it."""
    if settings.card_gateway_url:
        return CardGateway(settings.card_gateway_url, settings.card_gateway_secret_key or ""), None
    box = SandboxGateway(
        webhook_secrets=tuple(secret for _, secret in settings.card_gateway_webhook_secrets.keys)
    )
    return CardGateway(SANDBOX_BASE_URL, box.secret_key, transport=box.transport(), backoff_seconds=0.05), box


def get_card_gateway() -> CardGateway:
    """This process's card gateway (built from settings on first use)."""
    global _gateway, _sandbox
    if _gateway is None:
        _gateway, _sandbox = card_gateway_for(get_settings())
    return _gateway


def sandbox() -> SandboxGateway | None:
    """The embedded sandbox behind :func:`get_card_gateway`, when there is one."""
    get_card_gateway()
    return _sandbox


def install_card_gateway(gateway: CardGateway | None, box: SandboxGateway | None = None) -> None:
    """Use ``gateway`` (and its sandbox, if any) for this process; ``None``: back to the configured one."""
    global _gateway, _sandbox
    _gateway, _sandbox = gateway, box
