"""Fault files: a good one loads, a bad one is refused naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.faults import FaultFileError, FaultSpec, FaultState, load_faults

INVALID = [
    ("hubspot: {extra_429: -1}\n", "extra_429"),
    ("harvest: {error_status: 404}\n", "error_status"),
    ("odoo: {slow: 3}\n", "slow"),
    ("salesforce: {extra_429: 1}\n", "unknown simulator 'salesforce'"),
    ("- extra_429\n", "expected a mapping"),
    ("harvest: {extra_429: [\n", "cannot read fault file"),
]


def test_fault_file_loads_per_simulator(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text("harvest:\n  extra_429: 2\n  error_5xx_pages: [2]\nodoo:\n"
                    "  rename_fields: {account.analytic.line: {unit_amount: hours}}\n")  # fmt: skip
    faults = load_faults(path)
    assert faults["harvest"].extra_429 == 2 and faults["harvest"].error_5xx_pages == [2]
    assert faults["odoo"].rename_fields == {"account.analytic.line": {"unit_amount": "hours"}}


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_bad_fault_file_is_refused_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(text)
    with pytest.raises(FaultFileError, match=message) as err:
        load_faults(path)
    assert str(path) in str(err.value)


def test_counters_are_consumed_one_request_at_a_time() -> None:
    state = FaultState(FaultSpec(extra_429=2, error_5xx=1, slow_requests=1, slow_s=0.5))
    assert [state.take_429() for _ in range(3)] == [True, True, False]
    assert [state.take_5xx() for _ in range(2)] == [True, False]
    assert [state.take_delay_s() for _ in range(2)] == [0.5, 0.0]
    reshaped = FaultState(FaultSpec(drop_fields={"clients": ["currency"]},
                                    rename_fields={"clients": {"name": "client_name"}}))  # fmt: skip
    assert reshaped.reshape("clients", {"id": 1, "name": "A", "currency": "EUR"}) == {
        "id": 1, "client_name": "A"}  # fmt: skip
    assert reshaped.reshape("projects", {"id": 1}) == {"id": 1}
