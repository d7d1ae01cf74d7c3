"""A log directory's layout and the settings its derived stream was built with.

A log directory holds `events/` (the input log), `derived/` (the engine's decisions, with their
own sequence, and checkpoints) and `state/` (snapshots: the state reached, with the input seq,
the source offset, the count of derived events written and the rolling hash over the input;
and `settings.msgpack`, what the derived stream depends on besides the input: the liquidation
settings and the checkpoint interval, fixed by the first run that writes it). Every reader of
history reads the settings here; the run that fixes them is an edge (`clearinghouse.edges.runner`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import msgspec

from clearinghouse.state import LiquidationConfig


@dataclass(frozen=True)
class LogDir:
    root: Path

    @property
    def events(self) -> Path:
        return self.root / "events"

    @property
    def derived(self) -> Path:
        return self.root / "derived"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def settings(self) -> Path:
        return self.state / "settings.msgpack"

    @property
    def dead_letter(self) -> Path:
        return self.root / "dead-letter"

    @property
    def cut(self) -> Path:
        """Where `repair` keeps a copy of everything it cuts."""
        return self.root / "cut"

    def exists(self) -> bool:
        return self.events.is_dir()


class ConfigMismatch(Exception):
    """A run asked for settings other than those the log's derived stream was built with."""


class SettingsConflict(ConfigMismatch):
    """Liquidation settings other than the log's fixed ones: both kept, so the CLI can name the
    conflicting flags in its own units."""

    def __init__(self, root: Path, fixed: LiquidationConfig, asked: LiquidationConfig) -> None:
        super().__init__(f"{root} was run with liquidation settings {fixed}; start a new log to use others")
        self.root, self.fixed, self.asked = root, fixed, asked


DEFAULT_CHECKPOINT_EVERY = 100_000


class LogSettings(msgspec.Struct, frozen=True):
    """What a log's derived stream depends on besides its input: the liquidation settings (its
    decisions) and the checkpoint interval (where its checkpoints fall). A restart skips as
    many regenerated derived events as its output already holds, so both must stay as the
    run that wrote them had them."""

    liquidation: LiquidationConfig = LiquidationConfig()
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY


def recorded_settings(log: LogDir) -> tuple[LiquidationConfig, int | None] | None:
    """The settings file's liquidation settings and checkpoint interval (None in a file of
    before the interval was kept: a bare `LiquidationConfig`); None without a file."""
    if not log.settings.exists():
        return None
    try:
        raw = msgspec.msgpack.decode(log.settings.read_bytes())
        if isinstance(raw, dict) and "liquidation" in raw:
            fixed = msgspec.convert(raw, LogSettings)
            if "check" in raw and raw["check"] != _check(fixed):
                raise ConfigMismatch(f"{log.settings} is damaged (its checksum does not match){_RESTORE}")
            return fixed.liquidation, fixed.checkpoint_every
        return msgspec.convert(raw, LiquidationConfig), None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigMismatch(f"{log.settings} does not hold a log's settings ({exc}){_RESTORE}") from None


_RESTORE = (
    ": restore it, or remove it and run again with the liquidation flags and --checkpoint-every"
    " the log was first run with"
)


def _check(fixed: LogSettings) -> int:
    """The checksum kept beside the settings (a damaged file must not read as other settings)."""
    return zlib.crc32(msgspec.msgpack.encode(fixed))


def settings_file(fixed: LogSettings) -> bytes:
    """The bytes of a settings file holding `fixed`, its checksum beside it."""
    return msgspec.msgpack.encode({**msgspec.structs.asdict(fixed), "check": _check(fixed)})


def settings(
    log: LogDir, liquidation: LiquidationConfig | None = None, checkpoint_every: int | None = None
) -> LogSettings:
    """The log's settings: fixed by the first run that wrote its derived stream (a replay must
    decide and checkpoint as that run did), so asking for others later is an error; None asks
    for the log's own (a new log's defaults)."""
    stored = recorded_settings(log)
    fixed_liquidation, fixed_every = stored if stored is not None else (None, None)
    if fixed_liquidation is not None and liquidation is not None and liquidation != fixed_liquidation:
        raise SettingsConflict(log.root, fixed_liquidation, liquidation)
    if fixed_every is not None and checkpoint_every is not None and checkpoint_every != fixed_every:
        raise ConfigMismatch(
            f"{log.root} was run with a checkpoint every {fixed_every} events; start a new log to use another interval"
        )
    every = fixed_every if fixed_every is not None else checkpoint_every
    return LogSettings(
        fixed_liquidation or liquidation or LiquidationConfig(), DEFAULT_CHECKPOINT_EVERY if every is None else every
    )
