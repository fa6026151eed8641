"""Call a simulator's ASGI app in-process through httpx's ASGI transport (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


def request(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send one request to ``app`` and return the response (body already read)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.local") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())
