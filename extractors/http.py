"""Tieout's one HTTP layer: timeouts, retries, throttling, JSON parsing, error mapping, redaction.

This is the only module in the project that imports httpx. Source modules describe endpoints and
call :meth:`HttpClient.request_json` or :meth:`HttpClient.paginate`; everything below that line
happens here:

- every request has an explicit timeout (seconds);
- 429, 5xx, connection and timeout errors are retried with exponential backoff and jitter, honouring
  ``Retry-After`` (seconds), capped in attempts, in the delay before one retry and in the total delay;
- a client-side rate limiter (GCRA, i.e. a token bucket) enforces ``max_requests_per_min``;
- bodies are parsed with ``parse_float=Decimal`` so that money stays exact;
- httpx errors become :mod:`extractors.errors` errors (``raise ... from exc``), with the source
  system, entity, run id and the redacted URL;
- the ``Authorization`` header, ``access_token``/``api_key``/``password``-style query parameters and
  every configured secret value are redacted from every log line and error message.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NoReturn

import httpx
import tenacity

from extractors.errors import (
    AuthFailed,
    ExtractorError,
    MalformedResponse,
    RateLimited,
    SchemaDrift,
    SourceUnavailable,
)
from extractors.paginators import Paginator, RequestSpec, dig

__all__ = [
    "HTTPX_ERROR_MAP",
    "SENSITIVE_HEADERS",
    "SENSITIVE_PARAMS",
    "HttpClient",
    "JsonResponse",
    "RateLimiter",
    "Redactor",
    "RequestStats",
    "RetryPolicy",
    "map_httpx_error",
]

logger = logging.getLogger(__name__)

REDACTED = "REDACTED"
SENSITIVE_PARAMS = frozenset(
    {"access_token", "api_key", "apikey", "password", "token", "client_secret", "refresh_token", "hapikey"}
)
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
_VENDOR_MESSAGE_KEYS = ("message", "error_description", "error", "detail", "title")
_MAX_VENDOR_MESSAGE = 300


# --- redaction -----------------------------------------------------------------------------------


class Redactor:
    """Remove secrets from URLs, headers and free text.

    Args:
        secrets: secret values (tokens, passwords) to blank out wherever they appear. Values shorter
            than 4 characters are ignored: blanking them would garble messages.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        """Return ``value`` with every configured secret replaced by ``REDACTED``."""
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
        return value

    def url(self, url: httpx.URL | str) -> str:
        """Return ``url`` with sensitive query values, the userinfo password and secrets redacted."""
        parsed = httpx.URL(url)
        if parsed.password:
            parsed = parsed.copy_with(password=REDACTED)
        params = [
            (key, REDACTED if key.lower() in SENSITIVE_PARAMS else value)
            for key, value in parsed.params.multi_items()
        ]
        if any(key.lower() in SENSITIVE_PARAMS for key, _ in params):
            parsed = parsed.copy_with(params=params)
        return self.text(str(parsed))

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Return a copy of ``headers`` with sensitive header values and secrets redacted."""
        return {
            key: REDACTED if key.lower() in SENSITIVE_HEADERS else self.text(value)
            for key, value in headers.items()
        }


# --- retry policy and rate limiter ---------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry 429, 5xx, connection and timeout errors.

    The delay before retry ``n`` (1-based) is ``min(max_delay_s, initial_delay_s * 2**(n-1))`` plus
    a uniform jitter in ``[0, jitter_s]``; a ``Retry-After`` header replaces the backoff (plus
    jitter). Retrying stops after ``max_attempts`` sends, when the next delay would take the total
    delay above ``max_total_delay_s``, or when ``Retry-After`` asks for more than ``max_delay_s``.

    Attributes:
        max_attempts: most sends of one request, first try included.
        initial_delay_s: first backoff delay in seconds.
        max_delay_s: longest single delay in seconds.
        max_total_delay_s: longest total delay across the retries of one request, in seconds.
        jitter_s: largest random delay added to each wait, in seconds.
    """

    max_attempts: int = 5
    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_total_delay_s: float = 120.0
    jitter_s: float = 0.5


