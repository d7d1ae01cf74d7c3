"""Funding (docs/rules.md 4): payment = -szi * oracle * rate_hourly (longs pay when the rate
is positive), oracle not mark; F_8h = P + clamp(0.0001 - P, -c, c), hourly F/8, capped at 4%/h,
c = 0.0005 (hl-current) / 0.0003 (hl-2023); the lazy index equals paying every hour.
cumFunding is funding PAID (positive = the account paid). Worked by hand next to each assertion."""

from __future__ import annotations

import pytest

from tests.support.rulebook import BTC_TIERS, Book, deposit, funding, line, market, prices, trade


def _pair(rule_set: str | None = None, oracle: str = "99000", size: str = "1") -> Book:
    book = Book(rule_set)
    book.ok(
        market("BTC", 5, BTC_TIERS),
        deposit("alice", "20000"),
        deposit("bob", "20000"),
        prices(BTC=("100000", oracle)),
        trade("BTC", "100000", size, "alice", "bob"),  # alice long, bob short
    )
    return book


def _cum(book: Book, account: str) -> tuple[str, str, str]:
    c = book.position(account, "BTC")["cumFunding"]
    return c["allTime"], c["sinceOpen"], c["sinceChange"]


def test_positive_rate_longs_pay_on_the_oracle():
    book = _pair()
    # rate 0.0000125/h, oracle 99,000 (mark 100,000): per coin 99,000 * 0.0000125 = 1.2375
    # (on the mark it would be 1.25); alice (long 1) pays 1.2375, bob (short 1) receives it
    book.ok(funding("BTC", rate="0.0000125"))
    assert _cum(book, "alice") == ("1.2375", "1.2375", "1.2375")
    assert _cum(book, "bob") == ("-1.2375", "-1.2375", "-1.2375")
    a, b = book.summary("alice"), book.summary("bob")
    # alice rawUsd = 20,000 - 100,000 - 1.2375 = -80,001.2375; AV = -80,001.2375 + 100,000 = 19,998.7625
    assert a["marginSummary"]["totalRawUsd"] == "-80001.2375"
    assert a["marginSummary"]["accountValue"] == "19998.7625"
    # withdrawable = 19,998.7625 - max(100,000/20 = 5,000, 10,000) = 9,998.7625 (unsettled funding counts)
    assert a["withdrawable"] == "9998.7625"
    # bob rawUsd = 20,000 + 100,000 + 1.2375 = 120,001.2375; AV = 20,001.2375
    assert b["marginSummary"]["totalRawUsd"] == "120001.2375"
    assert b["marginSummary"]["accountValue"] == "20001.2375"


def test_negative_rate_longs_receive():
    book = _pair()
    # rate -0.00002/h: per coin 99,000 * -0.00002 = -1.98 -> alice receives 1.98, bob pays 1.98
    book.ok(funding("BTC", rate="-0.00002"))
    assert _cum(book, "alice") == ("-1.98", "-1.98", "-1.98")
    assert _cum(book, "bob") == ("1.98", "1.98", "1.98")
    assert book.summary("alice")["marginSummary"]["accountValue"] == "20001.98"  # 20,000 + 1.98
    assert book.summary("bob")["marginSummary"]["accountValue"] == "19998.02"  # 20,000 - 1.98


