"""The Odoo connector against the Odoo simulator in-process, and its mappings over real Odoo 19 records."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pycountry
import pytest

from data.canonical import CANONICAL
from demo.odoo import create_app
from demo.store import DemoStore
from demo.tables import (
    ODOO_ANALYTIC_ACCOUNTS,
    ODOO_MOVES,
    ODOO_PARTNERS,
    ODOO_PRICELISTS,
    ODOO_PROJECTS,
    ODOO_TIMESHEETS,
    Table,
)
from extractors.base import ConnectorContext
from extractors.config import OdooSystem
from extractors.errors import AuthFailed, ExtractorError, SchemaDrift
from extractors.mapping import Lookup
from extractors.odoo import OdooConnector
from extractors.odoo_models import MODELS, odoo_model
from extractors.staging import RawSink
from extractors.statuses import value_maps
from extractors.transform import SnapshotCounts, build_snapshot

DB, LOGIN, KEY = "tieout_test", "admin@tieout.example", "odoo-connector-test-KEY-0042"
USER_ENV, KEY_ENV = "TIEOUT_TEST_ODOO_USER", "TIEOUT_TEST_ODOO_API_KEY"
BASE_URL = "http://odoo.sim"
LEGAL_ENTITIES = {"1": "US", "2": "UK", "3": "DE"}
LINEAGE = {
    "system": "'erp'",
    "snapshot_id": "'s1'",
    "run_id": "'r1'",
    "extracted_at": "TIMESTAMPTZ '2026-11-20 00:00:00+00'",
}
REAL = Path(__file__).resolve().parents[3] / "shared" / "real" / "odoo19"
# The legal entities of the demo's companies, joined independently of the connector's lookup.
ENTITIES_SQL = "(VALUES (1, 'US'), (2, 'UK'), (3, 'DE')) AS le(company, code)"

# starlette 1.10's TestClient warns that it prefers httpx2 (with httpx it is still an httpx.Client)
# and that it ignores per-request timeouts (which HttpClient always sends; in-process they are moot).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument with the TestClient"),
]


def _rewrite(demo: Path, t: Table, query: str) -> None:
    """Replace table ``t`` of ``demo`` with ``query`` over its current rows (the relation ``t``)."""
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{t.glob(demo)}')")
        for part in t.path(demo).glob("*.parquet"):
            part.unlink()
        con.execute(f"COPY ({query}) TO '{t.path(demo) / 'part-00000.parquet'}' (FORMAT parquet)")


@pytest.fixture(scope="module")
def erp_demo(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small firm with what it lacks: archived partners, partners the customer domain excludes
    or includes without being companies, credit notes, a vendor bill and analytic lines without a
    project (neither of which is read)."""
    demo = tmp_path_factory.mktemp("erp_demo")
    shutil.copytree(small_demo, demo, dirs_exist_ok=True)
    _rewrite(
        demo,
        ODOO_PARTNERS,
        """
        SELECT * REPLACE (active AND id NOT IN (SELECT id FROM t ORDER BY id LIMIT 3 OFFSET 4) AS active)
        FROM t
        UNION ALL SELECT * REPLACE (99001 AS id, 'A contact' AS name, false AS is_company,
                                    0 AS customer_rank) FROM t WHERE id = (SELECT min(id) FROM t)
        UNION ALL SELECT * REPLACE (99002 AS id, 'A private customer' AS name, false AS is_company,
                                    3 AS customer_rank) FROM t WHERE id = (SELECT min(id) FROM t)
    """,
    )
    _rewrite(
        demo,
        ODOO_MOVES,
        """
        SELECT * REPLACE (CASE
            WHEN id IN (SELECT id FROM t WHERE state = 'posted' ORDER BY id LIMIT 2 OFFSET 10)
                THEN 'out_refund'
            WHEN id = (SELECT max(id) FROM t WHERE state = 'posted') THEN 'in_invoice'
            ELSE move_type END AS move_type)
        FROM t
    """,
    )
    _rewrite(
        demo,
        ODOO_TIMESHEETS,
        """
        SELECT * REPLACE (
            CASE WHEN id IN (SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 20) THEN NULL ELSE project_id END
                AS project_id,
            CASE WHEN id IN (SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 20) THEN NULL
                ELSE project_id__display END AS project_id__display)
        FROM t
    """,
    )
    return demo


