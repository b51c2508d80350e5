"""The application factory: wires the modules into one Litestar app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.admin import reconciliation
from app.admin.console_desk import AdminReconDesk
from app.bills import confirmations as bill_confirmations
from app.bills.connectors import load_biller_secrets
from app.bills.gateway import BillerGateway
from app.bills.payment_routes import payment_routes
from app.bills.routes import bills_routes
from app.console.desks import install_merchant_desk, install_recon_desk
from app.console.merchant_desk import MerchantServiceDesk
from app.console.routes import console_router
from app.console.web import template_engine
from app.core.db import Database
from app.core.deps import core_dependencies
from app.core.errors import exception_handlers
from app.core.health import health_routes
from app.core.idempotency import IDEMPOTENCY_ERRORS  # noqa: F401 - its error codes join the catalogue
from app.core.observability import RequestContextMiddleware, configure_logging
from app.core.openapi import SWAGGER_ASSETS, document_errors, openapi_config
from app.core.ratelimit import RateLimiter
from app.core.security import register_session_check
from app.core.settings import Settings, get_settings
from app.core.stores import build_stores
from app.identity import runtime as identity_runtime
from app.identity.inbox import inbox_lifespan
from app.identity.routes import identity_development_routes, identity_routes
from app.identity.tokens import session_is_active
from app.wallet import topup as wallet_topup
from app.wallet import withdrawals as wallet_withdrawals
from app.wallet.gateway import card_gateway_for, install_card_gateway

__all__ = ["create_app"]


def _version() -> str:
    try:
        return version("hue-citizen")
    except PackageNotFoundError:
        return "0.0.0"


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def _domain_routes() -> Sequence[Any]:
    """Every module's route handlers, in dependency order."""
    from app.admin.routes import admin_routes
    from app.bills.autopay_routes import autopay_routes
    from app.complaints.routes import complaint_routes
    from app.core.audit_routes import AuditController
    from app.identity.inbox_routes import InboxController
    from app.merchants.routes import merchant_routes
    from app.services.dossier_routes import dossier_routes
    from app.services.result_routes import result_routes
    from app.services.routes import services_routes
    from app.settlement.routes import settlement_routes
    from app.wallet.funding_routes import funding_routes
    from app.wallet.routes import wallet_routes

    return [
        *identity_routes,
        InboxController,
        *services_routes,
        *dossier_routes,
        *result_routes,
        *bills_routes,
        *payment_routes,
        *autopay_routes,
        *complaint_routes,
        *settlement_routes,
        *wallet_routes,
        *funding_routes,
        *merchant_routes,
        *admin_routes,
        AuditController,
    ]


def _development_routes(settings: Settings) -> Sequence[Any]:
    """Routes that exist only outside production (the SMS outbox that shows one-time codes)."""
    from app.wallet.funding_routes import funding_development_routes

    if settings.is_production:
        return []
    return [*identity_development_routes, *funding_development_routes]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API for ``settings`` (default: read from the environment once)."""
    settings = settings or get_settings()
    configure_logging(settings)
    db = Database(settings)
    biller_gateway = BillerGateway(allow_sandbox=not settings.is_production, secrets=load_biller_secrets())
    # Short timeouts and a single immediate retry (for a pooled connection that died): Redis is an
    # accelerator, so a request must not wait long on it; the stores then pause it for a cool-down. A burst
    # of requests waits for one of 64 connections instead of failing as if Redis were down.
    redis = (
        Redis.from_pool(
            BlockingConnectionPool.from_url(
                settings.redis_url,
                max_connections=64,
                timeout=2,
                socket_timeout=1,
                socket_connect_timeout=1,
                socket_keepalive=True,
                retry=Retry(NoBackoff(), retries=1),
            )
        )
        if settings.redis_url
        else None
    )
    stores = build_stores(settings, redis)
    limiter = RateLimiter.from_settings(settings, stores)
    identity_runtime.install(db, settings, stores=stores, limiter=limiter)
    bill_confirmations.install(db, biller_gateway)
    register_session_check(session_is_active)
    card_gateway, card_sandbox = card_gateway_for(settings)
    install_card_gateway(card_gateway, card_sandbox)
    reconciliation.install_card_gateway(card_gateway)
    install_merchant_desk(MerchantServiceDesk())
    install_recon_desk(AdminReconDesk())
    wallet_withdrawals.install(db)
    if card_sandbox is not None and settings.environment != "test":
        # The embedded sandbox delivers its signed webhooks straight to our own handler (tests deliver them
        # themselves, to play duplicates, delays and forgeries).
        async def deliver(body: bytes, header: str) -> None:
            await wallet_topup.receive_webhook(db, settings, card_gateway, body, header)

        card_sandbox.deliver = deliver

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        worker = None
        if settings.run_worker_in_process:
            from app import tasks  # noqa: F401 - registers every module's delivery handlers and jobs
            from app.core.worker import Worker

            worker = Worker(db, settings)
            app.state.worker = worker
            await worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop(grace_seconds=10)
            await app.state.biller_gateway.aclose()
            if reconciliation.card_gateway() is card_gateway:
                reconciliation.install_card_gateway(None)  # a later app in this process brings its own
            await card_gateway.aclose()
            if redis is not None:
                await redis.aclose()
            await db.dispose()

    prometheus = PrometheusConfig(app_name="hue_citizen", prefix="hue", group_path=True, exclude=["/metrics"])
    app = Litestar(
        route_handlers=[
            *health_routes,
            MetricsController,
            create_static_files_router(
                path="/docs/assets", directories=[SWAGGER_ASSETS], include_in_schema=False
            ),
            *_domain_routes(),
            console_router(),
            *_development_routes(settings),
        ],
        state=State(
            {
                "settings": settings,
                "db": db,
                "redis": redis,
                "stores": stores,
                "limiter": limiter,
                "biller_gateway": biller_gateway,
            }
        ),
        dependencies=core_dependencies(),
        middleware=[RequestContextMiddleware(), prometheus.middleware],
        exception_handlers=exception_handlers(),
        openapi_config=openapi_config(_version()),
        lifespan=[lifespan, inbox_lifespan],
        template_config=TemplateConfig(instance=template_engine()),
        request_max_body_size=settings.max_json_body_bytes,
        debug=False,
    )
    document_errors(app)
    return app
