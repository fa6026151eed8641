"""Errors raised by Tieout's extractors: one base class and a few specific subclasses.

Every error carries where it happened (``source_system``, ``entity``, ``run_id`` and the redacted
``url``), so the run log and the UI can show it without a traceback. The HTTP layer
(:mod:`extractors.http`) translates httpx errors into these with ``raise ... from exc``; no URL,
header or message reaches an error before it has been redacted.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthFailed",
    "ExtractorError",
    "MalformedResponse",
    "RateLimited",
    "SchemaDrift",
    "SourceUnavailable",
]


class ExtractorError(Exception):
    """Base class of every extraction failure.

    Attributes:
        message: what failed, where, and what to do next (already redacted).
        source_system: the source system's name, e.g. ``harvest`` (None when not yet known).
        entity: the entity being extracted, e.g. ``time_entries`` (None when not yet known).
        run_id: the extraction run's id (None outside a run).
        url: the request URL with secrets redacted (None when no request was involved).
        status_code: the HTTP status of the last response, or None when there was none.
        attempts: how many times the request was sent (0 when no request was involved).
    """

    def __init__(
        self,
        message: str,
        *,
        source_system: str | None = None,
        entity: str | None = None,
        run_id: str | None = None,
        url: str | None = None,
        status_code: int | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source_system = source_system
        self.entity = entity
        self.run_id = run_id
        self.url = url
        self.status_code = status_code
        self.attempts = attempts

    def __str__(self) -> str:
        return self.message


class SourceUnavailable(ExtractorError):
    """The source did not answer usefully: 5xx, connection or timeout errors, retries exhausted."""


class RateLimited(SourceUnavailable):
    """The source answered 429 Too Many Requests (and retrying did not get through).

    Attributes:
        retry_after_s: the source's last ``Retry-After`` in seconds, or None when it sent none.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after_s = retry_after_s


class AuthFailed(ExtractorError):
    """The source rejected the credentials (401) or the permissions (403). Never retried."""


class SchemaDrift(ExtractorError, ValueError):
    """The response parsed but does not have the expected shape (a records key is missing)."""


class MalformedResponse(ExtractorError, ValueError):
    """The response body is not valid JSON, or paging metadata makes no sense (a stuck cursor)."""
