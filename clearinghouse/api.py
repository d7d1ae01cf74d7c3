"""The service's read-only HTTP query API (aiohttp), run in the service's event loop.

Handlers read `view.state` at request time; the service applies whole blocks without yielding
to the loop, so a request always sees the state between two blocks. Nothing here mutates it.
Every answer is JSON (decimals as strings, as in `summary`), errors included; an unexpected
exception becomes a bare 500 and a log line, never a traceback for the client.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol, TypeVar, cast

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from clearinghouse.metrics import CONTENT_TYPE, Metrics
from clearinghouse.overview import Leveraged, most_leveraged, overview
from clearinghouse.state import State
from clearinghouse.summary import clearinghouse_state
from clearinghouse.units import USD_DECIMALS, format_decimal

log = structlog.get_logger(__name__)

MAX_BODY = 64 * 1024  # bytes; an info request is a few dozen
MAX_RANK = 1000  # the most accounts /margin and /liquidation/nearest list
DEFAULT_RANK = 10
INFO_TYPES = ("clearinghouseState",)

T = TypeVar("T")


class ServiceView(Protocol):
    """What the API needs from the service."""

    @property
    def state(self) -> State: ...

    def health(self) -> dict[str, Any]:
        """status ("ok" when serving normally), seq, lag, source, last snapshot seq, ..."""
        ...


class ApiError(Exception):
    """An answer other than 200, raised anywhere in a handler and rendered as JSON."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


class SeqCache:
    """Values computed from the state at one seq. The state only changes by applying events,
    which moves `next_seq`, so a value stays valid until then and requests between two blocks
    share it instead of rescanning the book."""

    def __init__(self) -> None:
        self._seq = -1
        self._values: dict[Hashable, Any] = {}

    def get(self, state: State, key: Hashable, compute: Callable[[], T]) -> T:
        if state.next_seq != self._seq:
            self._seq, self._values = state.next_seq, {}
        if key not in self._values:
            self._values[key] = compute()
        return cast(T, self._values[key])


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, headers=headers, content_type="application/json")


def _account(state: State, name: str) -> dict[str, Any]:
    if name not in state.accounts:
        raise ApiError(404, f"unknown account {name!r}")
    return clearinghouse_state(state, name)


def _rank_param(request: web.Request, name: str) -> int:
    raw = request.query.get(name)
    if raw is None:
        return DEFAULT_RANK
    value = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= value <= MAX_RANK:
        raise ApiError(400, f"{name} must be an integer from 1 to {MAX_RANK}, got {raw!r}")
    return value


def nearest_liquidation(state: State, ranking: list[Leveraged]) -> dict[str, Any]:
    """The ranked accounts (`overview.most_leveraged`, nearest liquidation first) with their
    figures and each position's liquidation price."""
    accounts = []
    for ranked in ranking:
        summary = clearinghouse_state(state, ranked.account)
        accounts.append(
            {
                "account": ranked.account,
                "margin_ratio": format_decimal(ranked.margin_ratio, 4),
                "account_value": format_decimal(ranked.cross.account_value, USD_DECIMALS),
                "maintenance": format_decimal(ranked.cross.maintenance, USD_DECIMALS),
                "positions": [
                    {"coin": p["coin"], "szi": p["szi"], "liquidationPx": p["liquidationPx"]}
                    for p in (entry["position"] for entry in summary["assetPositions"])
                ],
            }
        )
    return {"seq": state.next_seq - 1, "accounts": accounts}


def _errors_middleware() -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return _json({"error": exc.message}, exc.status, exc.headers)
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return _json({"error": f"method {request.method} not allowed on {request.path}; allowed: {allowed}"}, 405, {"Allow": allowed})
        except web.HTTPNotFound:
            return _json({"error": f"no such endpoint: {request.path}"}, 404)
        except web.HTTPRequestEntityTooLarge:
            return _json({"error": f"request body above {MAX_BODY} bytes"}, 413)
        except web.HTTPException as exc:
            return _json({"error": exc.reason}, exc.status)
        except Exception:
            log.exception("http request failed", method=request.method, path=request.path)
            return _json({"error": "internal error"}, 500)

    return errors


def _auth_middleware(token: str) -> Middleware:
    expected = token.encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        given = credentials.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, expected):
            raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return auth


def build_app(view: ServiceView, *, token: str | None, metrics: Metrics) -> web.Application:
    """The query API over `view`; with a `token`, every endpoint asks for `Authorization: Bearer`."""
    if token == "":
        raise ValueError("an empty API token would guard nothing: pass None for an open API")
    cache = SeqCache()

    async def health(request: web.Request) -> web.Response:
        body = view.health()
        return _json(body, 200 if body.get("status") == "ok" else 503)

    async def account(request: web.Request) -> web.Response:
        return _json(_account(view.state, request.match_info["account"]))

    async def info(request: web.Request) -> web.Response:
        try:
            body = msgspec.json.decode(await request.read())
        except msgspec.DecodeError as exc:
            raise ApiError(400, f"malformed JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        kind = body.get("type")
        if kind not in INFO_TYPES:
            raise ApiError(400, f"unsupported info type {kind!r}; supported types: {', '.join(INFO_TYPES)}")
        user = body.get("user")
        if not isinstance(user, str):
            raise ApiError(400, f"'user' must be a string (the account), got {user!r}")
        return _json(_account(view.state, user))

    async def margin_summary(request: web.Request) -> web.Response:
        top = _rank_param(request, "top")
        state = view.state
        return _json(cache.get(state, ("margin", top), lambda: overview(state, top)))

    async def nearest(request: web.Request) -> web.Response:
        limit = _rank_param(request, "limit")
        state = view.state
        # One scan per seq serves every limit; each limit's answer is rendered once.
        ranking = cache.get(state, "ranking", lambda: most_leveraged(state, MAX_RANK))
        return _json(cache.get(state, ("nearest", limit), lambda: nearest_liquidation(state, ranking[:limit])))

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    middlewares = [_errors_middleware()] + ([_auth_middleware(token)] if token is not None else [])
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    app.add_routes(
        [
            web.get("/health", health, allow_head=False),
            web.get("/accounts/{account}", account, allow_head=False),
            web.post("/info", info),
            web.get("/margin", margin_summary, allow_head=False),
            web.get("/liquidation/nearest", nearest, allow_head=False),
            web.get("/metrics", prometheus, allow_head=False),
        ]
    )
    return app


async def serve_http(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Starts `app` on host:port (0: any free port) and returns the runner (`await
    runner.cleanup()` stops it) and the port it bound. aiohttp's access log is off."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, runner.addresses[0][1]
