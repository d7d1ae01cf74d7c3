"""Reads Hyperliquid files of any shape `hl_files.sniff` recognises into one list of events for a
log (`clearinghouse hl ingest`): the files are read in the order given, and what they share
(accounts seeded once, a trade's two legs in consecutive hourly files, one account's
`clearinghouseState`, `spotClearinghouseState` and `userAbstraction`) is carried across them.
An account's state bodies are read whole before its seed is made, so their order does not matter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from events.adapters.hl_files import (
    ABSTRACTION,
    NODE_FILLS,
    NODE_MISC,
    PERP_STATE,
    SPOT_STATE,
    USER_FILLS,
    HlFileError,
    Progress,
    node_blocks,
    sniff,
)
from events.adapters.hl_fills import EXTERNAL, FillError, FillIngest, Leg, LogContents, Outcome, parse_leg
from events.adapters.hl_misc import MiscError, misc_events
from events.adapters.hl_spot import SpotError, body_mode, check_user, pooled_import, resolve_mode, spot_events
from events.adapters.hyperliquid import AdapterError, import_events
from events.schema import ImportAccount, Market, Prices, SetMode

STATES = (SPOT_STATE, PERP_STATE, ABSTRACTION)  # an account's state bodies: read whole, then seeded
POOLED = ("unified", "portfolio")  # modes whose USDC is the spot state's
Held = dict[
    str, tuple[Path, dict[str, Any], dict[str, Any]]
]  # an account's state bodies: shape -> (file, body, summary)


class HlIngest:
    """Every file's events, the rejects with their reasons, and a summary per file."""

    def __init__(self, known: LogContents, markets: dict[str, Market], user: str | None = None) -> None:
        self.user = user
        self.fills = FillIngest(known, markets)
        self.files: list[dict[str, Any]] = []
        self.misc: list[Any] = []  # events from misc_events files, merged with the trades by time
        self.spot: list[Any] = []  # events from spot states: after the seeds, before anything timed
        self.liquidations: list[dict[str, Any]] = []  # the ledger's liquidation records
        self.spot_states: list[dict[str, Any]] = []  # per spot state: the account, its mode, what was read
        self._pending: dict[int, tuple[Leg, dict[str, Any]]] = {}  # node legs waiting for their other side
        self._states: dict[str, Held] = {}  # per account, in the order first read
        self._markets = markets

    @property
    def rejects(self) -> list[dict[str, Any]]:
        return self.fills.rejects

    def read(self, path: Path, progress: Progress | None = None) -> dict[str, Any]:
        kind, content = sniff(path)
        out = Outcome()
        if kind == USER_FILLS:
            self._user_fills(path, content, out)
        elif kind == NODE_FILLS:
            self._node_fills(path, out, progress)
        elif kind == NODE_MISC:
            self._node_misc(path, out, progress)
        read, made = ("fills", "trades") if kind in (USER_FILLS, NODE_FILLS) else ("records", "events")
        summary = {
            "file": str(path),
            "format": kind,
            read: out.fills,
            made: out.trades,
            "dropped": out.dropped,
            "rejected": out.rejected,
        }
        if kind in STATES:
            self._state(path, kind, content, summary)
        self.files.append(summary)
        return summary

    def _state(self, path: Path, kind: str, body: dict[str, Any], summary: dict[str, Any]) -> None:
        """Keeps an account's state body for its seed (`finish`); its summary counts its records
        now and its events then."""
        named = body.get("user", body.get("subAccountUser"))
        user = self.user or (named if isinstance(named, str) else None)
        if user is None:
            raise HlFileError(f"a {kind} body does not say whose it is: pass --user ADDRESS")
        if kind == PERP_STATE and not isinstance(body.get("assetPositions"), list):
            raise HlFileError("assetPositions is not a list")
        try:
            check_user(user)
            if kind != PERP_STATE:
                body_mode(body)  # an unknown abstraction word refuses the file
            if kind == SPOT_STATE and not isinstance(body.get("balances"), list):
                raise SpotError("balances is not a list")
        except SpotError as exc:
            raise HlFileError(str(exc)) from None
        held = self._states.setdefault(user, {})
        if kind in held:
            raise HlFileError(f"a second {kind} body for {user} (the first: {held[kind][0]})")
        held[kind] = (path, body, summary)
        summary["records"] = {
            SPOT_STATE: len(body.get("balances", [])),
            PERP_STATE: len(body.get("assetPositions", [])),
        }.get(kind, 1)

    def _user_fills(self, path: Path, content: tuple[list[Any], str | None], out: Outcome) -> None:
        fills, named = content
        user = self.user or named
        if user is None:
            raise HlFileError("a userFills array does not say whose fills they are: pass --user ADDRESS")
        if self.user and named and named.lower() != self.user.lower():
            raise HlFileError(f"the file holds the fills of {named}, not of --user {self.user}")
        # The API lists the newest first, but the fills of one moment in the order they happened:
        # a stable sort by time gives the order of events.
        order = sorted(range(len(fills)), key=lambda i: _time_key(fills[i]))
        for i in order:
            where = {"file": str(path), "index": i}
            try:
                leg = parse_leg(fills[i], user)
            except FillError as exc:
                out.fills += 1
                out.rejected += 1
                self.fills.rejects.append({**where, "tid": fills[i].get("tid"), "reason": str(exc)})
                continue
            self.fills.add([leg], where, out)

    def _node_fills(self, path: Path, out: Outcome, progress: Progress | None) -> None:
        for number, block in node_blocks(path, progress):
            if isinstance(block, str):
                self.fills.rejects.append({"file": str(path), "line": number, "reason": block})
                continue
            for index, item in enumerate(block["events"]):
                where = {"file": str(path), "line": number, "event": index}
                try:
                    leg = self._leg(item)
                except FillError as exc:
                    out.fills += 1
                    out.rejected += 1
                    self.fills.rejects.append({**where, "reason": str(exc)})
                    continue
                if leg is None:
                    continue
                if self.user is not None:
                    self.fills.add([leg], where, out)
                    continue
                if leg.tid is None:
                    out.fills += 1
                    out.rejected += 1
                    self.fills.rejects.append({**where, "reason": "a node fill without tid cannot be paired"})
                    continue
                other = self._pending.pop(leg.tid, None)
                if other is None:
                    self._pending[leg.tid] = (leg, where)
                else:
                    self.fills.add([other[0], leg], other[1], out)

    def _node_misc(self, path: Path, out: Outcome, progress: Progress | None) -> None:
        """Misc events count as `fills` read and `trades` booked in the summary's terms: events in, events out."""
        known, fills = self.fills.known, self.fills
        for number, block in node_blocks(path, progress):
            if isinstance(block, str):
                fills.rejects.append({"file": str(path), "line": number, "reason": block})
                continue
            for index, item in enumerate(block["events"]):
                out.fills += 1
                where = {"file": str(path), "line": number, "event": index}
                try:
                    events, note = misc_events(item, f"hl:b{block['block_number']}:{index}", known.modes)
                except MiscError as exc:
                    out.rejected += 1
                    fills.rejects.append({**where, "reason": str(exc)})
                    continue
                if note is not None:
                    self.liquidations.append(note)
                for event in events:
                    if event.id in known.ids or event.id in fills.ids:
                        out.dropped += 1
                        continue
                    fills.ids.add(event.id)
                    if fills.first_ts is None or event.ts < fills.first_ts:
                        fills.first_ts = event.ts
                    self.misc.append(event)
                    out.trades += 1

    def _leg(self, item: Any) -> Leg | None:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict)):
            raise FillError("not a [user, fill] pair")
        user, fill = item
        if self.user is not None and user.lower() != self.user.lower():
            return None
        return parse_leg(fill, self.user or user)

    def finish(self) -> list[Any]:
        """The events of every file read; a node leg whose other side never came is a reject."""
        for tid, (_leg, where) in sorted(self._pending.items()):
            self.fills.rejects.append({**where, "tid": tid, "reason": "only one side of this trade is in the files"})
        self._pending.clear()
        fills = self.fills
        modes: dict[str, str | None] = {}
        for user, held in self._states.items():
            if PERP_STATE in held:  # seeded from its state, not from its first fills
                fills.seeds.pop(user, None)
                fills.known.accounts.add(EXTERNAL)
            modes[user] = self._mode(user, held)
        events = fills.events()
        timed = len(fills.trades)
        head, trades = events[: len(events) - timed], events[len(events) - timed :]
        head = [self._seeded_mode(event, modes) for event in head]
        fills.known.markets.update(event.coin for event in head if isinstance(event, Market))
        for user, held in self._states.items():
            self._seed(user, held, modes[user])
        # the trades and the misc events, in time order (each file's own order within one moment)
        merged = sorted(trades + self.misc, key=lambda e: e.ts) if self.misc else trades
        return head + self.spot + merged

    def _mode(self, user: str, held: Held) -> str | None:
        """The mode the account's userAbstraction answer and spot state give (None: neither)."""
        spot, word = held.get(SPOT_STATE), held.get(ABSTRACTION)
        try:
            return resolve_mode(spot[1] if spot else None, word[1]["abstraction"] if word else None)
        except SpotError as exc:
            raise HlFileError(f"{user}: {exc}") from None

    def _seeded_mode(self, event: Any, modes: dict[str, str | None]) -> Any:
        """A seed from fills is created in the account's mode, when its state bodies give one."""
        mode = modes.get(getattr(event, "account", ""))
        if not isinstance(event, ImportAccount) or mode in (None, "standard"):
            return event
        self.fills.known.modes[event.account] = mode  # its spot state, if any, sets no mode of its own
        return msgspec.structs.replace(event, mode=mode)

    def _seed(self, user: str, held: Held, mode: str | None) -> None:
        """The account's seed from its state bodies, in `self.spot`: its clearinghouseState import
        (made whole with its spot state for a unified or portfolio account), its spot side, or
        only its mode."""
        known, fills = self.fills.known, self.fills
        perp, spot, word = held.get(PERP_STATE), held.get(SPOT_STATE), held.get(ABSTRACTION)
        made: list[tuple[dict[str, Any], Any]] = []
        if perp is not None:
            made += self._perp_seed(user, perp, spot, mode)
        if spot is not None and (perp is None or mode not in POOLED):
            now = "standard" if perp is not None else known.modes.get(user)
            try:
                events, rejects, note = spot_events(spot[1], user, known.tokens, now, mode)
            except SpotError as exc:
                raise HlFileError(f"{spot[0]}: {exc}") from None
            self._spot_note(spot, rejects, note)
            owner = word[2] if word is not None else spot[2]
            made += [(owner if isinstance(event, SetMode) else spot[2], event) for event in events]
        elif spot is None and perp is None and mode != (known.modes.get(user) or "standard"):
            made.append((word[2], SetMode(account=user, mode=mode, id=f"hl:mode:{user}")))  # type: ignore[index]
        if mode is not None:
            known.modes[user] = mode
        for summary, event in made:
            if event.id is not None and (event.id in known.ids or event.id in fills.ids):
                summary["dropped"] += 1
                continue
            if event.id is not None:
                fills.ids.add(event.id)
            self.spot.append(event)
            summary["events"] += 1

    def _perp_seed(
        self, user: str, perp: tuple[Path, dict[str, Any], dict[str, Any]], spot: Any, mode: str | None
    ) -> list[tuple[dict[str, Any], Any]]:
        """The account's import from its clearinghouseState: as it stands for a standard account,
        with its spot state for a unified or portfolio one (`hl_spot.pooled_import`); each event
        with the summary of the file it counts for."""
        known = self.fills.known
        ident = f"hl:seed:{user}"
        if user in known.accounts and ident not in known.ids:  # ingested before: its events are dropped
            raise HlFileError(f"{perp[0]}: the log already holds account {user}; a clearinghouseState seeds new ones")
        try:
            events = import_events(perp[1], user, markets=self._markets)
        except AdapterError as exc:
            raise HlFileError(f"{perp[0]}: {exc}") from None
        events = [
            msgspec.structs.replace(e, id=f"hl:marks:{user}") if isinstance(e, Prices) else e
            for e in events
            if not (isinstance(e, Market) and e.coin in known.markets)
        ]
        known.markets.update(e.coin for e in events if isinstance(e, Market))
        seed = msgspec.structs.replace(events[-1], id=ident)
        if mode not in POOLED:
            return [(perp[2], event) for event in [*events[:-1], seed]]
        if spot is None:
            raise HlFileError(
                f"{perp[0]}: a {mode} account keeps its USDC in its spotClearinghouseState, not in its "
                "clearinghouseState: give that file too"
            )
        try:
            made, rejects, note = pooled_import(seed, spot[1], mode, known.tokens)  # type: ignore[arg-type]
        except SpotError as exc:
            raise HlFileError(f"{spot[0]}: {exc}") from None
        self._spot_note(spot, rejects, note)
        at = next(i for i, event in enumerate(made) if isinstance(event, ImportAccount)) + 1
        return [(perp[2], event) for event in [*events[:-1], *made[:at]]] + [(spot[2], event) for event in made[at:]]

    def _spot_note(self, spot: Any, rejects: list[tuple[int, str]], note: dict[str, Any]) -> None:
        self.spot_states.append(note)
        spot[2]["rejected"] += len(rejects)
        for index, reason in rejects:
            self.fills.rejects.append({"file": str(spot[0]), "index": index, "reason": reason})


