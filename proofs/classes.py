"""Interrupt classes: proving every size at once.

Why one representative per class is enough (the argument the "all configurations" verdict
rests on):

1. Every per-interrupt accessor in a device table reads and writes only its own
   interrupt's fields, the device's global fields, and the access context (kernel
   semantics, CPU count, accessing vCPU, interrupt kind). ``tests/test_spec.py`` checks
   this on the tables (an accessor given one interrupt's fields cannot see another's).
2. So the final state of interrupt *i* after save+restore depends only on its own initial
   fields, the global/CPU fields, and *which accesses touch i with which data*: the
   steps whose words cover i, and the slices of any constant values/masks at i's bit
   position. We call that the signature of i.
3. Two interrupts with the same kind and the same signature therefore behave identically
   up to renaming, for any interrupt count in which both exist (a larger count only adds
   interrupts; words beyond the count are RAZ/WI and touch none below it).
4. Private interrupts exist once per CPU; their accessors depend on the bank's vCPU number
   (targets, SGI sources), so a private representative is taken on every CPU bank.

Proving the round trip for one symbolic representative per signature class, for each CPU
count, is therefore a proof for every interrupt count the device accepts.

vCPU classes (a device with ``vcpu_classes``: GICv3, up to VGIC_V3_MAX_CPUS = 512 vCPUs,
include/kvm/arm_vgic.h):

5. Every per-CPU accessor reads and writes only its own vCPU's fields (interface, banked
   private interrupts), the global fields and the access context; the context tells vCPUs
   apart only by whether the vCPU is the last one (GICR_TYPER.Last) and by its own MPIDR
   affinity (GICR_TYPER's upper word: a constant of that vCPU, the same on source and
   destination, tested by no rule). A step reaches every vCPU alike (``each = "cpu"``, a
   banked register outside a loop) or names one (``vcpu = N``).
6. So in a VM of N vCPUs, the vCPUs other than 0, N - 1 and those the steps name are
   interchangeable: one of them (vCPU 1, or the smallest such) stands for all. A proof
   holding vCPUs {0, 1, named..., N - 1} at N = max_cpus is a proof for every N above the
   counts proved one by one (``cpu_counts``), whose class structure is the same.
   ``tests/test_roundtrip.py`` checks this against every-vCPU encodings.
"""

from __future__ import annotations

from collections import Counter

from spec.device import DeviceSpec, Register
from spec.sequence import Step


def _flatten(steps: tuple[Step, ...] | None) -> list[Step]:
    out: list[Step] = []
    for s in steps or ():
        if s.action == "each":
            out.extend(s.steps)
        else:
            out.append(s)
    return out


def _slice(value: int | None, reg: Register, intid: int) -> int | None:
    if value is None:
        return None
    return (value >> reg.slice_shift(intid)) & ((1 << reg.slice_bits) - 1)


_WALKS: dict[tuple, dict[int, tuple]] = {}


def _strided(spec: DeviceSpec, reg: Register, stride: int, irqs: int, intid: int) -> tuple:
    """The words of ``intid`` a strided walk reaches at interrupt count ``irqs``, with how
    often (a walk with a stride shorter than the register reaches some words twice)."""
    # which of the interrupt's words (its half), not where: two interrupts whose halves
    # the walk reaches alike behave alike. The walk is indexed by interrupt once per
    # (register, stride, count): class_of asks for every interrupt of a count in turn
    key = (id(spec), reg.name, stride, irqs)
    if key not in _WALKS:
        by_irq: dict[int, list[tuple[str, int]]] = {}
        for r, w in spec.strided_words(reg, stride, irqs):
            if r.scope == "irq":
                for i in r.word_irqs(w):
                    by_irq.setdefault(i, []).append((r.name, w - r.word_of(i)))
        _WALKS[key] = {i: tuple(sorted((h, hits.count(h)) for h in set(hits))) for i, hits in by_irq.items()}
    return _WALKS[key].get(intid, ())


def _rows(spec: DeviceSpec, steps: list[Step]) -> list[tuple[int, Step, Register]]:
    """The steps a signature looks at (register accesses), with their registers."""
    return [(n, s, spec.register(s.target)) for n, s in enumerate(steps)
            if s.action not in ("op", "each") and not s.unmapped]


def signature(spec: DeviceSpec, rows: list[tuple[int, Step, Register]], intid: int, irqs: int = 1024) -> tuple:
    """What every step (``_rows``) does to ``intid``. ``irqs``: the interrupt count, which a
    strided walk's reach depends on."""
    sig: list[object] = [spec.interrupt_kind(intid)]
    for n, s, reg in rows:
        if s.stride is not None:
            sig.append((n, "stride", _strided(spec, reg, s.stride, irqs, intid)))
            continue
        if reg.scope != "irq" or not (reg.first_irq <= intid < reg.first_irq + reg.irqs):
            continue
        word = reg.word_of(intid)
        if s.index is not None and word not in s.index:
            continue
        v = s.value
        const = _slice(v.const, reg, intid) if v.kind == "int" else None
        sig.append((n, const, _slice(v.and_mask, reg, intid), _slice(v.or_mask, reg, intid)))
    return tuple(sig)


