"""The HTTP layer through httpx.MockTransport: retries, throttling, error mapping, redaction, paging."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow.dataset as ds
import pytest

from extractors.errors import (
    AuthFailed,
    ExtractorError,
    MalformedResponse,
    RateLimited,
    SchemaDrift,
    SourceUnavailable,
)
from extractors.http import HTTPX_ERROR_MAP, HttpClient, RateLimiter, Redactor, RetryPolicy, map_httpx_error
from extractors.paginators import CursorPaging, NextLinkPaging, RequestSpec

BASE = "https://api.example.test"
SECRET = "s3cr3t-token-VALUE"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(
    handler: Handler, clock: FakeClock | None = None, *, policy: RetryPolicy | None = None, **kwargs: Any
) -> HttpClient:
    clock = clock or FakeClock()
    http = httpx.Client(
        transport=httpx.MockTransport(handler), base_url=BASE, headers={"Authorization": f"Bearer {SECRET}"}
    )
    return HttpClient(
        http,
        source_system="acme_psa",
        retry=policy or RetryPolicy(jitter_s=0.0),
        sleep=clock.sleep,
        clock=clock,
        rng=random.Random(0),
        run_id="run-8f2c",
        secrets=[SECRET],
        **kwargs,
    )


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering ``responses`` in order (the last one repeats); it records the requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[min(len(seen), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


OK = httpx.Response(200, json={"data": [{"id": 1}]})
GET = RequestSpec("/v2/time")


class TestRetries:
    def test_429_with_retry_after_then_success(self) -> None:
        clock = FakeClock()
        handler, seen = scripted(
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"}), OK
        )
        client = make_client(handler, clock, policy=RetryPolicy(jitter_s=0.25))
        response = client.request_json(GET, entity="time_entries")
        assert response.payload == {"data": [{"id": 1}]}
        assert response.attempts == 2
        assert len(seen) == 2
        assert len(clock.sleeps) == 1 and 7.0 <= clock.sleeps[0] <= 7.25  # Retry-After plus jitter
        assert client.stats.retries == 1 and client.stats.requests == 2
        assert client.stats.status_counts == {429: 1, 200: 1}

    def test_5xx_burst_then_success_backs_off_exponentially(self) -> None:
        clock = FakeClock()
        handler, seen = scripted(httpx.Response(502), httpx.Response(503), httpx.Response(500), OK)
        client = make_client(handler, clock)
        assert client.request_json(GET, entity="time_entries").status_code == 200
        assert clock.sleeps == [0.5, 1.0, 2.0]
        assert client.stats.status_counts == {502: 1, 503: 1, 500: 1, 200: 1}
        assert client.stats.retry_wait_s == pytest.approx(3.5)

    def test_retries_exhausted_raises_source_unavailable_with_attempts(self) -> None:
        handler, seen = scripted(httpx.Response(500, json={"status": 500, "error": "Internal Server Error"}))
        client = make_client(handler, policy=RetryPolicy(max_attempts=4, jitter_s=0.0))
        with pytest.raises(SourceUnavailable, match="Gave up after 4 attempt") as info:
            client.request_json(GET, entity="time_entries")
        err = info.value
        assert len(seen) == 4 and err.attempts == 4 and err.status_code == 500
        assert (err.source_system, err.entity, err.run_id) == ("acme_psa", "time_entries", "run-8f2c")
        assert "Internal Server Error" in str(err) and "retry the run later" in str(err)

    def test_delay_is_capped_per_wait_and_in_total(self) -> None:
        clock = FakeClock()
        handler, seen = scripted(httpx.Response(503))
        policy = RetryPolicy(
            max_attempts=20, initial_delay_s=1.0, max_delay_s=4.0, max_total_delay_s=15.0, jitter_s=0
        )
        with pytest.raises(SourceUnavailable):
            make_client(handler, clock, policy=policy).request_json(GET, entity="e")
        assert clock.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]  # the next 4 s would pass 15 s in total
        assert len(seen) == 6

    def test_retry_after_longer_than_max_delay_gives_up_at_once(self) -> None:
        clock = FakeClock()
        handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
        with pytest.raises(RateLimited, match="Retry-After 3600 s") as info:
            make_client(handler, clock).request_json(GET, entity="e")
        assert info.value.retry_after_s == 3600 and len(seen) == 1 and clock.sleeps == []

    def test_429_exhausted_is_rate_limited_and_source_unavailable(self) -> None:
        handler, _ = scripted(httpx.Response(429))
        with pytest.raises(RateLimited, match="no Retry-After") as info:
            make_client(handler, policy=RetryPolicy(max_attempts=2, jitter_s=0)).request_json(GET, entity="e")
        assert isinstance(info.value, SourceUnavailable) and info.value.attempts == 2

    def test_timeout_is_retried_then_source_unavailable(self) -> None:
        handler, seen = scripted(httpx.ReadTimeout("timed out"))
        client = make_client(handler, policy=RetryPolicy(max_attempts=3, jitter_s=0))
        with pytest.raises(SourceUnavailable, match="ReadTimeout") as info:
            client.request_json(GET, entity="e")
        assert len(seen) == 3 and info.value.attempts == 3
        assert isinstance(info.value.__cause__, httpx.ReadTimeout)
        assert client.stats.transport_errors == 3 and client.stats.retries == 2

    def test_401_raises_auth_failed_without_retry(self) -> None:
        body = {"error": "invalid_token", "error_description": "The access token provided is expired"}
        handler, seen = scripted(httpx.Response(401, json=body))
        with pytest.raises(
            AuthFailed, match="token rejected.*the acme_psa credentials in sources.yaml"
        ) as info:
            make_client(handler).request_json(GET, entity="e")
        assert len(seen) == 1 and info.value.attempts == 1
        assert "The access token provided is expired" in str(info.value)

    def test_403_raises_auth_failed(self) -> None:
        handler, seen = scripted(httpx.Response(403, text="nope"))
        with pytest.raises(AuthFailed, match="forbidden"):
            make_client(handler).request_json(GET, entity="e")
        assert len(seen) == 1

    def test_other_4xx_carries_the_vendor_message(self) -> None:
        handler, seen = scripted(httpx.Response(422, json={"message": "per_page must be between 1 and 2000"}))
        with pytest.raises(ExtractorError, match="per_page must be between 1 and 2000") as info:
            make_client(handler).request_json(GET, entity="e")
        assert type(info.value) is ExtractorError and len(seen) == 1 and info.value.status_code == 422


class TestResponses:
    def test_every_request_has_an_explicit_timeout(self) -> None:
        handler, seen = scripted(OK)
        make_client(handler, timeout_s=12.5).request_json(GET, entity="e")
        assert seen[0].extensions["timeout"] == {"connect": 12.5, "read": 12.5, "write": 12.5, "pool": 12.5}

    def test_floats_parse_as_decimal(self) -> None:
        handler, _ = scripted(httpx.Response(200, content=b'{"amount": 0.1, "hours": 1.25, "id": 3}'))
        payload = make_client(handler).request_json(GET, entity="e").payload
        assert payload == {"amount": Decimal("0.1"), "hours": Decimal("1.25"), "id": 3}
        assert isinstance(payload["id"], int)

    @pytest.mark.parametrize(
        "body", [b'{"data": [1, 2', b"<html>Bad gateway</html>", b'{"x": NaN}', b"\xff\xfe\x00"]
    )
    def test_malformed_json(self, body: bytes) -> None:
        handler, seen = scripted(
            httpx.Response(200, content=body, headers={"content-type": "application/json"})
        )
        with pytest.raises(
            MalformedResponse, match=r"Malformed JSON from acme_psa GET https://api.example.test/v2/time"
        ) as info:
            make_client(handler).request_json(GET, entity="time_entries")
        assert info.value.entity == "time_entries" and info.value.url == f"{BASE}/v2/time"
        assert len(seen) == 1

    def test_empty_body_is_none(self) -> None:
        handler, _ = scripted(httpx.Response(204))
        assert make_client(handler).request_json(GET, entity="e").payload is None


# Every exception class httpx exports, and what it must turn into.
HTTPX_EXCEPTIONS = sorted(
    (
        obj
        for name in httpx.__all__
        if isinstance(obj := getattr(httpx, name), type) and issubclass(obj, Exception)
    ),
    key=lambda cls: cls.__name__,
)
EXPECTED = {
    httpx.ConnectError: (SourceUnavailable, True),
    httpx.ConnectTimeout: (SourceUnavailable, True),
    httpx.ReadTimeout: (SourceUnavailable, True),
    httpx.WriteTimeout: (SourceUnavailable, True),
    httpx.PoolTimeout: (SourceUnavailable, True),
    httpx.ReadError: (SourceUnavailable, True),
    httpx.WriteError: (SourceUnavailable, True),
    httpx.CloseError: (SourceUnavailable, True),
    httpx.RemoteProtocolError: (SourceUnavailable, True),
    httpx.ProxyError: (SourceUnavailable, True),
    httpx.LocalProtocolError: (ExtractorError, False),
    httpx.UnsupportedProtocol: (ExtractorError, False),
    httpx.DecodingError: (MalformedResponse, False),
    httpx.TooManyRedirects: (ExtractorError, False),
}


class TestHttpxErrorMapping:
    def test_sees_a_reasonable_number_of_httpx_exceptions(self) -> None:
        assert len(HTTPX_EXCEPTIONS) >= 20
        assert set(EXPECTED) <= set(HTTPX_EXCEPTIONS)

    @pytest.mark.parametrize("cls", HTTPX_EXCEPTIONS, ids=lambda c: c.__name__)
    def test_every_httpx_exception_is_mapped(self, cls: type[Exception]) -> None:
        ours, retryable = map_httpx_error(cls.__new__(cls))
        assert issubclass(ours, ExtractorError)
        if cls in EXPECTED:
            assert (ours, retryable) == EXPECTED[cls]
        assert any(issubclass(cls, known) for known in HTTPX_ERROR_MAP)

    @pytest.mark.parametrize(
        "cls", [c for c in HTTPX_EXCEPTIONS if issubclass(c, httpx.RequestError)], ids=lambda c: c.__name__
    )
    def test_request_errors_raised_by_the_transport_become_ours(self, cls: type[httpx.RequestError]) -> None:
        handler, seen = scripted(cls(f"boom with {SECRET}"))
        ours, retryable = map_httpx_error(cls("x"))
        with pytest.raises(ours) as info:
            make_client(handler, policy=RetryPolicy(max_attempts=2, jitter_s=0)).request_json(GET, entity="e")
        assert type(info.value) is ours
        assert isinstance(info.value.__cause__, cls)
        assert len(seen) == (2 if retryable else 1)
        assert SECRET not in str(info.value)

    def test_non_httpx_error_is_refused(self) -> None:
        with pytest.raises(TypeError):
            map_httpx_error(ValueError("x"))


class TestRateLimiter:
    def test_spaces_requests_at_the_configured_rate(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
        times = []
        for _ in range(4):
            limiter.acquire()
            times.append(clock.now)
        assert times == [0.0, 1.0, 2.0, 3.0]

    def test_idle_time_is_not_hoarded_beyond_the_burst(self) -> None:
        clock = FakeClock()
        limiter = RateLimiter(60, burst=2, clock=clock, sleep=clock.sleep)
        clock.now = 100.0
        waits = [limiter.acquire() for _ in range(4)]
        assert waits == [0.0, 0.0, 1.0, 1.0]

    def test_client_throttles_each_request(self) -> None:
        clock = FakeClock()
        stamps: list[float] = []

        def handler(request: httpx.Request) -> httpx.Response:
            stamps.append(clock.now)
            return OK

        client = make_client(handler, clock, max_requests_per_min=120)
        for _ in range(3):
            client.request_json(GET, entity="e")
        assert stamps == [0.0, 0.5, 1.0]
        assert client.stats.throttle_wait_s == pytest.approx(1.0)

    def test_rejects_a_zero_rate(self) -> None:
        with pytest.raises(ValueError, match="max_requests_per_min"):
            RateLimiter(0)


class TestRedaction:
    def test_redactor_url_and_headers(self) -> None:
        r = Redactor(["hunter22"])
        url = r.url("https://user:pw@x.test/v2?access_token=abc&api_key=def&Password=ghi&page=2&q=hunter22")
        assert (
            "abc" not in url
            and "def" not in url
            and "ghi" not in url
            and "hunter22" not in url
            and ":pw@" not in url
        )
        assert "page=2" in url
        assert r.headers({"Authorization": "Bearer abc", "Accept": "hunter22"}) == {
            "Authorization": "REDACTED",
            "Accept": "REDACTED",
        }

    def test_no_secret_in_errors_or_logs(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG, logger="extractors")
        echoed = {"message": f"bad token {SECRET}"}
        spec = RequestSpec(
            "/v2/time", params={"access_token": "qs-token-1234", "api_key": "key-5678", "page": 1}
        )
        handler, _ = scripted(httpx.Response(500, json=echoed), httpx.Response(401, json=echoed))
        client = make_client(handler)
        with pytest.raises(AuthFailed) as info:
            client.request_json(spec, entity="time_entries")
        err = info.value
        for secret in (SECRET, "qs-token-1234", "key-5678"):
            assert secret not in str(err)
            assert secret not in (err.url or "")
            assert secret not in caplog.text
        assert "access_token=REDACTED" in caplog.text and "Retrying acme_psa/time_entries" in caplog.text
        assert "page=1" in str(err)


class TestPaginate:
    def test_cursor_paging_through_the_client(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            after = int(request.url.params.get("after", "0"))
            body: dict[str, Any] = {"results": [{"id": i} for i in range(after, min(after + 2, 5))]}
            if after + 2 < 5:
                body["paging"] = {"next": {"after": str(after + 2)}}
            return httpx.Response(200, json=body)

        client = make_client(handler)
        pages = list(
            client.paginate(
                RequestSpec("/crm/v3/objects/companies"),
                CursorPaging(),
                entity="companies",
                records_at="results",
            )
        )
        assert [[r["id"] for r in page] for page in pages] == [[0, 1], [2, 3], [4]]
        assert client.stats.requests == 3

    def test_stuck_cursor_through_the_client_names_the_source(self) -> None:
        handler, seen = scripted(
            httpx.Response(200, json={"results": [{"id": 1}], "paging": {"next": {"after": "1"}}})
        )
        client = make_client(handler)
        with pytest.raises(MalformedResponse, match="acme_psa GET .* cursor '1' again") as info:
            list(client.paginate(RequestSpec("/x"), CursorPaging(), entity="companies", records_at="results"))
        assert info.value.source_system == "acme_psa" and len(seen) == 2

    def test_next_link_query_is_kept_and_params_merge(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            page = int(request.url.params.get("page", "1"))
            nxt = f"{BASE}/v2/clients?page={page + 1}&per_page=1&is_active=true" if page < 3 else None
            return httpx.Response(200, json={"clients": [{"id": page}], "links": {"next": nxt}})

        handler_seen: list[httpx.URL] = []

        def recording(request: httpx.Request) -> httpx.Response:
            handler_seen.append(request.url)
            return handler(request)

        spec = RequestSpec("/v2/clients?is_active=true", params={"per_page": 1})
        pages = list(
            make_client(recording).paginate(spec, NextLinkPaging(), entity="clients", records_at="clients")
        )
        assert [p[0]["id"] for p in pages] == [1, 2, 3]
        assert str(handler_seen[0]) == f"{BASE}/v2/clients?is_active=true&per_page=1"
        assert handler_seen[2].params["page"] == "3"

    def test_missing_records_key_is_schema_drift(self) -> None:
        handler, _ = scripted(httpx.Response(200, json={"items": []}))
        with pytest.raises(SchemaDrift, match="'results'"):
            list(
                make_client(handler).paginate(
                    RequestSpec("/x"), CursorPaging(), entity="e", records_at="results"
                )
            )


# --- integration: the Harvest simulator in-process (no sockets) ------------------------------------

HARVEST_TOKEN = "tok-harvest-extractor-test"
HARVEST_ACCOUNT = "424242"


@pytest.fixture()
def harvest_http(small_demo: Path) -> Iterator[httpx.Client]:
    from starlette.testclient import TestClient

    from demo.harvest import create_app
    from demo.store import DemoStore

    store = DemoStore(small_demo)
    app, _ = create_app(store, token=HARVEST_TOKEN, account_id=HARVEST_ACCOUNT)
    headers = {"Authorization": f"Bearer {HARVEST_TOKEN}", "Harvest-Account-Id": HARVEST_ACCOUNT}
    with TestClient(app, base_url="https://harvest.sim", headers=headers) as client:
        yield client
    store.close()


# starlette 1.10's TestClient warns that it prefers httpx2 (with httpx it is still an httpx.Client)
# and that it ignores per-request timeouts (which HttpClient always sends; in-process they are moot).
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
@pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument with the TestClient")
def test_harvest_simulator_clients_via_next_links(small_demo: Path, harvest_http: httpx.Client) -> None:
    from demo.tables import HARVEST_CLIENTS

    expected = sorted(
        ds.dataset(HARVEST_CLIENTS.path(small_demo), format="parquet").to_table().column("id").to_pylist()
    )
    per_page = max(1, len(expected) // 3)
    client = HttpClient(
        harvest_http, source_system="harvest", secrets=[HARVEST_TOKEN], max_requests_per_min=6000
    )
    spec = RequestSpec("/v2/clients", params={"per_page": per_page})
    pages = list(client.paginate(spec, NextLinkPaging(), entity="clients", records_at="clients"))
    ids = [record["id"] for page in pages for record in page]
    assert sorted(ids) == expected and len(ids) == len(set(ids))
    assert len(pages) == -(-len(expected) // per_page) >= 3
    assert client.stats.status_counts == {200: len(pages)}
