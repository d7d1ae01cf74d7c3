"""The over-deleveraging measure (replay/overdeleverage.py, docs/adl.md) on a hand-built round,
under hl-queue and deficit-pro-rata, with every figure worked out by hand.

The book (ETH: lot 0.0001, tick 0.01, one tier at 10x, MM 5%): amy short 30 and ben short 50 at
100 against carol; bob (240 USDC) buys 40 of carol's long at 100. The mark falls to 93 at 1 s
(bob: AV 240 - 280 = -40, the liquidator's limit is 0, so ADL: the deficit D is 40), to 90 at
3 s, and is 91 at 10 s, more than the 5 s gap after the deleveraging: one round, scored at 3 s
(a 5 s horizon) or at 1 s (no horizon). Pass B (the liquidator absorbing) takes bob over at 93;
amy and ben keep their whole shorts there.
"""

from __future__ import annotations

from typing import Any

import pytest

from clearinghouse.digest import encode_state
from clearinghouse.state import LiquidationConfig, State
from events.codec import decode_json
from replay.overdeleverage import Span, measure, rounds_of
from tests.support.pair import TEN_X, stamped, usd
from tests.support.rulebook import deposit, market, prices, trade

LINES = [
    market("ETH", 4, TEN_X),
    deposit("amy", "1000"),
    deposit("ben", "1000"),
    deposit("carol", "1000"),
    deposit("bob", "240"),
    prices(ETH="100"),
    trade("ETH", "100", "30", "carol", "amy"),
    trade("ETH", "100", "50", "carol", "ben"),
    trade("ETH", "100", "40", "bob", "carol"),
    stamped(prices(ETH="93"), 1_000),  # seq 9: bob deleveraged
    stamped(prices(ETH="90"), 3_000),
    stamped(prices(ETH="91"), 10_000),
]
ROUND_SEQ = 9


def _events() -> list[Any]:
    return [decode_json(line) for line in LINES]


def _config(adl: str) -> LiquidationConfig:
    return LiquidationConfig(loss_limit=0, adl=adl)


def test_hl_queue_round_with_a_horizon():
    """hl-queue at 93 ranks ben first (100/93 x 4,650 / 1,350 = 3.70 against amy's 100/93 x 2,790 /
    1,210 = 2.48): ben buys back 40 at the previous mark 100. B = |93 - 100| x 40 = 280.
    At 3 s (mark 90): ben in A: raw 6,000 - 4,000 = 2,000, short 10: 2,000 - 900 = 1,100; in B:
    6,000 - 4,500 = 1,500. H = 400 (the 280 and the 3 x 40 the closed short would have gained
    since). overshoot H - D = 360; severity B - D = 240; allocation H - B = 120. Fairness: ben's
    capacity in B at 90 is 50 x 10 = 500: 400 / 500 = 800,000 ppm."""
    result = measure(State(), _events(), _config("hl-queue"), horizon_ms=5_000)
    assert len(result.rounds) == 1
    r = result.rounds[0]
    assert (r.first, r.last, r.scored, r.winners) == (ROUND_SEQ, ROUND_SEQ, ROUND_SEQ + 1, 1)
    assert (r.deficit, r.budget, r.haircut, r.max_share_ppm) == (usd("40"), usd("280"), usd("400"), 800_000)
    assert result.as_dict() == {
        "over": usd("360"),
        "under": 0,
        "net": usd("360"),
        "fairness": 800_000,
        "rounds": 1,
        "deficit": usd("40"),
        "budget": usd("280"),
        "haircut": usd("400"),
        "severity": {"over": usd("240"), "under": 0, "net": usd("240")},
        "allocation": {"over": usd("120"), "under": 0, "net": usd("120")},
    }


def test_hl_queue_round_without_a_horizon_is_scored_at_the_deleveraging_event():
    """At 1 s (mark 93) ben's gap is what the fill took: A 2,000 - 930 = 1,070, B 6,000 - 4,650 =
    1,350: H = 280 = B; share 280 / (50 x 7 = 350) = 800,000 ppm."""
    result = measure(State(), _events(), _config("hl-queue"))
    r = result.rounds[0]
    assert (r.deficit, r.budget, r.haircut, r.max_share_ppm) == (usd("40"), usd("280"), usd("280"), 800_000)
    assert result.allocation.as_dict() == {"over": 0, "under": 0, "net": 0}
    assert result.overshoot.as_dict() == {"over": usd("240"), "under": 0, "net": usd("240")}