def _time_key(fill: Any) -> int:
    time = fill.get("time") if isinstance(fill, dict) else None
    return int(time) if isinstance(time, int) or (isinstance(time, str) and time.isdigit()) else 0


def fill_legs(path: Path, user: str | None = None) -> tuple[list[tuple[str, Leg]], int]:
    """The legs of a fills file with the source id of the trade each became (as `HlIngest` gives
    them), in the file's time order, and the count of fills that could not be read."""
    kind, content = sniff(path)
    legs: list[tuple[str, Leg]] = []
    unread = 0
    if kind == USER_FILLS:
        fills, named = content
        who = user or named
        if who is None:
            raise HlFileError("a userFills array does not say whose fills they are: pass --user ADDRESS")
        for fill in sorted(fills, key=_time_key):
            try:
                leg = parse_leg(fill, who)
            except FillError:
                unread += 1
                continue
            legs.append((f"hl:{leg.key}:{who}", leg))
        return legs, unread
    if kind != NODE_FILLS:
        raise HlFileError(f"{kind}: not a fills file (userFills or node_fills_by_block)")
    for _, block in node_blocks(path):
        for item in block["events"] if isinstance(block, dict) else []:
            try:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict)):
                    raise FillError("not a [user, fill] pair")
                if user is not None and str(item[0]).lower() != user.lower():
                    continue
                leg = parse_leg(item[1], user or item[0])
            except FillError:
                unread += 1
                continue
            legs.append((f"hl:{leg.key}:{user}" if user else f"hl:{leg.key}", leg))
    return legs, unread