def test_index_with_size_changes_equals_paying_every_hour():
    book = _pair()
    # hour 1: oracle 99,000, rate 0.0000125 -> 1.2375/coin; alice szi 1 pays 1.2375
    book.ok(funding("BTC", rate="0.0000125"))
    book.ok(trade("BTC", "100000", "1", "alice", "bob"))  # szi 2
    # hour 2: oracle 101,000, rate 0.00001 -> 1.01/coin; alice szi 2 pays 2.02
    book.ok(prices(BTC=("100000", "101000")), funding("BTC", rate="0.00001"))
    book.ok(trade("BTC", "100000", "1.5", "bob", "alice"))  # szi 0.5
    # hour 3: oracle 100,000, rate -0.00003 -> -3/coin; alice szi 0.5 pays -1.5
    # hour 4: oracle 100,000, rate 0.00004 -> 4/coin; alice szi 0.5 pays 2
    book.ok(prices(BTC="100000"), funding("BTC", rate="-0.00003"), funding("BTC", rate="0.00004"))
    # hourly reference: 1.2375 + 2.02 - 1.5 + 2 = 3.7575 paid all time (and since open);
    # since the last size change (after hour 2): -1.5 + 2 = 0.5
    assert _cum(book, "alice") == ("3.7575", "3.7575", "0.5")
    assert _cum(book, "bob") == ("-3.7575", "-3.7575", "-0.5")
    a, b = book.summary("alice"), book.summary("bob")
    # alice rawUsd = 20,000 - 100,000 - 100,000 + 150,000 - 3.7575 = -30,003.7575
    # AV = -30,003.7575 + 0.5 * 100,000 = 19,996.2425
    assert a["marginSummary"]["totalRawUsd"] == "-30003.7575"
    assert a["marginSummary"]["accountValue"] == "19996.2425"
    # bob rawUsd = 20,000 + 100,000 + 100,000 - 150,000 + 3.7575 = 70,003.7575; AV = 20,003.7575
    assert b["marginSummary"]["totalRawUsd"] == "70003.7575"
    assert b["marginSummary"]["accountValue"] == "20003.7575"
    # settled into the ledger at the size changes: hours 1-2 (1.2375 + 2.02 = 3.2575);
    # hours 3-4 (0.5) still pending: ledger = 20,000 - 50,000 - 3.2575 = -30,003.2575
    assert book.state.accounts["alice"].raw_usd == -30_003_257_500

    # close, reopen 1, one more hour at oracle 100,000, rate 0.00001 -> 1/coin: alice pays 1
    book.ok(
        trade("BTC", "100000", "0.5", "bob", "alice"),
        trade("BTC", "100000", "1", "alice", "bob"),
        funding("BTC", rate="0.00001"),
    )
    # all time 3.7575 + 1 = 4.7575; since the reopen 1; since the last change 1
    assert _cum(book, "alice") == ("4.7575", "1.0", "1.0")
    # rawUsd = -30,003.7575 + 50,000 - 100,000 - 1 = -80,004.7575; AV = 19,995.2425
    assert book.summary("alice")["marginSummary"]["accountValue"] == "19995.2425"


def test_pending_funding_rounds_toward_minus_infinity():
    # alice long 0.00001 BTC; oracle 99,999, rate 0.0000125 -> per coin 1.2499875 (exact at 1e-12)
    book = _pair(oracle="99999", size="0.00001")
    book.ok(funding("BTC", rate="0.0000125"))
    # exact payment 0.00001 * 1.2499875 = 0.000012499875
    # alice receives -0.000012499875 -> toward -inf -> -0.000013: paid 0.000013
    # bob receives +0.000012499875 -> toward -inf -> 0.000012: paid -0.000012
    assert _cum(book, "alice")[0] == "0.000013"
    assert _cum(book, "bob")[0] == "-0.000012"
    # settling both (close the position) leaves the 1 micro-USDC difference in the funding pool
    book.ok(trade("BTC", "100000", "0.00001", "bob", "alice"))
    assert book.state.funding_pool == 1  # 13 paid in - 12 paid out


@pytest.mark.parametrize(
    "rule_set, premium, paid",
    [
        # oracle 100,000, alice long 1: paid = 100,000 * hourly
        # P = 0.001: 0.0001 - 0.001 = -0.0009 -> clamp to -0.0005 -> F = 0.0005; /8 = 0.0000625 -> 6.25
        ("hl-current", "0.001", "6.25"),
        # c = 0.0003: F = 0.001 - 0.0003 = 0.0007; /8 = 0.0000875 -> 8.75
        ("hl-2023", "0.001", "8.75"),
        # P = 0.0005: 0.0001 - 0.0005 = -0.0004 inside +-0.0005 -> F = 0.0001; /8 = 0.0000125 -> 1.25
        ("hl-current", "0.0005", "1.25"),
        # c = 0.0003: clamp(-0.0004) = -0.0003 -> F = 0.0002; /8 = 0.000025 -> 2.5
        ("hl-2023", "0.0005", "2.5"),
        # P = 0: F = 0.0001 under both; /8 = 0.0000125 -> 1.25
        ("hl-current", "0", "1.25"),
        ("hl-2023", "0", "1.25"),
        # P = -0.001: 0.0011 -> clamp 0.0005 -> F = -0.0005; /8 = -0.0000625 -> alice receives 6.25
        ("hl-current", "-0.001", "-6.25"),
        # c = 0.0003: F = -0.001 + 0.0003 = -0.0007; /8 = -0.0000875 -> receives 8.75
        ("hl-2023", "-0.001", "-8.75"),
        # P = 1: F = 1 - 0.0005 = 0.9995; /8 = 0.1249375 > 4% cap -> 0.04 -> 4,000
        ("hl-current", "1", "4000.0"),
        # P = -1: F = -1 + 0.0003 = -0.9997; /8 = -0.1249625 -> cap -0.04 -> receives 4,000
        ("hl-2023", "-1", "-4000.0"),
    ],
)
def test_rate_from_premium(rule_set, premium, paid):
    book = _pair(rule_set, oracle="100000")
    book.ok(funding("BTC", premium=premium))
    assert _cum(book, "alice")[0] == paid
    bob_paid = paid[1:] if paid.startswith("-") else "-" + paid
    assert _cum(book, "bob")[0] == bob_paid


