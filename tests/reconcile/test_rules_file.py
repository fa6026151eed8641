"""Bad rule files are refused before anything runs, naming the rule, the key path and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.ground_truth import RULES
from reconcile.rules import RuleError, RuleSet, load_rules
from reconcile.run import DEFAULT_RULES
from reconcile.validate import validate_rules

SYSTEMS = {"crm": {}, "psa": {}, "erp": {}}

CUSTOMERS, TOTALS, UNBILLED, ENTRIES = (
    "customers_crm_erp",
    "time_totals_psa_erp",
    "unbilled_time",
    "time_entries",
)

# One rule of each kind (two match rules), valid as written; every case below breaks one thing.
VALID = """
rules:
  - rule_id: customers_crm_erp
    kind: match
    source: {object: customers, system: crm, filter: "is_customer"}
    target: {object: customers, system: erp}
    system_of_record: crm
    match_key: {source: [customer_id], target: [crm_id]}
    lookups:
      - {name: crm_name, side: target, object: customers, system: crm, by: {crm_id: customer_id}, value: name}
    compare:
      name: {tolerance: {kind: normalized_text}}
      currency: {}
  - rule_id: time_totals_psa_erp
    kind: aggregate
    source: {object: time_entries, system: psa, filter: "approved"}
    target: {object: time_entries, system: erp}
    system_of_record: psa
    group_by: {source: [project_code, billing_period], target: [project_code, billing_period]}
    compare:
      hours: {source: "sum(hours)", target: "sum(hours)", tolerance: {kind: numeric, abs_tol: "0.10"}}
  - rule_id: unbilled_time
    kind: aged
    source: {object: time_entries, system: psa, filter: "billable AND invoice_id IS NULL"}
    system_of_record: psa
    aging: {date: spent_date, min_days: 30}
  - rule_id: time_entries
    kind: match
    source: {object: time_entries, system: psa}
    target: {object: time_entries, system: erp}
    system_of_record: psa
    match_key: {source: [time_entry_id], target: [psa_id]}
    compare:
      hours: {tolerance: {kind: numeric, abs_tol: "0.01"}}
      spent_date: {tolerance: {kind: date_window, days: 3}}
