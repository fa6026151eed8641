"""Extract raw records from source systems (Harvest, HubSpot, Odoo, …) into snapshots.

:mod:`extractors.http` is the one HTTP layer (timeouts, retries, throttling, redaction);
:mod:`extractors.paginators` says how to get from one page to the next; :mod:`extractors.errors`
holds the errors every extractor raises.
"""

from __future__ import annotations

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

__all__ = [
    "AuthFailed",
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
