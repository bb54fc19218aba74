"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

from spec.devices import DEVICES, SEQUENCES_DIR
from spec.gicv2 import GICV2
from spec.sequence import Sequence, load

GICV2_DIR = SEQUENCES_DIR / "gicv2"
GOLDEN = Path(__file__).parent / "golden"


def shipped(name: str) -> Sequence:
    return load(GICV2_DIR / name, DEVICES)


def no_held_lines(spec):
    """The model with one more assumption on every state: no interrupt line is held (so
    the latch/line-level conflation of the GICv2 ABI cannot bite)."""
    import dataclasses

    from spec.algebra import bool_and

    def invariant(ops, ctx, scope, f):
        base = spec.invariant(ops, ctx, scope, f)
        if scope != "irq":
            return base
        return bool_and(ops, base, ops.eq(f["line_level"], ops.const(0, 1)))

    return dataclasses.replace(spec, invariant=invariant)


def write_variant(tmp_path: Path, base: str, edit, name: str = "variant.toml") -> Path:
    """A copy of a shipped sequence with ``edit(text) -> text`` applied."""
    text = (GICV2_DIR / base).read_text()
    new = edit(text)
    assert new != text, "the edit changed nothing"
    p = tmp_path / name
    p.write_text(new)
    return p


__all__ = ["GICV2", "DEVICES", "GICV2_DIR", "GOLDEN", "shipped", "write_variant", "no_held_lines"]
