"""The state as it was at any seq or moment, and what changed between two points.

Both start from the nearest earlier snapshot and apply the events after it, so asking about the
past costs at most one snapshot interval of replay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clearinghouse.lazy import same
from clearinghouse.state import MarketState, State
from clearinghouse.summary import clearinghouse_state
from events.eventlog import EventLog
from events.units import PX_DECIMALS, SZ_DECIMALS, USD_DECIMALS, format_decimal
from replay.decisions import Point, replay
from replay.fold import load
from replay.logdir import LogDir


class HistoryError(ValueError):
    """A point the log cannot show (beyond its end, before its start, a malformed time)."""


def parse_time(text: str) -> int:
    """ISO 8601 (a `Z` or offset, or UTC if none) -> ms since the epoch."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HistoryError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _last_seq(log: LogDir) -> int:
    with EventLog(log.events, readonly=True) as events:
        return events.next_seq - 1


def state_at(log: LogDir, *, seq: int | None = None, time: int | None = None) -> State:
    """The state right after input `seq`, or after the last event at or before `time` (ms):
    from the nearest earlier snapshot, its accounts decoded as the replay of the events after it
    touches them (`clearinghouse.lazy`), guided by the recorded decisions (`replay.decisions`;
    tests compare with a plain replay)."""
    if seq is not None:
        last = _last_seq(log)
        if not 0 <= seq <= last:
            raise HistoryError(f"seq {seq} is outside the log (0..{last})")
    at = replay(
        log,
        lambda: load(log, at_most=None if seq is None else seq + 1, time=time, check_digest=False, lazy=True),
        Point(seq, time),
    )
    if at.state.next_seq == 0:
        raise HistoryError("no event of the log is at or before that time")
    return at.state


def _account_view(state: State, name: str) -> dict[str, Any] | None:
    return clearinghouse_state(state, name) if name in state.accounts else None


def _market_view(m: MarketState | None) -> dict[str, str] | None:
    if m is None:
        return None
    return {"mark": format_decimal(m.mark, PX_DECIMALS), "open_interest": format_decimal(m.long_size, SZ_DECIMALS)}


def _changes(before: Any, after: Any, path: str, out: dict[str, Any]) -> None:
    """Leaf-level differences of two JSON-like values, keyed by their path. What exists on one
    side only (a new account, market or position) is compared with an empty one, so each of its
    leaves is named by its path, [null, value]."""
    if before is None and isinstance(after, (dict, list)):
        before = type(after)()
    elif after is None and isinstance(before, (dict, list)):
        after = type(before)()
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            _changes(before.get(key), after.get(key), f"{path}.{key}" if path else key, out)
    elif isinstance(before, list) and isinstance(after, list) and path.endswith("assetPositions"):
        by_coin = lambda items: {i["position"]["coin"]: i["position"] for i in items}  # noqa: E731
        _changes(by_coin(before), by_coin(after), path, out)
    elif before != after:
        out[path] = [before, after]


def diff(log: LogDir, start: int, end: int, account: str | None = None) -> dict[str, Any]:
    """What changed from right after `start` to right after `end`: accounts (the one asked, or
    every account whose state changed), markets and totals, as [before, after] leaves."""
    if end < start:
        raise HistoryError("--to must not be before --from")
    before, after = state_at(log, seq=start), state_at(log, seq=end)
    if account is not None and account not in before.accounts and account not in after.accounts:
        raise HistoryError(
            f"account {account!r} does not exist at seq {start} or at seq {end}: "
            "check the name (names are case-sensitive)"
        )
    names = (
        [account]
        if account
        else sorted(
            n for n in set(before.accounts) | set(after.accounts) if not same(before.accounts, after.accounts, n)
        )
    )
    accounts: dict[str, Any] = {}
    for name in names:
        changes: dict[str, Any] = {}
        _changes(_account_view(before, name), _account_view(after, name), "", changes)
        changes.pop("time", None)
        if changes:
            accounts[name] = changes
    markets: dict[str, Any] = {}
    for coin in sorted(set(before.markets) | set(after.markets)):
        a, b = before.markets.get(coin), after.markets.get(coin)
        changes = {}
        _changes(_market_view(a), _market_view(b), "", changes)
        if changes:
            markets[coin] = changes
    totals = {}
    for field in ("fees", "bad_debt", "deposited", "withdrawn", "funding_pool"):
        x, y = getattr(before, field), getattr(after, field)
        if x != y:
            totals[field] = [format_decimal(x, USD_DECIMALS), format_decimal(y, USD_DECIMALS)]
    return {"from": start, "to": end, "accounts": accounts, "markets": markets, "totals": totals}
