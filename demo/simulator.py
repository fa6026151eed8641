"""What the three vendor simulators share: rate limiting, fault injection, request stats, admin API.

A vendor module (``demo.hubspot``, ``demo.harvest``, ``demo.odoo``) declares its routes and its
error shapes (:class:`VendorErrors`) and calls :func:`build_app`. The resulting Starlette app is
served by uvicorn (``tieout demo serve``) or called in-process in tests through
``httpx.ASGITransport``.

Admin endpoints (loopback only, no auth; not part of any vendor API):
    ``GET /_admin/faults`` → the current :class:`demo.faults.FaultSpec` as JSON;
    ``PUT /_admin/faults`` with a FaultSpec body → replaces it (422 with the reason if invalid);
    ``GET /_admin/stats`` → ``{"requests": n, "by_status": {"200": n, ...}}``;
    ``POST /_admin/reset`` → clears faults, stats and rate-limit windows.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from demo.faults import FaultSpec, FaultState, cut_json


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Money and hours carry two decimals; a float's shortest repr prints them exactly.
        return float(value)
    return str(value)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return ``payload`` as a JSON response (Decimal as JSON numbers, dates as ISO strings)."""
    body = json.dumps(payload, default=_default, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


class VendorErrors(Protocol):
    """The error responses of one vendor, in its documented shapes."""

    def rate_limited(self, retry_after_s: int) -> Response:
        """Return the vendor's 429 response."""
        ...

    def server_error(self, status: int) -> Response:
        """Return the vendor's 5xx response."""
        ...


class SlidingWindowLimiter:
    """Allow at most ``max_requests`` per ``window_s`` seconds per key (e.g. per token)."""

    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> int | None:
        """Record a request for ``key``; return None if allowed, else seconds until a slot frees."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.max_requests:
                return max(1, int(hits[0] + self.window_s - now + 0.999))
            hits.append(now)
            return None

    def reset(self) -> None:
        """Forget every window."""
        with self._lock:
            self._hits.clear()


@dataclass
class SimulatorState:
    """The mutable state of one running simulator.

    Attributes:
        name: ``hubspot``, ``harvest`` or ``odoo``.
        errors: the vendor's error shapes.
        faults: injected faults.
        limiter: the vendor's documented rate limit, or None (Odoo has none).
        limit_key: request → key the rate limit counts by (token, account), or None for global.
        by_status: responses served per HTTP status (for tests and benchmarks).
    """

    name: str
    errors: VendorErrors
    faults: FaultState = field(default_factory=FaultState)
    limiter: SlidingWindowLimiter | None = None
    limit_key: Callable[[Request], str] | None = None
    by_status: Counter[int] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def page_fault(self, page: int | None, payload: Any) -> Response | None:
        """Return the response a faulty listing page gets instead of ``payload``, or None.

        Vendor handlers call this with the 1-based page number of a listing request.
        """
        if self.faults.failing_page(page):
            return self.errors.server_error(self.faults.spec.error_status)
        if self.faults.malformed(page):
            return Response(cut_json(payload), media_type="application/json")
        return None


Handler = Callable[[Request], Awaitable[Response]]


def build_app(state: SimulatorState, routes: list[BaseRoute]) -> Starlette:
    """Return the simulator's app: vendor ``routes`` behind rate limit and faults, plus admin.

    Order per vendor request: rate limit (429) → injected 429 → injected delay → injected 5xx
    → vendor handler (which applies page faults and field drift itself).
    """

    async def get_faults(_: Request) -> Response:
        return json_response(state.faults.spec.model_dump())

    async def put_faults(request: Request) -> Response:
        try:
            spec = FaultSpec.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return json_response({"error": str(exc)}, status=422)
        state.faults.replace(spec)
        return json_response(spec.model_dump())

    async def stats(_: Request) -> Response:
        with state._lock:
            by_status = {str(k): v for k, v in sorted(state.by_status.items())}
        return json_response({"requests": sum(by_status.values()), "by_status": by_status})

    async def reset(_: Request) -> Response:
        state.faults.replace(FaultSpec())
        with state._lock:
            state.by_status.clear()
        if state.limiter:
            state.limiter.reset()
        return json_response({"reset": True})

    admin = [
        Route("/_admin/faults", get_faults, methods=["GET"]),
        Route("/_admin/faults", put_faults, methods=["PUT"]),
        Route("/_admin/stats", stats, methods=["GET"]),
        Route("/_admin/reset", reset, methods=["POST"]),
    ]

    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/_admin"):
            return await call_next(request)
        response = await _guarded(state, request, call_next)
        with state._lock:
            state.by_status[response.status_code] += 1
        return response

    return Starlette(routes=admin + routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=guard)])


async def _guarded(
    state: SimulatorState, request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if state.limiter is not None:
        key = state.limit_key(request) if state.limit_key else "*"
        wait_s = state.limiter.acquire(key)
        if wait_s is not None:
            return state.errors.rate_limited(wait_s)
    if state.faults.take_429():
        return state.errors.rate_limited(state.faults.spec.retry_after_s)
    delay_s = state.faults.take_delay_s()
    if delay_s:
        await asyncio.sleep(delay_s)
    if state.faults.take_5xx():
        return state.errors.server_error(state.faults.spec.error_status)
    return await call_next(request)


def error_json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """Return a vendor error body as JSON with ``status``."""
    return JSONResponse(payload, status_code=status, headers=headers)
