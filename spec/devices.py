"""The devices gicproof knows, by the name sequence files use (``device = "gicv2"``), and
where their shipped sequences live."""

from __future__ import annotations

from pathlib import Path

from spec.device import DeviceSpec
from spec.gicv2 import GICV2
from spec.gicv3 import GICV3
from spec.gicv3_its import GICV3_ITS
from spec.gicv5_irs import GICV5_IRS

DEVICES: dict[str, DeviceSpec] = {GICV2.name: GICV2, GICV3.name: GICV3, GICV3_ITS.name: GICV3_ITS,
                               GICV5_IRS.name: GICV5_IRS}

SEQUENCES_DIR = Path(__file__).parent / "sequences"


def shipped_sequences() -> list[Path]:
    """Every shipped sequence file, device by device, in name order."""
    return sorted(SEQUENCES_DIR.glob("*/*.toml"))
