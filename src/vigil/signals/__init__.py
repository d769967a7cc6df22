"""Signal types (hash kinds) and their registry."""

from __future__ import annotations

from vigil.signals.base import Signal, SignalType
from vigil.signals.exact import MD5Signal, SHA1Signal, SHA256Signal
from vigil.signals.pdq import PDQSignal
from vigil.signals.vpdq import VPDQSignal

SIGNAL_TYPES: dict[str, SignalType] = {
    signal.name: signal
    for signal in (MD5Signal(), SHA1Signal(), SHA256Signal(), PDQSignal(), VPDQSignal())
}


def get_signal_type(name: str) -> SignalType:
    """The registered signal type called `name`; KeyError lists the known names."""
    try:
        return SIGNAL_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown signal type {name!r}; known: {', '.join(SIGNAL_TYPES)}") from None


__all__ = ["SIGNAL_TYPES", "Signal", "SignalType", "get_signal_type"]
