"""The service's HTTP query API and metrics, over real HTTP on 127.0.0.1 (clearinghouse/edges/api.py,
clearinghouse/edges/metrics.py).

The book: BTC (40x, so maintenance is 1/80 of notional; new positions are cross at 20x),
deposits a 1000, b 1000, c 5000, d 5000; at 100,000 a buys 0.1 from b and c buys 0.1 from d;
then the mark moves to 101,000. Worked out by hand (docs/rules.md 2):

  every position: notional 0.1 * 101,000 = 10,100; MM = 10,100 / 80 = 126.25; IM = 10,100 / 20 = 505
  a: raw 1000 - 10,000 = -9,000, AV = -9,000 + 10,100 = 1,100, upnl 100,
     withdrawable = 1,100 - max(505, 10% * 10,100) = 90, ROE = 100 / (10,000 / 20) = 0.2,
     margin ratio 126.25 / 1,100 = 0.11477 -> 0.1148,
     liq: 1,100 + 0.1 (P - 101,000) = 0.1 P / 80  =>  P = 9,000 / 0.09875 = 91,139.240506329...
     rounded toward the mark (up) to 1e-8: 91139.24050633
  b: raw 11,000, AV 900, ratio 126.25 / 900 = 0.14028 -> 0.1403,
     liq: 900 - 0.1 (P - 101,000) = 0.1 P / 80  =>  P = 11,000 / 0.10125 = 108,641.975308641... -> 108641.97530864
  c: raw -5,000, AV 5,100, ratio 0.024755 -> 0.0248, liq P = 5,000 / 0.09875 = 50,632.9113924... -> 50632.91139241
  d: raw 15,000, AV 4,900, ratio 0.025765 -> 0.0258, liq P = 15,000 / 0.10125 = 148,148.148148... -> 148148.14814814
Nearest liquidation first: b, a, d, c.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from clearinghouse.edges import api
from clearinghouse.edges.api import SeqCache, build_app, serve_http
from clearinghouse.edges.httpserver import MAX_BODY
from clearinghouse.edges.metrics import CONTENT_TYPE, Metrics
from clearinghouse.overview import overview
from clearinghouse.state import State
from events.schema import Checkpoint, LiquidationTriggered, PositionView, Rejected
from tests.support.rulebook import BTC_TIERS, Book, deposit, market, prices, trade

TOKEN = "s3cret-token"


def _book() -> Book:
    book = Book()
    book.ok(
        market("BTC", 5, BTC_TIERS),
        deposit("a", "1000"),
        deposit("b", "1000"),
        deposit("c", "5000"),
        deposit("d", "5000"),
        prices(BTC="100000"),
        trade("BTC", "100000", "0.1", "a", "b"),
        trade("BTC", "100000", "0.1", "c", "d"),
        prices(BTC="101000"),
    )
    return book


@dataclass
class View:
    """A stand-in for the service: its engine's state and a health dict the test sets."""

    book: Book
    status: dict[str, Any] = field(default_factory=lambda: {"status": "ok", "seq": 8, "lag": 0})

    @property
    def state(self) -> State:
        return self.book.state

    def health(self) -> dict[str, Any]:
        return self.status


