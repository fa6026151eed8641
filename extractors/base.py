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

from extractors.config import HttpSystem
from extractors.http import HttpClient, RequestStats
from extractors.mapping import ObjectMapping
from extractors.staging import RawSink

__all__ = ["Connector", "ConnectorContext", "HttpConnector"]


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


class HttpConnector:
    """What HTTP connectors share: one :class:`HttpClient` built from the system's config.

    Every request carries ``X-Correlation-Id``; ``secret`` is redacted wherever it could appear and
    ``secret_env`` names where it lives in an authentication error.
    """

    def __init__(
        self,
        system: str,
        config: HttpSystem,
        ctx: ConnectorContext,
        *,
        headers: dict[str, str],
        secret: str,
        secret_env: str,
    ) -> None:
        self.system = system
        self.http = HttpClient.open(
            config.base_url,
            source_system=system,
            headers={**headers, "X-Correlation-Id": ctx.correlation_id},
            transport=ctx.transport,
            timeout_s=config.timeout_s,
            max_requests_per_min=config.max_requests_per_min,
            secrets=(secret,),
            secret_hint=secret_env,
            sleep=ctx.sleep,
        )

    def http_stats(self) -> RequestStats:
        """The HTTP client's counters."""
        return self.http.stats

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()
