"""SQL text helpers shared by the warehouse and the mappings."""

from __future__ import annotations

__all__ = ["sql_literal"]


def sql_literal(value: str) -> str:
    """Return ``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
