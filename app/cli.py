"""The operators' command line: ``hue serve``, ``hue worker``, ``hue db upgrade``, ``hue demo seed``,
``hue spec export``, ``hue audit verify``, ``hue bills import``.

Configuration comes from the environment, as for the API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import typer
from rich.console import Console

from app.core.settings import ConfigError, Settings, get_settings

__all__ = ["cli", "main"]

cli = typer.Typer(help="Huế citizen super-app backend", no_args_is_help=True, add_completion=False)
db_cli = typer.Typer(help="Database schema (Alembic)", no_args_is_help=True)
demo_cli = typer.Typer(help="Demo data", no_args_is_help=True)
spec_cli = typer.Typer(help="The OpenAPI document for mobile developers", no_args_is_help=True)
bills_cli = typer.Typer(help="Bills: billers' monthly batch files", no_args_is_help=True)
services_cli = typer.Typer(
    help="Public services: procedure catalogue and holiday table", no_args_is_help=True
)
admin_cli = typer.Typer(help="Administration", no_args_is_help=True)
cli.add_typer(admin_cli, name="admin")
cli.add_typer(db_cli, name="db")
cli.add_typer(bills_cli, name="bills")
cli.add_typer(demo_cli, name="demo")
cli.add_typer(spec_cli, name="spec")
cli.add_typer(services_cli, name="services")
audit_cli = typer.Typer(help="The tamper-evident audit trail", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")
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


@bills_cli.command("import")
def bills_import(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="The biller's CSV file"
    ),
    biller: str = typer.Option(..., "--biller", help="Code of the (batch) biller, e.g. HEPCO_VSMT"),
    rejects: Path | None = typer.Option(None, help="Write every rejected row (line, reason) to this CSV"),
    show: int = typer.Option(20, min=0, help="How many rejected rows to print here"),
    chunk_size: int = typer.Option(10_000, min=100, max=200_000, help="Rows per transaction"),
    writers: int = typer.Option(2, min=1, max=8, help="PostgreSQL connections storing chunks side by side"),
) -> None:
    """Import a biller's monthly file of bills: bad rows are reported and skipped, good rows imported;
    importing the same file again changes nothing. Exit status 1 when some rows were rejected."""
    import csv

    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from app.bills.batch_import import ImportFileError, ImportReport, RejectedRow, import_bill_file
    from app.core.db import Database

    settings = _settings()
    shown = 0
    reject_file = rejects.open("w", newline="", encoding="utf-8") if rejects else None
    reject_writer = csv.writer(reject_file) if reject_file else None
    if reject_writer is not None:
        reject_writer.writerow(["line", "reason"])

    def on_reject(row: RejectedRow) -> None:
        nonlocal shown
        if reject_writer is not None:
            reject_writer.writerow([row.line, row.reason])
        if shown < show:
            console.print(f"[yellow]line {row.line}:[/yellow] {row.reason}", highlight=False)
            shown += 1

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>9,} rows/s"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(file.name, total=file.stat().st_size, rows=0, rate=0)
    started = time.perf_counter()

    def on_progress(bytes_read: int, report: ImportReport) -> None:
        rate = int(report.rows / max(time.perf_counter() - started, 1e-6))
        progress.update(task, completed=bytes_read, rows=report.rows, rate=rate)

    async def run() -> ImportReport:
        db = Database(settings)
        try:
            return await import_bill_file(
                db,
                biller,
                file,
                chunk_size=chunk_size,
                writers=writers,
                on_progress=on_progress,
                on_reject=on_reject,
            )
        finally:
            await db.dispose()

    try:
        with progress:
            report = asyncio.run(run())
    except ImportFileError as exc:
        console.print(f"[red]Cannot import {file.name}:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        if reject_file is not None:
            reject_file.close()
    if report.ignored_columns:
        console.print(f"Ignored columns: {', '.join(report.ignored_columns)}")
    if report.rejected > shown:
        more = f"; all of them in {rejects}" if rejects else "; use --rejects FILE to list them all"
        console.print(f"... {report.rejected - shown:,} more rejected rows{more}")
    console.print(
        f"{report.rows:,} rows in {report.seconds:.1f} s: [green]{report.imported:,} imported[/green], "
        f"{report.already_present:,} already present, "
        f"[{'red' if report.rejected else 'green'}]{report.rejected:,} rejected[/]"
    )
    if report.rejected:
        raise typer.Exit(1)


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


@audit_cli.command("verify")
def audit_verify(
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON on stdout"),
) -> None:
    """Check every audit row's MAC, the links between rows, the head and the external anchors.
    Exits 0 when the chain is intact, 1 when anything was changed, deleted, inserted or rewritten."""
    import msgspec

    from app.core.audit import VerificationReport, verify_now
    from app.core.db import Database

    async def run() -> VerificationReport:
        db = Database(settings)
        try:
            return await verify_now(db)
        finally:
            await db.dispose()

    settings = _settings()
    body = msgspec.to_builtins(asyncio.run(run()))
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    if body["ok"]:
        console.print(
            f"[green]Audit chain intact:[/green] {body['rows_checked']} rows, "
            f"head at seq {body['head_seq']}, {body['anchors_checked']} anchor(s) checked."
        )
        return
    console.print(f"[red]Audit chain BROKEN:[/red] {body['problems_total']} problem(s).")
    for problem in body["problems"][:20]:
        console.print(f"  {problem['kind']:<16} seq {problem['seq']}: {problem['detail']}")
    raise typer.Exit(1)


@audit_cli.command("anchor")
def audit_anchor(
    label: str = typer.Option("explicit", help="Label of the anchor (the daily job writes 'daily')"),
) -> None:
    """Write the chain's current head to the anchor store outside the database (after verifying the rows
    added since the previous anchor)."""
    from app.core.audit import Anchor, AuditChainError, anchor_audit_head, anchor_store_for
    from app.core.db import Database

    settings = _settings()

    async def run() -> Anchor | None:
        db = Database(settings)
        try:
            return await anchor_audit_head(db, settings, label=label)
        finally:
            await db.dispose()

    try:
        anchor = asyncio.run(run())
    except AuditChainError as exc:
        console.print(f"[red]Not anchored:[/red] {exc}. Run `hue audit verify`.")
        raise typer.Exit(1) from exc
    if anchor is None:
        console.print("The audit chain is empty: nothing to anchor.")
        return
    console.print(f"Anchored head seq {anchor.seq} in {anchor_store_for(settings).location}.")


def main() -> None:
    cli()