@dataclass
class Server:
    url: str
    session: aiohttp.ClientSession
    view: View
    metrics: Metrics

    async def get(self, path: str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.get(self.url + path, **kw) as resp:
            return resp.status, await _body(resp), resp

    async def post(self, path: str, data: bytes | str, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.post(self.url + path, data=data, **kw) as resp:
            return resp.status, await _body(resp), resp


async def _body(resp: aiohttp.ClientResponse) -> Any:
    text = await resp.text()
    return json.loads(text) if resp.content_type == "application/json" else text


@asynccontextmanager
async def serving(token: str | None = None, view: Any = None) -> AsyncIterator[Server]:
    view = view if view is not None else View(_book())
    metrics = Metrics()
    runner, port = await serve_http(build_app(view, token=token, metrics=metrics))
    try:
        async with aiohttp.ClientSession() as session:
            yield Server(f"http://127.0.0.1:{port}", session, view, metrics)
    finally:
        await runner.cleanup()


def _info(user: str) -> str:
    return json.dumps({"type": "clearinghouseState", "user": user})


# ---- accounts -----------------------------------------------------------------------------------

EXPECTED_A = {
    "marginSummary": {
        "accountValue": "1100.0",
        "totalNtlPos": "10100.0",
        "totalRawUsd": "-9000.0",
        "totalMarginUsed": "505.0",
    },
    "crossMarginSummary": {
        "accountValue": "1100.0",
        "totalNtlPos": "10100.0",
        "totalRawUsd": "-9000.0",
        "totalMarginUsed": "505.0",
    },
    "crossMaintenanceMarginUsed": "126.25",
    "withdrawable": "90.0",
    "assetPositions": [
        {
            "type": "oneWay",
            "position": {
                "coin": "BTC",
                "szi": "0.1",
                "entryPx": "100000.0",
                "positionValue": "10100.0",
                "unrealizedPnl": "100.0",
                "returnOnEquity": "0.2",
                "liquidationPx": "91139.24050633",
                "marginUsed": "505.0",
                "maxLeverage": 40,
                "leverage": {"type": "cross", "value": 20},
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
            },
        }
    ],
    "time": 0,
}


@pytest.mark.asyncio
async def test_account_by_path_and_by_info_match_hand_figures() -> None:
    async with serving() as srv:
        status, body, resp = await srv.get("/accounts/a")
        assert (status, body) == (200, EXPECTED_A)
        assert resp.content_type == "application/json"
        status, body, _ = await srv.post("/info", _info("a"), headers={"Content-Type": "application/json"})
        assert (status, body) == (200, EXPECTED_A)


@pytest.mark.asyncio
async def test_the_state_is_read_at_request_time() -> None:
    async with serving() as srv:
        srv.view.book.ok(prices(BTC="100000"))  # a back to 1,000 of value: AV 1,000, upnl 0
        _, body, _ = await srv.get("/accounts/a")
        assert body["marginSummary"]["accountValue"] == "1000.0"
        assert body["assetPositions"][0]["position"]["unrealizedPnl"] == "0.0"


@pytest.mark.asyncio
async def test_unknown_account_is_404() -> None:
    async with serving() as srv:
        status, body, _ = await srv.get("/accounts/nobody")
        assert status == 404 and "nobody" in body["error"]
        status, body, _ = await srv.post("/info", _info("nobody"))
        assert status == 404 and "nobody" in body["error"]


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_info_rejects_bad_bodies_with_a_reason() -> None:
    async with serving() as srv:
        status, body, _ = await srv.post("/info", b'{"type": "clearinghouseState", "user": ')
        assert status == 400 and body["error"].startswith("malformed JSON")
        status, body, _ = await srv.post("/info", b"\xff\xfe")
        assert status == 400 and body["error"].startswith("malformed JSON")
        status, body, _ = await srv.post("/info", b"")
        assert status == 400 and body["error"].startswith("malformed JSON")
        status, body, _ = await srv.post("/info", "[1, 2]")
        assert (status, body) == (400, {"error": "the body must be a JSON object"})
        status, body, _ = await srv.post("/info", '{"type": "clearinghouseState", "user": 7}')
        assert status == 400 and "'user' must be a string" in body["error"]
        status, body, _ = await srv.post("/info", '{"type": "clearinghouseState"}')
        assert status == 400 and "'user' must be a string" in body["error"]


@pytest.mark.asyncio
async def test_info_unknown_type_lists_the_supported_ones() -> None:
    async with serving() as srv:
        status, body, _ = await srv.post("/info", '{"type": "meta"}')
        assert status == 400
        assert body["error"] == "unsupported info type 'meta'; supported types: clearinghouseState"
        status, body, _ = await srv.post("/info", '{"user": "a"}')
        assert status == 400 and "supported types: clearinghouseState" in body["error"]


@pytest.mark.asyncio
async def test_body_limit_is_64_kib() -> None:
    async with serving() as srv:
        exact = _info("a").ljust(MAX_BODY)  # trailing whitespace is valid JSON
        status, body, _ = await srv.post("/info", exact)
        assert (status, body) == (200, EXPECTED_A)
        status, body, _ = await srv.post("/info", exact + " ")
        assert (status, body) == (413, {"error": "request body above 65536 bytes"})


@pytest.mark.asyncio
async def test_deeply_nested_json_is_a_400() -> None:
    async with serving() as srv:
        status, body, _ = await srv.post("/info", "[" * 10_000)
        assert (status, body) == (400, {"error": "malformed JSON: nested too deeply"})
        status, body, _ = await srv.post("/info", '{"user":' * 5_000)
        assert (status, body) == (400, {"error": "malformed JSON: nested too deeply"})


@pytest.mark.asyncio
async def test_chunked_body_and_encoded_path() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b'{"type": "clearinghouseState", '
        yield b'"user": "a"}'

    async with serving() as srv:
        status, body, _ = await srv.post("/info", parts())  # aiohttp sends an async iterable chunked
        assert (status, body) == (200, EXPECTED_A)
        status, body, _ = await srv.get("/accounts/%61")
        assert (status, body) == (200, EXPECTED_A)
        status, body, _ = await srv.get("/accounts/a%2Fb")
        assert (status, body) == (404, {"error": "unknown account 'a/b'"})
        status, body, _ = await srv.get("/margin?top=1&top=5")  # the first value counts
        assert status == 200 and len(body["most_leveraged"]) == 1


@pytest.mark.asyncio
async def test_unknown_path_and_wrong_method() -> None:
    async with serving() as srv:
        status, body, _ = await srv.get("/nope")
        assert (status, body) == (404, {"error": "no such endpoint: /nope"})
        status, body, resp = await srv.post("/health", b"{}")
        assert status == 405 and resp.headers["Allow"] == "GET" and "POST" in body["error"]
        status, body, resp = await srv.get("/info")
        assert status == 405 and resp.headers["Allow"] == "POST" and "error" in body
        for method in ("HEAD", "PUT", "DELETE"):
            async with srv.session.request(method, srv.url + "/margin") as resp:
                assert resp.status == 405
        # A HEAD answer has no body: the connection stays usable for the next request.
        status, body, _ = await srv.get("/accounts/a")
        assert (status, body) == (200, EXPECTED_A)


@pytest.mark.asyncio
async def test_unexpected_exception_is_a_bare_500_and_a_log_line() -> None:
    class Broken(View):
        @property
        def state(self) -> State:
            raise RuntimeError("boom: secret detail")

    async with serving(view=Broken(_book())) as srv:
        with capture_logs() as logs:
            status, body, _ = await srv.get("/accounts/a")
        assert (status, body) == (500, {"error": "internal error"})
        assert [(e["log_level"], e["event"], e["path"]) for e in logs] == [
            ("error", "http request failed", "/accounts/a")
        ]
        assert logs[0]["exc_info"]


# ---- auth ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_token_guards_every_endpoint() -> None:
    async with serving(token=TOKEN) as srv:
        for path in ("/health", "/accounts/a", "/margin", "/liquidation/nearest", "/metrics", "/nope"):
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Basic {TOKEN}"},
                {"Authorization": "Bearer"},
            ):
                status, body, resp = await srv.get(path, headers=headers)
                assert status == 401, (path, headers)
                assert resp.headers["WWW-Authenticate"] == "Bearer"
                assert body == {"error": "missing or wrong bearer token"}
        status, _, _ = await srv.post("/info", _info("a"), headers={"Authorization": "Bearer wrong"})
        assert status == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/health", "/accounts/a", "/margin", "/liquidation/nearest", "/metrics"):
            status, _, _ = await srv.get(path, headers=good)
            assert status == 200, path
        status, body, _ = await srv.post("/info", _info("a"), headers=good)
        assert (status, body) == (200, EXPECTED_A)
        status, _, _ = await srv.get("/nope", headers=good)
        assert status == 404


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="empty API token"):
        build_app(View(_book()), token="", metrics=Metrics())


