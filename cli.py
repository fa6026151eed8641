"""The ``tieout`` command: one entry point for the demo, the pipeline and the app.

Every command works on one home folder (configuration and data): ``--home DIR``, else the
``TIEOUT_HOME`` environment variable, else ``./data``. ``HOME/.env`` (written by
``tieout demo generate``) is loaded into environment variables that are not already set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from dotenv import load_dotenv

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

app = typer.Typer(
    help="Tieout: reconcile a professional-services firm's CRM, PSA and ERP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="The embedded demo firm and its simulated systems.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
user_app = typer.Typer(help="The app's users (HOME/users.yaml).", no_args_is_help=True)
app.add_typer(user_app, name="user")

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
    odoo_records: Annotated[
        Path | None,
        typer.Option(
            "--odoo-records",
            help="Folder of a real Odoo's records (<model>.json dumps): the demo's ERP is that Odoo, "
            "replayed by `tieout demo serve --odoo-records DIR`, and its CRM and PSA are derived from "
            "its records, with defects, as of the day they were read. --scale and --quality-defects "
            "do not apply.",
            exists=True,
            file_okay=False,
            resolve_path=True,
        ),
    ] = None,
) -> None:
    """Generate the demo firm under HOME/demo, its ground truth, HOME/sources.yaml and the app's users.

    The demo credentials, and the password of every demo user of the app (HOME/users.yaml:
    admin, finance, finance_uk, pmo, executive), are written to HOME/.env.
    With --odoo-records DIR, the ERP is a real Odoo instead (demo/real_erp): HubSpot and Harvest
    views derived from its records, the ground truth, HOME/rules.yaml keyed on what the real Odoo
    holds, as of the day its records were read.
    """
    from demo.generate import PASSWORD_VAR, generate

    if odoo_records is not None:
        if as_of is not None:  # the firm's today is the day the records were read
            raise typer.BadParameter("does not apply with --odoo-records", param_hint="--as-of")
        _generate_real_erp(_home(home), odoo_records, seed, port_base)
        return
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
    typer.echo(f"  app users: {_user_names(home)} (in {home / 'users.yaml'})")
    typer.echo(f"  app password: see {home / '.env'} ({PASSWORD_VAR})")


def _generate_real_erp(home: Path, records: Path, seed: int, port_base: int) -> None:
    from demo.generate import PASSWORD_VAR
    from demo.real_erp.generate import generate_real_erp

    try:
        manifest = generate_real_erp(home, records, seed=seed, port_base=port_base)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--odoo-records") from exc
    rows, causes = manifest["rows"], manifest["breaks_by_cause"]
    typer.echo(f"Demo with the real Odoo of {records} as its ERP (as of {manifest['as_of']}, seed {seed}) "
               f"written to {home / 'demo'}")  # fmt: skip
    typer.echo(
        f"  derived: {rows['crm/companies']} companies, {rows['psa/projects']} projects, "
        f"{rows['psa/time_entries']} time entries, {rows['psa/invoices']} invoices; "
        f"{sum(manifest['defects_injected'].values())} defects injected"
    )
    typer.echo(
        f"  ground truth: {rows['ground_truth']} expected breaks ({causes.get('real', 0)} from the real "
        f"records alone) in {home / 'demo' / 'ground_truth.parquet'}; rules: {home / 'rules.yaml'}"
    )
    typer.echo(f"  configuration: {home / 'sources.yaml'} (credentials in {home / '.env'})")
    typer.echo(f"  serve it with: tieout demo serve --odoo-records {records}")
    typer.echo(f"  app users: {_user_names(home)}; password: see {home / '.env'} ({PASSWORD_VAR})")


def _user_names(home: Path) -> str:
    from data.users import load_users

    return ", ".join(
        u.name + (f" ({', '.join(u.legal_entities)} only)" if u.legal_entities else "")
        for u in load_users(home / "users.yaml")
    )


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
        bool, typer.Option("--extract", help="Once the simulators answer, run `tieout run` against them.")
    ] = False,
    with_app: Annotated[
        bool,
        typer.Option(
            "--app",
            help="Then (after the pipeline run, with --extract) also run the scheduler and the app, "
            "as `tieout serve` does.",
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the app (with --app).", min=1024, max=65535)] = 8501,
    odoo_records: Annotated[
        Path | None,
        typer.Option(
            "--odoo-records",
            help="Folder of real Odoo records (<model>.json dumps) for the Odoo simulator to replay, at "
            "the base_url port, database and credentials of the odoo system in HOME/sources.yaml. "
            "HubSpot and Harvest are then served only if the home holds a generated demo firm.",
            exists=True,
            file_okay=False,
            resolve_path=True,
        ),
    ] = None,
) -> None:
    """Serve the demo firm through the HubSpot, Harvest and Odoo simulators until Ctrl-C.

    With --odoo-records DIR, the Odoo simulator replays DIR's records instead of the firm's, where
    and as whom the home's Odoo connector expects its Odoo (sources.yaml; the login and API key
    from the variables its auth names, also read from HOME/.env).
    With --app, Ctrl-C (or SIGTERM) stops the simulators, the scheduler and the app together.
    Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 the app did not start or stopped on its own,
    2 bad configuration (the demo firm, the faults file, sources.yaml, users.yaml, the Odoo records
    or their credentials) or --port in use.
    """
    from demo.faults import FaultFileError, load_faults
    from demo.serve import DemoConfigError, build_simulators, is_loopback, serve

    if not is_loopback(host):
        raise typer.BadParameter("the simulators only listen on loopback", param_hint="--host")
    home = _home(home)
    services = _AppServices(home, port) if with_app else None
    try:
        if services is not None:
            services.check()
        sims = build_simulators(
            home,
            host=host,
            faults=load_faults(faults) if faults else {},
            env=os.environ,
            odoo_records=odoo_records,
        )
        serve(
            sims,
            host=host,
            on_ready=lambda s: typer.echo(f"{s.name:<8} {s.url}  ({_vendor(s.name, s.note)})"),
            on_all_ready=lambda: _on_simulators_ready(home, extract, services),
        )
    except (DemoConfigError, FaultFileError, _ServeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        if services is not None:
            services.stop(on_event=typer.echo)
    if services is not None and services.error is not None:
        raise typer.Exit(1)


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


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The login: lower-case letters, digits, _ . @ -.")],
    role: Annotated[str, typer.Option(help="finance, pmo, executive or admin.")],
    home: HomeOption = Path("data"),
    display_name: Annotated[str | None, typer.Option(help="Shown in the app (default: the login).")] = None,
    entity: Annotated[
        list[str] | None,
        typer.Option("--entity", help="A legal entity the user sees (repeat); leave out for every one."),
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a user of that name.")] = False,
) -> None:
    """Add a user to HOME/users.yaml, asking for the password twice (stored as a bcrypt hash only).

    Exit codes: 0 added, 2 a bad name, role, entity or password, or the user exists (no --replace).
    """
    from data.users import User, UsersError, hash_password, save_user

    home = _home(home)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = User(
            name=name, display_name=display_name or name, role=role,
            password_hash=hash_password(password), legal_entities=tuple(entity) if entity else None,
        )  # fmt: skip
        users = save_user(home / "users.yaml", user, replace=replace)
    except (ValueError, UsersError) as exc:  # pydantic's ValidationError is a ValueError
        typer.echo(f"error: {_without_input(exc)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{user.name} ({user.role}) saved in {users.path}; {len(users)} user(s).")


def _without_input(exc: Exception) -> str:
    """The error's message without the values pydantic repeats (a hash must never be echoed)."""
    if hasattr(exc, "errors"):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


