"""The comparison's definitions (replay/backtest/compare.py), on outcomes written by hand: the
hedged, directional and flat split, and capital freed as a mean over the samples."""

from __future__ import annotations

from replay.backtest.compare import compare, kind_of
from replay.backtest.meter import AccountTally, Outcome, Sample

USDC = 1_000_000


def test_an_account_is_hedged_when_at_least_half_of_its_exposure_offsets() -> None:
    # A pair, long 100 of one and short 100 of another: net 0 of gross 200.
    assert kind_of(AccountTally(net=0, gross=200)) == "hedged"
    # Long 150, short 50: net 100 of gross 200, exactly half offsets: hedged.
    assert kind_of(AccountTally(net=100, gross=200)) == "hedged"
    # Long 151, short 49: net 102 of 200: directional.
    assert kind_of(AccountTally(net=102, gross=200)) == "directional"
    assert kind_of(AccountTally()) == kind_of(None) == "flat"


def _outcome(im: list[int], accounts: dict[str, AccountTally]) -> Outcome:
    return Outcome(samples=[Sample(t, i * USDC, i * USDC // 2) for t, i in enumerate(im)], accounts=accounts)


def test_capital_freed_is_the_mean_over_the_samples_by_kind() -> None:
    # Two samples. Under the base: the carry needs 100 then 300 (mean 200), the directional
    # account 50 then 50 (mean 50), the flat one nothing; in all 150 then 350 (mean 250).
    base = _outcome(
        [150, 350],
        {
            "carry": AccountTally(initial=400 * USDC, net=10, gross=1_000),
            "bull": AccountTally(initial=100 * USDC, net=500, gross=500),
        },
    )
    # The other: the carry needs 20 then 40 (mean 30: frees 170, 85% of its 200), the bull
    # 60 then 60 (mean 60: needs 10 more, -20%), and an account the base never measured needs
    # 7 then 0 (mean 3.5: flat, -3.5).
    other = _outcome(
        [87, 100],
        {
            "carry": AccountTally(initial=60 * USDC, net=0, gross=1_000),
            "bull": AccountTally(initial=120 * USDC, net=600, gross=600),
            "late": AccountTally(initial=7 * USDC, net=5, gross=5),
        },
    )
    first, second = compare([("base", base), ("other", other)])
    assert first["capital_freed"] is None
    assert first["requirement"]["initial_mean"] == "250.0"
    freed = second["capital_freed"]
    # 170 - 10 - 3.5 = 156.5, of the base's mean 250: 62.6%; at the end 350 - 100 = 250.
    assert (freed["against"], freed["initial_mean"], freed["initial_mean_pct"]) == ("base", "156.5", "62.60")
    assert freed["initial_end"] == "250.0"
    assert freed["hedged"] == {"accounts": 1, "initial_mean": "170.0", "initial_mean_pct": "85.00"}
    assert freed["directional"] == {"accounts": 1, "initial_mean": "-10.0", "initial_mean_pct": "-20.00"}
    assert freed["flat"] == {"accounts": 1, "initial_mean": "-3.5", "initial_mean_pct": None}
