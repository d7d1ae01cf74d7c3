"""Each canonical book (clearinghouse/books.py) under each model, worked by hand: standard cross
margin from the rulebook's mainnet tables (BTC 40x: IM ntl/40, MM ntl/80; ETH 25x: ntl/25,
ntl/50; other coins one tier at 20x: ntl/20, ntl/40), every position at its market's highest
leverage; the risk model under its shipped defaults (docs/risk-margin.md: BTC/ETH moves up to
15% with tails of 30% at weight 0.35 in a 70% credit group, alts up to 25% with tails of 50% at
0.35 and a 1% floor; perp contingency 0.2% / 0.4%; basis 0.5% / 1%; concentration
0.1 * net^2 / depth with depth 1B USDC for BTC/ETH, 50M for alts; loans 1% / 2%; MM factor
0.5, IM factor 1). Prices: BTC 100,000, ETH 4,000, SOL 200, HYPE 40, AVAX 25, LINK 20,
DOGE 0.2, ARB 0.5."""

from __future__ import annotations

from clearinghouse.books import CANONICAL, compare
from clearinghouse.calculator import Answer, CannotHold, answer
from events.units import usd


def _figures(book: str, mode: str) -> tuple[int, int, int]:
    a = answer(CANONICAL[book][1], mode)
    assert isinstance(a, Answer)
    return a.equity, a.initial, a.maintenance


def test_carry() -> None:
    # standard: the perp short alone, 1,000,000 of notional: IM /40 = 25,000, MM /80 = 12,500;
    # equity the 50,000 USDC (the spot BTC does not count); unified the same
    assert _figures("carry", "standard") == (usd("50000"), usd("25000"), usd("12500"))
    assert _figures("carry", "unified") == (usd("50000"), usd("25000"), usd("12500"))
    # portfolio: req = 20 + 12,500 + 0 = 12,520, kept at req / 0.95 = 13,178.9473684... up to
    # 13,178.947369 (both IM and MM); liquidation value 50,000 + 10 * 100,000 * (1 + 0.5) / 2
    assert _figures("carry", "portfolio") == (usd("800000"), usd("13178.947369"), usd("13178.947369"))
    # risk: equity 50,000 + 1,000,000; net exposure 0, scan 0; perp 0.2% / 0.4% of 1,000,000 =
    # 2,000 / 4,000; basis 0.5% / 1% of 10 * 100,000 = 5,000 / 10,000: MM 7,000, IM 14,000
    assert _figures("carry", "risk") == (usd("1050000"), usd("14000"), usd("7000"))


def test_pair() -> None:
    # standard: 100,000/40 + 100,000/25 = 6,500 IM; 100,000/80 + 100,000/50 = 3,250 MM
    assert _figures("pair", "standard") == (usd("30000"), usd("6500"), usd("3250"))
    # risk: BTC +100,000 and ETH -100,000 in the 70% group on aligned moves: at -15% BTC loses
    # 15,000 and ETH gains 15,000: 15,000 - 0.7 * 15,000 = 4,500 (the same at +15%; the 30% tails
    # at 0.35: 10,500 - 7,350 = 3,150): scan 4,500, MM 2,250, IM 4,500; perp 0.2% / 0.4% of
    # 200,000 = 400 / 800; concentration 0.1 * 100,000^2 / 1e9 = 1 per coin: MM 2,652, IM 5,302
    assert _figures("pair", "risk") == (usd("30000"), usd("5302"), usd("2652"))


def test_directional() -> None:
    assert _figures("directional", "standard") == (usd("30000"), usd("2500"), usd("1250"))
    # risk: -15% of 100,000 = 15,000 (the tail: 0.35 * 30,000 = 10,500); perp 200 / 400;
    # concentration 1: MM 7,500 + 201 = 7,701, IM 15,000 + 401 = 15,401
    assert _figures("directional", "risk") == (usd("30000"), usd("15401"), usd("7701"))


def test_market_maker() -> None:
    # standard: 5,000 in each of 8 markets: BTC 125 / 62.5, ETH 200 / 100, six at 20x 250 / 125:
    # IM 1,825, MM 912.5
    assert _figures("market maker", "standard") == (usd("20000"), usd("1825"), usd("912.5"))
    # risk: the BTC/ETH pair at 5% of the pair's size: 4,500 * 0.05 = 225; six alts at 25% of
    # 5,000 = 1,250 each (tail 0.35 * 2,500 = 875, floor 50): 7,500; scans 7,725 -> MM 3,862.5,
    # IM 7,725; perp 8 * 10 / 8 * 20; concentration 0.1 * 5,000^2 / 1e9 = 0.0025 for BTC and ETH,
    # 0.1 * 5,000^2 / 5e7 = 0.05 for each alt: 0.305. MM 3,942.805, IM 7,885.305
    assert _figures("market maker", "risk") == (usd("20000"), usd("7885.305"), usd("3942.805"))


def test_hype_borrower() -> None:
    book = CANONICAL["HYPE borrower"][1]
    assert answer(book, "standard") == CannotHold("a standard account cannot borrow")
    assert answer(book, "unified") == CannotHold("a unified account cannot borrow")
    # risk: equity 50,000 - 50,000 + 10,000 * 40 = 400,000; HYPE -25% of 400,000 = 100,000 (the
    # tail 0.35 * 200,000 = 70,000, floor 4,000); BTC 15,000; perp 200 / 400; concentration
    # 0.1 * 400,000^2 / 5e7 = 320 and 1; loan 1% / 2% of 50,000 = 500 / 1,000
    # MM 50,000 + 7,500 + 200 + 321 + 500 = 58,521; IM 100,000 + 15,000 + 400 + 321 + 1,000 = 116,721
    assert _figures("HYPE borrower", "risk") == (usd("400000"), usd("116721"), usd("58521"))


def test_freed_capital_and_the_cheapest_model() -> None:
    rows = {(r.book, r.model): r for r in compare()}
    # carry: risk frees (25,000 - 14,000) / 25,000 = 44%; portfolio (25,000 - 13,178.947369) /
    # 25,000 = 47.2842...% (in 1e-6, rounded down: 472,842), the cheapest
    assert rows["carry", "risk"].freed == 440_000
    assert rows["carry", "portfolio"].freed == 472_842 and rows["carry", "portfolio"].cheapest
    # directional: risk costs (2,500 - 15,401) / 2,500 = -516.04%
    assert rows["directional", "risk"].freed == -5_160_400
    # the borrower: standard cannot hold it, so nothing is freed against it
    assert rows["HYPE borrower", "risk"].freed is None
    assert [m for (b, m), r in rows.items() if b == "HYPE borrower" and r.cheapest] == ["portfolio"]