class RateLimiter:
    """Space requests so that at most ``max_requests_per_min`` leave per minute (GCRA token bucket).

    Args:
        max_requests_per_min: sustained rate in requests per minute.
        burst: requests that may leave back to back after an idle spell.
        clock: monotonic clock in seconds.
        sleep: sleep function taking seconds.

    Raises:
        ValueError: ``max_requests_per_min`` or ``burst`` is below 1.
    """

    def __init__(
        self,
        max_requests_per_min: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests_per_min <= 0 or burst < 1:
            raise ValueError(
                f"max_requests_per_min must be > 0 and burst >= 1, got {max_requests_per_min}, {burst}"
            )
        self.interval_s = 60.0 / max_requests_per_min
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tat: float | None = None  # theoretical arrival time of the next request
        self.waited_s = 0.0

    def acquire(self) -> float:
        """Block until the next request may leave; return the seconds waited."""
        now = self._clock()
        tat = now if self._tat is None else max(self._tat, now)
        wait = tat - (self.burst - 1) * self.interval_s - now
        self._tat = tat + self.interval_s
        if wait > 0:
            self._sleep(wait)
            self.waited_s += wait
            return wait
        return 0.0


# --- results and counters ------------------------------------------------------------------------


@dataclass
class RequestStats:
    """Counters of one :class:`HttpClient`, for the run log.

    Attributes:
        requests: requests sent, retries included.
        retries: requests re-sent after a retryable failure.
        status_counts: responses per HTTP status code.
        transport_errors: requests that got no response (connection, timeout, protocol errors).
        retry_wait_s: seconds slept before retries.
        throttle_wait_s: seconds slept by the client-side rate limiter.
    """

    requests: int = 0
    retries: int = 0
    status_counts: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    retry_wait_s: float = 0.0
    throttle_wait_s: float = 0.0


@dataclass(frozen=True)
class JsonResponse:
    """One successful response.

    Attributes:
        payload: parsed JSON (floats as ``Decimal``), or None for an empty body.
        headers: response headers (case-insensitive).
        status_code: HTTP status.
        url: the redacted request URL.
        attempts: sends it took, first try included.
    """

    payload: Any
    headers: httpx.Headers
    status_code: int
    url: str
    attempts: int


# --- httpx error mapping -------------------------------------------------------------------------

# (our error class, retryable). Looked up along the exception's MRO, most specific first.
HTTPX_ERROR_MAP: dict[type[Exception], tuple[type[ExtractorError], bool]] = {
    httpx.TimeoutException: (SourceUnavailable, True),
    httpx.NetworkError: (SourceUnavailable, True),
    httpx.RemoteProtocolError: (SourceUnavailable, True),
    httpx.ProxyError: (SourceUnavailable, True),
    httpx.LocalProtocolError: (ExtractorError, False),
    httpx.UnsupportedProtocol: (ExtractorError, False),
    httpx.DecodingError: (MalformedResponse, False),
    httpx.TooManyRedirects: (ExtractorError, False),
    httpx.HTTPStatusError: (ExtractorError, False),
    httpx.HTTPError: (ExtractorError, False),
    httpx.InvalidURL: (ExtractorError, False),
    httpx.CookieConflict: (ExtractorError, False),
    httpx.StreamError: (ExtractorError, False),
}
_HTTPX_ERRORS = tuple(HTTPX_ERROR_MAP)

_ADVICE = {
    SourceUnavailable: "the source is down or unreachable; retry the run later",
    MalformedResponse: "the source sent a body that could not be decoded; retry, then report it",
    ExtractorError: "check the source's base URL and connector configuration",
}


def map_httpx_error(exc: BaseException) -> tuple[type[ExtractorError], bool]:
    """Return (our error class, whether to retry) for an httpx exception.

    Raises:
        TypeError: ``exc`` is not an httpx error.
    """
    for cls in type(exc).__mro__:
        if cls in HTTPX_ERROR_MAP:
            return HTTPX_ERROR_MAP[cls]
    raise TypeError(f"not an httpx error: {type(exc).__name__}")


class _Retry(Exception):
    """Internal: a retryable failure, carrying the error to raise if retries run out."""

    def __init__(self, error: ExtractorError, retry_after_s: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after_s = retry_after_s


def _parse_json(content: bytes) -> Any:
    def reject(constant: str) -> NoReturn:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(content, parse_float=Decimal, parse_constant=reject)


def _retry_after_s(headers: httpx.Headers) -> float | None:
    """Return ``Retry-After`` in seconds, or None when absent or not a number of seconds."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None  # an HTTP-date: fall back to the backoff
    return max(value, 0.0)


def _target(spec: RequestSpec) -> httpx.URL:
    """Return the URL of ``spec`` with its params merged into the URL's own query.

    httpx 0.28 *replaces* a URL's query with ``params=`` (even ``params={}``), which would drop the
    query of a ``links.next`` URL; so the params are merged here and the URL is sent as is.
    """
    url = httpx.URL(spec.url)
    return url.copy_merge_params(dict(spec.params)) if spec.params else url


# --- the client ----------------------------------------------------------------------------------


class HttpClient:
    """Send JSON requests to one source system, with retries, throttling and redaction.

    Args:
        client: the httpx client to send with (base URL, auth headers, transport); tests inject
            ``httpx.Client(transport=httpx.MockTransport(handler))``. It is not closed here.
        source_system: the system's name for errors and logs, e.g. ``harvest``.
        timeout_s: timeout for connect, read, write and pool, in seconds, on every request.
        retry: the retry policy.
        max_requests_per_min: client-side rate limit, or None for none.
        secrets: secret values to redact wherever they appear (tokens, passwords).
        run_id: default run id for errors and logs.
        sleep: sleep function taking seconds (retries and the rate limiter).
        clock: monotonic clock in seconds (the rate limiter).
        rng: random source for jitter.
        secret_hint: where the credential lives, for the "what to do next" of AuthFailed, e.g.
            ``RECON__HARVEST__API_TOKEN``.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        source_system: str,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        max_requests_per_min: float | None = None,
        secrets: Iterable[str] = (),
        run_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        secret_hint: str | None = None,
    ) -> None:
        self.client = client
        self.source_system = source_system
        self.timeout = httpx.Timeout(timeout_s)
        self.retry = retry or RetryPolicy()
        self.redactor = Redactor(secrets)
        self.run_id = run_id
        self.stats = RequestStats()
        self.limiter = (
            RateLimiter(max_requests_per_min, clock=clock, sleep=sleep) if max_requests_per_min else None
        )
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._secret_hint = secret_hint or f"the {source_system} credentials in sources.yaml"
        self._owns_client = False

    @classmethod
    def open(
        cls,
        base_url: str,
        *,
        source_system: str,
        headers: Mapping[str, str] | None = None,
        transport: Any = None,
        **kwargs: Any,
    ) -> HttpClient:
        """Build a client on a new ``httpx.Client`` for ``base_url`` (closed by :meth:`close`).

        Args:
            base_url: the API's base URL.
            source_system: as in the constructor.
            headers: headers sent with every request (auth, correlation id).
            transport: an httpx transport for tests (``httpx.MockTransport``), or None for the network.
            **kwargs: the constructor's other keyword arguments.
        """
        client = httpx.Client(base_url=base_url, headers=dict(headers or {}), transport=transport)
        made = cls(client, source_system=source_system, **kwargs)
        made._owns_client = True
        return made

    def close(self) -> None:
        """Close the underlying httpx client if :meth:`open` made it."""
        if self._owns_client:
            self.client.close()

    # -- public API --

    def request_json(self, spec: RequestSpec, *, entity: str, run_id: str | None = None) -> JsonResponse:
        """Send ``spec`` (retrying as the policy allows) and return the parsed JSON response.

        Args:
            spec: the request.
            entity: the entity being extracted, for errors and logs.
            run_id: the run id, or None for the client's default.

        Raises:
            AuthFailed: 401 or 403 (not retried).
            RateLimited: 429 until retries ran out, or a ``Retry-After`` above ``max_delay_s``.
            SourceUnavailable: 5xx, connection or timeout errors until retries ran out.
            MalformedResponse: the body is not valid JSON.
            ExtractorError: any other 3xx/4xx (with the vendor's message) or request error.
        """
        run = run_id or self.run_id
        attempts = 0

        def attempt() -> JsonResponse:
            nonlocal attempts
            attempts += 1
            return self._send_once(spec, entity=entity, run_id=run, attempt=attempts)

        policy = self.retry
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            stop=self._stop,
            wait=self._wait,
            sleep=self._sleep_before_retry,
            before_sleep=lambda rs: self._log_retry(rs, entity, run),
            reraise=False,
        )
        try:
            return retrying(attempt)
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception()
            assert isinstance(last, _Retry)
            err = last.error
            err.attempts = attempts
            err.message = (
                f"{err.message} Gave up after {attempts} attempt(s) "
                f"(policy: max {policy.max_attempts} attempts, {policy.max_delay_s:g} s per wait, "
                f"{policy.max_total_delay_s:g} s in total)."
            )
            err.args = (err.message,)
            raise err from last.__cause__

    def paginate(
        self,
        spec: RequestSpec,
        paginator: Paginator,
        *,
        entity: str,
        records_at: str | Callable[[JsonResponse], Any],
        run_id: str | None = None,
    ) -> Iterator[list[Any]]:
        """Yield the records of every page, following ``paginator``.

        Args:
            spec: the endpoint's first request, without paging parameters.
            paginator: how to get from one page to the next (reset here).
            entity: the entity being extracted.
            records_at: dotted path of the records list in each body (``""``: the body is the list),
                or a function returning it from the response (it may raise for an error answered
                with status 200, as JSON-RPC does).
            run_id: the run id, or None for the client's default.

        Raises:
            SchemaDrift: a body has no list at ``records_at``.
            MalformedResponse: a body is not JSON, or the paging never advances.
            ExtractorError: as :meth:`request_json`.
        """
        run = run_id or self.run_id
        request = paginator.first_request(spec)
        while True:
            response = self.request_json(request, entity=entity, run_id=run)
            records = records_at(response) if callable(records_at) else dig(response.payload, records_at)
            if not isinstance(records, list):
                where = records_at if isinstance(records_at, str) else "the records of the answer"
                raise SchemaDrift(
                    f"{self._where(request.method, response.url, entity, run)}: expected a list of "
                    f"records at {where or '<body>'!r}, found {type(records).__name__}; the "
                    "source's response shape changed, update the endpoint's records_at.",
                    **self._context(entity, run, response.url, response.status_code, response.attempts),
                )
            try:
                paginator.update_from(response.payload, response.headers, record_count=len(records))
            except MalformedResponse as exc:
                raise MalformedResponse(
                    f"{self._where(request.method, response.url, entity, run)}: {exc.message}",
                    **self._context(entity, run, response.url, response.status_code, response.attempts),
                ) from exc
            if records:
                yield records
            if not paginator.has_next_page:
                return
            request = paginator.next_request()

    # -- one attempt --

    def _send_once(self, spec: RequestSpec, *, entity: str, run_id: str | None, attempt: int) -> JsonResponse:
        if self.limiter is not None:
            self.stats.throttle_wait_s += self.limiter.acquire()
        target = _target(spec)
        url = self.redactor.url(self.client.build_request(spec.method, target).url)
        where = self._where(spec.method, url, entity, run_id)
        ctx = self._context(entity, run_id, url, None, attempt)
        self.stats.requests += 1
        started = time.perf_counter()
        try:
            response = self.client.request(spec.method, target, json=spec.json, timeout=self.timeout)
        except _HTTPX_ERRORS as exc:
            self.stats.transport_errors += 1
            cls, retryable = map_httpx_error(exc)
            detail = self.redactor.text(str(exc)) or type(exc).__name__
            error = cls(
                f"{type(exc).__name__} from {where}: {detail}; {_ADVICE.get(cls, _ADVICE[ExtractorError])}.",
                **ctx,
            )
            logger.warning("%s", error.message)
            if retryable:
                raise _Retry(error) from exc
            raise error from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        status = response.status_code
        self.stats.status_counts[status] += 1
        logger.debug("%s -> %d in %.0f ms (attempt %d)", where, status, elapsed_ms, attempt)
        ctx["status_code"] = status
        if 200 <= status < 300:
            try:
                payload = _parse_json(response.content) if response.content.strip() else None
            except ValueError as exc:
                raise MalformedResponse(
                    f"Malformed JSON from {where} (status {status}, "
                    f"{response.headers.get('content-type', 'no content-type')}): "
                    f"{self.redactor.text(str(exc))}; the source sent a body that is not JSON, "
                    "retry later and report it to the vendor if it persists.",
                    **ctx,
                ) from exc
            return JsonResponse(payload, response.headers, status, url, attempt)
        vendor = self._vendor_message(response)
        if status in (401, 403):
            what = "token rejected" if status == 401 else "access forbidden"
            raise AuthFailed(
                f"Client error {status} from {where}: {what} ({vendor}); check the credentials and "
                f"permissions, rotate {self._secret_hint}.",
                **ctx,
            )
        if status == 429:
            retry_after = _retry_after_s(response.headers)
            shown = f"Retry-After {retry_after:g} s" if retry_after is not None else "no Retry-After"
            error = RateLimited(
                f"Rate limited (429) by {where}, {shown} ({vendor}); lower max_requests_per_min for "
                f"{self.source_system} or run later.",
                retry_after_s=retry_after,
                **ctx,
            )
            raise _Retry(error, retry_after)
        if status >= 500:
            error = SourceUnavailable(
                f"Server error {status} from {where} ({vendor}); the source is failing, retry the run later.",
                **ctx,
            )
            raise _Retry(error, _retry_after_s(response.headers))
        raise ExtractorError(
            f"Client error {status} from {where}: {vendor}; fix the request (path, parameters) in "
            f"the {self.source_system} connector.",
            **ctx,
        )

    # -- tenacity hooks --

    def _wait(self, rs: tenacity.RetryCallState) -> float:
        policy = self.retry
        exc = rs.outcome.exception() if rs.outcome else None
        retry_after = exc.retry_after_s if isinstance(exc, _Retry) else None
        backoff = min(policy.max_delay_s, policy.initial_delay_s * 2 ** (rs.attempt_number - 1))
        base = retry_after if retry_after is not None else backoff
        return base + self._rng.uniform(0, policy.jitter_s)

    def _stop(self, rs: tenacity.RetryCallState) -> bool:
        policy = self.retry
        if rs.attempt_number >= policy.max_attempts:
            return True
        exc = rs.outcome.exception() if rs.outcome else None
        if (
            isinstance(exc, _Retry)
            and exc.retry_after_s is not None
            and exc.retry_after_s > policy.max_delay_s
        ):
            return True
        upcoming = rs.upcoming_sleep or 0.0
        return rs.idle_for + upcoming > policy.max_total_delay_s

    def _sleep_before_retry(self, seconds: float) -> None:
        self.stats.retries += 1
        self.stats.retry_wait_s += seconds
        self._sleep(seconds)

    def _log_retry(self, rs: tenacity.RetryCallState, entity: str, run_id: str | None) -> None:
        exc = rs.outcome.exception() if rs.outcome else None
        message = exc.error.message if isinstance(exc, _Retry) else repr(exc)
        logger.warning(
            "Retrying %s/%s (run %s) in %.2f s after attempt %d: %s",
            self.source_system,
            entity,
            run_id or "-",
            rs.upcoming_sleep or 0.0,
            rs.attempt_number,
            self.redactor.text(message),
        )

    # -- helpers --

    def _where(self, method: str, url: str, entity: str, run_id: str | None) -> str:
        return f"{self.source_system} {method} {url} (entity {entity}, run {run_id or '-'})"

    def _context(
        self, entity: str, run_id: str | None, url: str, status: int | None, attempts: int
    ) -> dict[str, Any]:
        return {
            "source_system": self.source_system,
            "entity": entity,
            "run_id": run_id,
            "url": url,
            "status_code": status,
            "attempts": attempts,
        }

    def _vendor_message(self, response: httpx.Response) -> str:
        """Return the vendor's error message from the body (redacted, at most 300 characters)."""
        text = response.text.strip()
        try:
            body = _parse_json(response.content) if text else None
        except ValueError:
            body = None
        message = ""
        if isinstance(body, Mapping):
            parts = [str(body[k]) for k in _VENDOR_MESSAGE_KEYS if isinstance(body.get(k), str | int)]
            message = ": ".join(dict.fromkeys(parts))
        message = message or text or response.reason_phrase or "no message"
        message = self.redactor.text(message)
        if len(message) > _MAX_VENDOR_MESSAGE:
            message = message[:_MAX_VENDOR_MESSAGE] + "…"
        return f"vendor says: {message}"