@pytest.mark.asyncio
async def test_without_token_everything_is_open() -> None:
    async with serving() as srv:
        for path in ("/health", "/accounts/a", "/margin", "/liquidation/nearest", "/metrics"):
            status, _, _ = await srv.get(path)
            assert status == 200, path


# ---- health --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_health_is_503_unless_ok() -> None:
    async with serving() as srv:
        status, body, _ = await srv.get("/health")
        assert (status, body) == (200, {"status": "ok", "seq": 8, "lag": 0})
        srv.view.status = {"status": "catching_up", "seq": 8, "lag": 1200, "snapshot_seq": None}
        status, body, _ = await srv.get("/health")
        assert (status, body) == (503, {"status": "catching_up", "seq": 8, "lag": 1200, "snapshot_seq": None})


# ---- margin and nearest liquidation --------------------------------------------------------------


@pytest.mark.asyncio
async def test_margin_is_the_overview() -> None:
    async with serving() as srv:
        status, body, _ = await srv.get("/margin?top=2")
        assert status == 200
        assert body == json.loads(json.dumps(overview(srv.view.state, top=2)))
        assert body["accounts_with_positions"] == 4
        assert [(r["account"], r["margin_ratio"]) for r in body["most_leveraged"]] == [
            ("b", "0.1403"),
            ("a", "0.1148"),
        ]
        _, body, _ = await srv.get("/margin")
        assert [r["account"] for r in body["most_leveraged"]] == ["b", "a", "d", "c"]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/margin?top=", "/liquidation/nearest?limit="])
