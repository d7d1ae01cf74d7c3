"""Spot tokens, balances, spot trades, token deposits and withdrawals, the spot/perp USDC transfer
and account modes (docs/rules.md 1 and docs/portfolio-margin.md).

Every expected value is worked out by hand next to its assertion. `Book` checks conservation
(USDC and every token, pools included) after every event, and that a rejected event leaves the
state unchanged.
"""

from __future__ import annotations

from clearinghouse.spot import price
from events.units import px, sz, usd
from tests.support.rulebook import (
    Book,
    class_transfer,
    deposit,
    market,
    prices,
    set_mode,
    spot_trade,
    token,
    trade,
    withdraw,
)


def _listed(book: Book) -> None:
    book.ok(token("HYPE", 8), token("PURR", 2))


def test_token_listing_and_its_rejections():
    book = Book()
    _listed(book)
    # HYPE: 8 decimals -> unit 1 in the 1e-8 scale; PURR: 2 decimals -> unit 10**6
    assert book.state.tokens["HYPE"].unit == 1
    assert book.state.tokens["PURR"].unit == 1_000_000
    assert "built in" in book.reject(token("USDC", 6)).reason
    assert "already listed" in book.reject(token("HYPE", 8)).reason
    assert "decimals" in book.reject(token("BIG", 9)).reason


def test_token_deposit_and_withdraw_keep_the_unit_and_the_balance():
    book = Book()
    _listed(book)
    book.ok(deposit("alice", "12.34", token="PURR"), deposit("alice", "0.00000001", token="HYPE"))
    spot = book.state.spot["alice"]
    assert spot.balances == {"PURR": 1_234_000_000, "HYPE": 1}  # 12.34 and 1e-8 in 1e-8 units
    assert book.state.accounts["alice"].raw_usd == 0  # a token deposit leaves the perp ledger alone
    assert book.state.token_net == {"PURR": 1_234_000_000, "HYPE": 1}
    assert "decimals" in book.reject(deposit("alice", "0.001", token="PURR")).reason  # finer than 0.01
    assert "unknown token" in book.reject(deposit("alice", "1", token="DOGE")).reason
    assert "balance" in book.reject(withdraw("alice", "12.35", token="PURR")).reason
    book.ok(withdraw("alice", "2.34", token="PURR"))
    assert spot.balances["PURR"] == sz("10")  # 12.34 - 2.34
    assert book.state.token_net["PURR"] == sz("10")


def test_class_transfer_and_a_standard_spot_trade():
    book = Book()
    _listed(book)
    book.ok(deposit("alice", "1000"), deposit("bob", "20", token="HYPE"))
    assert "spot USDC" in book.reject(class_transfer("alice", "1", to_perp=True)).reason  # nothing in spot
    book.ok(class_transfer("alice", "500", to_perp=False))
    # perp ledger 1,000 - 500 = 500; spot USDC 500
    assert book.state.accounts["alice"].raw_usd == usd("500")
    assert book.state.spot["alice"].balances == {"USDC": usd("500")}
    # a spot buy pays from spot USDC only: 10 HYPE at 40 = 400, taker fee 0.045% = 0.18
    assert "can pay 500.0" in book.reject(spot_trade("HYPE", "40", "13", "alice", "bob")).reason  # 520 > 500
    book.ok(spot_trade("HYPE", "40", "10", "alice", "bob", buyer_fee="0.18", seller_fee="0.06"))
    # alice: USDC 500 - 400 - 0.18 = 99.82, HYPE 10; bob: HYPE 20 - 10 = 10, USDC 400 - 0.06 = 399.94
    assert book.state.spot["alice"].balances == {"USDC": usd("99.82"), "HYPE": sz("10")}
    assert book.state.spot["bob"].balances == {"HYPE": sz("10"), "USDC": usd("399.94")}
    assert book.state.fees == usd("0.24")
    # weighted volume: spot counts twice, 2 * 400 = 800 for each side
    assert book.state.accounts["alice"].volume == usd("800")
    assert book.state.tokens["HYPE"].last_px == px("40")
    # back to perp: 99 of 99.82
    book.ok(class_transfer("alice", "99", to_perp=True))
    assert book.state.accounts["alice"].raw_usd == usd("599")
    assert book.state.spot["alice"].balances["USDC"] == usd("0.82")


def test_spot_trade_rejections():
    book = Book()
    _listed(book)
    book.ok(
        deposit("alice", "1000"), class_transfer("alice", "1000", to_perp=False), deposit("bob", "5", token="HYPE")
    )
    assert "holds 5" in book.reject(spot_trade("HYPE", "40", "6", "alice", "bob")).reason  # spot never goes short
    assert "quoted in USDC" in book.reject(spot_trade("HYPE", "40", "1", "alice", "bob", quote="USDT")).reason
    assert "unknown token" in book.reject(spot_trade("DOGE", "1", "1", "alice", "bob")).reason
    assert "finer" in book.reject(spot_trade("PURR", "1", "0.001", "alice", "bob")).reason
    # 0.00000001 HYPE at 0.5 = 5e-9 USDC, not a whole micro-USDC
    assert "whole micro-USDC" in book.reject(spot_trade("HYPE", "0.5", "0.00000001", "alice", "bob")).reason
    assert "same account" in book.reject(spot_trade("HYPE", "40", "1", "bob", "bob")).reason
    assert "unknown account" in book.reject(spot_trade("HYPE", "40", "1", "carol", "bob")).reason


