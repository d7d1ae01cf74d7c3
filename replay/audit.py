"""Why was this account liquidated: every liquidation of it, explained from the log.

A replay from the first event records the account's equity and maintenance margin whenever
something that moves them happens (its own events, ticks and funding of coins it holds,
decisions about it), the marks of every coin it holds or has held at each price tick, and the
last point at which it was above maintenance. The decisions are grouped by the input event that
caused them, numbered from 1: the trigger, the marks, per scope found below maintenance its
equity and maintenance, the shortfall and the marks at which it would have survived
(`replay.survival`), what was closed at what price, what the account kept, and a paragraph
that says it in words. Amounts are decimal strings, exact, as on the wire (the paragraph adds
thousands separators).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from clearinghouse.liquidation import account_below
from clearinghouse.models.registry import model_of
from clearinghouse.overview import grouped
from clearinghouse.scopes import scopes
from clearinghouse.state import State
from events import schema as ev
from events.codec import to_wire
from events.units import PX_DECIMALS, SZ_DECIMALS, USD_DECIMALS, format_decimal
from replay.decisions import Point, replay
from replay.fold import LogPosition, OnEvent
from replay.logdir import LogDir, settings
from replay.survival import percent, survival

DECISIONS = (
    ev.LiquidationTriggered,
    ev.LiquidationFill,
    ev.LiquidationOrder,
    ev.Backstop,
    ev.Adl,
    ev.BadDebt,
    ev.BorrowLiquidation,
)
WINDOW_MARGIN_MS = 60_000  # the liquidation window reaches at least a minute past its first and last liquidation


def when(ts: int) -> str:
    """Event time (ms) as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") + f".{ts % 1000:03d}Z"


def _usd(value: int) -> str:
    return format_decimal(value, USD_DECIMALS)


def _px(value: int) -> str:
    return format_decimal(value, PX_DECIMALS)


def _prices(marks: dict[str, int]) -> dict[str, str]:
    return {coin: _px(mark) for coin, mark in marks.items()}


class Healthy(NamedTuple):
    """The last point at which the account was above maintenance, with its coins' marks."""

    seq: int
    time: int
    marks: dict[str, int]


@dataclass
class Episode:
    """What one input event did to the account."""

    number: int  # 1, 2, ... in log order: the report's numbered markers and sections
    cause: int  # the input event's seq
    trigger: dict[str, Any]  # the input event, wire form
    time: int  # event time (ms)
    marks: dict[str, str]  # marks of the liquidated positions at the trigger
    previous: dict[str, Any] | None  # the last point before it when the account was above maintenance
    before: list[dict[str, Any]]  # each scope found below maintenance (and the borrow check)
    after: list[dict[str, str]]  # each scope's equity and maintenance once the event was done
    actions: list[dict[str, Any]]  # the decisions, wire form
    kept: str  # the account's whole value after
    why: str = ""


