"""Breaks in the lake: one immutable folder per run; per category, pointers to the latest runs.

Layout (``category`` is ``reconciliation`` or ``data_quality``)::

    lake/breaks/<category>/latest.json               the latest live run: {"run_id"}
    lake/breaks/<category>/published.json            the run published last, live or replay: {"run_id"}
    lake/breaks/<category>/<run_id>/breaks.parquet   the run's breaks (BREAK_COLUMNS)
    lake/breaks/<category>/<run_id>/ledger.parquet   every break ever seen up to this run (LEDGER_COLUMNS)
    lake/breaks/<category>/<run_id>/rules.parquet    per-rule figures of the run (RULE_RUN_COLUMNS)
    lake/breaks/reconciliation/<run_id>/summary.parquet  a live run's breaks added up (run_summary_sql)
    lake/breaks/<category>/<run_id>/run.json         the run: moment, business date, input snapshots

A run writes its folder under ``lake/.staging``, renames it into place, and (for a live run, not
an ``--as-of`` replay) replaces ``latest.json`` atomically, so readers see the previous run or the
new one, complete. Every run then replaces ``published.json``, which tells the warehouse that a
run (a replay too) was published since it was built. Folders are kept: they are the history
that ``first_seen`` and the month-end evidence come from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from data.lake import Lake, atomic_write, fsync_dir, fsync_tree
from data.sql import sql_literal

__all__ = [
    "BREAK_COLUMNS",
    "CATEGORIES",
    "CHECK_RESULT_COLUMNS",
    "LEDGER_COLUMNS",
    "PARQUET",
    "RULE_RUN_COLUMNS",
    "BreakStore",
    "BreakViews",
    "break_key",
    "break_views",
    "empty_select",
    "live_runs_table",
    "published_key",
    "rule_runs_table",
    "run_summary_sql",
]

CATEGORIES = ("reconciliation", "data_quality")
#: COPY options of every file of a break run.
PARQUET = "(FORMAT parquet, COMPRESSION zstd)"

#: The ``breaks`` view: (name, DuckDB type, meaning).
BREAK_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("break_id", "VARCHAR", "stable id: hash of rule, break type, field and match key values"),
    ("rule_id", "VARCHAR", "the reconciliation rule (or `suite.expectation` for data quality)"),
    ("category", "VARCHAR", "`reconciliation` or `data_quality`"),
    ("break_type", "VARCHAR", "`missing_in_target`, `missing_in_source`, `field_mismatch`, `duplicate`, "
                              "`orphan`, `aggregate_mismatch`, `aged` (data quality: its own types)"),
    ("object", "VARCHAR", "canonical object of the rule's source"),
    ("source_system", "VARCHAR", "the rule's source system (its system of record side)"),
    ("target_system", "VARCHAR", "the rule's target system"),
    ("source_id", "VARCHAR", "the record's id in the source system (group key for aggregates)"),
    ("target_id", "VARCHAR", "the record's id in the target system"),
    ("match_key", "VARCHAR", "match key values (`|`-joined) or the record id when it has none"),
    ("legal_entity_id", "VARCHAR", "legal entity of the record"),
    ("customer", "VARCHAR", "customer name"),
    ("project_code", "VARCHAR", "project code"),
    ("invoice_cycle", "VARCHAR", "billing period `YYYY-MM`"),
    ("field", "VARCHAR", "compared field (field and aggregate mismatches)"),
    ("source_value", "VARCHAR", "the source's value, as text"),
    ("target_value", "VARCHAR", "the target's value, as text"),
    ("amount", "DECIMAL(18,2)", "value of the break in `currency`"),
    ("currency", "VARCHAR", "ISO 4217 currency of `amount`"),
    ("amount_at_risk", "DECIMAL(18,2)", "`amount` in the reporting currency (FX rate of the invoice "
                                        "cycle's month); NULL when no rate is known"),
    ("reporting_currency", "VARCHAR", "ISO 4217 reporting currency of `amount_at_risk`"),
    ("severity", "VARCHAR", "`high`, `medium` or `low`, from amount at risk and age"),
    ("age_days", "INTEGER", "days since the record's date (aged breaks) or since first seen"),
    ("aging_bucket", "VARCHAR", "`0-30`, `31-60`, `61-90` or `90+` (bounds from the rules' settings)"),
    ("suggestions", "VARCHAR", "JSON list of fuzzy match candidates `{id, name, score}` (unmatched "
                               "customers), or NULL"),
    ("first_seen", "TIMESTAMPTZ", "the run that first found it (kept when it clears and returns)"),
    ("last_seen", "TIMESTAMPTZ", "the latest run that found it"),
    ("reopened_at", "TIMESTAMPTZ", "when it last came back after being cleared, or NULL"),
    ("run_id", "VARCHAR", "the run that found it"),
)  # fmt: skip

#: Every break ever seen up to a run; ``cleared_at`` is set while it is absent.
LEDGER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("break_id", "VARCHAR", "as in `breaks`"),
    ("rule_id", "VARCHAR", "as in `breaks`"),
    ("break_type", "VARCHAR", "as in `breaks`"),
    ("source_id", "VARCHAR", "as in `breaks` (as last seen)"),
    ("target_id", "VARCHAR", "as in `breaks` (as last seen)"),
    ("field", "VARCHAR", "as in `breaks`"),
    ("legal_entity_id", "VARCHAR", "as in `breaks` (as last seen)"),
    ("first_seen", "TIMESTAMPTZ", "first run that found it"),
    ("last_seen", "TIMESTAMPTZ", "latest run that found it"),
    ("cleared_at", "TIMESTAMPTZ", "first run that no longer found it (NULL while it is open)"),
    ("reopened_at", "TIMESTAMPTZ", "when it last came back after being cleared"),
    ("times_cleared", "INTEGER", "how often it cleared"),
    ("object", "VARCHAR", "as in `breaks`"),
    ("source_system", "VARCHAR", "as in `breaks`"),
)

#: Per rule and run (the ``reconciliation_runs`` view).
RULE_RUN_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("run_id", "VARCHAR", "the reconciliation run"),
    ("rule_id", "VARCHAR", "the rule"),
    ("status", "VARCHAR", "`ok`, `skipped` (an input has no snapshot; previous breaks kept) or `failed`"),
    ("error", "VARCHAR", "why it was skipped or failed"),
    ("started_at", "TIMESTAMPTZ", "when the run started (UTC)"),
    ("as_of", "TIMESTAMPTZ", "the moment whose current snapshots were reconciled"),
    ("business_date", "DATE", "the date ages and `{as_of}` refer to"),
    ("replay", "BOOLEAN", "an `--as-of` replay (not in the `breaks` view)"),
    ("source_rows", "BIGINT", "source rows after the filter (groups for aggregate rules)"),
    ("target_rows", "BIGINT", "target rows after the filter (groups for aggregate rules)"),
    ("compared", "BIGINT", "pairs (or groups) found on both sides"),
    ("matched", "BIGINT", "compared without a break"),
    ("breaks", "BIGINT", "breaks found"),
    ("breaks_by_type", "VARCHAR", "JSON object break type -> count"),
    ("duration_s", "DOUBLE", "seconds the rule took"),
)


#: One row per check of a snapshot (the ``check_results`` view: the latest data-quality run's).
CHECK_RESULT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("run_id", "VARCHAR", "the check run that produced the row"),
    ("checked_at", "TIMESTAMPTZ", "when that run started (UTC)"),
    ("system", "VARCHAR", "system slug"),
    ("object", "VARCHAR", "canonical object"),
    ("snapshot_id", "VARCHAR", "the snapshot checked (NULL for freshness of a system never extracted)"),
    ("suite", "VARCHAR", "the suite (its object)"),
    ("expectation", "VARCHAR", "the expectation id in the suite, or `schema_drift`, `volume`, "
                               "`freshness`, `quarantined`"),
    ("rule_id", "VARCHAR", "`suite.expectation`: the `rule_id` of its breaks"),
    ("check_type", "VARCHAR", "`expectation` (Great Expectations), `schema_drift`, `volume`, `freshness` "
                              "or `quarantined`"),
    ("gx_type", "VARCHAR", "the GX expectation type, e.g. `expect_column_values_to_be_between`"),
    ("column_name", "VARCHAR", "the column checked (schema drift: the field that drifted)"),
    ("success", "BOOLEAN", "the check passed"),
    ("element_count", "BIGINT", "rows checked"),
    ("unexpected_count", "BIGINT", "rows failing (drift: fields drifted; quarantine: records refused)"),
    ("unexpected_percent", "DOUBLE", "failing rows in percent of rows checked"),
    ("sample_ids", "VARCHAR", "JSON list of up to 20 failing record ids"),
    ("observed", "VARCHAR", "what was found, for the snapshot-level checks"),
    ("expected", "VARCHAR", "what was expected, for the snapshot-level checks"),
    ("error", "VARCHAR", "why the check could not run, or NULL"),
)  # fmt: skip


class BreakStore:
    """The break runs of one category in one home folder (see the module docs for the layout)."""

    def __init__(self, home: Path, category: str) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"unknown break category {category!r}; categories: {', '.join(CATEGORIES)}")
        self.lake = Lake(home)
        self.category = category
        self.root = self.lake.root / "breaks" / category

    def run_dir(self, run_id: str) -> Path:
        """``lake/breaks/<category>/<run_id>``."""
        return self.root / run_id

    def latest(self) -> dict[str, Any] | None:
        """The latest live run's ``run.json`` (with ``run_id``), or None before the first run."""
        run_id = self.latest_id()
        return None if run_id is None else self.run(run_id)

    def latest_id(self) -> str | None:
        """The latest live run's id (``latest.json``), or None before the first run."""
        return self._pointer("latest.json")

    def published_id(self) -> str | None:
        """The id of the run published last, live or replay (``published.json``), or None before any."""
        return self._pointer("published.json")

    def _pointer(self, name: str) -> str | None:
        try:
            return str(json.loads((self.root / name).read_text())["run_id"])
        except FileNotFoundError:
            return None

    def run(self, run_id: str) -> dict[str, Any]:
        """The ``run.json`` of run ``run_id``.

        Raises:
            FileNotFoundError: no such run.
        """
        return dict(json.loads((self.run_dir(run_id) / "run.json").read_text()))

    def runs(self) -> list[dict[str, Any]]:
        """Every published run's ``run.json``, oldest first."""
        found = [json.loads(p.read_text()) for p in self.root.glob("*/run.json")]
        return sorted(found, key=lambda r: (r["started_at"], r["run_id"]))

    def staging(self, run_id: str) -> Path:
        """A fresh staging folder for run ``run_id`` (removed by :meth:`Lake.sweep` if the run dies)."""
        path = self.lake.staging_root / f"breaks-{run_id}"
        path.mkdir(parents=True)
        return path

    def publish(self, staged: Path, run: dict[str, Any]) -> Path:
        """Write ``run.json`` into ``staged`` and move it into place; a live run also becomes ``latest``.

        ``published.json`` is written last, after the folder is in place: a reader that reads it
        before listing the run folders finds at least that run among them.
        """
        (staged / "run.json").write_text(json.dumps(run, indent=1, default=str))
        target = self.run_dir(run["run_id"])
        target.parent.mkdir(parents=True, exist_ok=True)
        fsync_tree(staged)
        os.rename(staged, target)
        fsync_dir(target.parent)
        pointer = json.dumps({"run_id": run["run_id"]}).encode()
        if not run["replay"]:
            atomic_write(self.root / "latest.json", pointer)
        atomic_write(self.root / "published.json", pointer)
        return target


