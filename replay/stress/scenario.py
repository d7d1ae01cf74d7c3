"""Stress scenarios: per market, a path of moves over steps of event time, correlated shocks, a
rebound, and how deep the books are at each step (docs/stress.md).

A scenario is data: the built-ins below, or a JSON file of the same shape. Every figure is an
integer: moves and depth shares in parts per million of the starting level (a percentage in
the file, up to 4 decimals), steps counted from 0 (the population as it is) to `steps`.

A market's level at step k, in ppm of its starting price, is `1_000_000 + move(k)`:
- `move(k)` follows its path (the market's own, else the `"*"` path) linearly between anchors
  `[step, percent]` (rounded toward minus infinity), holding the last anchor after it; a path
  that does not start at step 0 starts from 0%;
- with `follow`, a market without its own path moves `beta` times the leader's move (the
  correlated fall of alts behind BTC), beta from `follow.beta` (the market, else `"*"`, else 1);
- each shock adds its move from its step on (a gap that stays);
- the level never goes below 1% of the start (`FLOOR_PPM`).

The book depth at step k is a share of each configuration's depth, along the `depth` path, or
along a market's own path where the scenario gives one (`market_depths`: a market whose book is
thinner, or thins faster, than the rest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from events.bounds import MAX_MARKET_DEPTHS
from events.units import parse_decimal

PPM = 1_000_000
FLOOR_PPM = 10_000  # a level never goes below 1% of the start
MAX_STEPS = 10_000
MAX_STEP_MS = 3_600_000
MAX_BETA_PPM = 100 * PPM
PERCENT_DECIMALS = 4  # a percentage with 4 decimals is a count of ppm


class ScenarioError(ValueError):
    """A scenario file or name that cannot be used; the message says what and where."""


Anchors = tuple[tuple[int, int], ...]  # (step, move in ppm)


@dataclass(frozen=True)
class Scenario:
    """`paths`: market (or "*") -> anchors; `follow`: (leader, market or "*" -> beta ppm);
    `shocks`: (step, market or "*" -> move ppm); `depth`: anchors of the book depth as ppm of
    each configuration's depth (moves here are shares, 1_000_000 = the full depth);
    `spot_depth`: token -> USDC (micro) of a spot sale that moves its price by the
    configuration's impact share (default: the configuration's depth); `market_depths`: perp
    market -> anchors of its own book depth, as ppm of the configuration's depth for it."""

    name: str
    steps: int
    step_ms: int
    paths: dict[str, Anchors]
    follow: tuple[str, dict[str, int]] | None = None
    shocks: tuple[tuple[int, dict[str, int]], ...] = ()
    depth: Anchors = ((0, PPM),)
    spot_depth: dict[str, int] = field(default_factory=dict)
    description: str = ""
    market_depths: dict[str, Anchors] = field(default_factory=dict)

    def move(self, coin: str, step: int) -> int:
        """`coin`'s move at `step` (ppm of its starting level, before the floor)."""
        path = self.paths.get(coin)
        if path is None and self.follow is not None and coin != self.follow[0]:
            leader, betas = self.follow
            beta = betas.get(coin, betas.get("*", PPM))
            base = self.move(leader, step) * beta // PPM
        else:
            base = along(path if path is not None else self.paths.get("*", ()), step)
        return base + sum(m.get(coin, m.get("*", 0)) for at, m in self.shocks if at <= step)

    def level(self, coin: str, step: int) -> int:
        """`coin`'s level at `step` in ppm of its start, at least `FLOOR_PPM`."""
        return max(FLOOR_PPM, PPM + self.move(coin, step))

    def depth_share(self, step: int) -> int:
        """The book depth at `step`, in ppm of the configuration's depth (at least 1 ppm)."""
        return max(1, along(self.depth, step))

    def market_share(self, coin: str, step: int) -> int:
        """`coin`'s book depth at `step`, in ppm of the configuration's depth for it: along its
        own path, else `depth_share` (at least 1 ppm)."""
        path = self.market_depths.get(coin)
        return self.depth_share(step) if path is None else max(1, along(path, step))


def along(anchors: Anchors, step: int) -> int:
    """The value at `step` of a path through `anchors` (linear between them, floor rounding),
    0 before a first anchor past step 0 is reached from 0, the last one held after it."""
    before = (0, 0)
    for at, value in anchors:
        if at >= step:
            if at == step or at == before[0]:
                return value
            span = at - before[0]
            return before[1] + (value - before[1]) * (step - before[0]) // span
        before = (at, value)
    return before[1]


# ---- the built-ins ----------------------------------------------------------------------------


def _pct(text: str) -> int:
    return parse_decimal(text, PERCENT_DECIMALS)