async def test_rank_size_is_validated(path: str) -> None:
    async with serving() as srv:
        for bad in ("0", "1001", "-1", "+5", "1_0", "ten", "2.5", ""):
            status, body, _ = await srv.get(path + bad)
            assert status == 400, bad
            assert "from 1 to 1000" in body["error"]
        for good in ("1", "1000"):
            status, _, _ = await srv.get(path + good)
            assert status == 200


@pytest.mark.asyncio
async def test_nearest_liquidation_order_and_figures() -> None:
    async with serving() as srv:
        status, body, _ = await srv.get("/liquidation/nearest")
        assert status == 200
        assert body == {
            "seq": 8,
            "accounts": [
                {
                    "account": "b",
                    "margin_ratio": "0.1403",
                    "account_value": "900.0",
                    "maintenance": "126.25",
                    "positions": [{"coin": "BTC", "szi": "-0.1", "liquidationPx": "108641.97530864"}],
                },
                {
                    "account": "a",
                    "margin_ratio": "0.1148",
                    "account_value": "1100.0",
                    "maintenance": "126.25",
                    "positions": [{"coin": "BTC", "szi": "0.1", "liquidationPx": "91139.24050633"}],
                },
                {
                    "account": "d",
                    "margin_ratio": "0.0258",
                    "account_value": "4900.0",
                    "maintenance": "126.25",
                    "positions": [{"coin": "BTC", "szi": "-0.1", "liquidationPx": "148148.14814814"}],
                },
                {
                    "account": "c",
                    "margin_ratio": "0.0248",
                    "account_value": "5100.0",
                    "maintenance": "126.25",
                    "positions": [{"coin": "BTC", "szi": "0.1", "liquidationPx": "50632.91139241"}],
                },
            ],
        }
        _, body, _ = await srv.get("/liquidation/nearest?limit=2")
        assert [r["account"] for r in body["accounts"]] == ["b", "a"]