class Recorder(httpx.BaseTransport):
    """The simulator's transport, keeping each request and its JSON body.

    Args:
        inner: the simulator's transport.
        hide: fields to leave out of ``fields_get`` answers (what a stock Odoo lacks).
    """

    def __init__(self, inner: httpx.BaseTransport, hide: frozenset[str] = frozenset()) -> None:
        self.inner = inner
        self.hide = hide
        self.calls: list[tuple[httpx.Request, dict[str, Any]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        self.calls.append((request, body))
        response = self.inner.handle_request(request)
        json2 = request.url.path.startswith("/json/2/")
        if json2:
            method = request.url.path.rsplit("/", 1)[1]
        else:
            args = body["params"]["args"]
            method = args[4] if len(args) > 4 else ""
        if self.hide and method == "fields_get":
            payload = json.loads(response.read())
            answer = payload if json2 else payload["result"]
            shown = {k: v for k, v in answer.items() if k not in self.hide}
            return httpx.Response(200, json=shown if json2 else {**payload, "result": shown})
        return response

    def methods(self, method: str) -> list[dict[str, Any]]:
        """Return the bodies of the ``execute_kw`` calls of ORM ``method``."""
        return [
            b
            for _, b in self.calls
            if b["params"]["method"] == "execute_kw" and b["params"]["args"][4] == method
        ]


@pytest.fixture(scope="module")
def store(erp_demo: Path) -> Iterator[DemoStore]:
    s = DemoStore(erp_demo)
    yield s
    s.close()


@pytest.fixture()
def sim_transport(store: DemoStore) -> Iterator[httpx.BaseTransport]:
    """The simulator's in-process transport (the TestClient's own)."""
    from starlette.testclient import TestClient  # importing it warns (see pytestmark)

    app, _ = create_app(store, database=DB, login=LOGIN, api_key=KEY)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client._transport


@pytest.fixture()
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USER_ENV, LOGIN)
    monkeypatch.setenv(KEY_ENV, KEY)


def make_connector(home: Path, transport: httpx.BaseTransport, **config: Any) -> OdooConnector:
    system = OdooSystem.model_validate({
        "connector": "odoo", "base_url": BASE_URL, "database": DB,
        "auth": {"user_env": USER_ENV, "api_key_env": KEY_ENV},
        "objects": ["customers", "projects", "time_entries", "invoices"], **config,
    })  # fmt: skip
    ctx = ConnectorContext(home=home, correlation_id="c1", transport=transport, sleep=lambda s: None)
    return OdooConnector("erp", system, ctx)


def build(sink: RawSink, obj: str, staged: Path) -> tuple[SnapshotCounts, Path]:
    """Map ``sink``'s raw records with the default mapping; return the counts and the canonical file."""
    raw, json_records = sink.relation()
    with duckdb.connect() as con:
        con.execute("SET TimeZone='UTC'")
        counts = build_snapshot(
            con,
            raw=raw,
            json_records=json_records,
            mapping=odoo_model(obj).mapping,
            table=CANONICAL[obj],
            value_maps=value_maps({"legal_entities": LEGAL_ENTITIES}),
            lineage=LINEAGE,
            staged=staged,
            previous=None,
        )
    return counts, staged / "canonical" / "data.parquet"


def extract(
    connector: OdooConnector, obj: str, home: Path, since: datetime | None = None
) -> tuple[SnapshotCounts, Path]:
    sink = RawSink(home / obj / "raw")
    connector.extract(obj, sink, since=since)
    return build(sink, obj, home / obj / "staged")


def query(sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        con.execute("SET TimeZone='UTC'")
        return con.execute(sql).fetchall()


def demo_table(demo: Path, t: Table) -> str:
    return f"read_parquet('{t.glob(demo)}')"


def assert_same(canonical: Path, expected: str) -> None:
    """Assert the canonical rows equal ``expected``'s rows (same multiset, on ``expected``'s columns)."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone='UTC'")
        con.execute(f"CREATE VIEW expected AS {expected}")
        columns = ", ".join(name for name, *_ in con.execute("DESCRIBE expected").fetchall())
        actual = f"SELECT {columns} FROM read_parquet('{canonical}')"
        extra = con.execute(f"SELECT * FROM ({actual} EXCEPT ALL SELECT * FROM expected) LIMIT 3").fetchall()
        missing = con.execute(
            f"SELECT * FROM (SELECT * FROM expected EXCEPT ALL {actual}) LIMIT 3"
        ).fetchall()
        (count,) = con.execute("SELECT count(*) FROM expected").fetchone() or (0,)
    assert (extra, missing) == ([], []), (
        f"canonical rows not expected: {extra}; expected rows missing: {missing}"
    )
    assert count > 0


# --- the four objects against the simulator ----------------------------------------------------


def test_customers_are_companies_and_customers_with_pricelist_currency(
    erp_demo: Path, sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    connector = make_connector(tmp_path, sim_transport)
    counts, canonical = extract(connector, "customers", tmp_path)
    connector.close()

    partners = demo_table(erp_demo, ODOO_PARTNERS)
    names = [
        n
        for (n,) in query(f"SELECT DISTINCT country_id__display FROM {partners} WHERE country_id IS NOT NULL")
    ]
    countries = ", ".join(f"('{n}', '{pycountry.countries.lookup(n).alpha_2}')" for n in names)
    assert_same(
        canonical,
        f"""
        SELECT CAST(p.id AS VARCHAR) AS customer_id, p.name, p.vat AS tax_id, c.code AS country,
               pl.currency_id__display AS currency, le.code AS legal_entity_id,
               p.customer_rank > 0 AS is_customer,
               CASE WHEN p.active THEN 'active' ELSE 'archived' END AS status, p.ref AS crm_id,
               CAST(NULL AS VARCHAR) AS psa_id, CAST(p.id AS VARCHAR) AS erp_id,
               p.create_date AS created_at, p.write_date AS updated_at
        FROM {partners} AS p
        LEFT JOIN {demo_table(erp_demo, ODOO_PRICELISTS)} AS pl ON pl.id = p.property_product_pricelist
        LEFT JOIN (VALUES {countries}) AS c(name, code) ON c.name = p.country_id__display
        LEFT JOIN {ENTITIES_SQL} ON le.company = p.company_id
        WHERE p.is_company OR p.customer_rank > 0
    """,
    )
    assert counts.quarantined == 0 and counts.rows == counts.received
    statuses = dict(
        query(f"SELECT customer_id, status FROM '{canonical}' WHERE customer_id IN ('99001', '99002')")
    )
    assert statuses == {"99002": "active"}  # the contact is neither a company nor a customer
    assert query(f"SELECT count(*) FROM '{canonical}' WHERE status = 'archived'") == [(3,)]


def test_projects_code_from_the_analytic_account_and_archived_included(
    erp_demo: Path, sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    connector = make_connector(tmp_path, sim_transport)
    counts, canonical = extract(connector, "projects", tmp_path)
    connector.close()

    assert_same(
        canonical,
        f"""
        SELECT CAST(p.id AS VARCHAR) AS project_id, a.code, p.name,
               CAST(p.partner_id AS VARCHAR) AS customer_id, p.x_billing_model AS billing_model,
               CASE WHEN p.active THEN 'active' ELSE 'archived' END AS status,
               p.currency_id__display AS currency, le.code AS legal_entity_id,
               CAST(NULL AS DECIMAL(18,2)) AS contract_amount, p.date_start AS start_date,
               p.date AS end_date, CAST(p.x_harvest_id AS VARCHAR) AS psa_id,
               CAST(p.id AS VARCHAR) AS erp_id, p.create_date AS created_at, p.write_date AS updated_at
        FROM {demo_table(erp_demo, ODOO_PROJECTS)} AS p
        LEFT JOIN {demo_table(erp_demo, ODOO_ANALYTIC_ACCOUNTS)} AS a ON a.id = p.account_id
        LEFT JOIN {ENTITIES_SQL} ON le.company = p.company_id
    """,
    )
    assert counts.quarantined == 0
    by_status = dict(query(f"SELECT status, count(*) FROM '{canonical}' GROUP BY ALL"))
    assert by_status["archived"] > 0 and by_status["active"] > 0
    # An empty integer custom field reads as 0 in Odoo: it must be NULL, not the Harvest id '0'.
    assert (
        query(f"SELECT count(*) FROM '{canonical}' WHERE psa_id IS NULL")
        == query(f"SELECT count(*) FROM {demo_table(erp_demo, ODOO_PROJECTS)} WHERE x_harvest_id IS NULL")
        != [(0,)]
    )


def test_time_entries_every_timesheet_line_once_with_cost_and_code(
    erp_demo: Path, sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    connector = make_connector(tmp_path, sim_transport, page_size=500)
    counts, canonical = extract(connector, "time_entries", tmp_path)
    connector.close()

    lines = demo_table(erp_demo, ODOO_TIMESHEETS)
    assert_same(
        canonical,
        f"""
        SELECT CAST(l.id AS VARCHAR) AS time_entry_id, CAST(l.project_id AS VARCHAR) AS project_id,
               a.code AS project_code, CAST(l.partner_id AS VARCHAR) AS customer_id,
               CAST(l.employee_id AS VARCHAR) AS person_id, l.employee_id__display AS person_name,
               l.date AS spent_date, strftime(l.date, '%Y-%m') AS billing_period, l.unit_amount AS hours,
               l.timesheet_invoice_type IN ('billable_time', 'billable_fixed') AS billable, true AS approved,
               -l.amount AS cost_amount, l.currency_id__display AS currency,
               CAST(l.timesheet_invoice_id AS VARCHAR) AS invoice_id, le.code AS legal_entity_id,
               CAST(l.x_harvest_id AS VARCHAR) AS psa_id, l.create_date AS created_at,
               l.write_date AS updated_at
        FROM {lines} AS l
        LEFT JOIN {demo_table(erp_demo, ODOO_ANALYTIC_ACCOUNTS)} AS a ON a.id = l.account_id
        LEFT JOIN {ENTITIES_SQL} ON le.company = l.company_id
        WHERE l.project_id IS NOT NULL
    """,
    )
    (with_project,) = query(f"SELECT count(*) FROM {lines} WHERE project_id IS NOT NULL")[0]
    assert counts.quarantined == 0 and counts.received == counts.rows == with_project
    assert query(f"SELECT count(DISTINCT time_entry_id) FROM '{canonical}'") == [(with_project,)]
    assert query(f"SELECT count(*) FROM '{canonical}' WHERE psa_id IS NULL")[0][0] > 0
    pages = -(-with_project // 500) + (with_project % 500 == 0)
    assert connector.http_stats().requests == 2 + pages  # authenticate, fields_get, the pages


def test_invoices_signed_amounts_and_canonical_status(
    erp_demo: Path, sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    connector = make_connector(tmp_path, sim_transport)
    counts, canonical = extract(connector, "invoices", tmp_path)
    connector.close()

    moves = demo_table(erp_demo, ODOO_MOVES)
    # Canonical status per (state, payment_state), spelled out here rather than read from statuses.py.
    status = {
        ("draft", "not_paid"): "draft", ("cancel", "not_paid"): "cancelled", ("posted", "not_paid"): "posted",
        ("posted", "partial"): "posted", ("posted", "in_payment"): "paid", ("posted", "paid"): "paid",
    }  # fmt: skip
    present = set(query(f"SELECT DISTINCT state, payment_state FROM {moves}"))
    assert present <= set(status) and {status[p] for p in present} == {"draft", "cancelled", "posted", "paid"}
    statuses = ", ".join(f"('{s}', '{p}', '{c}')" for (s, p), c in status.items())
    sign = "CASE m.move_type WHEN 'out_refund' THEN -1 ELSE 1 END"
    assert_same(
        canonical,
        f"""
        SELECT CAST(m.id AS VARCHAR) AS invoice_id, nullif(m.name, '/') AS number,
               CASE m.move_type WHEN 'out_refund' THEN 'credit_note' ELSE 'invoice' END AS kind,
               CAST(m.commercial_partner_id AS VARCHAR) AS customer_id, le.code AS legal_entity_id,
               m.invoice_date AS issue_date, m.invoice_date_due AS due_date,
               m.currency_id__display AS currency,
               CAST({sign} * m.amount_untaxed AS DECIMAL(18,2)) AS amount_untaxed,
               CAST({sign} * m.amount_tax AS DECIMAL(18,2)) AS tax_amount,
               CAST({sign} * m.amount_total AS DECIMAL(18,2)) AS amount_total,
               CAST({sign} * m.amount_residual AS DECIMAL(18,2)) AS amount_due, st.canonical AS status,
               CAST(m.x_harvest_id AS VARCHAR) AS psa_id, m.ref AS psa_number,
               m.create_date AS created_at, m.write_date AS updated_at
        FROM {moves} AS m
        JOIN (VALUES {statuses}) AS st(state, payment_state, canonical)
          ON st.state = m.state AND st.payment_state = m.payment_state
        LEFT JOIN {ENTITIES_SQL} ON le.company = m.company_id
        WHERE m.move_type IN ('out_invoice', 'out_refund')
    """,
    )
    assert counts.quarantined == 0
    assert query(f"SELECT count(*), max(amount_total) < 0 FROM '{canonical}' WHERE kind = 'credit_note'") == [
        (2, True)
    ]


# --- requests, incremental pulls, custom fields, errors ------------------------------------------


def test_requests_login_once_and_ask_fields_once_per_model(
    sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    recorder = Recorder(sim_transport)
    connector = make_connector(tmp_path, recorder, page_size=20)
    for i in range(2):
        connector.extract("projects", RawSink(tmp_path / f"raw{i}"), since=None)
    connector.extract("invoices", RawSink(tmp_path / "raw-invoices"), since=None)
    connector.close()

    assert all(r.method == "POST" and r.url.path == "/jsonrpc" for r, _ in recorder.calls)
    assert {r.headers["X-Correlation-Id"] for r, _ in recorder.calls} == {"c1"}
    assert [b["params"]["method"] for _, b in recorder.calls].count("authenticate") == 1
    assert [b["params"]["args"][3] for b in recorder.methods("fields_get")] == [
        "project.project",
        "account.move",
    ]
    pages = [b["params"]["args"] for b in recorder.methods("search_read")]
    project_pages = [args for args in pages if args[3] == "project.project"]
    assert [args[6]["offset"] for args in project_pages] == [0, 20, 40] * 2
    for args in pages:
        assert args[:3] == [DB, 2, KEY] and args[6]["limit"] == 20 and args[6]["order"] == "id"
        assert args[6]["context"] == {"active_test": False}
    assert project_pages[0][5] == [[]] and pages[-1][5] == [
        [["move_type", "in", ["out_invoice", "out_refund"]]]
    ]


def test_fields_a_stock_odoo_lacks_are_not_requested_and_map_to_null(
    erp_demo: Path, sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    recorder = Recorder(sim_transport, hide=frozenset({"x_harvest_id", "x_billing_model"}))
    connector = make_connector(tmp_path, recorder)
    counts, canonical = extract(connector, "projects", tmp_path)
    connector.close()

    requested = recorder.methods("search_read")[0]["params"]["args"][6]["fields"]
    assert (
        "x_harvest_id" not in requested and "x_billing_model" not in requested and "pricing_type" in requested
    )
    assert counts.quarantined == 0 and counts.rows > 0
    # Without Tieout's field the stock pricing type decides: every Odoo pricing type bills hours.
    assert query(f"SELECT DISTINCT billing_model, psa_id FROM '{canonical}'") == [
        ("time_and_materials", None)
    ]


def test_a_needed_field_the_server_lacks_is_schema_drift_before_any_read(
    sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    recorder = Recorder(sim_transport, hide=frozenset({"timesheet_invoice_id", "x_harvest_id"}))
    connector = make_connector(tmp_path, recorder)
    with pytest.raises(SchemaDrift) as caught:
        connector.extract("time_entries", RawSink(tmp_path / "raw"), since=None)
    connector.close()

    message = str(caught.value)
    # The custom field is optional; the stock one is not, and is named with its model.
    assert "account.analytic.line" in message and "timesheet_invoice_id" in message
    assert "x_harvest_id" not in message and KEY not in message
    assert recorder.methods("search_read") == []


@pytest.mark.parametrize("obj", ["customers", "time_entries", "invoices"])
def test_json2_reads_the_same_records_as_json_rpc(
    sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path, obj: str
) -> None:
    rpc = make_connector(tmp_path / "rpc", sim_transport)
    _, by_rpc = extract(rpc, obj, tmp_path / "rpc")
    rpc.close()
    recorder = Recorder(sim_transport)
    json2 = make_connector(tmp_path / "json2", recorder, protocol="json2", page_size=50)
    counts, by_json2 = extract(json2, obj, tmp_path / "json2")
    json2.close()

    assert counts.rows > 50  # more than one page
    assert_same(by_json2, f"SELECT * FROM read_parquet('{by_rpc}')")
    model = odoo_model(obj).name
    paths = [r.url.path for r, _ in recorder.calls]
    assert paths[0] == f"/json/2/{model}/fields_get" and set(paths[1:]) == {f"/json/2/{model}/search_read"}
    for request, body in recorder.calls:
        assert (
            request.headers["Authorization"] == f"bearer {KEY}" and request.headers["X-Odoo-Database"] == DB
        )
        assert KEY not in json.dumps(body)
    reads = [b for r, b in recorder.calls if r.url.path.endswith("/search_read")]
    assert [b["offset"] for b in reads] == [50 * i for i in range(len(reads))]
    assert all(
        b["limit"] == 50 and b["order"] == "id" and b["domain"] == odoo_model(obj).domain for b in reads
    )


def test_the_password_serves_json_rpc_when_no_api_key_is_set(
    sim_transport: httpx.BaseTransport, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(USER_ENV, LOGIN)
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv("TIEOUT_TEST_ODOO_PASSWORD", KEY)  # the simulator takes the key as password
    auth = {"user_env": USER_ENV, "api_key_env": KEY_ENV, "password_env": "TIEOUT_TEST_ODOO_PASSWORD"}
    connector = make_connector(tmp_path, sim_transport, auth=auth)
    counts, _ = extract(connector, "projects", tmp_path)
    connector.close()
    assert counts.rows > 0

    with pytest.raises(ValueError, match="JSON-2 authenticates with an API key only"):
        OdooSystem.model_validate({"connector": "odoo", "base_url": BASE_URL, "database": DB,
                                   "protocol": "json2", "objects": ["projects"],
                                   "auth": {"password_env": "TIEOUT_TEST_ODOO_PASSWORD"}})  # fmt: skip
    with pytest.raises(ValueError, match="projects cannot be read from Odoo model 'sale.order'"):
        make_connector(tmp_path, sim_transport, models={"projects": "sale.order"})


def test_incremental_pull_returns_records_written_since(
    erp_demo: Path, sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    connector = make_connector(tmp_path, sim_transport)
    partners = demo_table(erp_demo, ODOO_PARTNERS)
    (since,) = query(f"SELECT quantile_disc(write_date, 0.5) FROM {partners}")[0]
    # The customer domain starts with '|': the write_date condition must AND the whole of it.
    _, customers = extract(connector, "customers", tmp_path, since=since)
    since_lines = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    _, lines = extract(connector, "time_entries", tmp_path, since=since_lines)
    connector.close()

    assert connector.incremental("customers") and connector.incremental("time_entries")
    expected = query(
        f"SELECT CAST(id AS VARCHAR) FROM {partners} WHERE (is_company OR customer_rank > 0) "
        f"AND write_date >= TIMESTAMPTZ '{since.isoformat()}' ORDER BY 1"
    )
    assert query(f"SELECT customer_id FROM '{customers}' ORDER BY 1") == expected
    assert 0 < len(expected) < query(f"SELECT count(*) FROM {partners}")[0][0]
    expected = query(
        f"SELECT CAST(id AS VARCHAR) FROM {demo_table(erp_demo, ODOO_TIMESHEETS)} "
        "WHERE project_id IS NOT NULL AND write_date >= TIMESTAMPTZ '2026-06-01 12:30:00+00' ORDER BY 1"
    )
    assert query(f"SELECT time_entry_id FROM '{lines}' ORDER BY 1") == expected and expected


def test_configured_domain_replaces_the_default(
    erp_demo: Path, sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    connector = make_connector(tmp_path, sim_transport, domains={"time_entries": []})
    counts, canonical = extract(connector, "time_entries", tmp_path)
    connector.close()

    # Every analytic line now, the two without a project included.
    assert counts.quarantined == 0
    assert query(f"SELECT count(*), count(project_id) + 2 FROM '{canonical}'") == [
        query(f"SELECT count(*), count(*) FROM {demo_table(erp_demo, ODOO_TIMESHEETS)}")[0]
    ]


def test_wrong_api_key_is_auth_failed_without_the_key(
    sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-odoo-key-7f3a9c"
    monkeypatch.setenv(KEY_ENV, wrong)
    connector = make_connector(tmp_path, sim_transport)
    with pytest.raises(AuthFailed) as caught:
        connector.extract("customers", RawSink(tmp_path / "raw"), since=None)
    connector.close()

    message = str(caught.value)
    assert wrong not in message and KEY not in message
    assert "'erp'" in message and DB in message and USER_ENV in message and KEY_ENV in message
    assert (caught.value.source_system, caught.value.entity) == ("erp", "customers")


def test_odoo_errors_become_extractor_errors_with_odoos_message(
    sim_transport: httpx.BaseTransport, credentials: None, tmp_path: Path
) -> None:
    connector = make_connector(tmp_path, sim_transport, domains={"projects": [["no_such_field", "=", 1]]})
    with pytest.raises(ExtractorError) as caught:
        connector.extract("projects", RawSink(tmp_path / "raw"), since=None)
    connector.close()

    assert not isinstance(caught.value, AuthFailed)
    message = str(caught.value)
    assert "Invalid field" in message and "no_such_field" in message
    assert "'erp'" in message and "projects" in message and KEY not in message
    assert (caught.value.source_system, caught.value.entity, caught.value.status_code) == (
        "erp",
        "projects",
        200,
    )


def test_access_denied_on_a_call_is_auth_failed(credentials: None, tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        if body["params"]["method"] == "authenticate":
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": 2})
        data = {"name": "odoo.exceptions.AccessDenied", "message": f"Access Denied for {KEY}", "debug": "..."}
        error = {"code": 200, "message": "Odoo Server Error", "data": data}
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": error})

    connector = make_connector(tmp_path, httpx.MockTransport(handler))
    with pytest.raises(AuthFailed) as caught:
        connector.extract("invoices", RawSink(tmp_path / "raw"), since=None)
    connector.close()

    message = str(caught.value)
    assert "Access Denied" in message and KEY not in message and "invoices" in message


def test_mappings_read_only_requested_fields() -> None:
    for model in (m for by_name in MODELS.values() for m in by_name.values()):
        exprs = [e.value if isinstance(e, Lookup) else e for e in model.mapping.fields.values()]
        paths = {m for e in exprs for m in re.findall(r"\$\.([A-Za-z_][A-Za-z0-9_]*)", str(e))}
        added = {"_sale_line"} if "so_line" in model.fields else set()  # the connector adds it
        assert paths <= set(model.fields) | added, (model.name, paths - set(model.fields))


# --- the mappings over real Odoo 19 records ------------------------------------------------------

# Spot values per object: record id -> canonical column -> value.
REAL_SPOTS: dict[str, dict[str, dict[str, Any]]] = {
    "customers": {
        "9": {"name": "Acme Corporation", "tax_id": "US12345673", "country": "US", "currency": "USD",
              "is_customer": True, "status": "active", "crm_id": None, "legal_entity_id": None},
        "73": {"name": "Foxglove Legal AG", "country": "DE", "currency": "EUR", "crm_id": "RS-C0009"},
    },
    "projects": {
        "103": {"code": "RS-P1090", "customer_id": "93", "billing_model": "time_and_materials",
                "status": "active", "currency": "USD", "legal_entity_id": "US", "psa_id": None},
        "2": {"code": None, "customer_id": None, "billing_model": "non_billable"},
        "10": {"code": "INT", "billing_model": "time_and_materials"},
    },
    "time_entries": {
        "1": {"project_id": "2", "project_code": None, "customer_id": None, "hours": Decimal("2.00"),
              "cost_amount": Decimal("200.00"), "billable": False, "invoice_id": None, "psa_id": None},
        "532": {"project_code": "RS-P1001", "customer_id": "160", "person_name": "Beth Evans",
                "billable": True, "invoice_id": "66", "cost_amount": Decimal("40.00"),
                "billing_period": "2026-02"},
    },
    "invoices": {
        "12": {"kind": "credit_note", "amount_total": Decimal("-11750.00"),
               "amount_due": Decimal("-11750.00"), "status": "posted", "number": "RINV/2026/00001"},
        "802": {"kind": "credit_note", "currency": "GBP", "amount_total": Decimal("-1143.06"),
                "amount_due": Decimal("-571.53")},
        "428": {"number": None, "status": "draft", "psa_number": "RS-P1038 2026-10",
                "amount_total": Decimal("5045.63"), "tax_amount": Decimal("658.13")},
    },
}  # fmt: skip


@pytest.mark.parametrize("obj", list(REAL_SPOTS))
def test_real_odoo19_records_map_without_quarantine(obj: str, tmp_path: Path) -> None:
    source = REAL / f"{odoo_model(obj).name}.json"
    if not source.exists():
        pytest.skip(f"real Odoo 19 records not found at {source}")
    dump = json.loads(source.read_text(encoding="utf-8"), parse_float=Decimal)
    # What the connector would ask for: the wanted fields the server has.
    fields = [f for f in odoo_model(obj).fields if f in dump["fields_meta"]]
    records = [{f: r[f] for f in fields} for r in dump["records"]]
    if obj == "customers":  # the file holds every partner; the connector's domain selects these
        records = [r for r in records if r["is_company"] or r["customer_rank"] > 0]
    sink = RawSink(tmp_path / "raw")
    sink.records(records)
    counts, canonical = build(sink, obj, tmp_path / "staged")

    assert counts.quarantined == 0 and counts.rows == len(records) > 0
    key = CANONICAL[obj].key
    with duckdb.connect() as con:
        con.execute("SET TimeZone='UTC'")
        for record_id, spots in REAL_SPOTS[obj].items():
            row = con.execute(
                f"SELECT {', '.join(spots)} FROM '{canonical}' WHERE {key} = ?", [record_id]
            ).fetchone()
            assert row is not None and dict(zip(spots, row, strict=True)) == spots, record_id
        if obj == "invoices":
            signs = con.execute(
                f"SELECT kind, bool_and(amount_total < 0), bool_and(amount_total > 0), count(*) "
                f"FROM '{canonical}' GROUP BY kind ORDER BY kind"
            ).fetchall()
            assert signs == [("credit_note", True, False, 16), ("invoice", False, True, 442)]
        nulls = con.execute(
            f"SELECT count(*) FILTER (WHERE updated_at IS NULL) FROM '{canonical}'"
        ).fetchone()
        assert nulls == (0,)


# --- timesheet lines priced by their sales order line -------------------------------------------


@contextlib.contextmanager
def _replay_transport(folder: Path) -> Iterator[httpx.BaseTransport]:
    from starlette.testclient import TestClient  # importing it warns (see pytestmark)

    from demo.odoo_replay import load_replay

    app, _ = create_app(load_replay(folder), database=DB, login=LOGIN, api_key=KEY)
    with TestClient(app, base_url=BASE_URL) as client:
        yield client._transport


def _sale_lines_from_invoice_lines() -> list[dict[str, Any]]:
    """Sales order lines as Odoo's read answers them, rebuilt from the dumped invoice lines that
    billed them (Odoo copies the order line's unit price and currency onto the invoice line)."""
    dump = json.loads((REAL / "account.move.line.json").read_text(encoding="utf-8"))
    lines: dict[int, dict[str, Any]] = {}
    for ml in dump["records"]:
        for sale_line in ml["sale_line_ids"]:
            lines.setdefault(sale_line, {"id": sale_line, "price_unit": ml["price_unit"],
                                         "currency_id": ml["currency_id"]})  # fmt: skip
    return sorted(lines.values(), key=lambda r: r["id"])


@pytest.mark.parametrize("with_sale_lines", [True, False])
def test_timesheet_lines_are_priced_at_their_sales_order_line(
    credentials: None, tmp_path: Path, caplog: pytest.LogCaptureFixture, with_sale_lines: bool
) -> None:
    if not REAL.exists():
        pytest.skip(f"real Odoo 19 records not found at {REAL}")
    folder = tmp_path / "odoo"
    shutil.copytree(REAL, folder)
    sale_lines = {r["id"]: r for r in _sale_lines_from_invoice_lines()} if with_sale_lines else {}
    if with_sale_lines:
        meta = {"id": {"string": "ID", "type": "integer"},
                "price_unit": {"string": "Unit Price", "type": "float"},
                "currency_id": {"string": "Currency", "type": "many2one", "relation": "res.currency"}}  # fmt: skip
        (folder / "sale.order.line.json").write_text(json.dumps({
            "model": "sale.order.line", "domain": [], "fields_meta": meta, "records": list(sale_lines.values()),
        }))  # fmt: skip
    with _replay_transport(folder) as transport:
        connector = make_connector(tmp_path, transport, page_size=2000)
        counts, canonical = extract(connector, "time_entries", tmp_path)
        connector.close()

    timesheets = json.loads((REAL / "account.analytic.line.json").read_text())["records"]
    expected = {}
    for r in timesheets:
        line = sale_lines.get(r["so_line"][0]) if r["so_line"] else None
        rate = None if line is None else Decimal(str(line["price_unit"])).quantize(Decimal("0.01"))
        # half away from zero, as Odoo rounds money
        amount = (
            None
            if rate is None
            else (Decimal(str(r["unit_amount"])) * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
        )
        expected[str(r["id"])] = (rate, amount, None if line is None else line["currency_id"][1])
    got = {i: (rate, amount, cur) for i, rate, amount, cur in
           query(f"SELECT time_entry_id, bill_rate, billable_amount, bill_currency FROM '{canonical}'")}  # fmt: skip
    assert counts.quarantined == 0 and got == expected
    priced = sum(1 for v in got.values() if v[0] is not None)
    assert (priced > 4000) if with_sale_lines else (priced == 0)
    assert ("sale.order.line is not readable" in caplog.text) is not with_sale_lines