@pytest.mark.parametrize(
    "rate, paid",
    [
        ("0.05", "4000.0"),  # capped at 0.04 -> 100,000 * 0.04 = 4,000
        ("-0.05", "-4000.0"),  # capped at -0.04
        ("0.04", "4000.0"),  # exactly the cap
        ("0.039", "3900.0"),  # under the cap: 100,000 * 0.039
    ],
)
def test_hourly_cap(rate, paid):
    book = _pair(oracle="100000")
    book.ok(funding("BTC", rate=rate))
    assert _cum(book, "alice")[0] == paid


def test_funding_needs_one_of_rate_or_premium_and_an_oracle():
    book = _pair()
    book.reject(funding("BTC", rate="0.0001", premium="0.0001"))
    book.reject(line(type="funding", coin="BTC"))
    book.ok(market("ETH", 4, [("0", 25)]))
    book.reject(funding("ETH", rate="0.0001"))  # no price yet


def test_flip_restarts_since_open():
    book = _pair(oracle="100000")
    # hour 1: 100,000 * 0.00001 = 1/coin; alice long 1 pays 1
    book.ok(funding("BTC", rate="0.00001"))
    # "Long > Short": alice sells 3 -> short 2 (a new position, opened at the fill price)
    book.ok(trade("BTC", "100000", "3", "bob", "alice"))
    # hour 2: rate 0.00002 -> 2/coin; alice short 2 receives 4 (pays -4)
    book.ok(funding("BTC", rate="0.00002"))
    # all time 1 - 4 = -3; since open (the short) -4; since change -4
    assert _cum(book, "alice") == ("-3.0", "-4.0", "-4.0")
    assert book.position("alice", "BTC")["entryPx"] == "100000.0"


def test_per_coin_funding_is_quantised_half_to_even_once_per_hour():
    """Documented engine choice: oracle * rate is rounded to 1e-12 USDC per coin, half to even,
    once per market per hour; every position then pays szi times that index. (Both accounts are
    far below maintenance here: liquidation is off so the funding arithmetic can be followed.)"""
    book = Book(liquidation=False)
    book.ok(
        market("TINY", 0, [("0", 3)]),
        deposit("alice", "10"),
        deposit("bob", "10"),
        prices(TINY="1"),
        trade("TINY", "1", "1000000", "alice", "bob"),  # alice long 1,000,000 coins
        # hour 1: 0.00000001 * 0.00005 = 0.5e-12 per coin -> half to even -> 0
        prices(TINY="0.00000001"),
        funding("TINY", rate="0.00005"),
        # hour 2: 0.00000003 * 0.00005 = 1.5e-12 per coin -> half to even -> 2e-12
        prices(TINY="0.00000003"),
        funding("TINY", rate="0.00005"),
    )
    # index = 0 + 2e-12 per coin; alice pays 1,000,000 * 2e-12 = 0.000002
    # (rounding half up would give (1 + 2)e-12 -> 0.000003, truncation (0 + 1)e-12 -> 0.000001)
    pos = book.position("alice", "TINY")
    assert pos["cumFunding"]["allTime"] == "0.000002"
    assert book.position("bob", "TINY")["cumFunding"]["allTime"] == "-0.000002"