@dataclass
class Audit:
    account: str
    series: list[tuple[int, int, int, int]] = field(default_factory=list)  # (seq, ts, equity, maintenance)
    marks: list[tuple[int, int, dict[str, int]]] = field(default_factory=list)  # (seq, ts, coin -> mark) per tick
    episodes: list[Episode] = field(default_factory=list)

    def window(self) -> tuple[int, int] | None:
        """The liquidation window (ms): the first to the last liquidation, widened on each side
        by a quarter of that span and at least `WINDOW_MARGIN_MS`."""
        if not self.episodes:
            return None
        first, last = self.episodes[0].time, self.episodes[-1].time
        margin = max((last - first) // 4, WINDOW_MARGIN_MS)
        return first - margin, last + margin

    def window_marks(self) -> list[tuple[int, int, dict[str, int]]]:
        window = self.window()
        if window is None:
            return []
        return [m for m in self.marks if window[0] <= m[1] <= window[1]]

    def as_json(self) -> dict[str, Any]:
        window = self.window()
        return {
            "account": self.account,
            "liquidations": [asdict(episode) for episode in self.episodes],
            "window": None if window is None else {"start": window[0], "end": window[1]},
            "marks": [{"seq": s, "ts": t, "marks": _prices(m)} for s, t, m in self.window_marks()],
            "series": [{"seq": s, "ts": t, "equity": _usd(e), "maintenance": _usd(m)} for s, t, e, m in self.series],
        }


def _concerns(event: Any, name: str, coins: set[str]) -> bool:
    """Whether an input event can move the account's equity or maintenance."""
    kind = type(event)
    if kind is ev.Prices:
        return not coins.isdisjoint(event.prices)
    if kind is ev.Funding or kind is ev.Market:
        return event.coin in coins
    if kind is ev.Trade:
        return name in (event.buyer, event.seller)
    if kind is ev.Transfer:
        return name in (event.from_, event.to)
    return getattr(event, "account", None) == name


def _about(decision: Any, name: str) -> bool:
    if not isinstance(decision, DECISIONS):
        return False
    return decision.account == name or getattr(decision, "counterparty", None) == name


def _coins(decision: Any) -> list[str]:
    """The coins a decision names."""
    if isinstance(decision, (ev.LiquidationTriggered, ev.Backstop)):
        return [v.coin for v in decision.positions]
    return [decision.coin] if hasattr(decision, "coin") else []


def _figures(state: State, name: str) -> tuple[int, int]:
    """Whole-account equity and maintenance (cross plus isolated)."""
    account = state.accounts[name]
    found = scopes(account, state.markets)
    return sum(s.equity for s in found), sum(s.maintenance for s in found)


def _scopes_view(state: State, name: str) -> list[dict[str, str]]:
    return [
        {"scope": s.name, "equity": _usd(s.equity), "maintenance": _usd(s.maintenance)}
        for s in scopes(state.accounts[name], state.markets)
        if s.maintenance or s.equity
    ]


def audit(log: LogDir, name: str) -> Audit:
    """A replay from the first event, guided by the recorded decisions (`replay.decisions`)."""
    result = Audit(name)
    config = settings(log).liquidation
    replay(log, lambda: LogPosition(State(liquidation=config)), Point(), lambda state: _watcher(result, state))
    return result


def _watcher(result: Audit, state: State) -> OnEvent:
    """Records what `audit` shows, from the start (an attempt that falls back starts over)."""
    result.series.clear()
    result.marks.clear()
    result.episodes.clear()
    name = result.account
    held: dict[str, None] = {}  # every coin the account holds or has held, in the order first seen
    healthy: Healthy | None = None

    def marks() -> dict[str, int]:
        return {coin: state.markets[coin].mark for coin in held}

    def on_event(seq: int, event: Any, derived: list[Any]) -> None:
        nonlocal healthy
        account = state.accounts.get(name)
        if account is None:
            return
        mine = [d for d in derived if _about(d, name)]
        coins = {c for c, p in account.positions.items() if p.szi}
        touched = {c for d in mine for c in _coins(d)}
        for coin in sorted(coins | touched):
            held.setdefault(coin)
        if type(event) is ev.Prices and not held.keys().isdisjoint(event.prices):
            result.marks.append((seq, state.time, marks()))
        if not mine and not _concerns(event, name, coins | touched):
            return
        equity, maintenance = _figures(state, name)
        result.series.append((seq, state.time, equity, maintenance))
        if mine:
            result.episodes.append(_episode(len(result.episodes) + 1, seq, event, mine, state, name, healthy, equity))
        if not account_below(state, name, account):
            healthy = Healthy(seq, state.time, marks())

    return on_event


def _episode(
    number: int, seq: int, event: Any, mine: list[Any], state: State, name: str, healthy: Healthy | None, equity: int
) -> Episode:
    """The episode of input event `seq`; `equity` is the account's whole value after it."""
    before: list[dict[str, Any]] = []
    marks: dict[str, str] = {}
    actions = []
    for decision in mine:
        if isinstance(decision, ev.LiquidationTriggered):
            gap = decision.maintenance - decision.equity
            before.append(
                {
                    "scope": decision.scope,
                    "equity": _usd(decision.equity),
                    "maintenance": _usd(decision.maintenance),
                    "phase": decision.phase,
                    "shortfall": _usd(gap),
                    "shortfall_pct": percent(gap, decision.maintenance),
                    "survival": survival(decision, state),
                }
            )
            marks.update((v.coin, _px(v.mark)) for v in decision.positions)
            continue
        if isinstance(decision, ev.BorrowLiquidation) and not any(b["scope"] == "borrow" for b in before):
            before.append(
                {
                    "scope": "borrow",
                    "borrowed": _usd(decision.borrowed),
                    "threshold": _usd(decision.threshold),
                    "collateral_value": _usd(decision.collateral_value),
                    "kind": decision.kind,
                }
            )
        actions.append(to_wire(decision))
    previous = None if healthy is None else {"seq": healthy.seq, "time": healthy.time, "marks": _prices(healthy.marks)}
    after = _scopes_view(state, name)
    episode = Episode(number, seq, to_wire(event), state.time, marks, previous, before, after, actions, _usd(equity))
    episode.why = why(episode, mine, healthy, name, model_of(state, name).ratio_liquidation)
    return episode


# ---- the paragraph ---------------------------------------------------------------------------


def why(episode: Episode, mine: list[Any], healthy: Healthy | None, name: str, portfolio: bool) -> str:
    """One paragraph: how far below maintenance, which price move, where it would have survived
    (`portfolio`: margined on its whole portfolio, in portfolio margin or the risk model; its
    spot balances are not in `kept`)."""
    triggered = [d for d in mine if isinstance(d, ev.LiquidationTriggered)]
    parts = [_found(found) for found in episode.before]
    if triggered:
        parts.append(_move(episode, triggered, healthy))
    parts += [_survived(found) for found in episode.before if "phase" in found]
    parts += [_deleveraged(d) for d in mine if isinstance(d, ev.Adl) and d.counterparty == name]
    debts = [d for d in mine if isinstance(d, ev.BadDebt)]
    parts += [
        f"It had a bad debt of {grouped(_usd(d.amount))} USDC ({d.scope}), recorded, not dropped." for d in debts
    ]
    value = "perp account value (spot balances aside)" if portfolio else "account value"
    parts.append(f"After the event its {value} was {grouped(episode.kept)} USDC.")
    return " ".join(parts)


def _scope_name(scope: str) -> str:
    if scope == "cross":
        return "The cross book"
    if scope == "portfolio":
        return "The portfolio (liquidation value against the PM requirement over the liquidation ratio)"
    if scope == "risk":
        return "The risk book (equity against the risk model's maintenance, docs/risk-margin.md)"
    return f"The isolated {scope} position"


def _found(found: dict[str, Any]) -> str:
    if found["scope"] == "borrow":
        return (
            f"Its borrowed value, {grouped(found['borrowed'])} USDC, was above the {found['kind']} "
            f"borrow-liquidation threshold of {grouped(found['threshold'])} USDC "
            f"(collateral worth {grouped(found['collateral_value'])} USDC)."
        )
    if found["phase"] == "backstop":
        action = "under two thirds of maintenance, so the liquidator took it over (backstop)"
    else:
        action = "so the market phase closed positions"
    share = f" ({found['shortfall_pct']}% of maintenance)" if found["shortfall_pct"] is not None else ""
    return (
        f"{_scope_name(found['scope'])} was {grouped(found['shortfall'])} USDC below maintenance{share}: "
        f"equity {grouped(found['equity'])} against maintenance {grouped(found['maintenance'])} USDC, {action}."
    )


def _move(episode: Episode, triggered: list[ev.LiquidationTriggered], healthy: Healthy | None) -> str:
    """The marks at the trigger against the last point the account was above maintenance."""
    trigger = f"the {episode.trigger['type']} event at seq {episode.cause}"
    if healthy is None:
        return f"It was never above maintenance before {trigger}."
    now = {v.coin: v.mark for d in triggered for v in d.positions}
    moves = []
    for coin in sorted(now):
        then = healthy.marks.get(coin)
        if then is not None and then != now[coin]:
            change = percent(now[coin] - then, then)
            share = f" ({signed(change)}%)" if change is not None else ""
            moves.append(f"{coin} from {grouped(_px(then))} to {grouped(_px(now[coin]))}{share}")
    moment = f" ({when(healthy.time)})" if healthy.time else ""
    since = f"since seq {healthy.seq}{moment}, the last time the account was above maintenance"
    if not moves:
        return f"No mark of its liquidated positions moved {since}: {trigger} (or the events since) took it below."
    return f"It was found below at {trigger}; {since}, the marks moved: {', '.join(moves)}."


def _survived(found: dict[str, Any]) -> str:
    rescue = found["survival"]
    if rescue is None:
        if found["scope"] == "portfolio":
            return "A portfolio-margin account is judged on its whole portfolio; no survival price is computed."
        if found["scope"] == "risk":
            return (
                "A risk-model account is judged on its whole book under its scenarios "
                "(clearinghouse margin names the binding one); no survival price is computed."
            )
        return "It held no position: its ledger alone was negative."
    if rescue["method"] == "liquidation price":
        if rescue["mark"] is None:
            return f"No positive {rescue['coin']} mark would have kept it at maintenance."
        up = not rescue["move_pct"].startswith("-")
        return (
            f"It would have stayed at maintenance with {rescue['coin']} at {grouped(rescue['mark'])} or "
            f"{'above' if up else 'below'} ({signed(rescue['move_pct'])}% from the trigger's mark), "
            "the position's liquidation price under the log's rules."
        )
    if rescue["move_pct"] is None:
        return "No uniform move of all its marks (up to +1000% or down to zero) would have kept it at maintenance."
    marks = ", ".join(f"{c} {grouped(p)}" for c, p in rescue["marks"].items())
    return (
        f"Moving all its marks together, it would have stayed at maintenance with a move of "
        f"{signed(rescue['move_pct'])}% ({marks})."
    )


def _deleveraged(adl: ev.Adl) -> str:
    """ADL's size is signed from the bankrupt side; this account's side is the opposite."""
    size = grouped(format_decimal(-adl.sz, SZ_DECIMALS))
    return (
        f"Auto-deleveraging closed {size} {adl.coin} of this account's position at {grouped(_px(adl.px))} "
        f"against the bankrupt account {adl.account}."
    )


def signed(pct: str) -> str:
    """A percentage with its sign, + included."""
    return pct if pct.startswith("-") else f"+{pct}"
