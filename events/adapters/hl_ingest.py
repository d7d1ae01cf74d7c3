"""Reads Hyperliquid files of any shape `hl_files.sniff` recognises into one list of events for a
log (`clearinghouse hl ingest`): the files are read in the order given, and what they share
(accounts seeded once, a trade's two legs in consecutive hourly files) is carried across them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from events.adapters.hl_files import (
    NODE_FILLS,
    NODE_MISC,
    SPOT_STATE,
    USER_FILLS,
    HlFileError,
    Progress,
    node_blocks,
    sniff,
)
from events.adapters.hl_fills import FillError, FillIngest, Leg, LogContents, Outcome, parse_leg
from events.adapters.hl_misc import MiscError, misc_events
from events.adapters.hl_spot import SpotError, spot_events
from events.schema import Market


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
        elif kind == SPOT_STATE:
            self._spot_state(path, content, out)
        else:
            raise HlFileError(f"{kind}: not ingested by this version")
        read, made = ("fills", "trades") if kind in (USER_FILLS, NODE_FILLS) else ("records", "events")
        summary = {
            "file": str(path),
            "format": kind,
            read: out.fills,
            made: out.trades,
            "dropped": out.dropped,
            "rejected": out.rejected,
        }
        self.files.append(summary)
        return summary

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
                    events, note = misc_events(item, f"hl:b{block['block_number']}:{index}")
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

    def _spot_state(self, path: Path, body: dict[str, Any], out: Outcome) -> None:
        user = self.user or (body.get("user") if isinstance(body.get("user"), str) else None)
        if user is None:
            raise HlFileError("a spotClearinghouseState body does not say whose it is: pass --user ADDRESS")
        fills = self.fills
        try:
            events, rejects, note = spot_events(body, user, fills.known.tokens, fills.known.modes.get(user))
        except SpotError as exc:
            raise HlFileError(str(exc)) from None
        fills.known.modes[user] = note["mode"]
        self.spot_states.append(note)
        out.fills += len(body["balances"])
        for index, reason in rejects:
            out.rejected += 1
            fills.rejects.append({"file": str(path), "index": index, "reason": reason})
        for event in events:
            if event.id is not None and (event.id in fills.known.ids or event.id in fills.ids):
                out.dropped += 1
                continue
            if event.id is not None:
                fills.ids.add(event.id)
            self.spot.append(event)
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
        events = self.fills.events()
        timed = len(self.fills.trades)
        head, trades = events[: len(events) - timed], events[len(events) - timed :]
        # the trades and the misc events, in time order (each file's own order within one moment)
        merged = sorted(trades + self.misc, key=lambda e: e.ts) if self.misc else trades
        return head + self.spot + merged


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
