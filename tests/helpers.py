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


def write_variant(tmp_path: Path, base: str, edit, name: str = "variant.toml") -> Path:
    """A copy of a shipped sequence with ``edit(text) -> text`` applied."""
    text = (GICV2_DIR / base).read_text()
    new = edit(text)
    assert new != text, "the edit changed nothing"
    p = tmp_path / name
    p.write_text(new)
    return p


__all__ = ["GICV2", "DEVICES", "GICV2_DIR", "GOLDEN", "shipped", "write_variant"]
