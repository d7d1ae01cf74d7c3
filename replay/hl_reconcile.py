"""Where the engine and Hyperliquid disagree: a log replayed beside the venue's fills
(`clearinghouse hl reconcile`, docs/hyperliquid-data.md "Reconciling").

The log is replayed in memory with liquidation off (the venue's fills are the executions; fills
say nothing of an account's cash, so the engine must not act on its own figures). At each trade a fill of the file
became, for each of its legs: the engine's position before it against `startPosition`, the pnl
the engine realises against `closedPnl`, the fee it books against `fee`, and the direction
against `dir`. A gap (the position differs: a fill outside the window) is reported and the
engine resynchronised by an adjustment: a trade of the difference between the account and
`@import` at the fill's price, id `hl:adjust:...`. The entry price of an adjusted position is
unknown, so the pnl of the fills that reduce it is counted as `unknown_entry` until it is flat.
Before a fill with a liquidation marker, the engine gets the venue's mark (`markPx`) for the
coin, and the decision its rules take there for the liquidated account (below maintenance or not,
market or backstop phase: `clearinghouse.liquidation.scopes`) is compared with the marker.
A ledger liquidation record (`liq_record`) is compared the same way with the decision for the
scope it names (the cross book alone, or its isolated positions): the decision taken before the first
marked fill of that account at the record's moment when there is one (the record and its
executions share the moment, and the fills come first), else the decision at the record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from html import escape
from typing import Any

from clearinghouse.engine import IMPORT_ACCOUNT, Engine
from clearinghouse.scopes import Scope, scopes
from clearinghouse.state import LiquidationConfig, State
from events.adapters.hl_fills import Leg
from events.schema import LiquidationRecord, PricePoint, Prices, Trade
from events.units import NTL_DIV, PX_DECIMALS, SZ_DECIMALS, USD_DECIMALS, format_decimal

PNL_TOLERANCE = 1  # micro-USDC: the venue writes pnl to 6 decimals (and the entry's last digit, below)


def direction(pos: int, buy: bool, sz: int) -> str:
    """Hyperliquid's `dir` of a fill of `sz` on a position of `pos`."""
    if not pos or (pos > 0) == buy:
        return "Open Long" if buy else "Open Short"
    if sz <= abs(pos):
        return "Close Short" if buy else "Close Long"
    return "Short > Long" if buy else "Long > Short"


@dataclass
class Report:
    fills: int = 0
    start_match: int = 0
    start_gap: int = 0
    pnl_match: int = 0
    pnl_mismatch: int = 0
    pnl_unknown: int = 0
    fee_match: int = 0
    fee_mismatch: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    liquidations: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)  # ledger liquidation records compared
    not_in_log: int = 0
    unread: int = 0

    def summary(self) -> dict[str, Any]:
        """The JSON of `hl reconcile --json`."""
        return {
            "fills": self.fills,
            "start_position": {"match": self.start_match, "gap": self.start_gap},
            "closed_pnl": {"match": self.pnl_match, "mismatch": self.pnl_mismatch, "unknown_entry": self.pnl_unknown},
            "fee": {"match": self.fee_match, "mismatch": self.fee_mismatch},
            "first_mismatch": self.mismatches[0] if self.mismatches else None,
        }


def _amount(value: int, decimals: int) -> str:
    return format_decimal(value, decimals)