class BreakViews(NamedTuple):
    """The warehouse's break statements and what they were built on (see :func:`break_views`)."""

    statements: list[str]
    #: the latest live run of each category (:func:`break_key`)
    key: str
    #: the run published last of each category, live or replay (:func:`published_key`)
    published: str


def break_views(
    home: Path, *, previous: str | None = None, carried: frozenset[str] = frozenset()
) -> BreakViews:
    """The views ``breaks``, ``break_ledger``, ``reconciliation_runs`` and ``check_results``, and their keys.

    Also the tables ``tieout_rule_runs`` (:func:`rule_runs_table`, which ``reconciliation_runs``
    shows), ``tieout_live_runs`` (:func:`live_runs_table`) and ``tieout_run_summary``
    (:func:`run_summary_table`). The keys change whenever a run is published, so the warehouse
    file is rebuilt.

    ``breaks`` and ``break_ledger`` name the latest live run's files of each category explicitly.
    ``previous`` names an attached earlier warehouse file (of this views version) whose
    ``tieout_rule_runs`` holds the runs ``carried``: their rows, and their summaries, are copied
    from it, and only the other run folders' files are read, since a file open costs about 0.35 ms
    and runs pile up (a year: tens of thousands).
    """
    latest = [(c, BreakStore(home, c).latest()) for c in CATEGORIES]
    runs = [(c, run) for c, run in latest if run is not None]
    folders = [BreakStore(home, c).run_dir(run["run_id"]) for c, run in runs]

    def view(name: str, file: str, columns: tuple[tuple[str, str, str], ...]) -> str:
        parts = [empty_select(columns)] + [
            f"SELECT * FROM read_parquet({sql_literal(str(folder / file))})" for folder in folders
        ]
        return f"CREATE VIEW {name} AS " + " UNION ALL BY NAME ".join(parts)

    # read before the folders are listed: the listing then holds at least the run it names
    published = published_key(home)
    store = BreakStore(home, "reconciliation")
    names = sorted(os.listdir(store.root)) if store.root.is_dir() else []
    fresh = [
        store.root / n for n in names if n not in carried and (store.root / n / "rules.parquet").is_file()
    ]
    checks = dict(latest)["data_quality"]
    results = (
        "SELECT * FROM read_parquet("
        f"{sql_literal(str(BreakStore(home, 'data_quality').run_dir(checks['run_id']) / 'results.parquet'))})"
        if checks is not None
        else empty_select(CHECK_RESULT_COLUMNS)
    )
    live = dict(latest)["reconciliation"]
    stmts = [
        view("breaks", "breaks.parquet", BREAK_COLUMNS),
        view("break_ledger", "ledger.parquet", LEDGER_COLUMNS),
        rule_runs_table(live, [f / "rules.parquet" for f in fresh], previous),
        "CREATE VIEW reconciliation_runs AS SELECT * FROM tieout_rule_runs",
        f"CREATE VIEW check_results AS {results}",
        live_runs_table("tieout_rule_runs"),
        run_summary_table(
            [f / "summary.parquet" for f in fresh if (f / "summary.parquet").is_file()], previous
        ),
    ]
    # from the runs the statements name: a run published meanwhile makes the file outdated
    return BreakViews(stmts, _key((c, run["run_id"]) for c, run in runs), published)


