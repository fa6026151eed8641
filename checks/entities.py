"""The legal entity of a record whose own system does not record one (e.g. every Harvest record).

A data-quality break needs a legal entity, or users limited to some entities never see it. When
the record's own row has none, it is looked up in the other systems' current snapshots:

1. the same record there: a row of the same object whose ``<system>_id`` column (``crm_id``,
   ``psa_id``, ``erp_id``) names it, e.g. the Odoo timesheet line posted from a Harvest entry;
2. for time entries, their project: a project row of another system whose ``<system>_id`` names
   the entry's ``project_id``, e.g. the Odoo project of a Harvest project.
"""

from __future__ import annotations

from data.canonical import CANONICAL
from data.lake import Lake, SnapshotEntry

__all__ = ["entity_lookup"]


def entity_lookup(lake: Lake, entry: SnapshotEntry, snapshot: str) -> str | None:
    """SQL of ``(id, legal_entity_id)``, one row per record id of ``entry`` another system places.

    Args:
        lake: the lake (current snapshots of the other systems).
        entry: the snapshot whose records need an entity.
        snapshot: the SQL of ``entry``'s rows.

    Returns:
        The query, or None when no other system can tell (no ``<system>_id`` column for this
        system's slug, or no current snapshot to look in).
    """
    link = f"{entry.system}_id"
    table = CANONICAL[entry.object]
    others = [e for e in lake.entries() if e.current and e.system != entry.system]
    parts: list[str] = []
    if link in table.names:
        parts += [
            f"SELECT {link} AS id, legal_entity_id FROM ({lake.snapshot_query(e)}) "
            f"WHERE {link} IS NOT NULL AND legal_entity_id IS NOT NULL"
            for e in others
            if e.object == entry.object
        ]
    if entry.object == "time_entries" and link in CANONICAL["projects"].names:
        parts += [
            f"SELECT t.{table.key} AS id, p.legal_entity_id FROM ({snapshot}) AS t "
            f"JOIN ({lake.snapshot_query(e)}) AS p ON p.{link} = t.project_id "
            "WHERE p.legal_entity_id IS NOT NULL"
            for e in others
            if e.object == "projects"
        ]
    if not parts:
        return None
    return (
        f"SELECT id, min(legal_entity_id) AS legal_entity_id FROM ({' UNION ALL '.join(parts)}) GROUP BY id"
    )
