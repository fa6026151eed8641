"""The one contract every connector keeps, and what a connector is built from.

A connector knows one vendor: how to fetch each canonical object's raw records (paging, retries and
throttling happen underneath, in :mod:`extractors.http`) and the default mapping of those records
onto the canonical columns. Everything after the raw records (mapping, quarantine, snapshots, the
run log) is the pipeline's (:mod:`extractors.run`), the same for every connector.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from extractors.http import RequestStats
from extractors.mapping import ObjectMapping
from extractors.staging import RawSink

__all__ = ["Connector", "ConnectorContext"]


@dataclass(frozen=True)
class ConnectorContext:
    """What the pipeline gives a connector when it builds one.

    Attributes:
        home: the home folder (relative file paths in sources.yaml resolve against it).
        correlation_id: sent to HTTP sources as ``X-Correlation-Id`` on every request.
        transport: an httpx transport to use instead of the network (tests), or None.
        sleep: sleep function in seconds (retries, rate limiting); tests pass a fake.
    """

    home: Path
    correlation_id: str
    transport: Any = None
    sleep: Callable[[float], None] = time.sleep


class Connector(Protocol):
    """One source system's extractor.

    Attributes:
        system: the system's slug in sources.yaml (``crm``, ``psa``, ``erp``, ...).
    """

    system: str

    def default_mapping(self, obj: str) -> ObjectMapping:
        """The vendor's default mapping of ``obj`` (``customers``, ...) onto the canonical columns."""
        ...

    def incremental(self, obj: str) -> bool:
        """Whether ``extract(obj, since=...)`` returns only records changed since then."""
        ...

    def extract(self, obj: str, sink: RawSink, *, since: datetime | None) -> None:
        """Fetch every raw record of ``obj`` into ``sink`` (only those changed since ``since``, if given).

        Connectors of files and SQL sources learn their columns here, so the pipeline calls
        :meth:`default_mapping` after ``extract``.

        Raises:
            extractors.errors.ExtractorError: the source failed (message names system, object, cause).
        """
        ...

    def http_stats(self) -> RequestStats | None:
        """Request counters so far (None for sources that are not HTTP)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
