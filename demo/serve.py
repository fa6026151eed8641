"""Serve the home's demo firm through the HubSpot, Harvest and Odoo simulators on loopback.

All three run in one process, one uvicorn server each (each vendor has its own base URL), until
SIGINT or SIGTERM stops them together.

With a folder of real Odoo records (``tieout demo serve --odoo-records DIR``, see
:mod:`demo.odoo_replay`), the Odoo simulator replays them instead, as the home's Odoo connector
expects to find its Odoo: at the port of the ``odoo`` system's ``base_url`` in HOME/sources.yaml,
with its ``database``, and accepting the login and API key held by the environment variables its
``auth`` names. HubSpot and Harvest are then served only when the home holds a generated firm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette

from demo import harvest, hubspot, odoo
from demo.faults import FaultSpec, FaultState
from demo.generate import CREDENTIAL_VARS
from demo.odoo_replay import ReplayError, load_replay
from demo.real_erp import MODE as REAL_ERP
from demo.simulator import SimulatorState
from demo.store import DemoStore
from extractors.config import ConfigError, OdooSystem, load_sources


class DemoConfigError(RuntimeError):
    """The demo cannot be served as configured; the message says what to do."""


@dataclass(frozen=True)
class Simulator:
    """One simulator ready to serve: its name, app, state and loopback URL.

    ``note`` says what it serves when that is not the demo firm (a replayed Odoo), else is empty.
    """

    name: str
    app: Starlette
    state: SimulatorState
    url: str
    note: str = ""


def build_simulators(
    home: Path,
    *,
    host: str = "127.0.0.1",
    faults: Mapping[str, FaultSpec] | None = None,
    env: Mapping[str, str] = os.environ,
    odoo_records: Path | None = None,
) -> list[Simulator]:
    """Return the simulators for ``home``: HubSpot, Harvest and Odoo, in that order.

    Without ``odoo_records``, all three serve the generated firm (``HOME/demo``) with the demo
    credentials from ``env``; ports and the Odoo database name come from the firm's manifest.
    With it, Odoo replays that dump folder where and as whom the home's Odoo connector expects
    (see the module docs), and HubSpot and Harvest serve the firm only if the home holds one.

    Raises:
        DemoConfigError: no generated firm in the home (without ``odoo_records``); a credential
            variable is unset (the message names it); HOME/sources.yaml is missing, invalid or has
            not exactly one Odoo system on loopback; or the dump folder cannot be replayed.
    """
    faults = faults or {}
    sims: list[Simulator] = []
    if odoo_records is None or (home / "demo" / "manifest.json").exists():
        sims += _firm_simulators(home, host, faults, env, with_odoo=odoo_records is None)
    if odoo_records is not None:
        sims.append(_replay_simulator(home, odoo_records, host, FaultState(faults.get("odoo")), env))
    return sims


def _firm_simulators(
    home: Path, host: str, faults: Mapping[str, FaultSpec], env: Mapping[str, str], *, with_odoo: bool
) -> list[Simulator]:
    """Return the generated firm's simulators (HubSpot, Harvest, and Odoo when ``with_odoo``)."""
    try:
        manifest = json.loads((home / "demo" / "manifest.json").read_text())
    except FileNotFoundError:
        manifest = {}  # DemoStore says what is missing, after the credentials
    if with_odoo and manifest.get("mode") == REAL_ERP:  # refused before the store is opened
        raise DemoConfigError(
            f"The ERP of {home / 'demo'} is a real Odoo's records, not generated: serve them with "
            "`tieout demo serve --odoo-records DIR` (the folder the demo was generated from)."
        )
    odoo_only = ("odoo_user", "odoo_api_key")
    wanted = {k: v for k, v in CREDENTIAL_VARS.items() if with_odoo or k not in odoo_only}
    missing = [v for v in wanted.values() if not env.get(v)]
    if missing:
        raise DemoConfigError(
            f"Missing demo credentials: {', '.join(missing)}. Looked in the environment and "
            f"{home / '.env'}; run `tieout demo generate` to create them."
        )
    cred = {k: env[v] for k, v in wanted.items()}

    def state_for(name: str) -> FaultState:
        return FaultState(faults.get(name))

    try:
        store = DemoStore(home / "demo")
    except FileNotFoundError as exc:
        raise DemoConfigError(str(exc)) from exc
    ports = manifest["ports"]
    apps = {
        "hubspot": hubspot.create_app(store, token=cred["hubspot_token"], faults=state_for("hubspot")),
        "harvest": harvest.create_app(
            store,
            token=cred["harvest_token"],
            account_id=cred["harvest_account_id"],
            faults=state_for("harvest"),
        ),  # fmt: skip
    }
    if with_odoo:
        apps["odoo"] = odoo.create_app(
            store,
            database=manifest["odoo_database"],
            login=cred["odoo_user"],
            api_key=cred["odoo_api_key"],
            faults=state_for("odoo"),
        )
    return [Simulator(n, app, st, f"http://{host}:{ports[n]}") for n, (app, st) in apps.items()]


