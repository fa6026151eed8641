"""Serve the home's demo firm through the HubSpot, Harvest and Odoo simulators on loopback.

All three run in one process, one uvicorn server each (each vendor has its own base URL), until
SIGINT or SIGTERM stops them together.
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

import uvicorn
from starlette.applications import Starlette

from demo import harvest, hubspot, odoo
from demo.faults import FaultSpec, FaultState
from demo.generate import CREDENTIAL_VARS
from demo.simulator import SimulatorState
from demo.store import DemoStore


class DemoConfigError(RuntimeError):
    """The demo cannot be served as configured; the message says what to do."""


@dataclass(frozen=True)
class Simulator:
    """One simulator ready to serve: its name, app, state and loopback URL."""

    name: str
    app: Starlette
    state: SimulatorState
    url: str


def build_simulators(
    home: Path,
    *,
    host: str = "127.0.0.1",
    faults: Mapping[str, FaultSpec] | None = None,
    env: Mapping[str, str] = os.environ,
) -> list[Simulator]:
    """Return the three simulators over ``HOME/demo`` with the demo credentials from ``env``.

    Ports and the Odoo database name come from the firm's manifest (``tieout demo generate``).

    Raises:
        DemoConfigError: no generated firm in the home, or a credential variable is unset.
    """
    try:
        store = DemoStore(home / "demo")
    except FileNotFoundError as exc:
        raise DemoConfigError(str(exc)) from exc
    missing = [v for v in CREDENTIAL_VARS.values() if not env.get(v)]
    if missing:
        raise DemoConfigError(
            f"Missing demo credentials: {', '.join(missing)}. Looked in the environment and "
            f"{home / '.env'}; run `tieout demo generate` to create them."
        )
    cred = {k: env[v] for k, v in CREDENTIAL_VARS.items()}
    faults = faults or {}

    def state_for(name: str) -> FaultState:
        return FaultState(faults.get(name))

    manifest = json.loads((home / "demo" / "manifest.json").read_text())
    ports = manifest["ports"]
    apps = {
        "hubspot": hubspot.create_app(store, token=cred["hubspot_token"], faults=state_for("hubspot")),
        "harvest": harvest.create_app(
            store,
            token=cred["harvest_token"],
            account_id=cred["harvest_account_id"],
            faults=state_for("harvest"),
        ),  # fmt: skip
        "odoo": odoo.create_app(
            store,
            database=manifest["odoo_database"],
            login=cred["odoo_user"],
            api_key=cred["odoo_api_key"],
            faults=state_for("odoo"),
        ),  # fmt: skip
    }
    return [Simulator(n, app, st, f"http://{host}:{ports[n]}") for n, (app, st) in apps.items()]


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