@app.command("serve")
def serve_cmd(
    home: HomeOption = Path("data"),
    port: Annotated[int, typer.Option(help="Port of the app on 127.0.0.1.", min=1024, max=65535)] = 8501,
) -> None:
    """Run the scheduler and the app on 127.0.0.1 for the home folder until Ctrl-C.

    The scheduler runs each system's pipeline on its schedule (as `tieout schedule`); the app
    (Streamlit, app.py) is a child process; its URL is printed once it answers. Sign in with a user
    of HOME/users.yaml. Ctrl-C or SIGTERM stops both. Exit codes: 0 stopped by Ctrl-C or SIGTERM,
    1 the app did not start (no answer within 60 s) or stopped on its own, 2 bad configuration
    (sources.yaml or users.yaml missing or invalid) or --port in use.
    """
    home = _home(home)
    services = _AppServices(home, port)
    try:
        services.check()
    except _ServeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        services.start(on_event=typer.echo, stopping=stop.is_set)
        while services.error is None and not stop.wait(0.5):
            if services.app_exited() and not stop.wait(_GRACE_S):  # a Ctrl-C reaches the app too
                services.fail("the app stopped on its own")
    finally:
        services.stop(on_event=typer.echo)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if services.error is not None:
        raise typer.Exit(1)


#: The Streamlit app, beside this file.
APP_SCRIPT = Path(__file__).resolve().parent / "app.py"
_APP_START_S = 60.0
#: Seconds a Ctrl-C has to reach this process after it stopped the app (same process group).
_GRACE_S = 5.0


class _ServeError(Exception):
    """The configuration `tieout serve` needs is missing or invalid (exit code 2)."""


