"""Odoo domains and orders → SQL (demo.odoo_domain): exact SQL, semantics on DuckDB, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from demo.odoo_domain import OdooError, domain_to_sql, mentions, normalize, order_to_sql

FIELDS = {
    "id": "integer", "name": "char", "ref": "char", "active": "boolean", "partner_id": "many2one",
    "amount": "monetary", "hours": "float", "rank": "integer", "date": "date",
    "write_date": "datetime", "state": "selection",
}  # fmt: skip

ROWS = """
    (1, 'Acme Corp', 'RS-C0001', true,  10,   'Acme', 100.00, 1.5,  3,    DATE '2026-01-01',
     TIMESTAMPTZ '2026-01-01 10:00:00+00', 'posted'),
    (2, 'Ämber Ltd', NULL,       true,  11,   'Beta', NULL,   0.0,  0,    DATE '2026-01-15',
     TIMESTAMPTZ '2026-01-15 23:59:59+00', 'draft'),
    (3, 'beta gmbh', 'RS-C0003', false, NULL, NULL,   -5.00,  NULL, NULL, NULL, NULL, NULL),
    (4, 'Gamma_X',   '',         NULL,  10,   'Acme', 0.00,   2.0,  1,    DATE '2026-02-01',
     TIMESTAMPTZ '2026-02-01 00:00:00+00', 'posted')
