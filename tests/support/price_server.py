"""A local CoinGecko-compatible price API for tests: a real aiohttp server on 127.0.0.1 answering
`/coins/{id}/market_chart/range` and `/coins/{platform}/contract/{address}/market_chart/range` from a table of daily
prices, checking the API-key header, and recording every request.

    async with FakePriceApi({"ethereum": {date(2022, 1, 3): Decimal("3769.70")}}, key="k") as api:
        PriceApi(api.url, api_key="k")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from aiohttp import web


@dataclass
class FakePriceApi:
    prices: Mapping[str, Mapping[date, Decimal]]
    """Coin id (or `platform/contract/address`) → day → USD; each day is served as one point at 00:00 UTC."""
    key: str = ""
    key_header: str = "x-cg-demo-api-key"
    seen: list[str] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakePriceApi:
        app = web.Application()
        app.router.add_get("/api/v3/coins/{coin}/market_chart/range", self._handle)
        app.router.add_get("/api/v3/coins/{platform}/contract/{address}/market_chart/range", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/api/v3"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        coin = info["coin"] if "coin" in info else f"{info['platform']}/contract/{info['address']}"
        self.seen.append(coin)
        if self.key and request.headers.get(self.key_header) != self.key:
            return web.json_response({"status": {"error_code": 10002, "error_message": "API key missing"}}, status=401)
        if request.query.get("vs_currency") != "usd":
            return web.json_response({"error": "invalid vs_currency"}, status=400)
        start, end = int(request.query["from"]), int(request.query["to"])
        table = self.prices.get(coin)
        if table is None:
            return web.json_response({"error": "coin not found"}, status=404)
        points = []
        for day, usd in sorted(table.items()):
            ts = int(datetime.combine(day, time(0), UTC).timestamp())
            if start <= ts <= end:
                points.append([ts * 1000, float(usd)])
        return web.json_response({"prices": points, "market_caps": [], "total_volumes": []})