class _AppServices:
    """The scheduler (a BackgroundScheduler in this process) and the app (a Streamlit child process).

    :meth:`start` and :meth:`stop` may run on different threads; :meth:`stop` is idempotent, and a
    :meth:`start` after it starts nothing.
    """

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.error: str | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self._scheduler: BackgroundScheduler | None = None
        self._app: subprocess.Popen[bytes] | None = None

    def check(self) -> None:
        """Refuse a missing or invalid sources.yaml or users.yaml, or a port in use.

        Raises:
            _ServeError: with the file, key and reason, or the port.
        """
        from data.users import UsersError, load_users
        from extractors.config import ConfigError, load_sources

        try:
            load_sources(self.home / "sources.yaml")
            load_users(self.home / "users.yaml")
        except (ConfigError, UsersError) as exc:
            raise _ServeError(str(exc)) from exc
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", self.port))
            except OSError as exc:
                raise _ServeError(f"port {self.port} on 127.0.0.1 is in use (choose another --port)") from exc

    def start(self, *, on_event: Callable[[str], None], stopping: Callable[[], bool]) -> None:
        """Start the scheduler and the app, then wait until the app answers and print its URL.

        A failure to start is recorded in :attr:`error` (and printed); ``stopping`` cuts the wait short.
        """
        from extractors.config import ConfigError
        from extractors.schedule import configure_jobs, make_scheduler

        with self._lock:
            if self._stopped:
                return
            scheduler = make_scheduler(self.home)
            scheduler.start(paused=True)
            self._scheduler = scheduler
            try:
                job_ids = configure_jobs(scheduler, self.home)
            except ConfigError as exc:
                self.fail(str(exc))
                return
            for job in (scheduler.get_job(j) for j in job_ids):
                on_event(f"{job.id}: {job.trigger} (next run {job.next_run_time:%Y-%m-%d %H:%M:%S %Z})")
            scheduler.resume()
            self._app = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), "--server.address", "127.0.0.1",
                 "--server.port", str(self.port), "--server.headless", "true",
                 "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
                 "--logger.level", "warning"],
                cwd=APP_SCRIPT.parent, env={**os.environ, "TIEOUT_HOME": str(self.home)},
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + _APP_START_S
        while not stopping():
            if self.app_exited():
                self.fail(f"the app exited before answering on {self.url}")
                return
            if _answers(f"{self.url}/_stcore/health"):
                on_event(f"App: {self.url}  (sign in with a user of {self.home / 'users.yaml'})")
                on_event("Scheduler and app running; press Ctrl-C to stop.")
                return
            if time.monotonic() > deadline:
                self.fail(f"the app did not answer on {self.url} within {_APP_START_S:.0f} s")
                return
            time.sleep(0.2)

    def app_exited(self) -> bool:
        """Whether the app was started and has exited."""
        return self._app is not None and self._app.poll() is not None

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped

    def fail(self, reason: str) -> None:
        """Record why serving failed (the first reason wins) and print it."""
        if self.error is None:
            self.error = reason
            typer.echo(f"error: {reason}", err=True)

    def stop(self, *, on_event: Callable[[str], None]) -> None:
        """Stop the app (SIGTERM, then SIGKILL after 10 s) and the scheduler (after its run in progress)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            app_proc, scheduler = self._app, self._scheduler
        if app_proc is not None:
            if app_proc.poll() is None:
                app_proc.terminate()
            try:
                app_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app_proc.kill()
                app_proc.wait()
        if scheduler is not None and scheduler.running:
            on_event("Stopping the scheduler: waiting for the run in progress, if any.")
            scheduler.shutdown(wait=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback only)
            return bool(resp.status == 200)
    except OSError:
        return False


def _on_simulators_ready(home: Path, extract: bool, services: _AppServices | None = None) -> None:
    typer.echo("Simulators are up and answering; press Ctrl-C to stop them.")
    if extract or services is not None:
        threading.Thread(target=_extract_then_app, args=(home, extract, services), name="extract",
                         daemon=True).start()  # fmt: skip


def _extract_then_app(home: Path, extract: bool, services: _AppServices | None) -> None:
    """Run the pipeline once (with --extract), then start the scheduler and app (with --app)."""
    if extract:
        _extract_and_report(home, with_app=services is not None)
    if services is None:
        return
    services.start(on_event=typer.echo, stopping=lambda: services.stopped)
    while not services.stopped and services.error is None and not services.app_exited():
        time.sleep(0.5)
    if services.error is None:
        # A Ctrl-C reaches the app too: give the simulators the time to stop, and demo_serve to stop us.
        deadline = time.monotonic() + _GRACE_S
        while not services.stopped and time.monotonic() < deadline:
            time.sleep(0.1)
        if services.stopped:
            return
        services.fail("the app stopped on its own")
    if not services.stopped:
        os.kill(os.getpid(), signal.SIGTERM)  # stop the simulators; demo_serve then stops the rest


def _extract_and_report(home: Path, *, with_app: bool = False) -> None:
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
    if not with_app:
        typer.echo("Ctrl-C stops the simulators.")


_VENDOR = {"hubspot": "HubSpot CRM v3", "harvest": "Harvest v2", "odoo": "Odoo JSON-RPC and JSON-2"}


def _vendor(name: str, note: str) -> str:
    """What a simulator's ready line says it is: the vendor API, and what it replays, if anything."""
    return f"{_VENDOR[name]}; {note}" if note else _VENDOR[name]


if __name__ == "__main__":
    app()
