"""Hyperliquid info API bodies -> events that seed an engine with a real account.

`clearinghouseState` gives the ledgers (`totalRawUsd` of the cross summary, `leverage.rawUsd` of
isolated positions), the positions (`szi`, `entryPx`, `leverage`, `maxLeverage`) and, through
`positionValue / |szi|`, the mark. `meta` (optional) gives each coin's `szDecimals` and margin
tiers; without it a coin gets the decimals its `szi` shows and one tier at its `maxLeverage`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from events.schema import ImportAccount, ImportedPosition, MarginTier, Market, PricePoint, Prices, Rules
from events.units import PX_DECIMALS, USD_DECIMALS, parse_decimal
from events.units import SZ_DECIMALS as SIZE_SCALE


class AdapterError(ValueError):
    """An input document that lacks a field the import needs; the message names it."""


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            raise AdapterError(f"missing field {'.'.join(path)}")
        obj = obj[key]
    return obj


def _usd(text: Any) -> int:
    return parse_decimal(str(text), USD_DECIMALS)


def _decimals(text: str) -> int:
    exponent = Decimal(text).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def meta_markets(meta: dict[str, Any]) -> dict[str, Market]:
    """coin -> Market from a `meta` body; a margin table id below 50 is one tier at that leverage."""
    tables: dict[int, list[MarginTier]] = {}
    for table_id, table in meta.get("marginTables", []):
        tables[table_id] = [
            MarginTier(_usd(t["lowerBound"]), int(t["maxLeverage"])) for t in _get(table, "marginTiers")
        ]
    markets = {}
    for asset in _get(meta, "universe"):
        coin, max_lev = _get(asset, "name"), int(_get(asset, "maxLeverage"))
        table_id = asset.get("marginTableId", max_lev)
        tiers = tables.get(table_id) or [MarginTier(0, table_id if table_id < 50 else max_lev)]
        only_isolated = bool(asset.get("onlyIsolated") or asset.get("marginMode") == "strictIsolated")
        markets[coin] = Market(
            coin=coin, sz_decimals=int(_get(asset, "szDecimals")), margin_tiers=tiers, only_isolated=only_isolated
        )
    return markets


def import_events(
    body: dict[str, Any],
    account: str,
    *,
    meta: dict[str, Any] | None = None,
    rules: str | None = None,
    markets: dict[str, Market] | None = None,
) -> list[Any]:
    """The events that rebuild `body` (a clearinghouseState response) as account `account`;
    `markets`: the coins' markets when the meta was read already (in place of `meta`)."""
    try:
        known = markets if markets is not None else meta_markets(meta) if meta is not None else {}
        return _import_events(body, account, known, rules)
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        if isinstance(exc, AdapterError):
            raise
        raise AdapterError(f"malformed clearinghouseState: {exc}") from None


def _import_events(body: dict[str, Any], account: str, known: dict[str, Market], rules: str | None) -> list[Any]:
    ts = body.get("time")
    events: list[Any] = [Rules(name=rules, ts=ts)] if rules else []
    prices: dict[str, PricePoint] = {}
    positions: list[ImportedPosition] = []
    for entry in _get(body, "assetPositions"):
        p = _get(entry, "position")
        coin, szi_text = _get(p, "coin"), str(_get(p, "szi"))
        szi = parse_decimal(szi_text, SIZE_SCALE)
        if not szi:
            continue
        lev = _get(p, "leverage")
        cross = _get(lev, "type") == "cross"
        own_max = int(p["maxLeverage"]) if "maxLeverage" in p else None
        market = known.get(coin)
        if market is None:
            max_lev = own_max or int(_get(lev, "value"))
            market = Market(
                coin=coin, sz_decimals=_decimals(szi_text), margin_tiers=[MarginTier(0, max_lev)], only_isolated=False
            )
        events.append(market)
        # mark = positionValue / |szi|, to the price scale (half to even).
        value = Decimal(str(_get(p, "positionValue")))
        mark = (value / abs(Decimal(szi_text))).quantize(Decimal(1).scaleb(-PX_DECIMALS))
        prices[coin] = PricePoint(mark=parse_decimal(format(mark, "f"), PX_DECIMALS))  # str() may give 1E-7
        cum = p.get("cumFunding") or {}
        positions.append(
            ImportedPosition(
                coin=coin,
                szi=szi,
                entry_px=parse_decimal(str(_get(p, "entryPx")), PX_DECIMALS),
                leverage=int(_get(lev, "value")),
                cross=cross,
                raw_usd=0 if cross else _usd(_get(lev, "rawUsd")),
                max_leverage=own_max
                if own_max is not None and own_max != market.margin_tiers[0].max_leverage
                else None,
                funding_all=_usd(cum.get("allTime", "0")),
                funding_since_open=_usd(cum.get("sinceOpen", "0")),
                funding_since_change=_usd(cum.get("sinceChange", "0")),
            )
        )
    if prices:
        events.append(Prices(prices=prices, ts=ts))
    raw = _usd(_get(body, "crossMarginSummary", "totalRawUsd"))
    events.append(ImportAccount(account=account, raw_usd=raw, positions=positions, ts=ts))
    return events