def size_dependent(spec: DeviceSpec, save: tuple[Step, ...] | None, restore: tuple[Step, ...]) -> bool:
    """Whether the outcome of some step can depend on the interrupt count other than
    through the interrupts it covers: then point 3 above does not hold, and the proof must
    run at every interrupt count, not only the largest.

    Only a register whose *value* depends on the count (``Register.sized``: GICD_TYPER)
    can do that. Source and destination have the same count, so writing or checking such
    a register's saved value unchanged compares a value with itself at every count; any
    other value does not: a constant, ``ones``/``zeros``/``reset``, or the saved value
    through a modifier (``and``/``or``/``shift``), which can agree with the destination's
    value at one count and not at another (``and = 0xfffffffe`` on GICD_TYPER fails only
    where ITLinesNumber is odd)."""
    for s in _flatten(save) + _flatten(restore):
        if s.stride is not None:
            return True  # which interrupts a strided walk reaches depends on the count
        if s.action not in ("write", "check") or s.unmapped or not spec.register(s.target).sized:
            continue
        v = s.value
        if v.kind != "saved" or v.shift or v.and_mask is not None or v.or_mask is not None:
            return True
    return False


_CLASSES: dict[tuple, tuple[DeviceSpec, dict[int, int]]] = {}
_CLASSES_KEPT = 64  # the most recent; a mutation test proves hundreds of files in one process


def class_of(spec: DeviceSpec, save: tuple[Step, ...] | None, restore: tuple[Step, ...],
             max_irqs: int) -> dict[int, int]:
    """Each interrupt of ``range(max_irqs)`` mapped to its class's representative (the
    smallest interrupt with the same signature). A save of None is the ideal save (every
    register, every word): it adds no distinctions.

    Computed once per (device, steps, count) in a process: replay asks for every witness,
    and the compatibility matrix proves one file for many kernels and hosts, which do not
    change the classes. The mapping returned is shared: do not change it."""
    # The classes do not depend on the order of the restore's steps: two interrupts have
    # the same signature when every step treats them alike, and a permutation of the steps
    # permutes both signatures the same way. So the key is the steps as a multiset: the
    # ordering graph replays witnesses through many permutations of one set of steps.
    key = (id(spec), save, frozenset(Counter(restore).items()), max_irqs)
    hit = _CLASSES.get(key)
    if hit is not None and hit[0] is spec:  # the entry keeps spec alive, so its id is not reused
        return hit[1]
    rows = _rows(spec, _flatten(save) + _flatten(restore))
    seen: dict[tuple, int] = {}
    out: dict[int, int] = {}
    # a loop over the interrupts (``each`` of a selector whose domain is "irq") visits them
    # in order, and the last one leaves its selector: no two interrupts are alike then
    by_loop = any(s.action == "each" and spec.selector_domain(s.target) == "irq" for s in (save or ()) + restore)
    for intid in range(max_irqs):
        out[intid] = intid if by_loop else seen.setdefault(signature(spec, rows, intid, max_irqs), intid)
    _CLASSES[key] = (spec, out)
    if len(_CLASSES) > _CLASSES_KEPT:
        del _CLASSES[next(iter(_CLASSES))]
    return out


def representatives(spec: DeviceSpec, save: tuple[Step, ...] | None, restore: tuple[Step, ...],
                    max_irqs: int) -> list[int]:
    """The smallest interrupt of each signature class among ``range(max_irqs)``."""
    return sorted(set(class_of(spec, save, restore, max_irqs).values()))


def named_vcpus(save: tuple[Step, ...] | None, restore: tuple[Step, ...]) -> set[int]:
    """The vCPUs steps name (``vcpu = N``)."""
    return {s.vcpu for s in _flatten(save) + _flatten(restore) if s.vcpu is not None}


def held_vcpus(spec: DeviceSpec, cpus: int, named: set[int]) -> tuple[int, ...] | None:
    """The vCPUs a proof at ``cpus`` vCPUs holds: every one (None) up to the counts proved
    one by one, else 0, the named ones, one generic vCPU and the last (point 6)."""
    if not spec.vcpu_classes or cpus <= explicit_limit(named):
        return None
    named = {v for v in named if v < cpus}
    generic = min(v for v in range(1, cpus) if v not in named)
    return tuple(sorted({0, generic, cpus - 1} | named))


def explicit_limit(named: set[int]) -> int:
    """Up to this vCPU count every vCPU is held: above it the classes are 0, the named
    vCPUs, at least one generic vCPU and the last, whatever the count."""
    return max(3, max(named, default=0) + 2)


def cpu_counts(spec: DeviceSpec, named: set[int], counts: list[int] | None = None) -> list[int]:
    """The vCPU counts a proof over ``counts`` (default: every count the device accepts)
    runs at: each one, or (vCPU classes) each up to ``explicit_limit`` and then the
    largest, which stands for every count above the limit."""
    counts = sorted(counts or range(1, spec.max_cpus + 1))
    if not spec.vcpu_classes:
        return counts
    limit = explicit_limit(named)
    above = [n for n in counts if n > limit]
    return [n for n in counts if n <= limit] + above[-1:]