def break_key(home: Path) -> str:
    """The latest live run of each category: what the ``breaks`` views depend on (cheap to ask)."""
    return _key((c, BreakStore(home, c).latest_id()) for c in CATEGORIES)


def published_key(home: Path) -> str:
    """The run published last of each category, live or replay: what ``reconciliation_runs`` depends on."""
    return _key((c, BreakStore(home, c).published_id()) for c in CATEGORIES)


def _key(latest: Iterable[tuple[str, str | None]]) -> str:
    return " ".join(f"{c}/{run_id}" for c, run_id in latest if run_id is not None)


def _read_each(files: list[Path], empty: str) -> str:
    """A query over the Parquet ``files`` (named one by one), with the columns of ``empty``."""
    if not files:
        return empty
    listed = ", ".join(sql_literal(str(f)) for f in files)
    return f"{empty} UNION ALL BY NAME SELECT * FROM read_parquet([{listed}])"


def _until(latest: dict[str, Any] | None) -> str:
    """SQL for when ``latest`` (a live run's ``run.json``; None: no live run yet) started."""
    return f"TIMESTAMPTZ {sql_literal(str(latest['started_at']))}" if latest is not None else "NULL"


def rule_runs_table(latest: dict[str, Any] | None, files: list[Path], previous: str | None = None) -> str:
    """``CREATE TABLE tieout_rule_runs``: the rows (RULE_RUN_COLUMNS) of the runs' ``rules.parquet`` files.

    After the rows of ``previous.tieout_rule_runs`` when ``previous`` names an earlier warehouse
    file. Replays are all kept; live runs started after ``latest`` (None: no live run yet, none
    kept) are left out: one published while the file is being built belongs to the next build,
    which reads it, and its summary, afresh, with its breaks.
    """
    carried = f"SELECT * FROM {previous}.tieout_rule_runs UNION ALL BY NAME " if previous else ""
    fresh = (
        f"SELECT * FROM ({_read_each(files, empty_select(RULE_RUN_COLUMNS))}) "
        f"QUALIFY replay IS TRUE OR min(started_at) OVER (PARTITION BY run_id) <= {_until(latest)}"
    )
    return f"CREATE TABLE tieout_rule_runs AS {carried}{fresh}"