def _anchors(*points: tuple[int, str]) -> Anchors:
    return tuple((step, _pct(pct)) for step, pct in points)


# 10 October 2025, from 21:15:00 UTC in 10 s steps (docs/stress.md, "oct-2025" for the sources):
# BTC opens the 21:15 five-minute bar at 112,209.36, prints its low 103,800.00 (-7.4941%) inside
# it and closes it at 103,975.26 (-7.3382%); the ADL fills of 21:16-21:27 average 106,427.71
# (-5.1524%), taken as the level it recovers to by 21:25. The fall is front-loaded: the cascade
# starts at 21:15:03 and the first ADL comes 62 s later.
_OCT_BTC = _anchors((0, "0"), (1, "-1"), (6, "-4.5"), (12, "-6.5"), (25, "-7.4941"), (30, "-7.3382"), (60, "-5.1524"))
BUILTINS: dict[str, Scenario] = {
    "uniform": Scenario(
        name="uniform",
        description="every market falls 20% over 40 steps of 10 s, then wins back 8%; books thin to 20%",
        steps=60,
        step_ms=10_000,
        paths={"*": _anchors((0, "0"), (40, "-20"), (60, "-12"))},
        depth=_anchors((0, "100"), (40, "20"), (60, "60")),
    ),
    "btc-led": Scenario(
        name="btc-led",
        description="BTC falls 12% over 40 steps of 10 s and wins back a third; ETH 1.5x, SOL 2x, "
        "HYPE 3x and other markets 2x as far, with a shared gap at step 10; books thin to 10%",
        steps=60,
        step_ms=10_000,
        paths={"BTC": _anchors((0, "0"), (20, "-10"), (40, "-12"), (60, "-8"))},
        follow=("BTC", {"ETH": _pct("150"), "SOL": _pct("200"), "HYPE": _pct("300"), "*": _pct("200")}),
        shocks=((10, {"BTC": _pct("-1"), "*": _pct("-2")}),),
        depth=_anchors((0, "100"), (20, "10"), (40, "10"), (60, "50")),
    ),
    "oct-2025": Scenario(
        name="oct-2025",
        description="10 October 2025 from 21:15 UTC, 60 steps of 10 s: BTC 112,209 -> 103,800 within the "
        "21:15-21:20 bar, then back to about 106,400; ETH 1.6x, SOL 2.1x, HYPE 2.7x as far; "
        "books emptied by 98% at the worst",
        steps=60,
        step_ms=10_000,
        paths={"BTC": _OCT_BTC},
        follow=("BTC", {"ETH": _pct("160"), "SOL": _pct("210"), "HYPE": _pct("270"), "*": _pct("200")}),
        depth=_anchors((0, "100"), (6, "10"), (12, "2"), (25, "2"), (30, "10"), (60, "30")),
    ),
}


# ---- files ------------------------------------------------------------------------------------

KEYS = {"name", "description", "steps", "step_seconds", "paths", "follow", "shocks", "depth", "spot_depth"}


def load(name_or_path: str) -> Scenario:
    """A built-in by name, else a JSON scenario file (docs/stress.md, "Scenario files")."""
    if name_or_path in BUILTINS:
        return BUILTINS[name_or_path]
    path = Path(name_or_path)
    if not path.exists():
        names = ", ".join(sorted(BUILTINS))
        raise ScenarioError(f"scenario {name_or_path!r} is neither a built-in ({names}) nor a file")
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        return parse(body, path.stem)
    except ScenarioError as exc:
        raise ScenarioError(f"scenario {path}: {exc}") from None


