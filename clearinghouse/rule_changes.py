"""Rule changes (docs/rules.md, "Rules are data"): the `rules` event selects a named perp rule
set and/or changes spot, lending, portfolio-margin and risk-model parameters."""

from __future__ import annotations

from clearinghouse.context import Context
from clearinghouse.errors import Reject
from clearinghouse.risk.params import params_error
from clearinghouse.rules import RULE_SETS, patched, pm_rules_error
from events import schema as ev


def change_rules(ctx: Context, e: ev.Rules) -> None:
    """Selects a named perp rule set and/or changes spot, lending and PM parameters."""
    rules = ctx.rules
    if e.name is not None:
        named = RULE_SETS.get(e.name)
        if named is None:
            raise Reject(f"unknown rule set {e.name!r} (known: {', '.join(sorted(RULE_SETS))})")
        rules = named
    if e.name is None and not (e.ltv or e.caps or e.pm or e.risk):
        raise Reject("rules needs a name or parameters to change")
    pm = patched(ctx.state.pm_rules, e.ltv, e.caps, e.pm)
    problem = pm_rules_error(pm) or (params_error(e.risk) if e.risk is not None else None)
    if problem:
        raise Reject(problem)
    if e.risk is not None:
        ctx.state.risk = e.risk
    ctx.state.rules = rules.name
    ctx.rules = rules
    ctx.state.pm_rules = pm
