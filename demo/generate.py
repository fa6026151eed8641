"""Generate the demo firm into a Tieout home folder: data, ground truth and a ready configuration.

Writes, under ``HOME``:

- ``demo/<system>/<table>/part-*.parquet``: each system's view of the firm (``demo.tables``);
- ``demo/ref/fx_rates``: monthly FX rates to the reporting currency;
- ``demo/ground_truth.parquet``: the expected breaks (``demo.ground_truth``), reconciliation and
  data quality;
- ``demo/manifest.json``: seed, scale, as-of and founding dates, row counts, defect counts;
- ``sources.yaml``: the three simulated systems on loopback, credentials by variable name;
- ``.env``: the demo credentials themselves (random, mode 0600), loaded by the ``tieout`` command
  into variables that are not already set, among them ``TIEOUT_DEMO_PASSWORD``, the app's demo
  password. It never leaves the home folder;
- ``users.yaml``: the app's demo users (:func:`data.users.demo_users`: ``admin``, ``finance``,
  ``finance_uk`` limited to the UK, ``pmo``, ``executive``), all with the demo password, bcrypt-hashed.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from data.users import demo_users
from demo.activity import generate_activity
from demo.config import DefectRates, FirmConfig, Scale
from demo.firm import LEGAL_ENTITIES, add_months, build_firm
from demo.ground_truth import GroundTruth
from demo.invoicing import fx_rate
from demo.master import build_master
from demo.parts import PartWriter
from demo.tables import FX_RATES, create_views, table

DEFAULT_PORT_BASE = 8711
SIMULATORS = ("hubspot", "harvest", "odoo")  # ports: base, base + 1, base + 2
CREDENTIAL_VARS = {
    "hubspot_token": "TIEOUT_DEMO_HUBSPOT_TOKEN",
    "harvest_token": "TIEOUT_DEMO_HARVEST_TOKEN",
    "harvest_account_id": "TIEOUT_DEMO_HARVEST_ACCOUNT_ID",
    "odoo_user": "TIEOUT_DEMO_ODOO_USER",
    "odoo_api_key": "TIEOUT_DEMO_ODOO_API_KEY",
}
#: The variable of HOME/.env holding the password of every demo user of the app (HOME/users.yaml).
PASSWORD_VAR = "TIEOUT_DEMO_PASSWORD"
ODOO_DATABASE = "tieout_demo"
AGGREGATE_HOURS_TOLERANCE = "0.10"
INVOICE_AMOUNT_TOLERANCE = "0.01"


def generate(
    home: Path,
    *,
    scale: Scale = "default",
    seed: int = 7,
    as_of: date | None = None,
    defects: DefectRates | None = None,
    quality_defects: bool = True,
    port_base: int = DEFAULT_PORT_BASE,
) -> dict[str, Any]:
    """Generate the demo firm into ``home`` (replacing any earlier demo firm there).

    Args:
        home: the Tieout home folder; created if missing.
        scale: ``small`` (~6k time entries), ``default`` (~150k) or ``large`` (~10M).
        seed: random seed; same seed and as-of date give identical data.
        as_of: the firm's "today" (default: today, UTC).
        defects: defect rates (default: ``DefectRates()``).
        quality_defects: False leaves out the data-quality defects (``demo.quality``), whatever
            ``defects.quality`` says; the reconciliation defects, and their ground truth, stay.
        port_base: loopback port of the HubSpot simulator; Harvest and Odoo take the next two.

    Returns:
        The manifest written to ``HOME/demo/manifest.json``.
    """
    rates = defects or DefectRates()
    if not quality_defects:
        rates = rates.model_copy(update={"quality": 0.0})
    cfg = FirmConfig(seed=seed, scale=scale, as_of=as_of or datetime.now(UTC).date(), defects=rates)
    demo_dir, password, users = start_demo(home)
    gt = GroundTruth()
    firm = build_firm(cfg)
    master = build_master(firm, gt)
    rows: dict[str, int] = {}
    for name, data in master.tables.items():
        w = PartWriter(table(*name.split("/")), demo_dir, cfg.size.parquet_rows)
        w.write_rows(data)
        w.close()
        rows[name] = w.rows
    rows.update(generate_activity(firm, master, gt, demo_dir))
    rows["ref/fx_rates"] = _write_fx(firm.window_start, cfg, demo_dir)
    _derive_aggregate_breaks(demo_dir, gt)
    rows["ground_truth"] = gt.write(demo_dir / "ground_truth.parquet")
    ports = {name: port_base + i for i, name in enumerate(SIMULATORS)}
    founded = founding_day(firm.window_start)
    manifest = {
        "seed": seed, "scale": scale, "as_of": cfg.as_of.isoformat(), "founded": founded.isoformat(),
        "window_start": firm.window_start.isoformat(),
        "reporting_currency": cfg.reporting_currency,
        "deal_handoff_days": cfg.deal_handoff_days, "odoo_database": ODOO_DATABASE,
        "ports": ports,
        "rows": dict(sorted(rows.items())), "defects_injected": dict(sorted(gt.injected.items())),
    }  # fmt: skip
    (demo_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_sources_yaml(home, ports, cfg.as_of, founded)
    write_credentials(home, demo_password=password)
    write_users(home, users.result())
    return manifest


def founding_day(window_start: date) -> date:
    """Return the demo firm's founding day: 1 January, three years before its time history starts.

    Every generated date is later: the oldest records, CRM companies, are created at most 900 days
    before ``window_start`` (``demo.firm``), and nothing else reaches further back than 180 days.
    """
    return date(window_start.year - 3, 1, 1)


def _write_fx(window_start: date, cfg: FirmConfig, demo_dir: Path) -> int:
    months = [add_months(window_start, i).strftime("%Y-%m") for i in range(-1, cfg.size.months + 1)]
    w = PartWriter(FX_RATES, demo_dir, cfg.size.parquet_rows)
    w.write_rows([{"currency": c, "month": m, "rate_to_reporting": fx_rate(c, m)}
                  for m in months for c in ("USD", "GBP", "EUR")])  # fmt: skip
    w.close()
    return w.rows


def _derive_aggregate_breaks(demo_dir: Path, gt: GroundTruth) -> None:
    """Add the aggregate breaks (time totals, invoice vs time) that the defects above cause.

    They follow from many defects at once (a moved entry unbalances two groups), so they are
    computed from the finished tables rather than predicted one by one.
    """
    con = duckdb.connect()
    create_views(con, demo_dir)
    totals = con.execute(f"""
        WITH s AS (SELECT project_code AS code, strftime(spent_date, '%Y-%m') AS period,
                          sum(hours) AS hours
                   FROM "psa/time_entries" WHERE is_closed GROUP BY ALL),
             t AS (SELECT a.code, strftime(l.date, '%Y-%m') AS period, sum(l.unit_amount) AS hours
                   FROM "erp/account.analytic.line" l
                   JOIN "erp/project.project" p ON p.id = l.project_id
                   JOIN "erp/account.analytic.account" a ON a.id = p.account_id GROUP BY ALL)
        SELECT coalesce(s.code, t.code) || '|' || coalesce(s.period, t.period) AS source_id,
               coalesce(s.code, t.code) || '|' || coalesce(s.period, t.period) AS target_id,
               'hours' AS field, split_part(coalesce(s.code, t.code), '-', 1) AS legal_entity_id
        FROM s FULL JOIN t ON s.code = t.code AND s.period = t.period
        WHERE abs(coalesce(s.hours, 0) - coalesce(t.hours, 0)) > {AGGREGATE_HOURS_TOLERANCE}::DECIMAL(18,2)
        ORDER BY 1""").fetchall()  # fmt: skip
    gt.add_derived("time_totals_psa_erp", "aggregate_mismatch", totals)
    invoices = con.execute(f"""
        WITH billed AS (SELECT invoice_id, sum(hours * billable_rate) AS amount
                        FROM "psa/time_entries" WHERE invoice_id IS NOT NULL GROUP BY ALL),
             tm AS (SELECT DISTINCT li.invoice_id FROM "psa/invoice_line_items" li
                    JOIN "psa/projects" p ON p.id = li.project_id WHERE NOT p.is_fixed_fee)
        SELECT i.id::VARCHAR, m.id::VARCHAR, 'amount', split_part(li.project_code, '-', 1)
        FROM "psa/invoices" i JOIN tm ON tm.invoice_id = i.id
        JOIN "erp/account.move" m ON m.x_harvest_id = i.id
        JOIN (SELECT DISTINCT invoice_id, project_code FROM "psa/invoice_line_items") li
             ON li.invoice_id = i.id
        LEFT JOIN billed b ON b.invoice_id = i.id
        WHERE abs(coalesce(b.amount, 0) - m.amount_untaxed) > {INVOICE_AMOUNT_TOLERANCE}::DECIMAL(18,2)
        ORDER BY 1""").fetchall()  # fmt: skip
    gt.add_derived("invoice_vs_time", "aggregate_mismatch", invoices)
    con.close()


def start_demo(home: Path) -> tuple[Path, str, Future[list[dict[str, Any]]]]:
    """Empty ``HOME/demo``, draw the demo users' password and start hashing it for them.

    Returns:
        The folder, the password, and the demo users (:func:`data.users.demo_users`) being hashed
        in a thread (bcrypt releases the GIL, so the firm is built meanwhile).
    """
    demo_dir = home / "demo"
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True)
    password = secrets.token_urlsafe(12)
    hashing = ThreadPoolExecutor(1, thread_name_prefix="demo-users")
    users = hashing.submit(demo_users, password)
    hashing.shutdown(wait=False)
    return demo_dir, password, users


def write_sources_yaml(
    home: Path, ports: dict[str, int], business_date: date, founded: date, host: str = "127.0.0.1",
    *, database: str = ODOO_DATABASE, legal_entities: Mapping[int, str] | None = None,
) -> Path:  # fmt: skip
    """Write ``HOME/sources.yaml`` pointing at the demo simulators on ``ports``; return its path.

    ``business_date`` (the firm's as-of date) pins the reconciliation's "today", so ages and the
    ground truth agree whatever day the demo is run. ``founded`` (:func:`founding_day`) is the
    earliest date the data-quality checks accept. ``database`` and ``legal_entities`` (Odoo
    company id -> legal entity) describe the Odoo: the demo firm's unless given.
    """
    entities = legal_entities or {e.odoo_company_id: e.id for e in LEGAL_ENTITIES}
    path = home / "sources.yaml"
    path.write_text(f"""\
# Generated by `tieout demo generate`: the demo firm's three systems, served on loopback by
# `tieout demo serve` (a real Odoo's records: with --odoo-records DIR). Credentials are named
# by environment variable, never written here; the demo's own values are in HOME/.env, which
# `tieout` loads into variables that are not set.
reporting_currency: USD
business_date: {business_date.isoformat()}   # the demo firm's "today"; leave out for a live firm
founded: {founded.isoformat()}         # dates before the firm existed fail the data-quality checks
systems:
  crm:
    connector: hubspot
    base_url: http://{host}:{ports["hubspot"]}
    auth:
      token_env: {CREDENTIAL_VARS["hubspot_token"]}
    objects: [customers, projects]
    max_requests_per_min: 570   # 95% of HubSpot's 100 requests / 10 s
    schedule: {{interval_minutes: 60}}
    freshness_sla_minutes: 180
  psa:
    connector: harvest
    base_url: http://{host}:{ports["harvest"]}
    auth:
      token_env: {CREDENTIAL_VARS["harvest_token"]}
      account_id_env: {CREDENTIAL_VARS["harvest_account_id"]}
    objects: [customers, projects, time_entries, invoices]
    max_requests_per_min: 380   # 95% of Harvest's 100 requests / 15 s
    schedule: {{interval_minutes: 30}}
    freshness_sla_minutes: 120
  erp:
    connector: odoo
    base_url: http://{host}:{ports["odoo"]}
    database: {database}
    auth:
      user_env: {CREDENTIAL_VARS["odoo_user"]}
      api_key_env: {CREDENTIAL_VARS["odoo_api_key"]}
    objects: [customers, projects, time_entries, invoices]
    schedule: {{interval_minutes: 60}}
    freshness_sla_minutes: 180
    value_maps:
      legal_entities: {{{", ".join(f'"{k}": {v}' for k, v in entities.items())}}}
""")
    return path


def write_credentials(home: Path, *, demo_password: str | None = None) -> Path:
    """Write fresh random demo credentials to ``HOME/.env`` (mode 0600) and return its path.

    ``demo_password``, the demo users' password, is written as :data:`PASSWORD_VAR` when given.
    """
    values = {
        CREDENTIAL_VARS["hubspot_token"]: "pat-na1-" + secrets.token_hex(16),
        CREDENTIAL_VARS["harvest_token"]: secrets.token_urlsafe(24),
        CREDENTIAL_VARS["harvest_account_id"]: str(1_000_000 + secrets.randbelow(8_000_000)),
        CREDENTIAL_VARS["odoo_user"]: "integration@tieout.example",
        CREDENTIAL_VARS["odoo_api_key"]: secrets.token_hex(20),
    }
    if demo_password is not None:
        values[PASSWORD_VAR] = demo_password
    path = home / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def write_users(home: Path, users: list[dict[str, Any]]) -> Path:
    """Write ``users`` (from :func:`data.users.demo_users`) to ``HOME/users.yaml``; return its path.

    The file holds bcrypt hashes only, never a password; it is readable by its owner only (0600).
    """
    path = home / "users.yaml"
    path.write_text(
        "# Generated by `tieout demo generate`: the app's demo users, "
        f"{', '.join(u['name'] for u in users)}.\n"
        f"# Their password is {PASSWORD_VAR} in HOME/.env; hashes from data.users.hash_password.\n"
        + yaml.safe_dump({"users": users}, sort_keys=False)
    )
    path.chmod(0o600)
    return path
