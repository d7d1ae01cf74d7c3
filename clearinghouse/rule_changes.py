"""Rule changes (docs/rules.md, "Rules are data"): the `rules` event selects a named perp rule
set and/or changes spot, lending and portfolio-margin parameters."""

from __future__ import annotations

from clearinghouse.context import Context
from clearinghouse.errors import Reject
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
    if e.name is None and not (e.ltv or e.caps or e.pm):
        raise Reject("rules needs a name or parameters to change")
    pm = patched(ctx.state.pm_rules, e.ltv, e.caps, e.pm)
    problem = pm_rules_error(pm)
    if problem:
        raise Reject(problem)
    ctx.state.rules = rules.name
    ctx.rules = rules
    ctx.state.pm_rules = pm
