"""``catalog-report``: demo-data | serve | token | render (SPEC §8)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from actors.config.settings import DEV_JWT_SECRET_WARNING, ConfigError, Settings, load_settings

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True, soft_wrap=True)  # a message stays one line, however narrow the terminal


def _fail(what: str, message: str, code: int) -> NoReturn:
    """One line on stderr (the message verbatim, never read as markup), then exit."""
    console.print(f"[red]{what}:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        _fail("configuration error", str(exc), 2)


def _preflight(settings: Settings) -> None:
    from actors.config.preflight import preflight

    try:
        preflight(settings)
    except ConfigError as exc:
        _fail("configuration error", str(exc), 2)


def _generate(out: Path, **sizes) -> None:
    from actors.warehouse.demo import generate

    with Progress(
        TextColumn("{task.description:<15}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        tasks: dict[str, int] = {}

        def report(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=done)

        generate(out, progress=report, **sizes)


@cli.command("demo-data")
def demo_data(
    out: Annotated[Path | None, typer.Option(help="DuckDB file to write [default: the configured warehouse]")] = None,
    institutions: int = 3,
    courses: int = 3000,
    schools: int = 30,
    views: int = 60_000,
    enrollments: int = 20_000,
    seed: int = 42,
):
    """Write a synthetic warehouse (DuckDB) with the report's schema; deterministic per seed."""
    target = out or Path(urlsplit(_settings().warehouse_url).path)
    started = time.perf_counter()
    _generate(
        target,
        institutions=institutions,
        courses=courses,
        schools=schools,
        views=views,
        enrollments=enrollments,
        seed=seed,
    )
    console.print(f"wrote {target} in {time.perf_counter() - started:.1f}s")


@cli.command()
def token(
    institution_id: Annotated[int, typer.Option("--institution-id")],
    user_id: Annotated[int, typer.Option("--user-id")],
    subdomain: Annotated[str, typer.Option()],
    ttl: Annotated[int, typer.Option(help="seconds")] = 3600,
):
    """Print a JWT signed with the configured key, for local use."""
    from serve_app.auth import mint_token

    settings = _settings()
    if settings.jwt_public_key:
        console.print("[red]REPORTS_JWT_PUBLIC_KEY is set: tokens are minted by the identity provider[/red]")
        raise typer.Exit(2)
    print(mint_token(settings.jwt_secret, institution_id, user_id, subdomain, ttl))


@cli.command("queue-setup")
def queue_setup(
    retry_policy: Annotated[
        bool,
        typer.Option(
            "--retry-policy/--no-retry-policy",
            help="Give the subscription an exponential retry policy (10 s..600 s). Use --no-retry-policy on "
            "the Pub/Sub emulator, whose retry policy stops all redelivery after a nack-ack-nack sequence; "
            "the consumer's own delays still space retries.",
        ),
    ] = True,
):
    """Create (or update) the Pub/Sub topic, subscription and dead-letter topic of
    REPORTS_QUEUE_URL; an explicit step, never a side effect of publishing. Run it again after
    the Pub/Sub emulator restarts (it keeps nothing)."""
    settings = _settings()
    if urlsplit(settings.queue_url).scheme != "pubsub":
        console.print(f"{settings.queue_url}: nothing to set up (the embedded queue creates itself)")
        return
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import DefaultCredentialsError

    from actors.queue.pubsub_admin import ensure_topology

    try:
        ensure_topology(settings.queue_url, retry_policy=retry_policy)
    except (GoogleAPICallError, RetryError, DefaultCredentialsError, ValueError) as exc:
        _fail("queue-setup failed", str(exc).splitlines()[0], 1)
    policy = "with" if retry_policy else "without"
    console.print(f"topic, subscription ({policy} a retry policy) and dead-letter topic ready for {settings.queue_url}")


