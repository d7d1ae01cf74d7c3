"""The seeded event-stream generator: one `random.Random(seed)` writes a whole stream as JSON
lines of the public wire format, so the codec is part of every case and a failure replays from
its seed alone.

A stream mixes valid events (most of them: a market, tokens and rules first, then deposits,
trades near the mark, price walks with crashes and spikes, funding, lending, mode switches) with
boundary and invalid ones: amounts, prices, sizes, rates and leverages at and one unit past
their documented bounds (`events.bounds`), names at the length limit and outside the
charset, time jumps forward and back, duplicate ids, unknown accounts and markets, lines the
codec must refuse, and liquidation markers naming anyone. The generator keeps a rough model
(marks, who holds what) only to make enough events land; it never needs to be right.

`hostile` adds values that today's core is known not to survive without the codec and engine
bounds (event times past the end of the range, parameters that divide by zero, figures that
outgrow the 64-bit encoding): off until those bounds are in place.

`risk` adds the risk model (docs/risk-margin.md): its parameters in the header and among the
rule changes (some out of range), accounts switched to it before they trade, and "risk" among
the modes switched to. Off, a seed's stream is what it was before the risk model existed.
"""

from __future__ import annotations

import json
import random
from typing import Any

from events import bounds
from events.units import (
    HOUR_MS,
    PX_DECIMALS,
    RATE_DECIMALS,
    SZ_DECIMALS,
    TOKEN_DECIMALS,
    USD_DECIMALS,
    format_decimal,
)

COINS = ("BTC", "ETH", "HYPE", "SOL")
SPOT = ("HYPE", "BTC", "PURR")  # HYPE and BTC are PM collateral by default; PURR is not
START_TS = 1_700_000_000_000
MODES = ("standard", "unified", "portfolio")
LIQUIDATION_MODES = ("mark", "mark-adl", "impact", "external")


def usd(value: int) -> str:
    return format_decimal(value, USD_DECIMALS)


def sz(value: int) -> str:
    return format_decimal(value, SZ_DECIMALS)


def px(value: int) -> str:
    return format_decimal(value, PX_DECIMALS)


def rate(value: int) -> str:
    return format_decimal(value, RATE_DECIMALS)


def tok(value: int) -> str:
    return format_decimal(value, TOKEN_DECIMALS)


class _Model:
    """What the generator believes about the stream so far (rough, never checked)."""

    def __init__(self) -> None:
        self.markets: dict[str, int] = {}  # coin -> sz_decimals
        self.marks: dict[str, int] = {}  # coin -> mark (on its tick)
        self.tokens: dict[str, int] = {}  # token -> decimals
        self.token_px: dict[str, int] = {}
        self.accounts: list[str] = []
        self.ts = START_TS
        self.ids: list[str] = []
        self.priced: set[str] = set()  # markets a prices line has given a mark