class _Reconciler:
    def __init__(self, legs: list[tuple[str, Leg]]) -> None:
        self.engine = Engine(State(liquidation=LiquidationConfig(mode="off")))
        self.by_id: dict[str, list[Leg]] = {}
        for ident, leg in legs:
            self.by_id.setdefault(ident, []).append(leg)
        self.report = Report()
        self.unknown_entry: set[tuple[str, str]] = set()
        # (account, ts) -> its scopes before the account's first marked fill of that moment
        self.decided: dict[tuple[str, int | None], list[Scope] | None] = {}

    def apply(self, event: Any) -> None:
        self.engine.apply(event)

    def scopes_now(self, name: str) -> list[Scope] | None:
        """The account's scopes (cross book, isolated positions) with their figures now; None for an
        account the log does not hold."""
        account = self.engine.state.accounts.get(name)
        return None if account is None else scopes(account, self.engine.state.markets)

    def trade(self, event: Trade) -> None:
        legs = self.by_id.pop(event.id or "", [])
        if legs and event.liquidation is not None and event.liquidation.mark is not None:
            self.apply(Prices(prices={event.coin: PricePoint(mark=event.liquidation.mark)}, ts=event.ts))
            self._liquidation(event)
        for leg in legs:
            self._leg(leg, event)
        self.apply(event)

    def _liquidation(self, event: Trade) -> None:
        mark = event.liquidation
        assert mark is not None
        name = mark.user or mark.account
        found = self.scopes_now(name)
        self.decided.setdefault((name, event.ts), found)
        engine, _ = decision(found)
        self.report.liquidations.append(
            {
                "tid": event.tid,
                "account": name,
                "coin": event.coin,
                "venue": mark.method,
                "engine": engine,
                "agree": engine == mark.method,
            }
        )

    def record(self, event: LiquidationRecord) -> None:
        """The venue's ledger record of a liquidation against the engine's decision for that scope."""
        names = frozenset({"cross"} if event.cross else (p.coin for p in event.positions))
        moment = (event.account, event.ts)
        found = self.decided[moment] if moment in self.decided else self.scopes_now(event.account)
        engine, equity = decision(found, names)
        self.report.records.append(
            {
                "id": event.id,
                "account": event.account,
                "time": event.ts,
                "scope": "cross" if event.cross else "isolated " + " ".join(sorted(names)),
                "venue_account_value": None
                if event.account_value is None
                else _amount(event.account_value, USD_DECIMALS),
                "engine": engine,
                "engine_equity": None if equity is None else _amount(equity, USD_DECIMALS),
                "agree": engine in ("market", "backstop"),
            }
        )
        self.apply(event)

    def _position(self, user: str, coin: str) -> tuple[int, int]:
        account = self.engine.state.accounts.get(user)
        pos = account.positions.get(coin) if account is not None else None
        return (pos.szi, pos.entry_px) if pos is not None else (0, 0)

    def _mismatch(self, leg: Leg, what: str, venue: str, engine: str) -> None:
        self.report.mismatches.append(
            {
                "tid": leg.tid,
                "user": leg.user,
                "coin": leg.coin,
                "time": leg.time,
                "field": what,
                "venue": venue,
                "engine": engine,
            }
        )

    def _leg(self, leg: Leg, event: Trade) -> None:
        report, key = self.report, (leg.user, leg.coin)
        report.fills += 1
        pos, entry = self._position(leg.user, leg.coin)
        if pos == leg.start:
            report.start_match += 1
        else:
            report.start_gap += 1
            self._mismatch(leg, "startPosition", _amount(leg.start, SZ_DECIMALS), _amount(pos, SZ_DECIMALS))
            self._adjust(leg, leg.start - pos)
            pos, entry = self._position(leg.user, leg.coin)
            self.unknown_entry.add(key)
        size = leg.sz if leg.buy else -leg.sz
        reduces = pos and (size > 0) != (pos > 0)
        if reduces and key in self.unknown_entry:
            report.pnl_unknown += 1
        else:
            closed = min(leg.sz, abs(pos)) if reduces else 0
            side = 1 if pos > 0 else -1
            pnl = Fraction(side * (leg.px - entry) * closed, NTL_DIV)
            # the entry price is kept to 1e-8: its last digit moves the pnl by up to closed / NTL_DIV
            if abs(pnl - leg.closed_pnl) <= PNL_TOLERANCE + Fraction(closed, NTL_DIV):
                report.pnl_match += 1
            else:
                report.pnl_mismatch += 1
                self._mismatch(
                    leg, "closedPnl", _amount(leg.closed_pnl, USD_DECIMALS), _amount(round(pnl), USD_DECIMALS)
                )
        fee = event.buyer_fee if leg.buy else event.seller_fee
        if fee == leg.fee:
            report.fee_match += 1
        else:
            report.fee_mismatch += 1
            self._mismatch(leg, "fee", _amount(leg.fee, USD_DECIMALS), _amount(fee, USD_DECIMALS))
        if not leg.adl:
            engine_dir = direction(pos, leg.buy, leg.sz)
            if engine_dir != leg.dir:
                self._mismatch(leg, "dir", leg.dir, engine_dir)
        if not pos + size or (pos and (pos > 0) != (pos + size > 0)):
            self.unknown_entry.discard(key)  # flat, or flipped at the fill price: the entry is known again

    def _adjust(self, leg: Leg, diff: int) -> None:
        """Resynchronises the engine with the venue's startPosition."""
        buyer, seller = (leg.user, IMPORT_ACCOUNT) if diff > 0 else (IMPORT_ACCOUNT, leg.user)
        ident = f"hl:adjust:{leg.key}:{leg.user}"
        adjust = Trade(coin=leg.coin, px=leg.px, sz=abs(diff), buyer=buyer, seller=seller, ts=leg.time, id=ident)
        derived = self.engine.apply(adjust)
        refused = next((d.reason for d in derived if getattr(d, "reason", None)), None)
        self.report.adjustments.append(
            {
                "tid": leg.tid,
                "user": leg.user,
                "coin": leg.coin,
                "size": _amount(diff, SZ_DECIMALS),
                "px": _amount(leg.px, PX_DECIMALS),
                "id": ident,
                "refused": refused,
            }
        )


