"""Fault injection for the simulators: switchable at start-up (a YAML/JSON file) and at run time.

Each simulator owns one :class:`FaultState`. At run time it is read and replaced through the
simulator's admin endpoints (``GET``/``PUT /_admin/faults``, ``POST /_admin/reset``; see
``demo.simulator``). Counters (``extra_429``, ``error_5xx``, ``slow_requests``) are consumed one per
request; page faults apply to every request for that page of a listing (1-based page number).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class FaultSpec(BaseModel):
    """What a simulator gets wrong, on purpose.

    Attributes:
        extra_429: the next N requests are refused with the vendor's 429 (beyond the rate limit).
        retry_after_s: the ``Retry-After`` header (seconds) sent with injected 429s.
        error_5xx: the next N requests answer ``error_status`` with the vendor's error body.
        error_status: HTTP status of injected server errors (500-599).
        error_5xx_pages: listing pages that always answer ``error_status``.
        slow_requests: the next N requests are delayed by ``slow_s`` seconds.
        slow_s: delay in seconds (pick it beyond the client's timeout to cause a timeout).
        malformed_pages: listing pages whose body is cut off mid-JSON (status 200).
        drop_fields: resource → fields removed from every record (schema drift).
        rename_fields: resource → {old name: new name} applied to every record (schema drift).
    """

    model_config = ConfigDict(extra="forbid")

    extra_429: int = Field(0, ge=0)
    retry_after_s: int = Field(1, ge=0)
    error_5xx: int = Field(0, ge=0)
    error_status: int = Field(503, ge=500, le=599)
    error_5xx_pages: list[int] = Field(default_factory=list)
    slow_requests: int = Field(0, ge=0)
    slow_s: float = Field(0.0, ge=0)
    malformed_pages: list[int] = Field(default_factory=list)
    drop_fields: dict[str, list[str]] = Field(default_factory=dict)
    rename_fields: dict[str, dict[str, str]] = Field(default_factory=dict)


class FaultFileError(ValueError):
    """A fault file could not be read or does not describe faults; the message names the file."""


def load_faults(path: Path) -> dict[str, FaultSpec]:
    """Load per-simulator faults from a YAML or JSON file.

    The file maps a simulator name (``hubspot``, ``harvest``, ``odoo``) to a :class:`FaultSpec`.

    Raises:
        FaultFileError: unreadable file, unknown simulator or invalid spec (names file and key).
    """
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise FaultFileError(f"{path}: cannot read fault file: {exc}") from exc
    if not isinstance(raw, dict):
        raise FaultFileError(f"{path}: expected a mapping of simulator name to faults")
    out: dict[str, FaultSpec] = {}
    for name, spec in raw.items():
        if name not in ("hubspot", "harvest", "odoo"):
            raise FaultFileError(f"{path}: unknown simulator {name!r}; expected hubspot, harvest or odoo")
        try:
            out[name] = FaultSpec.model_validate(spec or {})
        except ValidationError as exc:
            raise FaultFileError(f"{path}: [{name}] {exc}") from exc
    return out


class FaultState:
    """The current faults of one simulator, consumed thread-safely by its request handlers."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        self._lock = threading.Lock()
        self._spec = spec or FaultSpec()

    @property
    def spec(self) -> FaultSpec:
        """Return a copy of the current spec (counters as they are now)."""
        with self._lock:
            return self._spec.model_copy(deep=True)

    def replace(self, spec: FaultSpec) -> None:
        """Switch to ``spec`` (run-time change through the admin endpoint)."""
        with self._lock:
            self._spec = spec

    def _take(self, counter: str) -> bool:
        with self._lock:
            left = getattr(self._spec, counter)
            if left > 0:
                setattr(self._spec, counter, left - 1)
                return True
            return False

    def take_429(self) -> bool:
        """Consume one injected 429; True when this request must be refused."""
        return self._take("extra_429")

    def take_5xx(self) -> bool:
        """Consume one injected server error; True when this request must answer one."""
        return self._take("error_5xx")

    def failing_page(self, page: int | None) -> bool:
        """Return True when this listing page always answers a server error."""
        with self._lock:
            return page is not None and page in self._spec.error_5xx_pages

    def take_delay_s(self) -> float:
        """Return the delay in seconds to apply to this request (0 when none)."""
        return self._spec.slow_s if self._take("slow_requests") else 0.0

    def malformed(self, page: int | None) -> bool:
        """Return True when this listing page must be sent as cut-off JSON."""
        with self._lock:
            return page is not None and page in self._spec.malformed_pages

    def reshape(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """Apply dropped and renamed fields of ``resource`` to one record (a new dict)."""
        spec = self._spec
        drop = spec.drop_fields.get(resource, [])
        rename = spec.rename_fields.get(resource, {})
        if not drop and not rename:
            return record
        return {rename.get(k, k): v for k, v in record.items() if k not in drop}


def cut_json(payload: Any) -> bytes:
    """Return ``payload`` as JSON bytes cut off in the middle (a malformed page)."""
    body = json.dumps(payload, default=str).encode()
    return body[: max(1, len(body) // 2)]
