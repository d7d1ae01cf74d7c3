"""The margin models by account mode, and the per-account cache the engine keeps of them.

Adding a model: write its module (a class with every member of `base.MarginModel`) and add its
instance to `MODELS` (docs/architecture.md, "How to add a margin model")."""

from __future__ import annotations

from clearinghouse.models.base import MarginModel
from clearinghouse.models.portfolio import PORTFOLIO
from clearinghouse.models.risk import RISK
from clearinghouse.models.standard import STANDARD
from clearinghouse.models.unified import UNIFIED
from clearinghouse.state import State

MODELS: dict[str, MarginModel] = {
    m.mode: m for m in (STANDARD, UNIFIED, PORTFOLIO, RISK)
}  # the `set_mode` names, in order


def model_of(state: State, name: str) -> MarginModel:
    """The account's model, looked up from its mode (for readers of a state; the engine keeps
    `AccountModels`)."""
    spot = state.spot.get(name)
    return MODELS[spot.mode] if spot is not None else STANDARD


class AccountModels:
    """Each account's margin model, chosen when its mode is set and rebuilt from the state
    (never stored in it). `chosen`: every account whose model is not the standard one (the
    rest are standard); `banded`: those watched by the trigger bands, with their model;
    `settling`: those whose USDC is settled with the lending pool."""

    def __init__(self, state: State) -> None:
        self.chosen: dict[str, MarginModel] = {}
        self.banded: dict[str, MarginModel] = {}
        self.settling: set[str] = set()
        for name, spot in state.spot.items():
            self.set(name, MODELS[spot.mode])

    def of(self, name: str) -> MarginModel:
        return self.chosen.get(name, STANDARD)

    def set(self, name: str, model: MarginModel) -> None:
        if model is STANDARD:
            self.chosen.pop(name, None)
        else:
            self.chosen[name] = model
        if model.banded:
            self.banded[name] = model
        else:
            self.banded.pop(name, None)
        if model.settles_with_pool:
            self.settling.add(name)
        else:
            self.settling.discard(name)
