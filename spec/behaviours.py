"""The vocabulary of access behaviours.

Two layers, in the manner of PeakRDL's on-write classes:

* *field behaviours*: one named semantic per access kind, each a small pure function of the
  old field value and the written data, e.g. ``write_one_to_set: old | data``. They use only
  the value algebra, so they run on ints and on Z3 terms alike.
* *accessor factories*: bind a field behaviour to a canonical state field and give the
  result a name in the architecture's words (``write_senable``, ``read_raz``), producing the
  ``Accessor`` objects that fill the device tables.

Device-specific behaviours that depend on kernel-version semantics (the pending latch, the
group gate, IIDR) live in the device module next to their table, built from these parts.
"""

from __future__ import annotations

from collections.abc import Callable

from spec.algebra import Ops, Value
from spec.device import Accessor, Effect

ARM_GICV2 = "Arm IHI 0048B (GICv2 architecture specification)"

# ---------------------------------------------------------------------------------------
# Field behaviours: (ops, old, data, width) -> new value of the field.


def write_read_write(ops: Ops, old: Value, data: Value, width: int) -> Value:
    """Read-write: the field takes the written value. (GICv2 4.3: e.g. GICD_IPRIORITYR.)"""
    return data


def write_ignored(ops: Ops, old: Value, data: Value, width: int) -> Value:
    """Read-only / write-ignored: the field keeps its value. (GICv2 1.4.1 "RO", "WI".)"""
    return old


def write_one_to_set(ops: Ops, old: Value, data: Value, width: int) -> Value:
    """Write-1-to-set: ``old | data``. (GICv2 4.3.5 GICD_ISENABLERn: "writing 1 enables".)"""
    return ops.or_(old, data)


def write_one_to_clear(ops: Ops, old: Value, data: Value, width: int) -> Value:
    """Write-1-to-clear: ``old & ~data``. (GICv2 4.3.6 GICD_ICENABLERn: "writing 1 disables".)"""
    return ops.and_(old, ops.not_(data, width))


FIELD_BEHAVIOURS = {
    "read-write": write_read_write,
    "write-ignored": write_ignored,
    "write-1-to-set": write_one_to_set,
    "write-1-to-clear": write_one_to_clear,
}

# ---------------------------------------------------------------------------------------
# Accessor factories.


def read_field(name: str, field: str, source: str, rule: str = "") -> Accessor:
    """Read accessor returning one field unchanged."""

    def fn(ops: Ops, ctx: object, fields: dict[str, Value]) -> Value:
        return fields[field]

    return Accessor(name, "read", fn, source, rule or f"reads {field}")


def read_raz(width: int, source: str, name: str = "read_raz") -> Accessor:
    """Read-as-zero. (GICv2 1.4.1 "RAZ".)"""

    def fn(ops: Ops, ctx: object, fields: dict[str, Value]) -> Value:
        return ops.const(0, width)

    return Accessor(name, "read", fn, source, "reads as zero")


def write_wi(source: str, name: str = "write_wi") -> Accessor:
    """Write-ignored: no effect, no error. (GICv2 1.4.1 "WI".)"""

    def fn(ops: Ops, ctx: object, fields: dict[str, Value], data: Value) -> Effect:
        return Effect({})

    return Accessor(name, "write", fn, source, "writes are ignored")


def write_field(
    name: str,
    field: str,
    behaviour: Callable[[Ops, Value, Value, int], Value],
    width: int,
    source: str,
    rule: str = "",
) -> Accessor:
    """Write accessor applying one field behaviour to one field."""

    def fn(ops: Ops, ctx: object, fields: dict[str, Value], data: Value) -> Effect:
        return Effect({field: behaviour(ops, fields[field], data, width)})

    return Accessor(name, "write", fn, source, rule or f"{behaviour.__name__} on {field}")


def read_const(name: str, value_of: Callable[[object], int], width: int, source: str, rule: str) -> Accessor:
    """Read accessor returning a value computed from the configuration or host
    (ID registers: GICD_TYPER, GICD_IIDR)."""

    def fn(ops: Ops, ctx: object, fields: dict[str, Value]) -> Value:
        return ops.const(value_of(ctx), width)

    return Accessor(name, "read", fn, source, rule)