@pytest.mark.asyncio
async def test_nearest_liquidation_scans_once_per_seq(monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[int] = []
    real = api.most_leveraged

    def counting(state: State, top: int) -> Any:
        scans.append(state.next_seq)
        return real(state, top)

    monkeypatch.setattr(api, "most_leveraged", counting)
    async with serving() as srv:
        first = (await srv.get("/liquidation/nearest"))[1]
        assert (await srv.get("/liquidation/nearest"))[1] == first
        await srv.get("/liquidation/nearest?limit=1")
        assert scans == [9]
        # A block moves the seq: the next request ranks again. At 97,000: a AV 700 (ratio
        # 121.25 / 700 = 0.1732), b AV 1,300 (0.0933), c 4,700 (0.0258), d 5,300 (0.0229).
        srv.view.book.ok(prices(BTC="97000"))
        _, body, _ = await srv.get("/liquidation/nearest")
        assert scans == [9, 10]
        assert [(r["account"], r["margin_ratio"]) for r in body["accounts"]] == [
            ("a", "0.1732"),
            ("b", "0.0933"),
            ("c", "0.0258"),
            ("d", "0.0229"),
        ]
        assert body["seq"] == 9


def test_seq_cache_returns_the_same_object_until_the_seq_moves() -> None:
    book = _book()
    cache = SeqCache()
    value = cache.get(book.state, "k", lambda: ["ranked"])
    assert cache.get(book.state, "k", lambda: pytest.fail("recomputed at the same seq")) is value
    book.ok(prices(BTC="100500"))
    again = cache.get(book.state, "k", lambda: ["ranked"])
    assert again == value and again is not value


# ---- metrics -------------------------------------------------------------------------------------


def _liquidation() -> LiquidationTriggered:
    return LiquidationTriggered(
        account="b",
        scope="cross",
        cause=9,
        equity=1,
        maintenance=2,
        positions=[PositionView(coin="BTC", szi=-1, mark=1)],
        phase="market",
    )


@pytest.mark.asyncio
async def test_metrics_exposition() -> None:
    async with serving() as srv:
        srv.metrics.observe_block(
            3, [Rejected(seq=1, reason="x", event="withdraw"), _liquidation(), _liquidation()], 0.002, seq=7
        )
        srv.metrics.observe_block(2, [], 0.00003, seq=9)
        srv.metrics.set_lag(5)
        srv.metrics.set_snapshot(4)
        srv.metrics.dead_letter()
        srv.metrics.set_shadow_backlog(1234)
        srv.metrics.shadow_waited()
        srv.metrics.observe_gc(2, 0.03)
        status, text, resp = await srv.get("/metrics")
        assert status == 200
        assert resp.headers["Content-Type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    lines = set(text.splitlines())
    for expected in (
        "clearinghouse_events_applied_total 5.0",
        'clearinghouse_derived_events_total{type="rejected"} 1.0',
        'clearinghouse_derived_events_total{type="liquidation_triggered"} 2.0',
        'clearinghouse_derived_events_total{type="backstop"} 0.0',
        "clearinghouse_liquidations_total 2.0",
        "clearinghouse_rejected_total 1.0",
        "clearinghouse_dead_letters_total 1.0",
        "clearinghouse_lag_records 5.0",
        "clearinghouse_seq 9.0",
        "clearinghouse_snapshot_seq 4.0",
        "clearinghouse_shadow_backlog_bytes 1234.0",
        "clearinghouse_shadow_waits_total 1.0",
        'clearinghouse_gc_pause_seconds_bucket{generation="2",le="0.025"} 0.0',
        'clearinghouse_gc_pause_seconds_bucket{generation="2",le="0.05"} 1.0',
        "clearinghouse_apply_latency_seconds_count 2.0",
        'clearinghouse_apply_latency_seconds_bucket{le="1e-05"} 0.0',
        'clearinghouse_apply_latency_seconds_bucket{le="5e-05"} 1.0',
        'clearinghouse_apply_latency_seconds_bucket{le="0.001"} 1.0',
        'clearinghouse_apply_latency_seconds_bucket{le="0.0025"} 2.0',
        'clearinghouse_apply_latency_seconds_bucket{le="1.0"} 2.0',
    ):
        assert expected in lines, expected


def test_metrics_instances_do_not_share_series() -> None:
    one, two = Metrics(), Metrics()
    one.observe_block(4, [Checkpoint(seq=3, digest="d", chain="c")], 0.001)
    assert b"clearinghouse_events_applied_total 4.0" in one.render()
    assert b'clearinghouse_derived_events_total{type="checkpoint"} 1.0' in one.render()
    assert b"clearinghouse_events_applied_total 0.0" in two.render()
    assert b"clearinghouse_seq 0.0" in one.render()  # no seq given: the gauge is left alone
