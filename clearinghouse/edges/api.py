"""The service's read-only HTTP query API, run in the service's event loop (`httpserver`).

Handlers read `view.state` at request time; the service applies whole blocks without yielding
to the loop, so a request always sees the state between two blocks. Nothing here mutates it.
Every answer is JSON (decimals as strings, as in `summary`), errors included; an unexpected
exception becomes a bare 500 and a log line, never a traceback for the client.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import unquote

import msgspec
import structlog

from clearinghouse.edges.httpserver import DEFAULT_LIMITS, HttpServer, Limits, Request, Response, serve
from clearinghouse.edges.metrics import CONTENT_TYPE, Metrics
from clearinghouse.overview import Leveraged, most_leveraged, overview
from clearinghouse.state import State
from clearinghouse.summary import clearinghouse_state
from events.units import USD_DECIMALS, format_decimal

log = structlog.get_logger(__name__)

MAX_RANK = 1000  # the most accounts /margin and /liquidation/nearest list
DEFAULT_RANK = 10
INFO_TYPES = ("clearinghouseState",)

T = TypeVar("T")
Handler = Callable[[Request], Response]


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


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, msgspec.json.encode(body), headers=headers or {})


def _account(state: State, name: str) -> dict[str, Any]:
    if name not in state.accounts:
        raise ApiError(404, f"unknown account {name!r}")
    return clearinghouse_state(state, name)


def _rank_param(request: Request, name: str) -> int:
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
                "account_value": format_decimal(ranked.account_value, USD_DECIMALS),
                "maintenance": format_decimal(ranked.maintenance, USD_DECIMALS),
                "positions": [
                    {"coin": p["coin"], "szi": p["szi"], "liquidationPx": p["liquidationPx"]}
                    for p in (entry["position"] for entry in summary["assetPositions"])
                ],
            }
        )
    return {"seq": state.next_seq - 1, "accounts": accounts}


class Api:
    """The routes over a view: each answer JSON, errors included."""

    def __init__(self, routes: dict[str, dict[str, Handler]], account: Handler, token: str | None) -> None:
        self._routes, self._account = routes, account
        self._token = token.encode() if token is not None else None

    def handle(self, request: Request) -> Response:
        try:
            self._authorize(request)
            return self._route(request)(request)
        except ApiError as exc:
            return _json({"error": exc.message}, exc.status, exc.headers)
        except Exception:
            log.exception("http request failed", method=request.method, path=unquote(request.path))
            return _json({"error": "internal error"}, 500)

    def error(self, status: int, message: str) -> Response:
        return _json({"error": message}, status)

    def _authorize(self, request: Request) -> None:
        if self._token is None:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        given = credentials.strip().encode("latin-1")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._token):
            raise ApiError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    def _route(self, request: Request) -> Handler:
        path = unquote(request.path)
        methods = self._routes.get(path)
        name = request.path.removeprefix("/accounts/")
        if methods is None and name != request.path and name and "/" not in name:
            methods = {"GET": self._account}
        if methods is None:
            raise ApiError(404, f"no such endpoint: {path}")
        handler = methods.get(request.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            message = f"method {request.method} not allowed on {path}; allowed: {allowed}"
            raise ApiError(405, message, {"Allow": allowed})
        return handler


def build_app(view: ServiceView, *, token: str | None, metrics: Metrics) -> Api:
    """The query API over `view`; with a `token`, every endpoint asks for `Authorization: Bearer`."""
    if token == "":
        raise ValueError("an empty API token would guard nothing: pass None for an open API")
    cache = SeqCache()

    def health(request: Request) -> Response:
        body = view.health()
        return _json(body, 200 if body.get("status") == "ok" else 503)

    def account(request: Request) -> Response:
        return _json(_account(view.state, unquote(request.path.removeprefix("/accounts/"))))

    def info(request: Request) -> Response:
        try:
            body = msgspec.json.decode(request.body)
        except msgspec.DecodeError as exc:
            raise ApiError(400, f"malformed JSON: {exc}") from None
        except RecursionError:
            raise ApiError(400, "malformed JSON: nested too deeply") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        kind = body.get("type")
        if kind not in INFO_TYPES:
            raise ApiError(400, f"unsupported info type {kind!r}; supported types: {', '.join(INFO_TYPES)}")
        user = body.get("user")
        if not isinstance(user, str):
            raise ApiError(400, f"'user' must be a string (the account), got {user!r}")
        return _json(_account(view.state, user))

    def margin_summary(request: Request) -> Response:
        top = _rank_param(request, "top")
        state = view.state
        return _json(cache.get(state, ("margin", top), lambda: overview(state, top)))

    def nearest(request: Request) -> Response:
        limit = _rank_param(request, "limit")
        state = view.state
        # One scan per seq serves every limit; each limit's answer is rendered once.
        ranking = cache.get(state, "ranking", lambda: most_leveraged(state, MAX_RANK))
        return _json(cache.get(state, ("nearest", limit), lambda: nearest_liquidation(state, ranking[:limit])))

    def prometheus(request: Request) -> Response:
        return Response(200, metrics.render(), CONTENT_TYPE)

    routes: dict[str, dict[str, Handler]] = {
        "/health": {"GET": health},
        "/info": {"POST": info},
        "/margin": {"GET": margin_summary},
        "/liquidation/nearest": {"GET": nearest},
        "/metrics": {"GET": prometheus},
    }
    return Api(routes, account, token)


async def serve_http(
    app: Api, host: str = "127.0.0.1", port: int = 0, limits: Limits = DEFAULT_LIMITS
) -> tuple[HttpServer, int]:
    """Starts `app` on host:port (0: any free port) and returns the server (`await
    server.cleanup()` stops it) and the port it bound."""
    return await serve(app, host, port, limits)
