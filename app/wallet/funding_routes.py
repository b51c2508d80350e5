"""Money in and out over HTTP: linked sources, card top-ups, withdrawals, the gateway's webhooks."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database
from app.core.deps import AUTHENTICATED
from app.core.errors import NOT_FOUND, VALIDATION_FAILED
from app.core.idempotency import (
    IDEMPOTENCY_ERRORS,
    REPLAY_HEADER,
    IdempotencyKey,
    idempotent_response,
    request_fingerprint,
    run_idempotent,
    scope_of,
)
from app.core.ratelimit import rate_limit
from app.core.security import Caller, require_roles
from app.core.settings import Settings
from app.identity.errors import PIN_INVALID, PIN_LOCKED, PIN_NOT_SET
from app.wallet import funding, topup, withdrawals
from app.wallet.errors import IDENTITY_LEVEL_REQUIRED, INSUFFICIENT_FUNDS, WALLET_NOT_FOUND
from app.wallet.funding_schemas import (
    BankAccountIn,
    CardIn,
    FundingSourceOut,
    FundingSourcesOut,
    TopupIn,
    TopupOut,
    WithdrawalIn,
    WithdrawalOut,
    source_out,
    topup_out,
    withdrawal_out,
)
from app.wallet.gateway import get_card_gateway, sandbox

__all__ = ["funding_development_routes", "funding_routes"]


def _uuid(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise VALIDATION_FAILED(
            "Mã không hợp lệ",
            "Invalid id",
            errors=[{"field": field, "source": "body", "message": "not an id"}],
        ) from exc


class FundingController(Controller):
    path = "/api/v1/me/wallet"
    tags = ["wallet"]
    dependencies = AUTHENTICATED["dependencies"]
    security = AUTHENTICATED["security"]
    guards = [require_roles("citizen")]

    @get("/funding-sources", operation_id="listFundingSources", summary="My linked card and bank accounts")
    async def list_sources(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database]
    ) -> FundingSourcesOut:
        """The signed-in citizen's linked debit cards and bank accounts."""
        async with db.read() as session:
            rows = await funding.list_sources(session, caller.user_id)
        return FundingSourcesOut(items=[source_out(row) for row in rows])

    @delete(
        "/funding-sources/{source_id:uuid}",
        operation_id="removeFundingSource",
        summary="Unlink a card or bank account",
        opt={"errors": [*IDEMPOTENCY_ERRORS, funding.FUNDING_SOURCE_NOT_FOUND]},
    )
    async def remove_source(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        source_id: FromPath[uuid.UUID],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[None]:
        """Unlink one of the signed-in citizen's cards or bank accounts. With none left, the wallet can
        neither pay nor transfer until another is linked (top-ups and withdrawals in progress finish)."""

        async def effect(session: AsyncSession) -> None:
            await funding.remove_source(session, caller.user_id, source_id)

        return await idempotent_response(
            request,
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            data=None,
            effect=effect,
            status_code=204,
        )

    @post(
        "/funding-sources/cards",
        operation_id="linkCard",
        summary="Link my debit card",
        guards=[rate_limit("payments")],
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                IDENTITY_LEVEL_REQUIRED,
                funding.CREDIT_CARD_REFUSED,
                funding.FUNDING_HOLDER_MISMATCH,
                funding.FUNDING_CHECK_UNAVAILABLE,
                funding.FUNDING_SOURCE_NOT_FOUND,
            ]
        },
    )
    async def link_card(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CardIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Link the signed-in citizen's own debit card, given as the gateway's payment method. The gateway
        reports its funding type (credit cards are refused) and the issuer confirms that the holder's
        personal ID number is the citizen's verified CCCD (a mismatch is refused)."""
        facts = await funding.check_card(db, get_card_gateway(), caller.user_id, data.payment_method)

        async def effect(session: Any) -> FundingSourceOut:
            return source_out(await funding.link_card(session, caller.user_id, facts))

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @post(
        "/funding-sources/bank-accounts",
        operation_id="linkBankAccount",
        summary="Link my bank account",
        guards=[rate_limit("payments")],
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                IDENTITY_LEVEL_REQUIRED,
                funding.FUNDING_HOLDER_MISMATCH,
                funding.FUNDING_CHECK_UNAVAILABLE,
            ]
        },
    )
    async def link_bank_account(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[BankAccountIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Link the signed-in citizen's own bank account (withdrawals go back to it). The bank confirms
        that the holder's personal ID number is the citizen's verified CCCD (a mismatch is refused)."""
        await funding.check_bank_account(
            db, funding.get_account_verifier(), caller.user_id, data.bank_bin, data.account_number
        )

        async def effect(session: Any) -> FundingSourceOut:
            source = await funding.link_bank_account(
                session,
                caller.user_id,
                bank_bin=data.bank_bin,
                account_number=data.account_number,
                account_name=data.account_name.strip().upper(),
            )
            return source_out(source)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @post(
        "/topups",
        operation_id="createTopup",
        summary="Top up my wallet from my card",
        guards=[rate_limit("payments")],
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                IDENTITY_LEVEL_REQUIRED,
                WALLET_NOT_FOUND,
                funding.FUNDING_SOURCE_NOT_FOUND,
                topup.TOPUP_AMOUNT_INVALID,
                VALIDATION_FAILED,
            ]
        },
    )
    async def create_topup(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[TopupIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TopupOut]:
        """Charge the linked debit card and credit the wallet when the gateway confirms. The answer's
        `status` is `succeeded` (credited), `requires_action` (open `next_action_url` for 3-D Secure, then
        read the top-up again), `pending` (the gateway has not answered yet: the app polls
        `GET /topups/{id}`; the wallet is credited once, whichever of the webhook or the poll comes first) or
        `failed`. Retrying with the same Idempotency-Key never charges twice."""
        source_id = _uuid(data.funding_source_id, "funding_source_id")

        async def effect(session: Any) -> dict[str, str]:
            row = await topup.start_topup(
                session, user_id=caller.user_id, source_id=source_id, amount=data.amount
            )
            return {"id": str(row.id)}

        stored = await run_idempotent(
            db,
            scope=scope_of(caller),
            key=idempotency_key,
            fingerprint=request_fingerprint(request.method, request.url.path, data, query=request.url.query),
            effect=effect,
        )
        topup_id = uuid.UUID(json.loads(stored.body)["id"])
        await topup.drive_topup(db, get_card_gateway(), topup_id, return_url=data.return_url)
        async with db.read() as session:
            row = await topup.get_topup(session, caller.user_id, topup_id)
        headers = {REPLAY_HEADER: "true"} if stored.replayed else None
        return Response(topup_out(row), status_code=201, headers=headers)

    @get(
        "/topups/{topup_id:uuid}",
        operation_id="getTopup",
        summary="One of my top-ups",
        opt={"errors": [topup.TOPUP_NOT_FOUND]},
    )
    async def get_topup(
        self, caller: NamedDependency[Caller], db: NamedDependency[Database], topup_id: FromPath[uuid.UUID]
    ) -> TopupOut:
        """A top-up of the signed-in citizen (404 for anyone else's). While it is open, the gateway is asked
        again, so the answer is current even when a webhook is late."""
        async with db.read() as session:
            row = await topup.get_topup(session, caller.user_id, topup_id)
        if row.status in ("pending", "requires_action"):
            await topup.drive_topup(db, get_card_gateway(), topup_id)
            async with db.read() as session:
                row = await topup.get_topup(session, caller.user_id, topup_id)
        return topup_out(row)

    @post(
        "/withdrawals",
        operation_id="createWithdrawal",
        summary="Withdraw to my bank account",
        guards=[rate_limit("payments")],
        opt={
            "errors": [
                *IDEMPOTENCY_ERRORS,
                IDENTITY_LEVEL_REQUIRED,
                WALLET_NOT_FOUND,
                funding.FUNDING_SOURCE_NOT_FOUND,
                withdrawals.WITHDRAWAL_AMOUNT_INVALID,
                PIN_INVALID,
                PIN_LOCKED,
                PIN_NOT_SET,
                INSUFFICIENT_FUNDS,
                VALIDATION_FAILED,
            ]
        },
    )
    async def create_withdrawal(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[WithdrawalIn],
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Any]:
        """Send money from the wallet to the signed-in citizen's own linked bank account, confirmed with the
        payment PIN. The amount is held at once and paid out by bank transfer: on success it leaves the
        wallet, on failure it becomes available again. Never paid out twice, even when retried."""
        source_id = _uuid(data.funding_source_id, "funding_source_id")

        async def effect(session: Any) -> WithdrawalOut:
            row = await withdrawals.request_withdrawal(
                session, user_id=caller.user_id, source_id=source_id, amount=data.amount, pin=data.pin
            )
            return withdrawal_out(row)

        return await idempotent_response(
            request, db, scope=scope_of(caller), key=idempotency_key, data=data, effect=effect
        )

    @get(
        "/withdrawals/{withdrawal_id:uuid}",
        operation_id="getWithdrawal",
        summary="One of my withdrawals",
        opt={"errors": [withdrawals.WITHDRAWAL_NOT_FOUND]},
    )
    async def get_withdrawal(
        self,
        caller: NamedDependency[Caller],
        db: NamedDependency[Database],
        withdrawal_id: FromPath[uuid.UUID],
    ) -> WithdrawalOut:
        """A withdrawal of the signed-in citizen (404 for anyone else's)."""
        async with db.read() as session:
            row = await withdrawals.get_withdrawal(session, caller.user_id, withdrawal_id)
        return withdrawal_out(row)


class GatewayWebhookController(Controller):
    """Public: the card gateway calls it; the ``Stripe-Signature`` header is the authentication."""

    path = "/api/v1/webhooks/gateway"
    tags = ["wallet"]

    @post(
        "/",
        operation_id="receiveGatewayWebhook",
        summary="Card gateway events (webhook)",
        status_code=200,
        opt={"errors": [topup.WEBHOOK_SIGNATURE_INVALID, topup.GATEWAY_UNAVAILABLE]},
    )
    async def receive(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Database],
        settings: NamedDependency[Settings],
        stripe_signature: Annotated[
            str | None, HeaderParameter(name="Stripe-Signature", required=False, max_length=2000)
        ] = None,
    ) -> dict[str, Any]:
        """An event of the card gateway (`payment_intent.succeeded`, `.payment_failed`, `.requires_action`),
        signed with `Stripe-Signature` (HMAC-SHA256 over `t.body`, 5-minute tolerance, several `v1` during a
        secret rotation). Deduplicated by event id; the intent is read back from the gateway, so duplicates,
        late and out-of-order events credit the wallet at most once."""
        body = await request.body()
        return await topup.receive_webhook(db, settings, get_card_gateway(), body, stripe_signature)


class SandboxGatewayController(Controller):
    """Registered only outside production: the sandbox gateway's 3-D Secure page."""

    path = "/api/v1/dev/card-gateway"
    tags = ["wallet"]

    @post(
        "/payment_intents/{intent_id:str}/authenticate",
        operation_id="devAuthenticatePaymentIntent",
        summary="Development: pass or fail 3-D Secure",
        status_code=200,
        opt={"errors": [NOT_FOUND]},
    )
    async def authenticate(
        self,
        intent_id: FromPath[str],
        passed: Annotated[
            bool, QueryParameter(description="Whether the holder passes the challenge.")
        ] = True,
    ) -> dict[str, Any]:
        """The sandbox gateway's 3-D Secure challenge (what `next_action_url` opens): the card holder passes
        it (`passed=true`) or fails it. The gateway then sends its webhook; read the top-up again."""
        box = sandbox()
        if box is None or intent_id not in box.intents:
            raise NOT_FOUND("Không tìm thấy", "No such sandbox payment intent")
        intent = box.authenticate(intent_id, passed=passed)
        return {"id": intent["id"], "status": intent["status"]}


funding_routes = [FundingController, GatewayWebhookController]
funding_development_routes = [SandboxGatewayController]