"""
ALL = [1, 2, 3, 4]


@pytest.fixture(scope="module")
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE t (id BIGINT, name VARCHAR, ref VARCHAR, active BOOLEAN, partner_id BIGINT,"
        " partner_id__display VARCHAR, amount DECIMAL(18, 2), hours DECIMAL(18, 2), rank BIGINT,"
        " date DATE, write_date TIMESTAMPTZ, state VARCHAR)"
    )
    con.execute(f"INSERT INTO t VALUES {ROWS}")
    yield con
    con.close()


def matching(conn: duckdb.DuckDBPyConnection, domain: Any, order: str | None = None) -> list[int]:
    where, params = domain_to_sql(domain, FIELDS, model="x.model")
    order_by = order_to_sql(order, FIELDS, model="x.model")
    rows = conn.execute(f"SELECT id FROM t WHERE {where} ORDER BY {order_by}", params).fetchall()
    return [r[0] for r in rows]


# (case, domain, ids matched): Odoo 19's semantics, including its NULL handling.
SEMANTICS: list[tuple[str, Any, list[int]]] = [
    ("empty domain", [], ALL),
    ("None domain", None, ALL),
    ("true leaf", [[1, "=", 1]], ALL),
    ("false leaf", [[0, "=", 1]], []),
    ("char = False is NULL only", [["ref", "=", False]], [2]),
    ("char != False", [["ref", "!=", False]], [1, 3, 4]),
    ("None value is False", [["ref", "=", None]], [2]),
    ("char != value keeps NULL", [["ref", "!=", "RS-C0001"]], [2, 3, 4]),
    ("in with False", [["ref", "in", ["RS-C0001", False]]], [1, 2]),
    ("not in with False", [["ref", "not in", ["RS-C0001", False]]], [3, 4]),
    ("not in keeps NULL", [["ref", "not in", ["RS-C0001"]]], [2, 3, 4]),
    ("in scalar is wrapped", [["ref", "in", "RS-C0003"]], [3]),
    ("in empty", [["id", "in", []]], []),
    ("not in empty", [["id", "not in", []]], ALL),
    ("= list is in", [["name", "=", ["Acme Corp", "Gamma_X"]]], [1, 4]),
    ("!= empty list is set", [["ref", "!=", []]], [1, 3, 4]),
    ("selection in", [["state", "in", ["posted"]]], [1, 4]),
    ("ilike wraps and ignores case", [["name", "ilike", "ACME"]], [1]),
    ("like is case sensitive", [["name", "like", "acme"]], []),
    ("not ilike keeps NULL", [["ref", "not ilike", "c0001"]], [2, 3, 4]),
    ("=like takes the pattern", [["name", "=like", "Gamma\\_%"]], [4]),
    ("=ilike", [["ref", "=ilike", "rs-c%"]], [1, 3]),
    ("ilike empty is TRUE", [["ref", "ilike", ""]], ALL),
    ("not ilike empty is FALSE", [["ref", "not ilike", ""]], []),
    ("=like empty is unset", [["ref", "=like", ""]], [2]),
    ("ilike on a number", [["rank", "ilike", "3"]], [1]),
    ("=? falsy is TRUE", [["ref", "=?", False]], ALL),
    ("=? value", [["ref", "=?", "RS-C0001"]], [1]),
    ("many2one id", [["partner_id", "=", 10]], [1, 4]),
    ("many2one unset", [["partner_id", "=", False]], [3]),
    ("many2one != id keeps unset", [["partner_id", "!=", 10]], [2, 3]),
    ("many2one in ids", [["partner_id", "in", [11, False]]], [2, 3]),
    ("many2one name search", [["partner_id", "ilike", "acm"]], [1, 4]),
    ("many2one not ilike", [["partner_id", "not ilike", "acm"]], [2, 3]),
    ("many2one = name", [["partner_id", "=", "Beta"]], [2]),
    ("many2one in names and ids", [["partner_id", "in", ["Beta", 10]]], [1, 2, 4]),
    ("many2one != name", [["partner_id", "!=", "Beta"]], [1, 3, 4]),
    ("many2one ilike empty is set", [["partner_id", "ilike", ""]], [1, 2, 4]),
    ("boolean = False includes NULL", [["active", "=", False]], [3, 4]),
    ("boolean = True", [["active", "=", True]], [1, 2]),
    ("boolean != True", [["active", "!=", True]], [3, 4]),
    ("boolean in both", [["active", "in", [True, False]]], ALL),
    ("boolean from string", [["active", "=", "true"]], [1, 2]),
    ("money = False is NULL or 0", [["amount", "=", False]], [2, 4]),
    ("money = 0 is NULL or 0", [["amount", "=", 0]], [2, 4]),
    ("money != False", [["amount", "!=", False]], [1, 3]),
    ("money < 5 counts NULL as 0", [["amount", "<", 5]], [2, 3, 4]),
    ("money > 0 excludes NULL", [["amount", ">", 0]], [1]),
    ("money >= 0", [["amount", ">=", 0]], [1, 2, 4]),
    ("float = False", [["hours", "=", False]], [2, 3]),
    ("integer > 0", [["rank", ">", 0]], [1, 4]),
    ("id >", [["id", ">", 2]], [3, 4]),
    ("date >=", [["date", ">=", "2026-01-15"]], [2, 4]),
    ("date <", [["date", "<", "2026-01-15"]], [1]),
    ("date = False", [["date", "=", False]], [3]),
    ("date > False is FALSE", [["date", ">", False]], []),
    ("datetime <= day covers the day", [["write_date", "<=", "2026-01-15"]], [1, 2]),
    ("datetime > day starts next day", [["write_date", ">", "2026-01-15"]], [4]),
    ("datetime >= timestamp", [["write_date", ">=", "2026-01-15 12:00:00"]], [2, 4]),
    ("datetime < timestamp", [["write_date", "<", "2026-02-01 00:00:00"]], [1, 2]),
    ("implicit and", [["partner_id", "=", 10], ["amount", ">", 0]], [1]),
    ("or", ["|", ["ref", "=", False], ["partner_id", "=", False]], [2, 3]),
    ("not", ["!", ["ref", "=", "RS-C0001"]], [2, 3, 4]),
    ("not inequality keeps NULL", ["!", ["amount", ">", 0]], [2, 3, 4]),
    ("nested", ["&", "!", ["active", "=", True], "|", ["id", "=", 3], ["id", "=", 4]], [3, 4]),
    ("or of ands", ["|", "&", ["id", ">", 1], ["ref", "=", False], ["id", "=", 1]], [1, 2]),
    ("and after or", ["|", ["id", "=", 1], ["id", "=", 2], ["name", "ilike", "acme"]], [1]),
    ("upper-case operator", [["ref", "ILIKE", "c0003"]], [3]),
    ("deprecated <>", [["ref", "<>", "RS-C0001"]], [2, 3, 4]),
]


@pytest.mark.parametrize(("case", "domain", "ids"), SEMANTICS, ids=[c[0] for c in SEMANTICS])
def test_domain_matches_what_odoo_matches(
    conn: duckdb.DuckDBPyConnection, case: str, domain: Any, ids: list[int]
) -> None:
    assert matching(conn, domain) == ids


# (case, domain, SQL, params): the exact translation of a few shapes.
SQL_CASES: list[tuple[str, Any, str, list[Any]]] = [
    ("empty", [], "TRUE", []),
    ("is null", [["ref", "=", False]], '"ref" IS NULL', []),
    ("not in keeps null", [["ref", "!=", "X"]], '("ref" NOT IN (?) OR "ref" IS NULL)', ["X"]),
    ("in", [["id", "in", [1, 2]]], '"id" IN (?, ?)', [1, 2]),
    ("numeric null as 0", [["amount", "<", 5]], '("amount" < ? OR "amount" IS NULL)', [5.0]),
    ("ilike", [["name", "ilike", "ac"]], "\"name\" ILIKE ? ESCAPE '\\'", ["%ac%"]),
    ("many2one by name", [["partner_id", "=", "A"]], '"partner_id__display" IN (?)', ["A"]),
    ("boolean", [["active", "=", False]], '"active" IS NOT TRUE', []),
    ("not", ["!", ["ref", "=", "X"]], '(("ref" IN (?)) IS NOT TRUE)', ["X"]),
    (
        "params in reading order",
        ["|", ["ref", "=", "a"], ["name", "=", "b"], ["rank", ">", 1]],
        '(("ref" IN (?) OR "name" IN (?)) AND "rank" > ?)',
        ["a", "b", 1],
    ),
]


@pytest.mark.parametrize(("case", "domain", "sql", "params"), SQL_CASES, ids=[c[0] for c in SQL_CASES])
def test_domain_sql(case: str, domain: Any, sql: str, params: list[Any]) -> None:
    assert domain_to_sql(domain, FIELDS, model="x.model") == (sql, params)


# (case, domain, Odoo exception name, message pattern)
INVALID: list[tuple[str, Any, str, str]] = [
    ("unknown field", [["foo", "=", 1]], "builtins.ValueError",
     r"^Invalid field x\.model\.foo in condition \('foo', '=', 1\)$"),
    ("unknown operator", [["name", "~", "a"]], "builtins.ValueError",
     r"^Invalid operator in condition \('name', '~', 'a'\)$"),
    ("missing operand", ["|", ["name", "=", "a"]], "builtins.ValueError",
     r"^Domain\(\) malformed domain"),
    ("bad item", ["x"], "builtins.ValueError", r"^Domain\(\) invalid item in domain: 'x'$"),
    ("not a list", "name = 1", "builtins.TypeError", r"invalid argument type for domain"),
    ("bad constant leaf", [[5, "=", 1]], "builtins.TypeError", r"Domain\(\) invalid arguments"),
    ("empty field", [["", "=", 1]], "builtins.TypeError", r"^Empty field name in condition"),
    ("dotted path", [["partner_id.ref", "=", "x"]], "builtins.ValueError", r"Not supported"),
    ("child_of", [["partner_id", "child_of", 1]], "builtins.ValueError", r"Not supported"),
    ("relational inequality by name", [["partner_id", ">", "Acme"]], "builtins.TypeError",
     r"^Inequality not supported for relational field using a string"),
    ("=like needs a string", [["name", "=like", 5]], "builtins.TypeError",
     r"^The pattern to match must be a string"),
    ("bad date", [["date", "=", "2026-13-45"]], "builtins.ValueError", r"Invalid isoformat string"),
    ("bad integer", [["rank", "=", "abc"]], "builtins.ValueError", r"invalid literal for int"),
    ("list in a list", [["name", "in", [["a"]]]], "builtins.TypeError", r"^Invalid value"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "domain", "name", "pattern"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_domain_raises_odoos_error(case: str, domain: Any, name: str, pattern: str) -> None:
    with pytest.raises(OdooError, match=pattern) as info:
        domain_to_sql(domain, FIELDS, model="x.model")
    assert info.value.name == name
    assert isinstance(info.value, ValueError)


ORDERS: list[tuple[Any, str]] = [
    (None, '"id" ASC NULLS LAST'),
    ("", '"id" ASC NULLS LAST'),
    ("id desc", '"id" DESC NULLS FIRST'),
    ("write_date asc, id", '"write_date" ASC NULLS LAST, "id" ASC NULLS LAST'),
    ("name DESC", '"name" DESC NULLS FIRST, "id" ASC NULLS LAST'),
    ("ref asc nulls first", '"ref" ASC NULLS FIRST, "id" ASC NULLS LAST'),
    ("partner_id desc", '"partner_id__display" DESC NULLS FIRST, "id" ASC NULLS LAST'),
]


@pytest.mark.parametrize(("order", "sql"), ORDERS)
def test_order_sql(order: Any, sql: str) -> None:
    assert order_to_sql(order, FIELDS, model="x.model") == sql


def test_order_sorts_nulls_like_postgres(conn: duckdb.DuckDBPyConnection) -> None:
    assert matching(conn, [], "amount desc") == [2, 1, 4, 3]
    assert matching(conn, [], "amount") == [3, 4, 1, 2]
    assert matching(conn, [], "partner_id, id desc") == [4, 1, 2, 3]


@pytest.mark.parametrize(
    ("order", "name", "pattern"),
    [
        ("name; DROP TABLE t", "odoo.exceptions.UserError", r'^Invalid "order" specified'),
        ("id,", "odoo.exceptions.UserError", r'^Invalid "order" specified'),
        ("name sideways", "odoo.exceptions.UserError", r'^Invalid "order" specified'),
        (["id"], "odoo.exceptions.UserError", r'^Invalid "order" specified'),
        ("foo desc", "builtins.ValueError", r"^Invalid field 'foo' on model 'x.model'$"),
    ],
)
def test_invalid_order(order: Any, name: str, pattern: str) -> None:
    with pytest.raises(OdooError, match=pattern) as info:
        order_to_sql(order, FIELDS, model="x.model")
    assert info.value.name == name


A, B, C = ["a", "=", 1], ["b", "=", 2], ["c", "=", 3]


@pytest.mark.parametrize(
    ("domain", "normalized"),
    [
        ([], []),
        ([A], [A]),
        ([A, B], ["&", A, B]),
        ([A, B, C], ["&", "&", A, B, C]),
        (["|", A, B, C], ["&", "|", A, B, C]),
        (["!", A, B], ["&", "!", A, B]),
    ],
)
def test_normalize_makes_implicit_and_explicit(domain: list[Any], normalized: list[Any]) -> None:
    assert normalize(domain) == normalized


def test_mentions() -> None:
    assert mentions([["active", "=", False]], "active")
    assert mentions(["|", A, ["active.x", "=", 1]], "active")
    assert not mentions([A, ["inactive", "=", 1]], "active")
    assert not mentions(None, "active")
