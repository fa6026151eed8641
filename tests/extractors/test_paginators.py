"""Paginators on parsed JSON and headers only: one class per paginator (no httpx, no network)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from extractors.errors import MalformedResponse
from extractors.paginators import (
    CursorPaging,
    NextLinkPaging,
    OffsetLimitPaging,
    PageNumberPaging,
    Paginator,
    RequestSpec,
    dig,
)

Page = tuple[Any, Mapping[str, str]]
Source = Callable[[RequestSpec], Page]


def drive(
    paginator: Paginator, base: RequestSpec, source: Source, records_at: str, limit: int = 50
) -> list[Any]:
    """Run the paginator lifecycle against ``source``; return the requests sent (guarded by ``limit``)."""
    sent: list[RequestSpec] = []
    spec = paginator.first_request(base)
    while True:
        assert len(sent) < limit, "paginator did not stop"
        sent.append(spec)
        payload, headers = source(spec)
        paginator.update_from(payload, headers, record_count=len(dig(payload, records_at)))
        if not paginator.has_next_page:
            return sent
        spec = paginator.next_request()


class TestCursorPaging:
    @staticmethod
    def hubspot(spec: RequestSpec) -> Page:
        after = int(spec.params.get("after", 0))
        results = [{"id": str(i)} for i in range(after, min(after + 2, 5))]
        body: dict[str, Any] = {"results": results}
        if after + 2 < 5:
            body["paging"] = {"next": {"after": str(after + 2), "link": "…"}}
        return body, {}

    def test_follows_after_until_paging_is_missing(self) -> None:
        sent = drive(
            CursorPaging(),
            RequestSpec("/crm/v3/objects/companies", params={"limit": 2}),
            self.hubspot,
            "results",
        )
        assert [s.params.get("after") for s in sent] == [None, "2", "4"]
        assert all(s.params["limit"] == 2 for s in sent)

    def test_empty_last_page_stops_even_with_a_cursor(self) -> None:
        p = CursorPaging()
        p.first_request(RequestSpec("/x"))
        p.update_from({"results": [], "paging": {"next": {"after": "9"}}}, {}, record_count=0)
        assert not p.has_next_page
        with pytest.raises(RuntimeError):
            p.next_request()

    def test_cursor_that_never_advances_raises(self) -> None:
        def stuck(spec: RequestSpec) -> Page:
            return {"results": [{"id": "1"}], "paging": {"next": {"after": "1"}}}, {}

        with pytest.raises(MalformedResponse, match="cursor '1' again"):
            drive(CursorPaging(), RequestSpec("/x"), stuck, "results")

    def test_reusable_after_first_request(self) -> None:
        p = CursorPaging()
        first = drive(p, RequestSpec("/x"), self.hubspot, "results")
        assert drive(p, RequestSpec("/x"), self.hubspot, "results") == first


class TestPageNumberPaging:
    @staticmethod
    def harvest(total_pages: int) -> Source:
        def source(spec: RequestSpec) -> Page:
            page = int(spec.params["page"])
            nxt = page + 1 if page < total_pages else None
            return {"clients": [{"id": page}], "page": page, "total_pages": total_pages, "next_page": nxt}, {}

        return source

    def test_total_pages(self) -> None:
        sent = drive(
            PageNumberPaging(), RequestSpec("/v2/clients", params={"per_page": 1}), self.harvest(3), "clients"
        )
        assert [s.params["page"] for s in sent] == [1, 2, 3]

    def test_next_page(self) -> None:
        sent = drive(
            PageNumberPaging(next_page_at="next_page"), RequestSpec("/v2/clients"), self.harvest(4), "clients"
        )
        assert [s.params["page"] for s in sent] == [1, 2, 3, 4]

    def test_empty_last_page(self) -> None:
        def source(spec: RequestSpec) -> Page:
            page = int(spec.params["page"])
            return {"items": [page] if page < 3 else []}, {}

        sent = drive(PageNumberPaging(total_pages_at=None), RequestSpec("/x"), source, "items")
        assert [s.params["page"] for s in sent] == [1, 2, 3]

    def test_next_page_that_never_advances_raises(self) -> None:
        def stuck(spec: RequestSpec) -> Page:
            return {"clients": [{"id": 1}], "next_page": 1}, {}

        with pytest.raises(MalformedResponse, match="again"):
            drive(PageNumberPaging(next_page_at="next_page"), RequestSpec("/x"), stuck, "clients")

    def test_missing_total_pages_is_malformed(self) -> None:
        with pytest.raises(MalformedResponse, match="total_pages"):
            drive(PageNumberPaging(), RequestSpec("/x"), lambda s: ({"clients": [1]}, {}), "clients")


class TestNextLinkPaging:
    BASE = "https://api.harvestapp.com/v2/clients"

    def test_follows_links_next(self) -> None:
        def source(spec: RequestSpec) -> Page:
            page = int(parse_qs(urlsplit(spec.url).query).get("page", ["1"])[0])
            nxt = f"{self.BASE}?page={page + 1}&per_page=1" if page < 3 else None
            return {"clients": [{"id": page}], "links": {"next": nxt}}, {}

        sent = drive(NextLinkPaging(), RequestSpec("/v2/clients", params={"per_page": 1}), source, "clients")
        assert [s.url for s in sent] == [
            "/v2/clients",
            f"{self.BASE}?page=2&per_page=1",
            f"{self.BASE}?page=3&per_page=1",
        ]
        assert sent[1].params == {}  # the link carries the query

    def test_link_header(self) -> None:
        def source(spec: RequestSpec) -> Page:
            if spec.url == "/items":
                return [1, 2], {"link": f'<{self.BASE}?page=2>; rel="next", <{self.BASE}?page=9>; rel="last"'}
            return [3], {}

        sent = drive(NextLinkPaging(next_at=None), RequestSpec("/items"), source, "")
        assert [s.url for s in sent] == ["/items", f"{self.BASE}?page=2"]

    def test_empty_last_page(self) -> None:
        p = NextLinkPaging()
        p.first_request(RequestSpec("/x"))
        p.update_from({"clients": [], "links": {"next": f"{self.BASE}?page=2"}}, {}, record_count=0)
        assert not p.has_next_page

    def test_link_that_never_advances_raises(self) -> None:
        def stuck(spec: RequestSpec) -> Page:
            return {"clients": [{"id": 1}], "links": {"next": f"{self.BASE}?page=2"}}, {}

        with pytest.raises(MalformedResponse, match="next link"):
            drive(NextLinkPaging(), RequestSpec("/x"), stuck, "clients")


class TestOffsetLimitPaging:
    @staticmethod
    def odoo(total: int) -> Source:
        def source(spec: RequestSpec) -> Page:
            kwargs = spec.json["params"]["kwargs"]
            offset, limit = kwargs["offset"], kwargs["limit"]
            return {"result": [{"id": i} for i in range(offset, min(offset + limit, total))]}, {}

        return source

    def rpc(self) -> RequestSpec:
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": "object", "kwargs": {"fields": ["id"]}},
        }
        return RequestSpec("/jsonrpc", method="POST", json=body)

    def test_short_page_stops(self) -> None:
        base = self.rpc()
        sent = drive(OffsetLimitPaging(2, body_path="params.kwargs"), base, self.odoo(5), "result")
        assert [s.json["params"]["kwargs"]["offset"] for s in sent] == [0, 2, 4]
        assert sent[0].json["params"]["kwargs"]["fields"] == ["id"]
        assert "offset" not in base.json["params"]["kwargs"]  # the base spec is not mutated

    def test_empty_last_page(self) -> None:
        sent = drive(OffsetLimitPaging(2, body_path="params.kwargs"), self.rpc(), self.odoo(4), "result")
        assert [s.json["params"]["kwargs"]["offset"] for s in sent] == [0, 2, 4]

    def test_query_params(self) -> None:
        def source(spec: RequestSpec) -> Page:
            return {
                "rows": list(range(int(spec.params["offset"]), min(int(spec.params["offset"]) + 3, 7)))
            }, {}

        sent = drive(OffsetLimitPaging(3), RequestSpec("/rows"), source, "rows")
        assert [(s.params["offset"], s.params["limit"]) for s in sent] == [(0, 3), (3, 3), (6, 3)]

    def test_source_ignoring_offset_stops_at_max_pages(self) -> None:
        def stuck(spec: RequestSpec) -> Page:
            return {"result": [{"id": 1}, {"id": 2}]}, {}

        with pytest.raises(MalformedResponse, match="read 10 pages"):
            drive(OffsetLimitPaging(2, body_path="params.kwargs", max_pages=10), self.rpc(), stuck, "result")

    def test_limit_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="limit"):
            OffsetLimitPaging(0)


def test_paginators_do_not_import_httpx() -> None:
    from pathlib import Path

    import extractors.paginators as mod

    source = Path(mod.__file__).read_text(encoding="utf-8")
    assert "import httpx" not in source
