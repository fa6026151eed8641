"""Mapping raw JSON records to a staged snapshot: casts, quarantine, duplicates, merges, drift."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from data.canonical import CANONICAL
from data.lake import Lake, SnapshotEntry
from extractors.errors import SchemaDrift
from extractors.mapping import Lookup, ObjectMapping, expand_paths
from extractors.staging import RawSink, dumps_record
from extractors.statuses import value_maps
from extractors.transform import SnapshotCounts, build_snapshot

MAPPING = ObjectMapping("invoices", {
    "invoice_id": "$.id", "number": "$.number", "currency": "$.currency", "amount_total": "$.amount",
    "issue_date": "$.issue_date", "status": Lookup("$.state", "harvest_invoice_state"),
    "legal_entity_id": Lookup("$.company", "legal_entities", strict=False), "updated_at": "$.updated_at",
})  # fmt: skip
GOOD = {"id": 1, "number": "A-1", "currency": "EUR", "amount": Decimal("1234567890123.45"), "issue_date": "2026-03-01",
        "state": "open", "company": "1", "updated_at": "2026-03-02T10:00:00Z"}  # fmt: skip


def _run(tmp: Path, records: list[dict[str, Any]], *, snapshot: str = "s1", previous: str | None = None,
         mapping: ObjectMapping = MAPPING) -> tuple[SnapshotCounts, Path]:  # fmt: skip
    staged = tmp / snapshot
    sink = RawSink(staged / "raw")
    sink.records(records)
    raw, is_json = sink.relation()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lineage = {"system": "'psa'", "snapshot_id": f"'{snapshot}'", "run_id": f"'r-{snapshot}'",
               "extracted_at": "TIMESTAMPTZ '2026-11-20 00:00:00+00'"}  # fmt: skip
    counts = build_snapshot(con, raw=raw, json_records=is_json, mapping=mapping, table=CANONICAL["invoices"],
                            value_maps=value_maps({"legal_entities": {"1": "US"}}), lineage=lineage,
                            staged=staged, previous=previous)  # fmt: skip
    return counts, staged


def _rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()


def test_values_are_cast_exactly_and_looked_up(tmp_path: Path) -> None:
    counts, staged = _run(tmp_path, [GOOD, {**GOOD, "id": 2, "company": "7", "state": "paid"}])
    assert (counts.received, counts.rows, counts.quarantined) == (2, 2, 0)
    rows = {r["invoice_id"]: r for r in _rows(staged / "canonical" / "data.parquet")}
    assert rows["1"]["amount_total"] == Decimal("1234567890123.45")
    assert (rows["1"]["status"], rows["2"]["status"]) == ("posted", "paid")
    assert (rows["1"]["legal_entity_id"], rows["2"]["legal_entity_id"]) == (
        "US",
        "7",
    )  # non-strict: passes through
    assert str(rows["1"]["issue_date"]) == "2026-03-01"
    assert list(rows["1"]) == list(CANONICAL["invoices"].names), "lineage comes from the manifest"
    assert counts.cursor == "2026-03-02 10:00:00+00"


def test_bad_records_are_quarantined_with_every_reason(tmp_path: Path) -> None:
    bad = [
        {**GOOD, "id": 2, "amount": "12,50"},
        {**GOOD, "id": 3, "state": "sent", "issue_date": "2026-02-30"},
        {**GOOD, "id": None},
    ]
    counts, staged = _run(tmp_path, [GOOD, *bad])
    assert (counts.rows, counts.quarantined) == (1, 3)
    reasons = {r["record_key"]: r["reason"] for r in _rows(staged / "quarantine" / "data.parquet")}
    assert reasons["2"] == "amount_total: cannot read '12,50' as DECIMAL(18,2)"
    assert "status: unknown value 'sent' (map harvest_invoice_state)" in reasons["3"]
    assert "issue_date: cannot read '2026-02-30' as DATE" in reasons["3"]
    assert reasons[None] == "invoice_id: missing"
    records = [r["record"] for r in _rows(staged / "quarantine" / "data.parquet")]
    assert all(r and r.startswith("{") for r in records)


def test_a_repeated_key_keeps_the_last_record_and_quarantines_the_earlier(tmp_path: Path) -> None:
    counts, staged = _run(tmp_path, [GOOD, {**GOOD, "number": "A-1-bis"}])
    assert (counts.rows, counts.quarantined) == (1, 1)
    assert _rows(staged / "canonical" / "data.parquet")[0]["number"] == "A-1-bis"
    assert "superseded" in _rows(staged / "quarantine" / "data.parquet")[0]["reason"]


def _published(lake: Lake, staged: Path, snapshot: str, mode: str) -> str:
    entry = SnapshotEntry("psa", "invoices", snapshot, f"r-{snapshot}", mode, "2026-11-20T00:00:00+00:00",
                          "2026-11-20T00:00:01+00:00", 0, 0, None)  # fmt: skip
    lake.publish(staged, entry)
    return lake.snapshot_query(entry)


def test_an_incremental_pull_merges_onto_the_previous_snapshot(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "home")
    _, first = _run(tmp_path, [GOOD, {**GOOD, "id": 2}], snapshot="s1")
    changed = {**GOOD, "id": 2, "state": "paid", "updated_at": "2026-03-05T00:00:00Z"}
    previous = _published(lake, first, "s1", "full")
    counts, second = _run(tmp_path, [changed, {**GOOD, "id": 3}], snapshot="s2", previous=previous)
    assert (counts.received, counts.rows, counts.carried) == (2, 3, 1)
    rows = {r["invoice_id"]: r for r in _rows(second / "canonical" / "data.parquet")}
    assert rows["2"]["status"] == "paid" and rows["2"]["run_id"] == "r-s2"
    assert rows["1"]["run_id"] == "r-s1"
    assert list(rows["1"]) == ["run_id", "extracted_at", *CANONICAL["invoices"].names]
    # carried over again: the run comes from the incremental snapshot's rows, not its manifest entry
    previous = _published(lake, second, "s2", "incremental")
    counts, third = _run(tmp_path, [{**GOOD, "id": 4}], snapshot="s3", previous=previous)
    runs = {r["invoice_id"]: r["run_id"] for r in _rows(third / "canonical" / "data.parquet")}
    assert (counts.carried, runs) == (3, {"1": "r-s1", "2": "r-s2", "3": "r-s2", "4": "r-s3"})


def test_a_field_missing_from_every_record_is_schema_drift(tmp_path: Path) -> None:
    renamed = [{("invoice_no" if k == "id" else k): v for k, v in GOOD.items()}]
    with pytest.raises(SchemaDrift, match=r"\$\.id \(for invoice_id\) missing from all 1 records"):
        _run(tmp_path, renamed)


def test_a_pull_whose_every_record_is_refused_fails(tmp_path: Path) -> None:
    with pytest.raises(SchemaDrift, match="every one of the 2 records was refused"):
        _run(tmp_path, [{**GOOD, "state": "x"}, {**GOOD, "id": 2, "state": "y"}])


def test_records_filtered_by_where_stay_raw_only(tmp_path: Path) -> None:
    mapping = MAPPING.overridden(where="$.state <> 'draft'")
    counts, _ = _run(tmp_path, [GOOD, {**GOOD, "id": 2, "state": "draft"}], mapping=mapping)
    assert (counts.received, counts.selected, counts.rows) == (2, 1, 1)


def test_raw_json_keeps_every_digit_and_paths_expand() -> None:
    assert dumps_record({"a": Decimal("0.10"), "b": [True, None]}) == '{"a":0.10,"b":[true,null]}'
    assert expand_paths("$.client.id || $.partner_id[0]") == (
        "json_extract_string(record, '$.client.id') || json_extract_string(record, '$.partner_id[0]')")  # fmt: skip


def test_harvest_invoice_net_is_the_sum_of_its_lines(tmp_path: Path) -> None:
    from extractors.harvest import MAPPINGS

    base = {"id": 9, "number": "H-9", "currency": "USD", "state": "open", "issue_date": "2026-03-01",
            "period_start": "2026-02-01", "updated_at": "2026-03-02T10:00:00Z", "client": {"id": 5}}  # fmt: skip
    lines = [{"amount": "100.10"}, {"amount": "21.02"}]
    records = [
        {**base, "amount": "131.12", "tax_amount": "10.00", "tax2_amount": None, "discount_amount": "0.00",
         "line_items": lines},
        {**base, "id": 10, "amount": "126.12", "tax_amount": "5.00", "tax2_amount": "5.00",
         "discount_amount": "5.00", "line_items": lines},
        {**base, "id": 11, "amount": "50.00", "tax_amount": "0.00", "line_items": []},  # total without lines
    ]  # fmt: skip
    _, staged = _run(tmp_path, records, mapping=MAPPINGS["invoices"])
    rows = {r["invoice_id"]: r for r in _rows(staged / "canonical" / "data.parquet")}
    got = {k: (r["amount_untaxed"], r["tax_amount"], r["amount_total"]) for k, r in rows.items()}
    assert got == {
        "9": (Decimal("121.12"), Decimal("10.00"), Decimal("131.12")),
        "10": (Decimal("116.12"), Decimal("10.00"), Decimal("126.12")),
        "11": (Decimal("0.00"), Decimal("0.00"), Decimal("50.00")),  # the invoices suite's sum check flags it
    }