def _start_ray(dashboard_host: str | None = None, dashboard_port: int | None = None) -> str:
    """Join RAY_ADDRESS's cluster or start a local Ray, with a dashboard on ``dashboard_host``
    when one is given. Returns the dashboard's ``host:port`` ("" when there is none)."""
    import ray

    from actors.runtime.priority import workers_at_normal_priority
    from serve_app.front import use_in_proxy

    logs = ray.LoggingConfig(encoding="JSON")  # structured log lines, job id as a field
    if os.environ.get("RAY_ADDRESS"):
        return ray.init(logging_config=logs).dashboard_url or ""  # the cluster named by RAY_ADDRESS
    # address="local": a new Ray, never whatever cluster /tmp/ray/ray_current_cluster names
    workers_at_normal_priority()
    use_in_proxy()  # JSON answers from Serve's proxy, and a fair share of it per client
    context = ray.init(
        address="local",
        include_dashboard=dashboard_host is not None,
        dashboard_host=dashboard_host or "127.0.0.1",
        dashboard_port=dashboard_port,
        logging_config=logs,
    )
    # Without the dashboard Ray still runs its API server (jobs, state) and reports its URL.
    return context.dashboard_url if dashboard_host is not None else ""


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    ssl_certfile: Annotated[
        Path | None, typer.Option("--ssl-certfile", help="PEM certificate (chain): serve HTTPS")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="PEM private key of --ssl-certfile")] = None,
    dashboard: Annotated[
        bool, typer.Option("--dashboard/--no-dashboard", help="start the Ray dashboard, on --host")
    ] = True,
    dashboard_port: Annotated[
        int | None, typer.Option("--dashboard-port", help="default: 8265, or the next free port")
    ] = None,
):
    """Start (or join, via RAY_ADDRESS) Ray, deploy the API and the consumer, serve until Ctrl-C.
    With --ssl-certfile and --ssl-keyfile the Serve proxy terminates TLS (HTTPS only); on a
    multi-node cluster both files must exist at the same path on every node that runs a proxy.
    The dashboard options apply to the Ray this command starts; joining RAY_ADDRESS, it prints
    that cluster's dashboard."""
    from ray import serve as ray_serve

    from serve_app.app import build_app
    from serve_app.auth import mint_token
    from serve_app.dashboard import authentication_mode, browser_url, how_to_open

    if (ssl_certfile is None) != (ssl_keyfile is None):
        console.print("[red]--ssl-certfile and --ssl-keyfile go together[/red]")
        raise typer.Exit(2)
    for tls_file in filter(None, (ssl_certfile, ssl_keyfile)):
        if not tls_file.is_file():
            console.print(f"[red]no such file: {tls_file}[/red]")
            raise typer.Exit(2)
    settings = _settings()
    warehouse = urlsplit(settings.warehouse_url)
    # Demo data only for the embedded default: a configured warehouse that is missing is an error
    # (the preflight says so), never silently replaced by made-up courses.
    if settings.embedded_warehouse and not Path(warehouse.path).exists():
        console.print(f"no warehouse at {warehouse.path}: creating demo data")
        _generate(Path(warehouse.path))
    _preflight(settings)
    scheme = "https" if ssl_certfile else "http"
    base = f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    # Download links point at this server unless a public URL was configured explicitly.
    overrides = {} if "REPORTS_PUBLIC_BASE_URL" in os.environ else {"public_base_url": base}
    dashboard_address = _start_ray(host if dashboard else None, dashboard_port)
    http_options = {"host": host, "port": port}
    if ssl_certfile and ssl_keyfile:  # absolute: the proxy actors open them, not this process
        http_options |= {"ssl_certfile": str(ssl_certfile.resolve()), "ssl_keyfile": str(ssl_keyfile.resolve())}
    ray_serve.start(http_options=http_options)
    ray_serve.run(build_app(overrides), name="catalog-report", route_prefix="/")
    example = mint_token(settings.jwt_secret, 1, 7, "demo", 3600) if not settings.jwt_public_key else "<token>"
    today = date.today()
    if settings.dev_jwt_secret:
        console.print(
            f"[yellow]warning:[/yellow] {DEV_JWT_SECRET_WARNING}.",
            highlight=False,
        )
    print(f"catalog-report is serving at {base}  (docs: {base}/docs)")
    print("try:")
    print(
        f"  curl -s -H 'Authorization: Bearer {example}' "
        f"'{base}/institution/reports/catalog?start_date={today.year - 1}-01-01&end_date={today}'"
    )
    if ssl_certfile:
        print(f"  (a self-signed certificate? add: --cacert {ssl_certfile.resolve()})")
    print(f"notifications: {settings.outbox_path or settings.notify_url}")
    if dashboard_address:
        url = browser_url(dashboard_address)
        print("\n".join(how_to_open(url, authentication_mode(url), started_here=not os.environ.get("RAY_ADDRESS"))))
    else:
        print(
            "Ray dashboard: none"
            + (" (the cluster at RAY_ADDRESS has none)" if os.environ.get("RAY_ADDRESS") else " (--no-dashboard)")
        )
    print("Ctrl-C stops it.")
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    console.print("stopping…")
    ray_serve.shutdown()
    import ray

    ray.shutdown()


@cli.command()
def render(
    institution_id: Annotated[int, typer.Option("--institution-id")],
    subdomain: Annotated[str, typer.Option()],
    start_date: Annotated[str, typer.Option("--start-date")],
    end_date: Annotated[str, typer.Option("--end-date")],
    out: Annotated[Path, typer.Option(help="its extension is the format: .xlsx, .csv or .parquet")],
    school_ids: Annotated[str | None, typer.Option("--school-ids")] = None,
    locale: Annotated[str | None, typer.Option(help="pt-BR (default), en or es")] = None,
    workers: Annotated[int | None, typer.Option(help="chunks rendering at once [default: CPUs + 1]")] = None,
):
    """query → partition → parallel render → merge on Ray, written to OUT; no queue or upload."""
    from actors.report.pipeline import produce_on_ray
    from actors.warehouse import CatalogQuery
    from serve_app.errors import ApiError
    from serve_app.params import parse, parse_options

    settings = _settings()
    try:
        req = parse(start_date, end_date, school_ids)
        options = parse_options(out.suffix.removeprefix("."), locale, None, settings.timezone)
    except ApiError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    _start_ray()
    query = CatalogQuery.for_dates(institution_id, req.start_date, req.end_date, settings.zone, req.school_ids)
    started = time.perf_counter()
    produced = produce_on_ray(
        settings.warehouse_url,
        query,
        subdomain=subdomain,
        options=settings.report,
        out=out,
        render_workers=workers or settings.render_workers,
        file_format=options.format,
        locale=options.locale,
    )
    elapsed = time.perf_counter() - started
    phases = ", ".join(f"{k} {v:.2f}s" for k, v in produced.timings.items())
    print(f"{produced.rows} rows in {elapsed:.2f}s ({phases}) → {out}")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library's warning as one plain line: what it says, not where in the library it was raised."""
    console.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False)


def main() -> None:
    warnings.showwarning = _one_line_warning
    cli()
