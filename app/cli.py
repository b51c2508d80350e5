"""The operators' command line: ``hue serve``, ``hue worker``, ``hue db upgrade``, ``hue demo seed``,
``hue spec export``. Configuration comes from the environment, as for the API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import typer
from rich.console import Console

from app.core.settings import ConfigError, Settings, get_settings

__all__ = ["cli", "main"]

cli = typer.Typer(help="Huế citizen super-app backend", no_args_is_help=True, add_completion=False)
db_cli = typer.Typer(help="Database schema (Alembic)", no_args_is_help=True)
demo_cli = typer.Typer(help="Demo data", no_args_is_help=True)
spec_cli = typer.Typer(help="The OpenAPI document for mobile developers", no_args_is_help=True)
admin_cli = typer.Typer(help="Administration", no_args_is_help=True)
services_cli = typer.Typer(
    help="Public services: procedure catalogue and holiday table", no_args_is_help=True
)
cli.add_typer(db_cli, name="db")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(spec_cli, name="spec")
cli.add_typer(admin_cli, name="admin")
cli.add_typer(services_cli, name="services")
console = Console(stderr=True)

SPEC_PATH = Path(__file__).resolve().parents[1] / "mobile_api_spec" / "openapi.json"


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default HOST or 127.0.0.1)"),
    port: int | None = typer.Option(None, help="Port (default PORT or 8000)"),
    workers: int = typer.Option(1, min=1, help="API processes (granian workers)"),
) -> None:
    """Serve the API with granian."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings()
    console.print(f"Serving on http://{host or settings.host}:{port or settings.port}  (docs at /docs)")
    Granian(
        "app.asgi:create_app",
        address=host or settings.host,
        port=port or settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_access=False,
    ).serve()


@cli.command()
def worker() -> None:
    """Run the outbox dispatcher and the scheduled jobs until SIGTERM/SIGINT (graceful shutdown)."""
    from app import tasks  # noqa: F401 - registers every module's delivery handlers and jobs
    from app.core.observability import configure_logging
    from app.core.worker import run_worker

    settings = _settings()
    configure_logging(settings)
    console.print("Worker running (outbox dispatcher + scheduler); Ctrl-C or SIGTERM stops it.")
    asyncio.run(run_worker(settings))
    console.print("Worker stopped.")


@db_cli.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Migrate the database up to ``revision`` (default: the latest)."""
    from app.core.migrate import upgrade

    upgrade(_settings().database_url, revision)
    console.print(f"Database at {revision}.")


@db_cli.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="Target revision, or 'base' for an empty schema"),
) -> None:
    """Migrate the database down to ``revision``."""
    from app.core.migrate import downgrade

    downgrade(_settings().database_url, revision)
    console.print(f"Database at {revision}.")


@spec_cli.command("export")
def spec_export(path: Path = typer.Option(SPEC_PATH, help="Where to write openapi.json")) -> None:
    """Write the OpenAPI document generated from the code."""
    from app.core.openapi import render_spec

    path.write_text(render_spec())
    console.print(f"Wrote {path}")


@demo_cli.command("seed")
def demo_seed() -> None:
    """Load the demo data (idempotent) and print the credentials to try it with."""
    from app.demo import seed_demo

    credentials = asyncio.run(seed_demo(_settings()))
    console.print_json(json.dumps(credentials, ensure_ascii=False))


@admin_cli.command("create-superadmin")
def admin_create_superadmin(
    phone: str = typer.Option(..., help="Vietnamese mobile number of the superadmin"),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="Initial password (prompted if omitted)",
    ),
    full_name: str = typer.Option("Quản trị hệ thống", help="Full name"),
) -> None:
    """Create the first superadmin (or give the duty to the existing account of PHONE)."""
    from app.core.db import Database
    from app.core.errors import AppError
    from app.identity.bootstrap import create_superadmin

    settings = _settings()

    async def run() -> str:
        db = Database(settings)
        try:
            return str(
                await create_superadmin(db, settings, phone=phone, password=password, full_name=full_name)
            )
        finally:
            await db.dispose()

    try:
        user_id = asyncio.run(run())
    except AppError as exc:
        console.print(f"[red]Refused:[/red] {exc.detail_en}")
        raise typer.Exit(1) from exc
    console.print(f"Superadmin ready: user {user_id}")


@services_cli.command("load-catalogue")
def services_load_catalogue(
    file: Path | None = typer.Option(
        None,
        "--file",
        help="A province's catalogue file (default: ../shared/data/procedures.json from the repository root)",
    ),
) -> None:
    """Load procedures (and agencies) idempotently; fields an admin edited are kept."""
    from app.services.catalogue import NATIONAL_CATALOGUE_FILE, CatalogueError
    from app.services.service import load_catalogue_file

    try:
        report = asyncio.run(load_catalogue_file(_settings(), file or NATIONAL_CATALOGUE_FILE))
    except CatalogueError as exc:
        console.print(f"[red]Cannot load the catalogue:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print_json(json.dumps(dataclasses.asdict(report), ensure_ascii=False))


@services_cli.command("load-holidays")
def services_load_holidays(
    file: Path | None = typer.Option(
        None,
        "--file",
        help="Holiday file (default: ../shared/data/vn_holidays.json from the repository root)",
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite years already in the table"),
) -> None:
    """Load the holiday table idempotently (years already present are kept unless --replace)."""
    from app.services.calendar import HolidayFileError
    from app.services.catalogue import HOLIDAYS_FILE, CatalogueError
    from app.services.service import load_holidays_file

    try:
        report = asyncio.run(load_holidays_file(_settings(), file or HOLIDAYS_FILE, replace=replace))
    except (CatalogueError, HolidayFileError) as exc:
        console.print(f"[red]Cannot load the holidays:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print_json(json.dumps(dataclasses.asdict(report)))


def main() -> None:
    cli()
