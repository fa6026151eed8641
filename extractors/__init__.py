"""Extract raw records from source systems (Harvest, HubSpot, Odoo, …) into snapshots.

:mod:`extractors.http` is the one HTTP layer (timeouts, retries, throttling, redaction);
:mod:`extractors.paginators` says how to get from one page to the next; :mod:`extractors.errors`
holds the errors every extractor raises. :func:`extractors.run.extract` is the pipeline's
extraction step (sources.yaml -> snapshots), :func:`extractors.status.object_status` reports on it
and :mod:`extractors.schedule` runs it on a schedule.
"""

from __future__ import annotations

from extractors.config import ConfigError, SourcesConfig, load_sources
from extractors.errors import (
    AuthFailed,
    ExtractorError,
    MalformedResponse,
    RateLimited,
    SchemaDrift,
    SourceUnavailable,
)
from extractors.http import HttpClient, JsonResponse, RateLimiter, Redactor, RequestStats, RetryPolicy
from extractors.paginators import (
    CursorPaging,
    NextLinkPaging,
    OffsetLimitPaging,
    PageNumberPaging,
    Paginator,
    RequestSpec,
)
from extractors.run import RunResult, extract
from extractors.status import ObjectStatus, object_status

__all__ = [
    "AuthFailed",
    "ConfigError",
    "ObjectStatus",
    "RunResult",
    "SourcesConfig",
    "extract",
    "load_sources",
    "object_status",
    "CursorPaging",
    "ExtractorError",
    "HttpClient",
    "JsonResponse",
    "MalformedResponse",
    "NextLinkPaging",
    "OffsetLimitPaging",
    "PageNumberPaging",
    "Paginator",
    "RateLimited",
    "RateLimiter",
    "Redactor",
    "RequestSpec",
    "RequestStats",
    "RetryPolicy",
    "SchemaDrift",
    "SourceUnavailable",
]