def live_runs_table(runs: str) -> str:
    """``CREATE TABLE tieout_live_runs``: the live reconciliation runs of ``runs``.

    One row per run of ``runs`` (rows of ``reconciliation_runs``; the warehouse's
    ``tieout_rule_runs``, which :func:`rule_runs_table` stops at the latest live run) that is not a
    replay: ``run_id``, ``started_at`` (TIMESTAMPTZ, its rules' earliest start). The KPIs need the
    runs on every call.
    """
    return (
        "CREATE TABLE tieout_live_runs AS SELECT run_id, min(started_at) AS started_at "
        f"FROM {runs} WHERE replay IS NOT TRUE GROUP BY run_id"
    )


def run_summary_sql(relation: str) -> str:
    """A run's open reconciliation breaks added up: a SELECT over ``relation`` (rows of ``breaks``).

    One row per ``rule_id``, ``legal_entity_id``, ``aging_bucket`` and ``reporting_currency``:
    ``breaks``, ``valued`` (breaks with an amount at risk), ``amount_at_risk`` (sum), ``unvalued``
    (an amount but no FX rate), ``aged`` (breaks with an age), ``age_sum``, ``age_max`` and
    ``age_min`` (days). Each run keeps it as ``summary.parquet``, where the ledger keeps no amounts.
    """
    return (
        "SELECT rule_id, legal_entity_id, aging_bucket, reporting_currency, count(*) AS breaks, "
        "count(amount_at_risk) AS valued, sum(amount_at_risk) AS amount_at_risk, "
        "count(*) FILTER (WHERE amount IS NOT NULL AND amount_at_risk IS NULL) AS unvalued, "
        "count(age_days) AS aged, sum(age_days) AS age_sum, max(age_days) AS age_max, "
        f"min(age_days) AS age_min FROM {relation} WHERE category = 'reconciliation' GROUP BY ALL"
    )


