"""The ``tieout`` command: one entry point for the demo, the pipeline and the app.

Every command works on one home folder (configuration and data): ``--home DIR``, else the
``TIEOUT_HOME`` environment variable, else ``./data``. ``HOME/.env`` (written by
``tieout demo generate``) is loaded into environment variables that are not already set.
"""

from __future__ import annotations

import os
import threading
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from dotenv import load_dotenv

app = typer.Typer(
    help="Tieout: reconcile a professional-services firm's CRM, PSA and ERP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="The embedded demo firm and its simulated systems.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")

HomeOption = Annotated[
    Path,
    typer.Option(
        "--home",
        envvar="TIEOUT_HOME",
        help="Home folder holding configuration and data (env TIEOUT_HOME).",
        file_okay=False,
        resolve_path=True,
    ),
]


def _home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    load_dotenv(home / ".env", override=False)
    return home


@demo_app.command("generate")
def demo_generate(
    home: HomeOption = Path("data"),
    scale: Annotated[
        str, typer.Option(help="small (~6k time entries), default (~150k) or large (~10M).")
    ] = "default",
    seed: Annotated[int, typer.Option(help="Random seed: same seed and as-of date, same firm.")] = 7,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The firm's today, YYYY-MM-DD (default: today).")
    ] = None,
    port_base: Annotated[
        int,
        typer.Option(
            help="Port of the HubSpot simulator; Harvest and Odoo use the next two.",
            min=1024,
            max=65533,
        ),
    ] = 8711,
) -> None:
    """Generate the demo firm under HOME/demo, its ground truth and HOME/sources.yaml."""
    from demo.generate import generate

    if scale not in ("small", "default", "large"):
        raise typer.BadParameter(f"{scale!r} is not one of small, default, large", param_hint="--scale")
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of") from exc
    home = _home(home)
    manifest = generate(home, scale=scale, seed=seed, as_of=day, port_base=port_base)  # type: ignore[arg-type]
    rows = manifest["rows"]
    typer.echo(f"Demo firm '{scale}' (seed {seed}, as of {manifest['as_of']}) written to {home / 'demo'}")
    typer.echo(
        f"  {rows['crm/companies']} companies, {rows['psa/projects']} projects, "
        f"{rows['psa/time_entries']} time entries, {rows['psa/invoices']} invoices; "
        f"{sum(manifest['defects_injected'].values())} defects injected"
    )
    typer.echo(
        f"  ground truth: {rows['ground_truth']} expected breaks in {home / 'demo' / 'ground_truth.parquet'}"
    )
    typer.echo(f"  configuration: {home / 'sources.yaml'} (credentials in {home / '.env'})")


@demo_app.command("serve")
def demo_serve(
    home: HomeOption = Path("data"),
    host: Annotated[str, typer.Option(help="Loopback address to bind.")] = "127.0.0.1",
    faults: Annotated[
        Path | None,
        typer.Option(
            help="YAML file of faults per simulator (hubspot, harvest, odoo) to start with.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    extract: Annotated[
        bool, typer.Option("--extract", help="Once the simulators answer, run `tieout extract` against them.")
    ] = False,
) -> None:
    """Serve the demo firm through the HubSpot, Harvest and Odoo simulators until Ctrl-C."""
    from demo.faults import FaultFileError, load_faults
    from demo.serve import DemoConfigError, build_simulators, serve

    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise typer.BadParameter("the simulators only listen on loopback", param_hint="--host")
    home = _home(home)
    try:
        sims = build_simulators(home, host=host, faults=load_faults(faults) if faults else {}, env=os.environ)
        serve(
            sims,
            host=host,
            on_ready=lambda s: typer.echo(f"{s.name:<8} {s.url}  ({_VENDOR[s.name]})"),
            on_all_ready=lambda: _on_simulators_ready(home, extract),
        )
    except (DemoConfigError, FaultFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("extract")
def extract_cmd(
    home: HomeOption = Path("data"),
    system: Annotated[
        list[str] | None, typer.Option("--system", help="System slug from sources.yaml (repeatable).")
    ] = None,
    obj: Annotated[
        list[str] | None,
        typer.Option("--object", help="customers, projects, time_entries or invoices (repeatable)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Ignore incremental cursors; pull everything.")
    ] = False,
) -> None:
    """Extract snapshots now: each object of each system, with progress and a summary table.

    Exits 0 when every run succeeded, 1 when one failed (the others still ran), 2 on a bad
    configuration, 3 when another pipeline run is in progress.
    """
    from data.lock import PipelineBusy
    from extractors.config import ConfigError
    from extractors.report import ExtractProgress, print_summary
    from extractors.run import extract

    home = _home(home)
    try:
        with ExtractProgress() as progress:
            results = extract(home, systems=system, objects=obj, full=full, on_progress=progress.update,
                              on_result=progress.finish)  # fmt: skip
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except PipelineBusy as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc
    print_summary(results)
    if any(r.status != "succeeded" for r in results):
        raise typer.Exit(1)


@app.command("status")
def status_cmd(
    home: HomeOption = Path("data"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Per system and object: the current snapshot, its age against the SLA and the last runs."""
    import json

    from extractors.config import ConfigError
    from extractors.report import print_status
    from extractors.status import object_status

    home = _home(home)
    try:
        statuses = object_status(home)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps([s.as_json() for s in statuses], indent=2))
    else:
        print_status(statuses)


@app.command("schedule")
def schedule_cmd(home: HomeOption = Path("data")) -> None:
    """Run the pipeline per system on the schedules of sources.yaml until Ctrl-C."""
    from extractors.config import ConfigError
    from extractors.schedule import run_scheduler

    home = _home(home)
    try:
        run_scheduler(home, on_event=typer.echo)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _on_simulators_ready(home: Path, extract: bool) -> None:
    typer.echo("Simulators are up and answering; press Ctrl-C to stop them.")
    if extract:
        threading.Thread(target=_extract_and_report, args=(home,), name="extract", daemon=True).start()


def _extract_and_report(home: Path) -> None:
    from extractors.config import ConfigError
    from extractors.report import ExtractProgress, print_status, print_summary
    from extractors.run import extract
    from extractors.status import object_status

    try:
        with ExtractProgress() as progress:
            results = extract(home, on_progress=progress.update, on_result=progress.finish)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        return
    print_summary(results)
    print_status(object_status(home))
    typer.echo(f"Warehouse: {home / 'warehouse.duckdb'} (open it read-only with DuckDB).")
    typer.echo("Ctrl-C stops the simulators.")


_VENDOR = {"hubspot": "HubSpot CRM v3", "harvest": "Harvest v2", "odoo": "Odoo JSON-RPC and JSON-2"}


if __name__ == "__main__":
    app()