def test_deficit_pro_rata_round_takes_the_deficit():
    """deficit-pro-rata at 93 (tests/core/test_adl_policies.py works the fills out): amy 2.1429
    and ben 3.5714 at 100, the liquidator 34.2857 at 93. B = 7 x 5.7143 = 40.0001. At 3 s (mark 90)
    each closed ETH would have gained 10 more in B: amy 21.429, ben 35.714, H = 57.143.
    overshoot 17.143; severity 0.0001; allocation 57.143 - 40.0001 = 17.1429. Fairness: amy
    21.429 of 300 = 71,430 ppm; ben 35.714 of 500 = 71,428 ppm."""
    result = measure(State(), _events(), _config("deficit-pro-rata"), horizon_ms=5_000)
    r = result.rounds[0]
    assert r.winners == 2
    assert (r.deficit, r.budget, r.haircut, r.max_share_ppm) == (usd("40"), usd("40.0001"), usd("57.143"), 71_430)
    assert result.overshoot.as_dict() == {"over": usd("17.143"), "under": 0, "net": usd("17.143")}
    assert result.severity.as_dict() == {"over": usd("0.0001"), "under": 0, "net": usd("0.0001")}
    assert result.allocation.as_dict() == {"over": usd("17.1429"), "under": 0, "net": usd("17.1429")}


def test_a_bankruptcy_more_than_the_gap_later_is_a_second_round():
    """dan (150 USDC) buys 10 of carol's long at 100 after 3 s (mark 90: AV 50 >= MM 45); the mark
    84 at 10 s (7 s after the first round's deleveraging, past the 5 s gap) leaves him at
    150 - 160 = -10: a second round. hl-queue ranks amy (raw 4,000, AV 4,000 - 2,520 = 1,480,
    100/84 x 2,520 / 1,480 = 2.03) before ben (short 10: raw 2,000, AV 1,160, 0.86): amy buys back
    10 at the previous mark 90: B = 6 x 10 = 60, D = 10; scored at 10 s: amy A 4,000 - 900 - 1,680 =
    1,420, B (from the state before this round) 4,000 - 2,520 = 1,480: H = 60, share 60 / 480 =
    125,000 ppm. The first round, scored at 1 s, is the one worked out above (280, 280, 40)."""
    lines = [
        *LINES[:-1],
        deposit("dan", "150"),
        trade("ETH", "100", "10", "dan", "carol"),
        stamped(prices(ETH="84"), 10_000),
    ]
    result = measure(State(), [decode_json(line) for line in lines], _config("hl-queue"))
    first, second = result.rounds
    assert (first.first, first.scored, first.deficit, first.budget, first.haircut) == (
        ROUND_SEQ,
        ROUND_SEQ,
        usd("40"),
        usd("280"),
        usd("280"),
    )
    assert (second.first, second.scored, second.winners) == (13, 13, 1)
    assert (second.deficit, second.budget, second.haircut, second.max_share_ppm) == (
        usd("10"),
        usd("60"),
        usd("60"),
        125_000,
    )
    assert result.overshoot.as_dict() == {"over": usd("290"), "under": 0, "net": usd("290")}
    assert result.fairness == 800_000


def test_rounds_group_by_the_gap_and_score_within_the_horizon():
    """Event times (after each input event) 0, 1, 2, 4, 9, 10, 16 s; deleveraging at events 1, 3,
    4 and 6. Gap 5 s: 3 is 2 s after 1, 4 is 5 s after 3 (not more: the same round), 6 is 6 s
    after 4: a second round. Horizon 1 s: the first round is scored after event 5 (10 s, 1 s after
    its last deleveraging event 4), the second after 6 (the last event)."""
    times = [0, 1_000, 2_000, 4_000, 9_000, 10_000, 16_000]
    assert rounds_of(times, [1, 3, 4, 6], 5_000, 1_000) == [Span(1, 4, 5), Span(6, 6, 6)]
    assert rounds_of(times, [1, 3, 4, 6], 5_000, 0) == [Span(1, 4, 4), Span(6, 6, 6)]
    assert rounds_of(times, [1, 3, 4, 6], 1_000, 0) == [Span(1, 1, 1), Span(3, 3, 3), Span(4, 4, 4), Span(6, 6, 6)]
    assert rounds_of(times, [], 5_000, 0) == []
    with pytest.raises(ValueError):
        rounds_of(times, [1], 1_000, 2_000)


def test_no_loss_limit_means_no_round_and_the_start_state_is_left_alone():
    start = State()
    before = encode_state(start)
    result = measure(start, _events(), LiquidationConfig(adl="pro-rata"))
    assert result.rounds == [] and result.as_dict()["over"] == 0
    assert encode_state(start) == before