class StreamGenerator:
    """`lines()` gives the stream of one seed; every choice comes from `self.rnd`."""

    def __init__(self, seed: int, events: int, hostile: bool = False, risk: bool = False) -> None:
        self.rnd = random.Random(seed)
        self.events = events
        self.hostile = hostile
        self.risk = risk
        self.m = _Model()
        self.n = 0

    # ---- primitives -------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rnd.random() < p

    def pick(self, options: Any) -> Any:
        return self.rnd.choice(list(options))

    def account(self) -> str:
        """Mostly a known account; sometimes one never seen, or an edge name."""
        m, r = self.m, self.rnd.random()
        if r < 0.9 and m.accounts:
            return self.pick(m.accounts)
        if r < 0.95:
            return f"ghost{self.rnd.randrange(3)}"
        return self.pick(self.edge_names())

    def edge_names(self) -> list[str]:
        names = ["a" * bounds.MAX_NAME, "b" * (bounds.MAX_NAME + 1), "0x" + "f" * 40, "q:/@+-._"]
        if self.hostile:
            names += ["", "a b", "BTC ", "\u00e9", "\x00", "\x1b[31mred"]
        return names

    def coin(self) -> str:
        m = self.m
        if m.markets and self.chance(0.95):
            return self.pick(m.markets)
        return self.pick(("NOPE", "c" * bounds.MAX_NAME, "PURR"))

    def amount(self, typical: int, bound: int) -> int:
        """Mostly around `typical`; sometimes at, one past or far past the bound, zero or negative."""
        r = self.rnd.random()
        if r < 0.9:
            return self.rnd.randint(1, max(1, typical))
        return self.pick((bound, bound + 1, bound - 1, 0, -typical, 1))

    def ts(self) -> int | None:
        """Event time: mostly small steps forward; sometimes absent, backward, or a jump up to one
        past the documented span."""
        m, r = self.m, self.rnd.random()
        if r < 0.04:
            return None
        if r < 0.07:
            return max(0, m.ts - self.rnd.randint(1, 10 * HOUR_MS))
        if r < 0.085:  # a year at full utilisation outgrows the index encoding: hostile only
            jumps = (HOUR_MS, 25 * HOUR_MS, 30 * 24 * HOUR_MS)
            m.ts += self.pick(jumps + ((bounds.MAX_TIME_JUMP_MS, bounds.MAX_TIME_JUMP_MS + 1) if self.hostile else ()))
        elif self.hostile and r < 0.09:
            return self.pick((bounds.MAX_TS, bounds.MAX_TS + 1, 2**63 - 1))
        else:
            m.ts += self.rnd.randint(0, 20 * 60_000)
        return m.ts

    def finish(self, obj: dict[str, Any]) -> str:
        """Stamps time and an id, sometimes a duplicate one, and writes the line."""
        t = self.ts()
        if t is not None:
            obj["ts"] = t
        if self.chance(0.3):
            # a repeated id refuses the line: not on the lines the model counts on (unless hostile)
            repeat_ok = self.hostile or obj["type"] not in ("prices", "market", "token")
            if self.m.ids and repeat_ok and self.chance(0.1):
                obj["id"] = self.pick(self.m.ids[-50:])
            else:
                ident = f"s{self.n}"
                self.m.ids.append(ident)
                obj["id"] = ident
        self.n += 1
        return json.dumps(obj, separators=(",", ":"))

    def mangle(self, line: str) -> str:
        """A line the codec must refuse (or, for a few, take): bad decimals, bad JSON, types."""
        obj = json.loads(line)
        r = self.rnd.randrange(9)
        if r == 0:
            return line[: self.rnd.randrange(1, len(line))]
        if r == 1:
            obj["type"] = self.pick(("nope", "rejected", "checkpoint", 7))
        elif r == 2:
            for key in ("amount", "px", "sz", "delta", "raw_usd"):
                if key in obj:
                    obj[key] = self.pick(
                        ("1e5", "1_000", "  7  ", "0.0000000000001", "NaN", "-", "", 1.5)
                        + (("1e999999", "9" * 5000) if self.hostile else ())
                    )
        elif r == 3:
            obj.pop(self.pick([k for k in obj if k != "type"] or ["type"]), None)
        elif r == 4:
            return "[" + line + "]"
        elif r == 5:
            obj[self.pick([k for k in obj if self.hostile or k != "type"])] = {"nested": [1, 2]}
        elif r == 6:
            obj["extra"] = "x"  # unknown fields are ignored: this one decodes
        elif r == 7:
            obj["account"] = 5
        else:
            return "\x00" + line
        return json.dumps(obj)

    # ---- the stream -------------------------------------------------------------------------

    def lines(self) -> list[str]:
        out = self.header()
        while len(out) < self.events:
            line = self.body_event()
            if self.chance(0.03):  # a copy the codec refuses: the model stays right
                out.append(self.mangle(line))
            out.append(line)
        return out[: self.events]

    def header(self) -> list[str]:
        """Rules, markets, tokens and funded accounts: what the body needs to land events."""
        rnd, m = self.rnd, self.m
        pm = {
            "min_value": "0",
            "liq_ratio": rate(rnd.choice((95, 90, 99, 100)) * 10**10),
            "base_apy": rate(rnd.choice((5, 50, 200)) * 10**10),
        }
        out = [self.finish({"type": "rules", "pm": pm})]
        if self.risk:
            out.append(self.risk_rules())
        if self.chance(0.3):
            out.append(self.finish({"type": "rules", "name": self.pick(("hl-2023", "hl-current"))}))
        for coin in rnd.sample(COINS, rnd.randint(1, 3)):
            out.append(self.market_line(coin))
        for token in rnd.sample(SPOT, rnd.randint(1, 2)):
            decimals = rnd.choice((8, 2, 0))
            m.tokens[token] = decimals
            m.token_px[token] = 10 * 10**PX_DECIMALS
            out.append(self.finish({"type": "token", "token": token, "decimals": decimals}))
        if m.tokens and self.chance(0.5):
            ltv = {t: rate(rnd.choice((0, 50, 65, 90)) * 10**10) for t in m.tokens}
            caps = {
                t: {"supply": 10**9, "borrow": 10**8, "user_supply": 10**8, "user_borrow": 10**7} for t in m.tokens
            }
            out.append(self.finish({"type": "rules", "ltv": ltv, "caps": caps}))
        out.append(self.prices_line())
        for i in range(rnd.randint(3, 7)):
            name = f"u{i}"
            m.accounts.append(name)
            amount = usd(rnd.randint(100, 200_000) * 10**6)
            out.append(self.finish({"type": "deposit", "account": name, "amount": amount}))
        lender = "lender"
        m.accounts.append(lender)
        out.append(self.finish({"type": "deposit", "account": lender, "amount": usd(10**6 * 10**6)}))
        half, most = usd(5 * 10**5 * 10**6), usd(4 * 10**5 * 10**6)
        out.append(self.finish({"type": "class_transfer", "account": lender, "amount": half, "to_perp": False}))
        out.append(self.finish({"type": "supply", "account": lender, "amount": most, "token": "USDC"}))
        if self.risk:
            for name in m.accounts[:-1]:
                if self.chance(0.5):
                    out.append(self.finish({"type": "set_mode", "account": name, "mode": "risk"}))
        return out

    def risk_rules(self) -> str:
        """Risk-model parameters: moves of a few to 30%, a credit group of two coins, charges
        on or off; now and then one out of range (refused)."""
        rnd = self.rnd
        reach = rnd.choice((3, 8, 15, 30))
        weights = (rate(10**12), rate(35 * 10**10))

        def unit() -> dict[str, Any]:
            moves = [-reach, -reach // 2, 0, reach // 2, reach]
            return {
                "scenarios": [{"move": rate(m * 10**10), "weight": self.pick(weights)} for m in moves],
                "min_charge": rate(self.pick((0, 10**10))),
                "perp_rate_mm": rate(self.pick((0, 5 * 10**9))),
                "perp_rate_im": rate(10**10),
                "basis_rate_mm": rate(5 * 10**9),
                "basis_rate_im": rate(10**10),
                "conc": rate(self.pick((0, 10**11))),
                "depth": usd(self.pick((10**6, 10**9)) * 10**6),
            }

        params: dict[str, Any] = {
            "mm_loss_factor": rate(self.pick((5 * 10**11, 10**12))),
            "im_loss_factor": rate(10**12),
            "units": {c: unit() for c in rnd.sample(COINS, 2)},
            "default_unit": unit(),
            "credits": [{"units": rnd.sample(COINS, 2), "rate": rate(self.pick((0, 5 * 10**11, 10**12)))}],
            "aliases": {"PURR": "HYPE"},
        }
        if self.chance(0.1):
            params["im_loss_factor"] = rate(10**11)  # below the MM factor: refused
        return self.finish({"type": "rules", "risk": params})

    def market_line(self, coin: str) -> str:
        rnd = self.rnd
        szd = rnd.choice((0, 1, 2, 3, 4, 5)) if self.chance(0.97) else self.pick((SZ_DECIMALS + 1, -1, SZ_DECIMALS))
        top = rnd.choice((3, 10, 20, 40, 50, bounds.MAX_LEVERAGE))
        tiers = [{"lower_bound": "0", "max_leverage": top}]
        bound = 0
        while len(tiers) < rnd.randint(1, 4) and top > 1:
            top = max(1, top // 2)
            bound += rnd.choice((10**5, 10**7, 10**9)) * 10**6
            tiers.append({"lower_bound": usd(bound), "max_leverage": top})
        valid = True
        if self.chance(0.03):  # at the tier count bound, or one past it
            count = bounds.MAX_TIERS + self.pick((0, 1))
            tiers = [{"lower_bound": usd(i * 10**6), "max_leverage": 2} for i in range(count)]
            valid = count <= bounds.MAX_TIERS
        if self.chance(0.02):
            tiers[0]["max_leverage"] = self.pick((0, bounds.MAX_LEVERAGE + 1, -3))
            valid = False
        if valid and 0 <= szd <= SZ_DECIMALS and coin not in self.m.markets:
            self.m.markets[coin] = szd
            base = rnd.choice((1, 30, 2_000, 60_000)) * 10**PX_DECIMALS
            self.m.marks[coin] = self.on_tick(coin, base)
        return self.finish(
            {
                "type": "market",
                "coin": coin,
                "sz_decimals": szd,
                "margin_tiers": tiers,
                "only_isolated": self.chance(0.15),
            }
        )

    def tick(self, coin: str) -> int:
        return 10 ** (PX_DECIMALS - USD_DECIMALS + self.m.markets.get(coin, 0))

    def lot(self, coin: str) -> int:
        return 10 ** (SZ_DECIMALS - self.m.markets.get(coin, 0))

    def on_tick(self, coin: str, value: int) -> int:
        t = self.tick(coin)
        return max(t, value // t * t)

    def body_event(self) -> str:
        kinds = (
            (self.trade, 30),
            (self.prices_line, 18),
            (self.deposit, 6),
            (self.withdraw, 4),
            (self.transfer, 4),
            (self.funding, 6),
            (self.set_leverage, 4),
            (self.isolated_margin, 3),
            (self.spot_trade, 4),
            (self.class_transfer, 3),
            (self.set_mode, 4),
            (self.lending, 6),
            (self.rules_line, 2),
            (self.import_account, 1),
            (self.new_market, 1),
        )
        total = sum(w for _, w in kinds)
        r = self.rnd.randrange(total)
        for make, weight in kinds:
            if r < weight:
                return make()
            r -= weight
        raise AssertionError

    # ---- body events ------------------------------------------------------------------------

    def prices_line(self) -> str:
        """A walk of the marks: small steps, sometimes a crash or a spike, a split oracle."""
        rnd, m = self.rnd, self.m
        points: dict[str, Any] = {}
        refused = False  # a bad entry refuses the whole line
        for coin in list(m.marks):
            if coin in m.priced and not self.chance(0.7):
                continue
            r = rnd.random()
            move = rnd.randint(-20, 20) if r < 0.85 else rnd.choice((-900, -500, -300, -150, 150, 400, 2_000))
            mark = self.on_tick(coin, m.marks[coin] * (1000 + move) // 1000)
            if self.chance(0.01):  # refused; at the bound only when hostile (notionals then outgrow the encoding)
                at_bound = (bounds.MAX_PX, bounds.MAX_PX + self.tick(coin)) if self.hostile else ()
                mark = self.pick((0, -self.tick(coin)) + at_bound)
            refused = refused or not 0 < mark <= bounds.MAX_PX
            if not refused:
                m.marks[coin] = mark
            point: dict[str, str] = {"mark": px(mark)}
            if self.chance(0.3):
                point["oracle"] = px(max(1, mark * rnd.randint(980, 1020) // 1000))
            points[coin] = point
        for token in m.tokens:
            if token not in m.markets and self.chance(0.4):
                m.token_px[token] = max(1, m.token_px[token] * rnd.randint(700, 1300) // 1000)
                points[token] = {"mark": px(m.token_px[token])}
        if self.chance(0.02):
            points[self.pick(("NOPE", "c" * (bounds.MAX_NAME + 1)))] = {"mark": "1"}
            refused = True
        if not refused:
            m.priced.update(c for c in points if c in m.markets)
        return self.finish({"type": "prices", "prices": points})

    def trade(self) -> str:
        rnd, m = self.rnd, self.m
        coin = self.coin()
        if not self.hostile and coin in m.markets and coin not in m.priced:  # no mark yet: ADL divides by it
            return self.prices_line()
        mark = m.marks.get(coin, 10**PX_DECIMALS)
        price = self.on_tick(coin, mark * rnd.randint(985, 1015) // 1000)
        # sized so the buyer takes leverage between 1 and ~40 on a typical deposit
        notional = rnd.choice((10**2, 10**3, 10**4, 10**5, 10**6)) * 10**6
        lots = notional * 10 ** (SZ_DECIMALS + PX_DECIMALS - USD_DECIMALS) // max(price, 1) // self.lot(coin)
        size = max(self.lot(coin), lots * self.lot(coin))
        if self.chance(0.02):
            size = self.pick((0, -self.lot(coin), self.lot(coin) + 1, self.lot(coin)))
        if self.chance(0.02):
            price = self.pick((price + 1, 0, -price))
        if self.hostile and self.chance(0.02):  # notionals past what the encoding holds
            size = self.pick((bounds.MAX_SZ, bounds.MAX_SZ + self.lot(coin), size))
            price = self.pick((price, bounds.MAX_PX, bounds.MAX_PX + self.tick(coin)))
        buyer = self.account()
        seller = self.account() if self.chance(0.97) else buyer
        obj: dict[str, Any] = {
            "type": "trade",
            "coin": coin,
            "px": px(price),
            "sz": sz(size),
            "buyer": buyer,
            "seller": seller,
        }
        if self.chance(0.5):
            obj["buyer_fee"] = usd(rnd.randint(-10, 1_000) * 1_000)
            obj["seller_fee"] = usd(rnd.randint(0, 1_000) * 1_000)
        if self.chance(0.08):
            obj["liquidation"] = {"account": self.pick((buyer, seller, self.account()))}
        return self.finish(obj)

    def deposit(self) -> str:
        m = self.m
        token = "USDC" if not m.tokens or self.chance(0.7) else self.pick(m.tokens)
        if token == "USDC":
            amount = usd(self.amount(50_000 * 10**6, bounds.MAX_USD))
        else:
            unit = 10 ** (TOKEN_DECIMALS - m.tokens[token])
            amount = tok(self.amount(1_000 * 10**8, bounds.MAX_TOKENS) // unit * unit)
        return self.finish({"type": "deposit", "account": self.account(), "amount": amount, "token": token})

    def withdraw(self) -> str:
        m = self.m
        token = "USDC" if not m.tokens or self.chance(0.8) else self.pick(m.tokens)
        if token == "USDC":
            amount = usd(self.amount(20_000 * 10**6, bounds.MAX_USD))
        else:
            amount = tok(self.amount(100 * 10**8, bounds.MAX_TOKENS))
        return self.finish({"type": "withdraw", "account": self.account(), "amount": amount, "token": token})

    def transfer(self) -> str:
        return self.finish(
            {
                "type": "transfer",
                "from": self.account(),
                "to": self.account(),
                "amount": usd(self.amount(20_000 * 10**6, bounds.MAX_USD)),
            }
        )

    def funding(self) -> str:
        rnd = self.rnd
        obj: dict[str, Any] = {"type": "funding", "coin": self.coin()}
        edges = (bounds.MAX_RATE, -bounds.MAX_RATE, bounds.MAX_RATE + 1)
        value = rnd.randint(-(10**8), 10**8) if self.chance(0.95) else self.pick(edges)
        obj["rate" if self.chance(0.5) else "premium"] = rate(value)
        if self.chance(0.02):
            obj["premium"] = obj["rate"] = rate(value)
        return self.finish(obj)

    def set_leverage(self) -> str:
        edges = (0, bounds.MAX_LEVERAGE, bounds.MAX_LEVERAGE + 1, -1)
        lev = self.rnd.randint(1, 50) if self.chance(0.9) else self.pick(edges)
        return self.finish(
            {
                "type": "set_leverage",
                "account": self.account(),
                "coin": self.coin(),
                "leverage": lev,
                "cross": self.chance(0.6),
            }
        )

    def isolated_margin(self) -> str:
        delta = self.rnd.randint(-5_000, 5_000) * 10**6 or 1
        return self.finish(
            {"type": "isolated_margin", "account": self.account(), "coin": self.coin(), "delta": usd(delta)}
        )

    def spot_trade(self) -> str:
        m, rnd = self.m, self.rnd
        base = self.pick(m.tokens) if m.tokens and self.chance(0.95) else "NOPE"
        decimals = m.tokens.get(base, 8)
        size = rnd.randint(1, 500) * 10**TOKEN_DECIMALS // 10 ** min(decimals, 2)
        price = m.marks.get(base) or m.token_px.get(base, 10**PX_DECIMALS)
        price = max(100, price * rnd.randint(95, 105) // 100 // 100 * 100)  # whole micro-USDC per 1e-8 token step
        obj = {
            "type": "spot_trade",
            "base": base,
            "quote": "USDC" if self.chance(0.98) else "USDT",
            "px": px(price),
            "sz": tok(size),
            "buyer": self.account(),
            "seller": self.account(),
        }
        return self.finish(obj)

    def class_transfer(self) -> str:
        return self.finish(
            {
                "type": "class_transfer",
                "account": self.account(),
                "amount": usd(self.amount(20_000 * 10**6, bounds.MAX_USD)),
                "to_perp": self.chance(0.5),
            }
        )

    def set_mode(self) -> str:
        mode = self.pick(MODES + ("risk",) if self.risk else MODES) if self.chance(0.97) else "cross"
        return self.finish({"type": "set_mode", "account": self.account(), "mode": mode})

    def lending(self) -> str:
        m, rnd = self.m, self.rnd
        kind = self.pick(("supply", "withdraw_supply", "borrow", "borrow", "repay"))
        token = "USDC" if not m.tokens or self.chance(0.7) else self.pick(m.tokens)
        if token == "USDC":
            amount = usd(self.amount(rnd.choice((100, 10_000, 100_000)) * 10**6, bounds.MAX_USD))
        else:
            amount = tok(rnd.randint(1, 100) * 10**8)
        account = "lender" if kind in ("supply", "withdraw_supply") and self.chance(0.4) else self.account()
        return self.finish({"type": kind, "account": account, "amount": amount, "token": token})

    def rules_line(self) -> str:
        """PM and lending parameters near and at their limits; a rule set by name."""
        rnd = self.rnd
        r = rnd.randrange(6 if self.risk else 5)
        if r == 5:
            return self.risk_rules()
        if r == 0:
            return self.finish({"type": "rules", "name": self.pick(("hl-2023", "hl-current", "hl-1999"))})
        if r == 1:
            ratios = (1, 5 * 10**11, 9 * 10**11, 95 * 10**10, 10**12, 10**12 + 1, -1) + ((0,) if self.hostile else ())
            ratio = self.pick(ratios)
            return self.finish({"type": "rules", "pm": {"liq_ratio": rate(ratio)}})
        if r == 2:
            apys = (0, 10**10, 10**12) + ((10 * 10**12,) if self.hostile else ())
            return self.finish(
                {
                    "type": "rules",
                    "pm": {"base_apy": rate(self.pick(apys)), "kink": rate(self.pick((10**12, 8 * 10**11, 1, 0)))},
                }
            )
        if r == 3 and self.m.tokens:
            t = self.pick(self.m.tokens)
            return self.finish({"type": "rules", "ltv": {t: rate(self.pick((0, 5 * 10**11, 10**12 - 1, 10**12)))}})
        return self.finish({"type": "rules", "pm": {"min_requirement": usd(self.pick((0, 20 * 10**6, 10**6)))}})

    def import_account(self) -> str:
        m, rnd = self.m, self.rnd
        name = f"imp{rnd.randrange(4)}"
        positions = []
        for coin in rnd.sample(sorted(m.markets), min(len(m.markets), rnd.randint(0, 2))):
            lots = rnd.randint(-50, 50) or 1
            entry = m.marks[coin] * rnd.randint(90, 110) // 100
            if not self.hostile or self.chance(0.8):  # an entry off the tick
                entry = self.on_tick(coin, entry)
            cross = self.chance(0.7)
            p: dict[str, Any] = {
                "coin": coin,
                "szi": sz(lots * self.lot(coin) * 10),
                "entry_px": px(max(1, entry)),
                "leverage": rnd.randint(1, 10),
                "cross": cross,
            }
            if not cross:
                p["raw_usd"] = usd(rnd.randint(0, 10_000) * 10**6)
            positions.append(p)
        if name not in m.accounts:
            m.accounts.append(name)
        return self.finish(
            {
                "type": "import_account",
                "account": name,
                "raw_usd": usd(rnd.randint(0, 100_000) * 10**6),
                "positions": positions,
            }
        )

    def new_market(self) -> str:
        """A market listed late, or an existing one's tiers replaced."""
        return self.market_line(self.pick(COINS))


def stream(seed: int, events: int, hostile: bool = False, risk: bool = False) -> list[str]:
    """The JSON lines of case `seed`: `events` of them."""
    return StreamGenerator(seed, events, hostile, risk).lines()


def liquidation_mode(seed: int) -> str:
    """Which execution mode case `seed` runs in (every mode gets a quarter of the seeds)."""
    return LIQUIDATION_MODES[seed % len(LIQUIDATION_MODES)]
