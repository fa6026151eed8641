"""Paginators: how to ask for the next page, worked out from parsed JSON and response headers.

Every paginator shares one lifecycle, driven by :meth:`extractors.http.HttpClient.paginate`::

    spec = paginator.first_request(base)          # resets the paginator
    while True:
        payload, headers = send(spec)
        paginator.update_from(payload, headers, record_count=len(records))
        if not paginator.has_next_page:
            break
        spec = paginator.next_request()

A paginator stops on an empty page, and raises :class:`~extractors.errors.MalformedResponse` when
the source hands back a cursor or link it already gave (it would otherwise loop forever) or after
``max_pages`` pages. This module never imports httpx: it sees only parsed JSON and headers.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from extractors.errors import MalformedResponse

__all__ = [
    "CursorPaging",
    "NextLinkPaging",
    "OffsetLimitPaging",
    "PageNumberPaging",
    "Paginator",
    "RequestSpec",
    "dig",
]

DEFAULT_MAX_PAGES = 100_000


@dataclass(frozen=True)
class RequestSpec:
    """One request to send: method, URL (a path on the client's base URL, or absolute), query, body.

    Attributes:
        url: path such as ``/v2/clients`` or an absolute URL (a ``links.next``).
        method: HTTP method.
        params: query parameters, merged into any query the URL already has.
        json: JSON body (e.g. an Odoo JSON-RPC call), or None for no body.
    """

    url: str
    method: Literal["GET", "POST"] = "GET"
    params: Mapping[str, str | int] = field(default_factory=dict)
    json: Any = None

    def with_params(self, **params: str | int) -> RequestSpec:
        """Return a copy with ``params`` added to (or replacing) the query parameters."""
        return replace(self, params={**self.params, **params})


def dig(payload: Any, path: str) -> Any:
    """Return the value at dotted ``path`` in ``payload`` (``""`` is the payload itself).

    Returns None when a key on the way is missing or a value on the way is not an object.
    """
    value = payload
    for key in filter(None, path.split(".")):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


class Paginator(ABC):
    """Base class: the shared lifecycle, the empty-page stop, the page cap and stuck-cursor checks.

    Args:
        max_pages: stop with an error after this many pages (a guard against a source that never
            says it is done, e.g. one that ignores ``offset``).
    """

    def __init__(self, *, max_pages: int = DEFAULT_MAX_PAGES) -> None:
        self.max_pages = max_pages
        self._base = RequestSpec("")
        self._pages = 0
        self._has_next = True

    def first_request(self, base: RequestSpec) -> RequestSpec:
        """Reset the paginator and return the request for the first page.

        Args:
            base: the endpoint's request without paging parameters.
        """
        self._base = base
        self._pages = 0
        self._has_next = True
        self._reset()
        return self._first(base)

    def update_from(self, payload: Any, headers: Mapping[str, str], *, record_count: int) -> None:
        """Read the paging state from one response.

        Args:
            payload: the parsed JSON body.
            headers: the response headers (case-insensitive mapping, e.g. ``httpx.Headers``).
            record_count: how many records the page held.

        Raises:
            MalformedResponse: the source repeated a cursor or link, or ``max_pages`` was reached.
        """
        self._pages += 1
        if record_count == 0:
            self._has_next = False
            return
        self._has_next = self._update(payload, headers, record_count)
        if self._has_next and self._pages >= self.max_pages:
            raise MalformedResponse(
                f"{type(self).__name__} read {self._pages} pages and the source still reports more: "
                "it probably ignores the paging parameters; check the endpoint's paginator or raise "
                "max_pages."
            )

    @property
    def has_next_page(self) -> bool:
        """Return whether another page should be requested."""
        return self._has_next

    def next_request(self) -> RequestSpec:
        """Return the request for the next page.

        Raises:
            RuntimeError: there is no next page (``has_next_page`` is False).
        """
        if not self._has_next:
            raise RuntimeError("next_request() called after the last page")
        return self._next(self._base)

    def _stuck(self, what: str, value: object) -> MalformedResponse:
        return MalformedResponse(
            f"{type(self).__name__}: the source returned {what} {value!r} again after {self._pages} "
            "pages, so paging would never end; the source ignores the paging parameter or the "
            "paginator reads the wrong field."
        )

    def _reset(self) -> None:  # noqa: B027 - optional hook
        """Reset subclass state before a new traversal."""

    @abstractmethod
    def _first(self, base: RequestSpec) -> RequestSpec: ...

    @abstractmethod
    def _update(self, payload: Any, headers: Mapping[str, str], record_count: int) -> bool: ...

    @abstractmethod
    def _next(self, base: RequestSpec) -> RequestSpec: ...


class CursorPaging(Paginator):
    """Follow an opaque cursor from the body, e.g. HubSpot's ``paging.next.after``.

    Args:
        cursor_at: dotted path of the next cursor in the body; missing or null on the last page.
        cursor_param: query parameter that carries the cursor.
        max_pages: see :class:`Paginator`.
    """

    def __init__(
        self, cursor_at: str = "paging.next.after", cursor_param: str = "after", *, max_pages: int = 100_000
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.cursor_at = cursor_at
        self.cursor_param = cursor_param
        self._cursor: str | None = None
        self._seen: set[str] = set()

    def _reset(self) -> None:
        self._cursor = None
        self._seen = set()

    def _first(self, base: RequestSpec) -> RequestSpec:
        return base

    def _update(self, payload: Any, headers: Mapping[str, str], record_count: int) -> bool:
        cursor = dig(payload, self.cursor_at)
        if cursor is None or cursor == "":
            return False
        cursor = str(cursor)
        if cursor in self._seen:
            raise self._stuck("cursor", cursor)
        self._seen.add(cursor)
        self._cursor = cursor
        return True

    def _next(self, base: RequestSpec) -> RequestSpec:
        assert self._cursor is not None
        return base.with_params(**{self.cursor_param: self._cursor})


class PageNumberPaging(Paginator):
    """Ask for page 1, 2, 3, … (Harvest's ``page`` with ``total_pages`` or ``next_page``).

    The last page is the one where ``next_page_at`` is null, or ``page >= total_pages``, or (with
    neither configured) the first empty page.

    Args:
        page_param: query parameter that carries the page number.
        start: number of the first page.
        total_pages_at: dotted path of the page count in the body, or None.
        next_page_at: dotted path of the next page number in the body, or None. Wins over
            ``total_pages_at`` when both are set.
        max_pages: see :class:`Paginator`.
    """

    def __init__(
        self,
        page_param: str = "page",
        *,
        start: int = 1,
        total_pages_at: str | None = "total_pages",
        next_page_at: str | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(max_pages=max_pages)
        self.page_param = page_param
        self.start = start
        self.total_pages_at = total_pages_at
        self.next_page_at = next_page_at
        self._page = start

    def _reset(self) -> None:
        self._page = self.start

    def _first(self, base: RequestSpec) -> RequestSpec:
        return base.with_params(**{self.page_param: self.start})

    def _update(self, payload: Any, headers: Mapping[str, str], record_count: int) -> bool:
        if self.next_page_at is not None:
            nxt = dig(payload, self.next_page_at)
            if nxt is None:
                return False
            if not isinstance(nxt, int) or nxt <= self._page:
                raise self._stuck(f"next page {nxt!r} on page", self._page)
            self._page = nxt
            return True
        if self.total_pages_at is not None:
            total = dig(payload, self.total_pages_at)
            if not isinstance(total, int):
                raise MalformedResponse(
                    f"PageNumberPaging: {self.total_pages_at!r} is {total!r}, not a page count; "
                    "check total_pages_at."
                )
            if self._page >= total:
                return False
        self._page += 1
        return True

    def _next(self, base: RequestSpec) -> RequestSpec:
        return base.with_params(**{self.page_param: self._page})


class NextLinkPaging(Paginator):
    """Follow an absolute next-page URL: from the body (Harvest's ``links.next``) or a Link header.

    The next request is ``GET <link>`` with no extra query parameters: the link carries them.

    Args:
        next_at: dotted path of the next URL in the body, or None to read the ``Link: <…>;
            rel="next"`` response header instead.
        max_pages: see :class:`Paginator`.
    """

    def __init__(self, next_at: str | None = "links.next", *, max_pages: int = DEFAULT_MAX_PAGES) -> None:
        super().__init__(max_pages=max_pages)
        self.next_at = next_at
        self._link: str | None = None
        self._seen: set[str] = set()

    def _reset(self) -> None:
        self._link = None
        self._seen = set()

    def _first(self, base: RequestSpec) -> RequestSpec:
        return base

    def _update(self, payload: Any, headers: Mapping[str, str], record_count: int) -> bool:
        link = dig(payload, self.next_at) if self.next_at is not None else _link_header_next(headers)
        if not link:
            return False
        link = str(link)
        if link in self._seen:
            raise self._stuck("next link", link)
        self._seen.add(link)
        self._link = link
        return True

    def _next(self, base: RequestSpec) -> RequestSpec:
        assert self._link is not None
        return RequestSpec(self._link, method=base.method, json=base.json)


def _link_header_next(headers: Mapping[str, str]) -> str | None:
    """Return the ``rel="next"`` URL of an RFC 8288 ``Link`` header, or None."""
    for part in headers.get("link", "").split(","):
        url, _, rest = part.partition(";")
        if 'rel="next"' in rest.replace(" ", "") or "rel=next" in rest.replace(" ", ""):
            return url.strip().strip("<>")
    return None


class OffsetLimitPaging(Paginator):
    """Ask for ``limit`` records from ``offset`` 0, limit, 2·limit, … (Odoo's ``search_read``).

    The last page is the first one with fewer than ``limit`` records. Offset and limit go into the
    query, or into the JSON body at ``body_path`` (Odoo JSON-RPC ``execute_kw``: ``"params.args.6"``,
    the keyword arguments that follow db, uid, password, model, method and the positional args).

    Args:
        limit: records per page.
        offset_param: name of the offset parameter.
        limit_param: name of the limit parameter.
        body_path: dotted path of the object in the JSON body that takes offset and limit (a
            numeric segment indexes a list), or None to send them as query parameters.
        max_pages: see :class:`Paginator`; it is what stops a source that ignores ``offset``.
    """

    def __init__(
        self,
        limit: int = 80,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        body_path: str | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(max_pages=max_pages)
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, got {limit}")
        self.limit = limit
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.body_path = body_path
        self._offset = 0

    def _reset(self) -> None:
        self._offset = 0

    def _first(self, base: RequestSpec) -> RequestSpec:
        return self._at(base, 0)

    def _update(self, payload: Any, headers: Mapping[str, str], record_count: int) -> bool:
        if record_count < self.limit:
            return False
        self._offset += self.limit
        return True

    def _next(self, base: RequestSpec) -> RequestSpec:
        return self._at(base, self._offset)

    def _at(self, base: RequestSpec, offset: int) -> RequestSpec:
        if self.body_path is None:
            return base.with_params(**{self.offset_param: offset, self.limit_param: self.limit})
        body = copy.deepcopy(base.json) if base.json is not None else {}
        target = body
        for key in filter(None, self.body_path.split(".")):
            target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
        target[self.offset_param] = offset
        target[self.limit_param] = self.limit
        return replace(base, json=body)