def test_class_transfer_from_perp_is_limited_by_withdrawable():
    book = Book()
    book.ok(
        market("ETH", 4, [("0", 10)]),
        deposit("alice", "1000"),
        deposit("mm", "100000"),
        prices(ETH="2000"),
        trade("ETH", "2000", "1", "alice", "mm"),
    )
    # AV 1,000; IM = 2,000 / 10 (the default leverage min(20, 10)) = 200; floor 10% of 2,000 = 200
    # -> withdrawable 1,000 - 200 = 800
    assert "withdrawable 800.0" in book.reject(class_transfer("alice", "800.01", to_perp=False)).reason
    book.ok(class_transfer("alice", "800", to_perp=False))
    assert book.state.spot["alice"].balances == {"USDC": usd("800")}


def test_oracle_of_a_spot_token():
    """Perp oracle of the same coin, else the token's own price entry, else the last trade."""
    book = Book()
    book.ok(
        token("HYPE"),
        token("PURR", 2),
        deposit("alice", "100"),
        class_transfer("alice", "100", to_perp=False),
        deposit("bob", "10", token="PURR"),
    )
    assert price(book.state, "PURR") == 0  # no price yet: worth nothing as collateral
    book.ok(spot_trade("PURR", "0.25", "4", "alice", "bob"))
    assert price(book.state, "PURR") == px("0.25")  # the last trade
    book.ok(prices(PURR="0.3"))
    assert price(book.state, "PURR") == px("0.3")  # its own price entry wins over the last trade
    book.ok(prices(HYPE=("41", "40.5")))
    assert price(book.state, "HYPE") == px("40.5")  # the oracle, not the mark
    book.ok(market("HYPE", 2, [("0", 10)]), prices(HYPE=("42", "41.5")))
    assert price(book.state, "HYPE") == px("41.5")  # the perp market of the same coin
    assert price(book.state, "USDC") == px("1")


def test_unified_mode_merges_usdc_and_switching_needs_no_position():
    book = Book()
    book.ok(market("ETH", 4, [("0", 10)]), deposit("alice", "1000"), class_transfer("alice", "300", to_perp=False))
    book.ok(set_mode("alice", "unified"))
    # one USDC balance: the spot 300 joins the perp ledger 700 -> 1,000
    assert book.state.accounts["alice"].raw_usd == usd("1000")
    assert "USDC" not in book.state.spot["alice"].balances
    assert "one USDC balance" in book.reject(class_transfer("alice", "1", to_perp=True)).reason
    assert "already unified" in book.reject(set_mode("alice", "unified")).reason
    assert "unknown mode" in book.reject(set_mode("alice", "cross")).reason
    book.ok(deposit("mm", "100000"), prices(ETH="2000"), trade("ETH", "2000", "0.1", "alice", "mm"))
    assert "no open position" in book.reject(set_mode("alice", "standard")).reason
    book.ok(trade("ETH", "2000", "0.1", "mm", "alice"), set_mode("alice", "standard"))
    assert book.state.spot["alice"].mode == "standard"


def test_portfolio_eligibility_by_value_and_by_volume():
    book = Book()
    book.ok(token("HYPE"), prices(HYPE="40"), deposit("small", "9000"), deposit("small", "25", token="HYPE"))
    # account value 9,000 + 25 * 40 = 10,000: not above 10k
    assert "minimum" in book.reject(set_mode("small", "portfolio")).reason
    book.ok(deposit("small", "0.000001"))  # 10,000.000001 > 10k
    book.ok(set_mode("small", "portfolio"))
    book.ok(deposit("whale", "25000000"))
    assert "below the maximum" in book.reject(set_mode("whale", "portfolio")).reason  # 25M is not below 25M
    # volume: 1,000 USDC of value but more than 5M of perp volume (liquidation off: the 2.5M
    # round trips at 1,000 of margin are only there to make volume)
    book = Book(liquidation=False)
    book.ok(market("BTC", 5, [("0", 40)]), prices(BTC="100000"), deposit("trader", "1000"), deposit("mm", "10000000"))
    book.ok(trade("BTC", "100000", "25", "trader", "mm"), trade("BTC", "100000", "25", "mm", "trader"))
    assert book.state.accounts["trader"].volume == usd("5000000")  # 2 fills of 2.5M: not above 5M
    assert "minimum" in book.reject(set_mode("trader", "portfolio")).reason
    book.ok(trade("BTC", "100000", "0.00001", "trader", "mm"), trade("BTC", "100000", "0.00001", "mm", "trader"))
    book.ok(set_mode("trader", "portfolio"))  # 5,000,002 > 5M


def test_spot_side_in_the_state_output():
    book = Book()
    book.ok(
        token("HYPE"),
        prices(HYPE="40"),
        deposit("alice", "100"),
        deposit("alice", "2.5", token="HYPE"),
        class_transfer("alice", "30", to_perp=False),
    )
    spot = book.summary("alice")["spot"]
    # net balance: perp AV 70 + spot USDC 30 + 2.5 HYPE * 40 = 200
    assert spot == {
        "mode": "standard",
        "balances": {"HYPE": "2.5", "USDC": "30.0"},
        "supplied": {},
        "borrowed": {},
        "borrowedValue": "0.0",
        "healthFactor": None,
        "netBalance": "200.0",
    }
