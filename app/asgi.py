"""ASGI entry point for granian: ``granian --interface asgi --factory app.asgi:create_app``."""

from __future__ import annotations

from app.main import create_app

__all__ = ["create_app"]