def parse(body: Any, default_name: str) -> Scenario:
    """A scenario from its JSON form; every problem a `ScenarioError` naming the field."""
    if not isinstance(body, dict):
        raise ScenarioError("expected a JSON object")
    unknown = sorted(set(body) - KEYS)
    if unknown:
        raise ScenarioError(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(KEYS))})")
    steps = _int(body.get("steps", 60), "steps", 1, MAX_STEPS)
    seconds = _int(body.get("step_seconds", 10), "step_seconds", 1, MAX_STEP_MS // 1000)
    name = body.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ScenarioError("name must be a non-empty string")
    paths_body = body.get("paths", {})
    if not isinstance(paths_body, dict):
        raise ScenarioError('paths must be an object: market (or "*") -> [[step, percent], ...]')
    paths = {coin: _path(points, f"paths.{coin}", steps, -100) for coin, points in sorted(paths_body.items())}
    follow = None
    if "follow" in body:
        follow = _follow(body["follow"], paths)
    if not paths:
        raise ScenarioError('paths must name at least one market (or "*")')
    shocks = []
    for i, shock in enumerate(_list(body.get("shocks", []), "shocks")):
        where = f"shocks[{i}]"
        if not isinstance(shock, dict) or set(shock) != {"step", "move"} or not isinstance(shock["move"], dict):
            raise ScenarioError(f'{where} must be an object {{"step": N, "move": {{market: percent}}}}')
        at = _int(shock["step"], f"{where}.step", 0, steps)
        shocks.append((at, {c: _percent(v, f"{where}.move.{c}", -100) for c, v in sorted(shock["move"].items())}))
    depth, market_depths = _depths(body.get("depth", [[0, "100"]]), steps)
    spot_body = body.get("spot_depth", {})
    if not isinstance(spot_body, dict):
        raise ScenarioError("spot_depth must be an object: token -> USDC")
    spot_depth = {t: _usdc(v, f"spot_depth.{t}") for t, v in sorted(spot_body.items())}
    description = body.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError("description must be a string")
    return Scenario(
        name=name,
        steps=steps,
        step_ms=seconds * 1000,
        paths=paths,
        follow=follow,
        shocks=tuple(shocks),
        depth=depth,
        spot_depth=spot_depth,
        description=description,
        market_depths=market_depths,
    )


def _depths(body: Any, steps: int) -> tuple[Anchors, dict[str, Anchors]]:
    """`depth`: one path for every book, or an object of paths per market (`"*"`: every market
    not named, default 100% throughout); each share above 0%."""
    if not isinstance(body, dict):
        return _depth(body, "depth", steps), {}
    named = sorted(c for c in body if c != "*")
    if len(named) > MAX_MARKET_DEPTHS:
        raise ScenarioError(f"depth names {len(named)} markets, at most {MAX_MARKET_DEPTHS}")
    every = _depth(body["*"], "depth.*", steps) if "*" in body else ((0, PPM),)
    return every, {coin: _depth(body[coin], f"depth.{coin}", steps) for coin in named}


def _depth(points: Any, where: str, steps: int) -> Anchors:
    path = _path(points, where, steps, 0)
    if any(share <= 0 for _, share in path):
        raise ScenarioError(f"{where} must stay above 0%")
    return path


def _int(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ScenarioError(f"{where} must be an integer from {low} to {high}, got {value!r}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScenarioError(f"{where} must be a list")
    return value


def _percent(value: Any, where: str, low: int) -> int:
    """A percentage (a decimal string or number, up to 4 decimals) in ppm, at least `low` %."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScenarioError(f'{where} must be a percentage such as "-7.5", got {value!r}')
    try:
        ppm = parse_decimal(str(value), PERCENT_DECIMALS)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if not low * 10_000 <= ppm <= MAX_BETA_PPM:
        raise ScenarioError(f"{where} must be a percentage from {low} to {MAX_BETA_PPM // 10_000}, got {value!r}")
    return ppm


def _usdc(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ScenarioError(f'{where} must be an amount of USDC such as "2000000", got {value!r}')
    try:
        amount = parse_decimal(str(value), 6)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    if amount <= 0:
        raise ScenarioError(f"{where} must be above 0")
    return amount


def _path(points: Any, where: str, steps: int, low: int) -> Anchors:
    """Anchors `[[step, percent], ...]` in increasing step order, steps within the scenario."""
    out: list[tuple[int, int]] = []
    for i, point in enumerate(_list(points, where)):
        if not isinstance(point, list) or len(point) != 2:
            raise ScenarioError(f"{where}[{i}] must be a pair [step, percent]")
        at = _int(point[0], f"{where}[{i}] step", 0, steps)
        if out and at <= out[-1][0]:
            raise ScenarioError(f"{where}[{i}]: steps must increase ({at} after {out[-1][0]})")
        out.append((at, _percent(point[1], f"{where}[{i}] percent", low)))
    if not out:
        raise ScenarioError(f"{where} must hold at least one [step, percent] anchor")
    return tuple(out)


def _follow(body: Any, paths: dict[str, Anchors]) -> tuple[str, dict[str, int]]:
    if not isinstance(body, dict) or "of" not in body or set(body) - {"of", "beta"}:
        raise ScenarioError('follow must be an object {"of": leader, "beta": {market: multiple}}')
    leader = body["of"]
    if not isinstance(leader, str) or leader not in paths:
        raise ScenarioError(f"follow.of must name a market with its own path, got {leader!r}")
    betas = body.get("beta", {})
    if not isinstance(betas, dict):
        raise ScenarioError('follow.beta must be an object: market (or "*") -> multiple of the leader\'s move')
    return leader, {c: _percent(v, f"follow.beta.{c}", 0) * 100 for c, v in sorted(betas.items())}
