"""The ``tieout`` command: one entry point for the demo, the pipeline and the app.

Every command works on one home folder (configuration and data): ``--home DIR``, else the
``TIEOUT_HOME`` environment variable, else ``./data``. ``HOME/.env`` (written by
``tieout demo generate``) is loaded into environment variables that are not already set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
    quality_defects: Annotated[
        bool,
        typer.Option(
            "--quality-defects/--no-quality-defects",
            help="Also inject data-quality defects (time entries that fail the checks).",
        ),
    ] = True,
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
    manifest = generate(home, scale=scale, seed=seed, as_of=day, port_base=port_base,  # type: ignore[arg-type]
                        quality_defects=quality_defects)  # fmt: skip
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
    from extractors.report import ExtractProgress, print_summary
    from extractors.run import extract

    home = _home(home)
    with _pipeline_errors(), ExtractProgress() as progress:
        results = extract(home, systems=system, objects=obj, full=full, on_progress=progress.update,
                          on_result=progress.finish)  # fmt: skip
    print_summary(results)
    if any(r.status != "succeeded" for r in results):
        raise typer.Exit(1)


@app.command("reconcile")
def reconcile_cmd(
    home: HomeOption = Path("data"),
    rule: Annotated[list[str] | None, typer.Option("--rule", help="Only this rule (repeatable).")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Replay on the snapshots current at a past moment: SNAPSHOT id, DATE (end of day, UTC) "
            "or ISO timestamp.",
        ),
    ] = None,
    rules: Annotated[
        Path | None, typer.Option(help="Rules file (default: HOME/rules.yaml, else the starter catalogue).")
    ] = None,
) -> None:
    """Run the reconciliation rules on the current (or past) snapshots and print a summary per rule.

    Exit codes: 0 done, 1 a rule failed, 2 bad configuration or rules, 3 another run holds the lock.
    """
    from reconcile.report import print_reconciliation
    from reconcile.run import reconcile

    home = _home(home)
    with _pipeline_errors():
        run = reconcile(home, rules=rules, rule_ids=rule, as_of=as_of)
    print_reconciliation(run)
    if any(r.status == "failed" for r in run.results):
        raise typer.Exit(1)


@app.command("check")
def check_cmd(
    home: HomeOption = Path("data"),
    system: Annotated[
        list[str] | None, typer.Option("--system", help="Only this system (repeatable).")
    ] = None,
    obj: Annotated[list[str] | None, typer.Option("--object", help="Only this object (repeatable).")] = None,
) -> None:
    """Run the data-quality suites on the current snapshots; failures join the `breaks` queue.

    Also checks schema drift and volume against the previous snapshot, refused records, and the
    freshness of every system against its SLA. Exit codes: 0 all passed, 1 a check failed,
    2 bad configuration or suites, 3 another run holds the lock.
    """
    from checks.report import print_checks
    from checks.run import check

    home = _home(home)
    with _pipeline_errors():
        run = check(home, systems=system, objects=obj)
    print_checks(run)
    if run.failed:
        raise typer.Exit(1)


@app.command("run")
def run_cmd(home: HomeOption = Path("data")) -> None:
    """Run the whole pipeline once: extract every system, check the snapshots, reconcile; print a summary.

    Exit codes: 0 done, 1 an extraction or a rule failed, 2 bad configuration, suites or rules, 3 busy.
    Failed data-quality checks are breaks in the queue, not a failed run.
    """
    from checks.report import print_checks
    from extractors.report import ExtractProgress, print_summary
    from pipeline import run_pipeline
    from reconcile.report import print_reconciliation

    home = _home(home)
    with _pipeline_errors(), ExtractProgress() as progress:
        result = run_pipeline(home, on_progress=progress.update, on_result=progress.finish)
    print_summary(result.extractions)
    print_checks(result.checks)
    print_reconciliation(result.reconciliation)
    failed = any(r.status != "succeeded" for r in result.extractions) or any(
        r.status == "failed" for r in result.reconciliation.results
    )
    if failed:
        raise typer.Exit(1)


@contextmanager
def _pipeline_errors() -> Iterator[None]:
    """Turn configuration and rule errors into exit code 2, a busy pipeline into 3, with the reason."""
    from checks.spec import SuiteError
    from data.lock import PipelineBusy
    from extractors.config import ConfigError
    from reconcile.inputs import AsOfError
    from reconcile.rules import RuleError

    try:
        yield
    except (ConfigError, RuleError, AsOfError, SuiteError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except PipelineBusy as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from exc


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
    from checks.report import print_checks
    from checks.spec import SuiteError
    from extractors.config import ConfigError
    from extractors.report import ExtractProgress, print_status, print_summary
    from extractors.status import object_status
    from pipeline import run_pipeline
    from reconcile.report import print_reconciliation
    from reconcile.rules import RuleError

    try:
        with ExtractProgress() as progress:
            result = run_pipeline(home, on_progress=progress.update, on_result=progress.finish)
    except (ConfigError, RuleError, SuiteError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return
    print_summary(result.extractions)
    print_status(object_status(home))
    print_checks(result.checks)
    print_reconciliation(result.reconciliation)
    typer.echo(f"Warehouse: {home / 'warehouse.duckdb'} (open it read-only with DuckDB).")
    typer.echo("Ctrl-C stops the simulators.")


_VENDOR = {"hubspot": "HubSpot CRM v3", "harvest": "Harvest v2", "odoo": "Odoo JSON-RPC and JSON-2"}


if __name__ == "__main__":
    app()
