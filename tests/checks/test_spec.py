"""Suite files: the project's suites load, and a typo is refused naming the file, the suite and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.spec import CHECK_KEYS, DEFAULT_SUITES, SuiteError, load_suites
from data.canonical import OBJECTS

GOOD = """
object: time_entries
expect:
  - {column: time_entry_id, unique: true}
  - {column: hours, between: [0, 24]}
systems:
  erp:
    skip: [hours_in_range]
    expect:
      - {column: psa_id, not_null: true}
"""


def _suite(tmp_path: Path, text: str, name: str = "time_entries.yaml") -> Path:
    folder = tmp_path / "suites"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_the_project_suites_cover_every_object_and_load() -> None:
    suites = load_suites(DEFAULT_SUITES, {"crm": {}, "psa": {}, "erp": {}})
    assert sorted(suites) == sorted(OBJECTS)
    time_entries = [e.name for e in suites["time_entries"].expectations("psa")]
    assert {"time_entry_id_unique", "hours_in_range", "currency_in_set", "spent_date_in_range"} <= set(
        time_entries
    )
    assert "number_not_null" in [e.name for e in suites["invoices"].expectations("psa")]
    assert "number_not_null" not in [e.name for e in suites["invoices"].expectations("erp")]


def test_overrides_skip_and_add_per_system(tmp_path: Path) -> None:
    suite = load_suites(_suite(tmp_path, GOOD))["time_entries"]
    assert [e.name for e in suite.expectations("psa")] == ["time_entry_id_unique", "hours_in_range"]
    assert [e.name for e in suite.expectations("erp")] == ["time_entry_id_unique", "psa_id_not_null"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("  - {column: hours, betwen: [0, 24]}", "expect.2.betwen: unknown key"),
        ("  - {column: hourz, between: [0, 24]}", "expect.2: unknown column 'hourz' of time_entries"),
        ("  - {column: hours, between: [24, 0]}", "between: min 24 is above max 0"),
        ("  - {column: hours, between: [zero, 24]}", "expect.2.between.0"),
        (
            "  - {column: currency, between: [0, 1]}",
            "between needs a DECIMAL(18,2) column; currency is VARCHAR",
        ),
        ("  - {column: hours, in_set: ['1']}", "in_set needs a VARCHAR column"),
        ("  - {column: currency, in_set: iso9999}", "in_set: a list of values or 'iso4217'"),
        ("  - {column: spent_date, date_between: [founded, tomorrow]}", "'tomorrow' is not an ISO date"),
        ("  - {column: hours, not_null: true, unique: true}", "exactly one check key"),
        ("  - {column: project_id, unique: true}", "unique columns must include the object's key"),
        ("  - {column: billing_period, matches: '(unclosed'}", "matches: not a regular expression"),
        ("  - {column: hours, between: [0, 24]}", "ids used twice: hours_in_range"),
    ],
)
def test_a_typo_is_refused_with_file_suite_and_key(tmp_path: Path, line: str, says: str) -> None:
    text = GOOD.replace("systems:", line + "\nsystems:")
    folder = _suite(tmp_path, text)
    with pytest.raises(SuiteError) as err:
        load_suites(folder)
    message = str(err.value)
    assert str(folder / "time_entries.yaml") in message
    assert "suite 'time_entries'" in message
    assert says in message


def test_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    folder = _suite(tmp_path, GOOD.replace("unique: true", "uniq: true"))
    with pytest.raises(SuiteError, match="expect.0.uniq: unknown key") as err:
        load_suites(folder)
    assert all(k in str(err.value) for k in CHECK_KEYS)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD.replace("object: time_entries", "object: timesheets"), "unknown object 'timesheets'"),
        (GOOD.replace("skip: [hours_in_range]", "skip: [hours_between]"), "systems.erp.skip: hours_between"),
        ("object: time_entries\nexpect: [", "not valid YAML"),
        ("- just a list", "expected a mapping"),
    ],
)
def test_bad_suite_structure_is_refused(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(SuiteError, match=says):
        load_suites(_suite(tmp_path, text))


def test_an_override_for_an_unknown_system_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"systems.erp: unknown system; systems: crm, psa"):
        load_suites(_suite(tmp_path, GOOD), {"crm": {}, "psa": {}})


def test_two_files_for_one_object_and_an_empty_folder_are_refused(tmp_path: Path) -> None:
    folder = _suite(tmp_path, GOOD)
    (folder / "more.yaml").write_text(GOOD)
    with pytest.raises(SuiteError, match="also defined in"):
        load_suites(folder)
    with pytest.raises(SuiteError, match="no suite files"):
        load_suites(tmp_path / "empty")
