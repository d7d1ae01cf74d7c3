"""One struct per concept: a `rules` event's `pm` (`events.schema.PmParams`) names exactly the
scalar fields of the portfolio-margin parameters the state keeps (`clearinghouse.rules.PmRules`),
so `rules.patched` sets them by name."""

from __future__ import annotations

from clearinghouse.rules import PmRules, patched
from events.schema import PmParams
from events.units import RATE, usd


def test_pm_params_name_the_scalar_pm_rules() -> None:
    assert PmParams.__struct_fields__ == tuple(f for f in PmRules.__struct_fields__ if f not in ("ltv", "caps"))


def test_a_patch_sets_only_what_it_names() -> None:
    rules = patched(PmRules(), None, None, PmParams(liq_ratio=RATE * 9 // 10, min_value=usd("5000")))
    assert (rules.liq_ratio, rules.min_value) == (RATE * 9 // 10, usd("5000"))
    assert rules.kink == RATE * 8 // 10 and rules.ltv == PmRules().ltv  # the defaults, unchanged