"""

Mutation = Callable[[dict[str, Any]], None]


def _walk(data: dict[str, Any], rule_id: str, path: str) -> tuple[Any, str | int]:
    """The container holding ``path`` (dotted, list indices as numbers) in rule ``rule_id``, and its last key."""
    [node] = [r for r in data["rules"] if r["rule_id"] == rule_id]
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parents:
        node = node[part]
    return node, last


def put(rule_id: str, path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node, last = _walk(data, rule_id, path)
        node[last] = value

    return mutate


def drop(rule_id: str, path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node, last = _walk(data, rule_id, path)
        del node[last]

    return mutate


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def load_and_validate(path: Path) -> RuleSet:
    ruleset = load_rules(path, systems=SYSTEMS)
    validate_rules(ruleset)
    return ruleset


def refusal(path: Path) -> str:
    with pytest.raises(RuleError) as err:
        load_and_validate(path)
    return str(err.value)


ALLOWED_OBJECTS = "allowed: customers, projects, time_entries, invoices"
ALLOWED_KINDS = "'exact', 'numeric', 'date_window', 'normalized_text', 'fuzzy_text'"

# (mutation, rule named, key path, further text the same line must hold)
CASES = [
    pytest.param(put(CUSTOMERS, "source.object", "contacts"), CUSTOMERS, "source.object",
                 ["'contacts'", ALLOWED_OBJECTS], id="unknown-object"),
    pytest.param(put(CUSTOMERS, "lookups.0.object", "contacts"), CUSTOMERS, "lookups.0.object",
                 [ALLOWED_OBJECTS], id="unknown-lookup-object"),
    pytest.param(put(CUSTOMERS, "target.system", "sap"), CUSTOMERS, "target.system",
                 ["unknown system 'sap'", "allowed: crm, psa, erp"], id="unknown-system"),
    pytest.param(put(CUSTOMERS, "lookups.0.system", "hubspot"), CUSTOMERS, "lookups.0.system",
                 ["unknown system 'hubspot'", "allowed: crm, psa, erp"], id="unknown-lookup-system"),
    pytest.param(put(CUSTOMERS, "kind", "reconcile"), CUSTOMERS, "kind",
                 ["'reconcile'", "'match', 'aggregate' or 'aged'"], id="unknown-rule-kind"),
    pytest.param(put(TOTALS, "compare.hours.tolerance.kind", "approx"), TOTALS, "compare.hours.tolerance",
                 ["'approx'", ALLOWED_KINDS], id="unknown-tolerance-kind"),
    pytest.param(put(CUSTOMERS, "report", ["missing"]), CUSTOMERS, "report.0",
                 ["'missing'", "'missing_in_target'", "'aggregate_mismatch'"], id="unknown-break-type"),
    pytest.param(put(TOTALS, "compare.hours.source", "sum(hourz)"), TOTALS, "compare.hours.source",
                 ['"hourz" not found', '"hours"'], id="unknown-column-in-compare"),
    pytest.param(put(CUSTOMERS, "match_key.source.0", "customer_no"), CUSTOMERS, "match_key.source.0",
                 ['"customer_no" not found'], id="unknown-column-in-match-key"),
    pytest.param(put(CUSTOMERS, "source.filter", "is_client"), CUSTOMERS, "source.filter",
                 ['"is_client" not found', '"is_customer"'], id="unknown-column-in-filter"),
    pytest.param(put(CUSTOMERS, "lookups.0.by", {"crm_ref": "customer_id"}), CUSTOMERS, "lookups.0.by.crm_ref",
                 ['"crm_ref" not found'], id="unknown-column-in-lookup"),
    pytest.param(put(UNBILLED, "source.filter", "person_name"), UNBILLED, "source.filter",
                 ["'person_name' is VARCHAR", "a filter must be true or false"], id="filter-not-boolean"),
    pytest.param(put(CUSTOMERS, "compare.name.tolerance", {"kind": "numeric", "abs_tol": "1"}), CUSTOMERS,
                 "compare.name.source", ["'name' is VARCHAR", "a numeric tolerance needs a number"],
                 id="numeric-tolerance-on-text"),
    pytest.param(put(ENTRIES, "compare.hours.tolerance", {"kind": "date_window", "days": 3}), ENTRIES,
                 "compare.hours.source", ["'hours' is DECIMAL(18,2)", "expected a date"],
                 id="date-window-on-number"),
    pytest.param(put(UNBILLED, "aging.date", "person_name"), UNBILLED, "aging.date",
                 ["'person_name' is VARCHAR", "expected a date"], id="aging-date-not-a-date"),
    pytest.param(put(TOTALS, "compare.hours.target", "hours"), TOTALS, "compare.hours.target",
                 ['"hours" must appear in the GROUP BY clause'], id="aggregate-compare-not-aggregated"),
    pytest.param(put(ENTRIES, "compare.hours.tolerance.abs_tol", "-0.01"), ENTRIES,
                 "compare.hours.tolerance.abs_tol", ["greater than or equal to 0", "'-0.01'"],
                 id="negative-abs-tol"),
    pytest.param(put(ENTRIES, "compare.hours.tolerance.rel_tol", "1"), ENTRIES,
                 "compare.hours.tolerance.rel_tol", ["less than 1", "'1'"], id="rel-tol-not-below-one"),
    pytest.param(put(ENTRIES, "compare.spent_date.tolerance.days", -1), ENTRIES,
                 "compare.spent_date.tolerance.days", ["greater than or equal to 0"], id="negative-date-window"),
    pytest.param(drop(CUSTOMERS, "match_key"), CUSTOMERS, "match_key",
                 ["a match rule needs match_key"], id="match-without-match-key"),
    pytest.param(drop(TOTALS, "group_by"), TOTALS, "group_by",
                 ["an aggregate rule needs group_by"], id="aggregate-without-group-by"),
    pytest.param(put(UNBILLED, "target", {"object": "time_entries", "system": "erp"}), UNBILLED, "no target",
                 ["an aged rule has only a source"], id="aged-with-target"),
    pytest.param(put(ENTRIES, "rule_id", CUSTOMERS), CUSTOMERS, "rules",
                 [f"rule_id '{CUSTOMERS}' appears twice"], id="duplicate-rule-id"),
    pytest.param(put(CUSTOMERS, "system_of_record", "psa"), CUSTOMERS, "system_of_record 'psa'",
                 ["must be the source ('crm') or the target ('erp')"], id="system-of-record-neither-side"),
    pytest.param(put(CUSTOMERS, "compare.name.tolerence", {"kind": "exact"}), CUSTOMERS,
                 "compare.name.tolerence", ["Extra inputs are not permitted"], id="unknown-key-in-rule"),
]  # fmt: skip


def test_the_valid_file_loads_and_validates(tmp_path: Path) -> None:
    ruleset = load_and_validate(write(tmp_path, yaml.safe_load(VALID)))

    assert [r.rule_id for r in ruleset.rules] == [CUSTOMERS, TOTALS, UNBILLED, ENTRIES]
    assert [r.kind for r in ruleset.rules] == ["match", "aggregate", "aged", "match"]


@pytest.mark.parametrize(("mutate", "rule_id", "key", "texts"), CASES)
def test_a_bad_rule_is_refused_naming_rule_and_key(
    tmp_path: Path, mutate: Mutation, rule_id: str, key: str, texts: list[str]
) -> None:
    data = yaml.safe_load(VALID)
    mutate(data)
    path = write(tmp_path, data)

    message = refusal(path)

    assert message.startswith(f"{path}: ")
    lines = [line for line in message.splitlines() if repr(rule_id) in line and key in line]
    assert lines, message
    for text in texts:
        assert any(text in line for line in lines), (text, message)


@pytest.mark.parametrize(
    ("mutate", "key", "text"),
    [
        pytest.param(lambda d: d.update(rulez=[]), "rulez", "Extra inputs are not permitted",
                     id="unknown-top-level-key"),
        pytest.param(lambda d: d.update(settings={"aging_bucket": [30]}), "settings.aging_bucket",
                     "Extra inputs are not permitted", id="unknown-settings-key"),
        pytest.param(lambda d: d.update(rules=[]), "rules", "List should have at least 1 item", id="no-rules"),
    ],
)  # fmt: skip
def test_a_bad_file_level_key_is_refused_naming_the_key(
    tmp_path: Path, mutate: Mutation, key: str, text: str
) -> None:
    data = yaml.safe_load(VALID)
    mutate(data)
    path = write(tmp_path, data)

    message = refusal(path)

    assert message.startswith(f"{path}: ")
    assert f"  {key}: {text}" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = yaml.safe_load(VALID)
    put(CUSTOMERS, "source.object", "contacts")(data)
    put(ENTRIES, "compare.hours.tolerance.abs_tol", "-1")(data)
    path = write(tmp_path, data)

    message = refusal(path)

    assert "2 problem(s)" in message
    assert f"rule '{CUSTOMERS}' (rules.0): source.object" in message
    assert f"rule '{ENTRIES}' (rules.3): compare.hours.tolerance.abs_tol" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("rules:\n  - rule_id: x\n    kind: [match\n", "not valid YAML", id="yaml-syntax-error"),
        pytest.param("- rule_id: x\n", "expected a mapping with 'settings' and 'rules', found list",
                     id="not-a-mapping"),
        pytest.param("", "found NoneType", id="empty-file"),
    ],
)  # fmt: skip
def test_an_unreadable_file_is_refused_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "my-rules.yaml"
    path.write_text(text, encoding="utf-8")

    message = refusal(path)

    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_missing_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "rules.yaml"

    assert refusal(path) == f"{path}: not found"


def test_the_shipped_catalogue_validates_for_the_demo_systems() -> None:
    ruleset = load_and_validate(DEFAULT_RULES)

    assert sorted(r.rule_id for r in ruleset.rules) == sorted(RULES)
    systems = {r.rule_id: (r.source.system, r.target_side.system) for r in ruleset.rules}
    assert systems == {rule_id: (source, target) for rule_id, (_, source, target) in RULES.items()}


def test_the_shipped_catalogue_is_refused_without_a_system_it_reads() -> None:
    with pytest.raises(RuleError) as err:
        load_rules(DEFAULT_RULES, systems={"crm": {}, "erp": {}})

    message = str(err.value)
    assert (
        "rule 'customers_crm_psa' (rules.1): target.system: unknown system 'psa'; allowed: crm, erp"
        in message
    )
    assert "rule 'unbilled_time'" in message
