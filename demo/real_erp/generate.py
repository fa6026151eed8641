"""Generate the three-system demo whose ERP is a real Odoo into a Tieout home folder.

``tieout demo generate --odoo-records DIR`` (see :mod:`demo.real_erp` for what is written). The
generated home is served by ``tieout demo serve --odoo-records DIR``: HubSpot and Harvest from the
derived tables, Odoo from the dump, at the port, database and credentials of ``HOME/sources.yaml``.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from demo.firm import add_months
from demo.generate import (
    DEFAULT_PORT_BASE,
    SIMULATORS,
    start_demo,
    write_credentials,
    write_sources_yaml,
    write_users,
)
from demo.ground_truth import RULES, SCHEMA
from demo.parts import PartWriter
from demo.real_erp import MODE
from demo.real_erp.defects import Injected, inject
from demo.real_erp.derive import FIRST_IDS, Views, derive
from demo.real_erp.dump import Dump, load_dump, m2o_name
from demo.real_erp.truth import Break, expected_breaks
from demo.tables import FX_RATES, table

__all__ = ["ODOO_DATABASE", "RULES_FILE", "generate_real_erp"]

ODOO_DATABASE = "tieout_real_erp"
#: The starter catalogue keyed on what a stock Odoo holds, copied to ``HOME/rules.yaml``.
RULES_FILE = Path(__file__).with_name("rules.yaml")
_RATE = Decimal("0.000001")
_ROWS_PER_PART = 1_000_000


def generate_real_erp(
    home: Path, records: Path, *, seed: int = 7, defects: bool = True, port_base: int = DEFAULT_PORT_BASE
) -> dict[str, Any]:
    """Write the demo with ``records`` (a real Odoo's dump folder) as its ERP into ``home``.

    Args:
        home: the Tieout home folder; created if missing. An earlier ``HOME/demo`` is replaced.
        records: the dump folder, as ``tieout demo serve --odoo-records`` takes it.
        seed: random seed of the defects; same seed and records, same home.
        defects: False derives the CRM and PSA without defects: the ground truth is then the
            breaks the real records cause on their own.
        port_base: loopback port of the HubSpot simulator; Harvest and the replayed Odoo take
            the next two.

    Returns:
        The manifest written to ``HOME/demo/manifest.json``.

    Raises:
        FileNotFoundError / ValueError: ``records`` is not a complete dump (:func:`load_dump`).
        RuntimeError: a defect does not cause the break it must (a bug of the injection).
    """
    dump = load_dump(records)
    as_of, founded = dump.read_on(), _founded(dump)
    demo_dir, password, users = start_demo(home)
    views = derive(dump)
    real = expected_breaks(views, dump, as_of)
    injected = inject(views, dump, seed, as_of) if defects else []
    breaks = expected_breaks(views, dump, as_of) if defects else real
    truth = _label(breaks, real, injected)
    rows = _write_views(views, demo_dir)
    rows["ref/fx_rates"] = _write_fx(dump, founded, as_of, demo_dir)
    rows["ground_truth"] = len(truth)
    pq.write_table(pa.Table.from_pylist(truth, schema=SCHEMA), demo_dir / "ground_truth.parquet")
    shutil.copy(RULES_FILE, home / "rules.yaml")
    ports = {name: port_base + i for i, name in enumerate(SIMULATORS)}
    summary = (
        json.loads((records / "summary.json").read_text()) if (records / "summary.json").exists() else {}
    )
    manifest = {
        "mode": MODE, "seed": seed if defects else None, "as_of": as_of.isoformat(),
        "founded": founded.isoformat(), "odoo_database": ODOO_DATABASE, "ports": ports,
        "odoo_server_version": summary.get("server_version"),
        "odoo_records": {model: len(recs) for model, recs in dump.records.items()},
        "rows": dict(sorted(rows.items())),
        "defects_injected": dict(sorted(Counter(i.kind for i in injected).items())),
        "breaks_by_cause": dict(sorted(Counter(str(r["defect"]) for r in truth).items())),
    }  # fmt: skip
    (demo_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    entities = {cid: str(dump.legal_entity(cid)) for cid in dump["res.company"]}
    write_sources_yaml(home, ports, as_of, founded, database=ODOO_DATABASE, legal_entities=entities)
    write_credentials(home, demo_password=password)
    # the demo firm's UK-only user has no legal entity here: the real Odoo's are YC and USC
    write_users(home, [u for u in users.result() if not u.get("legal_entities")])
    return manifest


def _label(breaks: list[Break], real: list[Break], injected: list[Injected]) -> list[dict[str, Any]]:
    """Return the ground-truth rows of ``breaks``, each with its cause (``defect``).

    The cause is the injected kind whose own break it is, ``real`` for a break the real records
    cause without any defect, else ``derived`` (several defects at once, or one moving an aggregate
    or a filter: a time entry moved to another project unbalances two time totals).

    Raises:
        RuntimeError: an injection's break is missing, or the real records already cause it.
    """
    found = {b.key for b in breaks}
    own = {b.key for b in real}
    cause: dict[tuple[str, str, str | None, str | None, str | None], str] = {}
    for i in injected:
        for key in i.expected:
            if key not in found or key in own:
                why = "is not among the breaks" if key not in found else "is one of the real records' own"
                raise RuntimeError(f"defect {i.kind} on record {i.record_id}: its break {key} {why}")
            cause[key] = i.kind
    rows = []
    for b in breaks:
        obj, source_system, target_system = RULES[b.rule_id]
        rows.append({
            "rule_id": b.rule_id, "break_type": b.break_type, "object": obj, "source_system": source_system,
            "target_system": target_system, "source_id": b.source_id, "target_id": b.target_id,
            "field": b.field, "defect": cause.get(b.key, "real" if b.key in own else "derived"),
            "legal_entity_id": b.legal_entity_id, "aging_bucket": b.aging_bucket,
        })  # fmt: skip
    return rows


def _write_views(v: Views, demo_dir: Path) -> dict[str, int]:
    """Write the HubSpot and Harvest tables and the two crosswalks; return row counts by table."""
    rows = {}
    for name in FIRST_IDS:
        w = PartWriter(table(*name.split("/")), demo_dir, _ROWS_PER_PART)
        w.write_rows(v.tables[name])
        w.close()
        rows[name] = w.rows
    folder = demo_dir / "crosswalks"
    folder.mkdir()
    maps: dict[str, tuple[tuple[str, str], list[tuple[Any, Any]]]] = {
        "customers": (("hubspot_company_id", "customer_code"), sorted(v.customer_codes.items())),
        "time_entries": (("harvest_time_entry_id", "odoo_line_id"), sorted(v.time_lines.items())),
    }
    for name, (header, pairs) in maps.items():
        with (folder / f"{name}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(pairs)
        rows[f"crosswalks/{name}"] = len(pairs)
    return rows


def _founded(dump: Dump) -> date:
    """Return 1 January of the year of the firm's oldest dated record: earlier dates fail the checks."""
    dates = [r["date"] for r in dump["account.analytic.line"].values()]
    dates += [r["invoice_date"] for r in dump["account.move"].values() if r["invoice_date"]]
    dates += [str(r["date_order"])[:10] for r in dump["sale.order"].values()]
    dates += [r["date_start"] for r in dump["project.project"].values() if r["date_start"]]
    return date(int(min(dates)[:4]), 1, 1)


def _write_fx(dump: Dump, founded: date, as_of: date, demo_dir: Path) -> int:
    """Write the Odoo's own monthly rates to its first company's currency (the reporting one).

    Odoo keeps units of a currency per unit of the company's, dated; a month's rate to the
    reporting currency is the inverse of the latest rate dated in or before it.
    """
    rates: dict[str, list[tuple[str, Decimal]]] = {}
    for r in sorted(dump["res.currency.rate"].values(), key=lambda r: str(r["name"])):
        rates.setdefault(str(m2o_name(r["currency_id"])), []).append((str(r["name"]), r["rate"]))
    span = (as_of.year - founded.year) * 12 + as_of.month - founded.month
    months = [f"{add_months(founded, i):%Y-%m}" for i in range(span + 1)]
    out = []
    for currency in sorted(str(c["name"]) for c in dump["res.currency"].values()):
        for m in months:
            known = rates.get(currency, [(m, Decimal(1))])  # none at all: the company's own currency
            rate = ([rate for day, rate in known if day[:7] <= m] or [known[0][1]])[-1]
            out.append({"currency": currency, "month": m, "rate_to_reporting": (1 / rate).quantize(_RATE)})
    w = PartWriter(FX_RATES, demo_dir, _ROWS_PER_PART)
    w.write_rows(out)
    w.close()
    return w.rows