def _replay_simulator(
    home: Path, records: Path, host: str, faults: FaultState, env: Mapping[str, str]
) -> Simulator:
    """Return the Odoo simulator replaying ``records`` for the home's Odoo connector."""
    slug, system = _odoo_system(home, env)
    port = _loopback_port(slug, system.base_url, home)
    login, key = _odoo_credentials(slug, system, env, home)
    try:
        source = load_replay(records)
    except ReplayError as exc:
        raise DemoConfigError(str(exc)) from exc
    app, state = odoo.create_app(source, database=system.database, login=login, api_key=key, faults=faults)
    total = sum(source.counts.values())
    note = f"replaying {total} records of {len(source.models)} models from {records}"
    return Simulator("odoo", app, state, f"http://{host}:{port}", note)


def _odoo_system(home: Path, env: Mapping[str, str]) -> tuple[str, OdooSystem]:
    """The home's one Odoo system (slug, configuration) in HOME/sources.yaml, ``${VAR}`` read from ``env``."""
    try:
        config = load_sources(home / "sources.yaml", env)
    except ConfigError as exc:
        raise DemoConfigError(str(exc)) from exc
    found = [(slug, s) for slug, s in config.systems.items() if isinstance(s, OdooSystem)]
    # An Odoo-run firm reads one server as several systems (CRM, PSA, ERP): one replay serves them
    # all when they agree on where and as whom.
    servers = {(s.base_url, s.database, s.protocol, s.auth) for _, s in found}
    if len(servers) != 1:
        names = ", ".join(slug for slug, _ in found) or "none"
        raise DemoConfigError(
            f"--odoo-records serves one Odoo server: the Odoo systems of {home / 'sources.yaml'} "
            f"(connector: odoo) must share base_url, database, protocol and auth; found {names}."
        )
    return found[0]


def _odoo_credentials(
    slug: str, system: OdooSystem, env: Mapping[str, str], home: Path
) -> tuple[str | None, str]:
    """Return the login (None for JSON-2, which sends none) and the key the connector will send.

    As the connector (:meth:`extractors.config.OdooSystem.key_env`).
    """
    auth = system.auth
    where = (
        f"(system {slug!r} of {home / 'sources.yaml'} names it; looked in the environment and "
        f"{home / '.env'})"
    )
    key = env.get(system.key_env(env))
    if not key:
        named = (auth.api_key_env, None if system.protocol == "json2" else auth.password_env)
        key_vars = [v for v in named if v]
        raise DemoConfigError(
            f"Missing the Odoo API key (or password) for --odoo-records: {' or '.join(key_vars)} is unset "
            f"{where}."
        )
    if system.protocol == "json2" or auth.user_env is None:
        return None, key
    if not env.get(auth.user_env):
        raise DemoConfigError(f"Missing the Odoo login for --odoo-records: {auth.user_env} is unset {where}.")
    return env[auth.user_env], key


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (the simulators listen nowhere else)."""
    return host.startswith("127.") or host in ("localhost", "::1")


def _loopback_port(slug: str, base_url: str, home: Path) -> int:
    """Return the port of ``base_url``, which must be on loopback with an explicit port."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not is_loopback(parts.hostname or "") or port is None:
        raise DemoConfigError(
            f"system {slug!r} of {home / 'sources.yaml'}: base_url {base_url!r} must be "
            "http://127.0.0.1:PORT (the replayed Odoo only listens on loopback)."
        )
    return port


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve` (one handler for all)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_admin/stats", timeout=1) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False


def serve(
    simulators: list[Simulator],
    *,
    host: str = "127.0.0.1",
    on_ready: Callable[[Simulator], None],
    on_all_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``simulators`` until SIGINT/SIGTERM; call ``on_ready`` once each one answers.

    Raises:
        DemoConfigError: a simulator's port is taken or it never answered (10 s).
    """

    async def main() -> None:
        servers = [
            _Server(
                uvicorn.Config(
                    s.app,
                    host=host,
                    port=int(s.url.rsplit(":", 1)[1]),
                    log_level="warning",
                    lifespan="off",
                )
            )  # fmt: skip
            for s in simulators
        ]

        def stop_all() -> None:
            for sv in servers:
                sv.should_exit = True

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_all)
        tasks = [asyncio.create_task(sv.serve()) for sv in servers]
        for s, task in zip(simulators, tasks, strict=True):
            for _ in range(100):
                if task.done() or await asyncio.to_thread(_answers, s.url):
                    break
                await asyncio.sleep(0.1)
            if task.done() or not await asyncio.to_thread(_answers, s.url):
                stop_all()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise DemoConfigError(f"The {s.name} simulator did not start on {s.url} "
                                      "(is the port in use?)")  # fmt: skip
            on_ready(s)
        on_all_ready()
        await asyncio.gather(*tasks)

    asyncio.run(main())