def run_summary_table(files: list[Path], previous: str | None = None) -> str:
    """``CREATE TABLE tieout_run_summary``: the ``summary.parquet`` ``files`` of live reconciliation runs.

    ``run_id``, ``started_at`` (the run's, from ``tieout_live_runs``, which it needs: other runs'
    files add no rows), then the columns of :func:`run_summary_sql`; after the rows of
    ``previous.tieout_run_summary`` when ``previous`` names an earlier warehouse file. Runs
    published before runs kept a summary have no rows.
    """
    empty = f"SELECT NULL::VARCHAR AS run_id, * FROM ({run_summary_sql(f'({empty_select(BREAK_COLUMNS)})')})"
    carried = f"SELECT * FROM {previous}.tieout_run_summary UNION ALL BY NAME " if previous else ""
    return (
        f"CREATE TABLE tieout_run_summary AS {carried}SELECT r.run_id, r.started_at, s.* EXCLUDE (run_id) "
        f"FROM ({_read_each(files, empty)}) AS s JOIN tieout_live_runs AS r ON r.run_id = s.run_id"
    )


def empty_select(columns: tuple[tuple[str, str, str], ...]) -> str:
    """A query with ``columns`` (name, type, meaning) and no rows."""
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t, _ in columns) + " WHERE false"
