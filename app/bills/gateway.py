"""The process's way to every biller: one HTTP connection pool, a connector per biller configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

import httpx

from app.bills.connectors import BillerConnector, HttpBillerConnector
from app.bills.errors import BILLER_UNAVAILABLE
from app.bills.sandbox import SandboxBiller
from app.bills.schemas import ConnectorConfig, HttpConnector, SandboxConnector

__all__ = ["BillerGateway"]


class BillerGateway:
    """Builds each biller's connector from its configuration; owns the shared HTTP client.

    ``allow_sandbox`` is false in production: a sandbox biller there is simply unavailable.
    """

    def __init__(
        self,
        *,
        allow_sandbox: bool,
        secrets: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.allow_sandbox = allow_sandbox
        self._secrets = dict(secrets or {})
        self._client = client
        self._today = today

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def connector(self, biller_code: str, config: ConnectorConfig | None) -> BillerConnector:
        """The connector of ``biller_code``; a biller without one is unavailable (503)."""
        if isinstance(config, HttpConnector):
            return HttpBillerConnector(biller_code, config, self.client, self._secrets)
        if isinstance(config, SandboxConnector) and self.allow_sandbox:
            return SandboxBiller(biller_code, config.profile, today=self._today)
        raise BILLER_UNAVAILABLE(
            "Nhà cung cấp này chưa kết nối trực tuyến",
            "This biller has no online connection",
            biller=biller_code,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