def decision(found: list[Scope] | None, names: frozenset[str] | None = None) -> tuple[str, int | None]:
    """What the engine's rules say of the `found` scopes, "market", "backstop" or "not triggered",
    with their equity: every scope, or those `names` ("cross", or the coins of isolated positions)."""
    if found is None:
        return "not in this log", None
    looked = [scope for scope in found if names is None or scope.name in names]
    if not looked:
        return "no such isolated position", None
    equity = sum(scope.equity for scope in looked)
    below = [scope for scope in looked if scope.below]
    if not below:
        return "not triggered", equity
    return ("backstop" if any(scope.backstop for scope in below) else "market"), equity


def reconcile(events: Iterable[Any], legs: list[tuple[str, Leg]], unread: int = 0) -> Report:
    """Replays `events` (a log, in order) beside the fills' `legs` (from `fill_legs`)."""
    work = _Reconciler(legs)
    for event in events:
        if isinstance(event, Trade):
            work.trade(event)
        elif isinstance(event, LiquidationRecord):
            work.record(event)
        else:
            work.apply(event)
    work.report.not_in_log = sum(len(legs) for legs in work.by_id.values())
    work.report.unread = unread
    return work.report


def reconcile_html(report: Report) -> str:
    """The report as one HTML page: the counts, then every difference, adjustment and liquidation."""

    def table(title: str, rows: list[dict[str, Any]]) -> str:
        if not rows:
            return f"<h2>{escape(title)}</h2><p>none</p>"
        head = "".join(f"<th>{escape(str(k))}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows)
        return f"<h2>{escape(title)}</h2><table><tr>{head}</tr>{body}</table>"

    summary = report.summary()
    counts = [
        {"figure": name, **{k: v for k, v in value.items()}}
        for name, value in summary.items()
        if isinstance(value, dict) and name != "first_mismatch"
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Hyperliquid reconciliation</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
        f"<h1>Hyperliquid reconciliation</h1><p>{report.fills} fills compared, {report.not_in_log} not in the log, "
        f"{report.unread} unreadable</p>"
        + table("Counts", counts)
        + table("Differences", report.mismatches)
        + table("Adjustments (gaps resynchronised)", report.adjustments)
        + table("Liquidations: the venue's marker and the engine's decision", report.liquidations)
        + table("Ledger liquidation records: the venue's record and the engine's decision", report.records)
        + "</body></html>"
    )
