"""The interpreter: a device spec's state machine over a value backend.

A ``Machine`` holds a ``DeviceState`` (global fields, one field map per CPU interface, one
per interrupt) and performs register accesses exactly as the table's accessors say. It
runs on the concrete backend (ints) and on the symbolic one (Z3) without change.

Per-interrupt registers are handled slice by slice: a 32-bit word of GICD_ISENABLER is the
concatenation of 32 one-bit slices, each belonging to one interrupt, and every accessor
sees one interrupt's fields and its slice. A machine may therefore hold only *some*
interrupts (``Config.intids``), the representatives the proofs use; words then carry only
the slices of the interrupts present.

Sequences run as a list of *accesses* (one register word on one CPU bank, or one
operation), expanded from the file's steps by ``expand``.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from spec.algebra import Ops, Value, mask
from spec.device import (
    ENVIRONMENT,
    RESTORE_MEMORY,
    SAVE_MEMORY,
    AccessContext,
    DeviceSpec,
    Effect,
    Register,
    errno_of,
)
from spec.sequence import Condition, Step, ValueSpec

SPI_BANK = -1

IrqKey = tuple[int, int]  # (bank, intid): bank = owning CPU for private interrupts, -1 for SPIs


@dataclass(frozen=True)
class Config:
    """The size of a VM: CPUs and interrupts; ``intids`` restricts which interrupts the
    machine holds (None = all of ``range(irqs)``)."""

    cpus: int
    irqs: int
    intids: tuple[int, ...] | None = None
    # the vCPUs the machine holds, ascending (None = every one of range(cpus)): one per
    # vCPU class (proofs/classes.py, "vCPU classes"), when a device allows that
    vcpus: tuple[int, ...] | None = None

    def present(self, intid: int) -> bool:
        return intid < self.irqs and (self.intids is None or intid in self._intid_set)

    def any_present(self, intids: range) -> bool:
        """Whether the machine holds any interrupt of ``intids`` (a register word's):
        asked for every word a restore expands, so by bisection, not interrupt by
        interrupt (an ordering graph expands millions of words)."""
        lo, hi = intids.start, min(intids.stop, self.irqs)
        if lo >= hi:
            return False
        if self.intids is None:
            return True
        i = bisect_left(self._intid_sorted, lo)
        return i < len(self._intid_sorted) and self._intid_sorted[i] < hi

    @cached_property
    def _intid_set(self) -> frozenset[int]:
        return frozenset(self.intids or ())

    @cached_property
    def _intid_sorted(self) -> tuple[int, ...]:
        return tuple(sorted(self.intids or ()))

    @property
    def held(self) -> tuple[int, ...]:
        return self.vcpus if self.vcpus is not None else tuple(range(self.cpus))

    def describe(self) -> str:
        held = "" if self.vcpus is None else \
            f" (vCPUs {', '.join(map(str, self.vcpus))}: one per class)"
        return f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}{held}, {self.irqs} interrupts"


class CpuFields(list):
    """The CPU interfaces' fields, in the order of the vCPUs held, indexed by vCPU number:
    ``cpu[511]`` is vCPU 511's fields when the machine holds one vCPU per class (0, 1 and
    511), and ``cpu[c]`` is position c when it holds every vCPU. Iteration gives the fields
    in order; ``ids`` the vCPU numbers; ``items()`` both."""

    def __init__(self, fields: Iterable[dict[str, Value]], ids: Iterable[int] | None = None):
        super().__init__(fields)
        self.ids = tuple(ids) if ids is not None else tuple(range(len(self)))
        self._pos = None if self.ids == tuple(range(len(self))) else {v: i for i, v in enumerate(self.ids)}

    def __getitem__(self, k: Any) -> Any:
        if self._pos is not None and isinstance(k, int):
            k = self._pos[k]
        return super().__getitem__(k)

    def __setitem__(self, k: Any, v: Any) -> None:
        if self._pos is not None and isinstance(k, int):
            k = self._pos[k]
        super().__setitem__(k, v)

    def items(self) -> Iterable[tuple[int, dict[str, Value]]]:
        return zip(self.ids, self, strict=True)


@dataclass
class DeviceState:
    glob: dict[str, Value]
    cpu: CpuFields
    irq: dict[IrqKey, dict[str, Value]]

    def copy(self) -> DeviceState:
        return DeviceState(dict(self.glob), CpuFields((dict(c) for c in self.cpu), self.cpu.ids),
                           {k: dict(v) for k, v in self.irq.items()})


def irq_keys(spec: DeviceSpec, config: Config) -> list[IrqKey]:
    keys: list[IrqKey] = []
    ids = config.intids if config.intids is not None else range(config.irqs)
    for intid in sorted(ids):
        if intid >= config.irqs:
            continue
        if intid < spec.private_irqs:
            keys.extend((cpu, intid) for cpu in config.held)
        else:
            keys.append((SPI_BANK, intid))
    return keys


def bank_of(spec: DeviceSpec, intid: int, vcpu: int) -> int:
    return vcpu if intid < spec.private_irqs else SPI_BANK


def make_state(spec: DeviceSpec, semantics: Any, config: Config, ops: Ops,
               field_value: Callable[[str, Any, str, int], Value] | None = None,
               host: Any = None) -> DeviceState:
    """A state whose fields come from ``field_value(scope, key, field, width)``, or the
    device's reset values when it is None (a freshly initialised device)."""

    def scope_fields(scope: str, key: Any, ctx: AccessContext) -> dict[str, Value]:
        reset = spec.reset(ops, ctx, scope)
        if field_value is None:
            return reset
        return {name: field_value(scope, key, name, spec.field_spec(name).width) for name in reset}

    glob_ctx = _ctx(spec, semantics, config, 0, {}, host)
    glob = scope_fields("global", None, glob_ctx)
    cpus = CpuFields((scope_fields("cpu", c, _ctx(spec, semantics, config, c, glob, host)) for c in config.held),
                     config.held)
    irqs = {}
    for key in irq_keys(spec, config):
        bank, intid = key
        ctx = _ctx(spec, semantics, config, max(bank, 0), glob, host, intid)
        irqs[key] = scope_fields("irq", key, ctx)
    return DeviceState(glob, cpus, irqs)


def _ctx(spec: DeviceSpec, semantics: Any, config: Config, vcpu: int, glob: dict[str, Value],
         host: Any, intid: int = -1, user: bool = True, half: int = 0) -> AccessContext:
    return AccessContext(semantics=semantics, cpus=config.cpus, irqs=config.irqs, vcpu=vcpu, vcpus=config.held,
                         intid=intid, kind=spec.interrupt_kind(intid) if intid >= 0 else "",
                         device=glob, host=host, user=user, half=half)


# A word read from / written to a register: a scalar value, or {intid: slice} for an
# irq-scope register (only the interrupts present in the machine).
Word = Any


class Machine:
    """A device instance: ``spec`` + kernel ``semantics`` + ``config`` over ``ops``."""

    def __init__(self, spec: DeviceSpec, semantics: Any, config: Config, ops: Ops,
                 state: DeviceState, host: Any = None):
        self.spec = spec
        self.semantics = semantics
        self.config = config
        self.ops = ops
        self.state = state
        self.host = host
        self._ctx_cache: dict[tuple[int, int, bool, int], AccessContext] = {}
        self._word_keys_cache: dict[tuple[str, int, int], list[tuple[IrqKey, int]]] = {}
        self._word_keys_state: Any = state.irq

    # -- contexts and invariants ------------------------------------------------------
    def ctx(self, vcpu: int, intid: int = -1, user: bool = True, half: int = 0) -> AccessContext:
        # contexts are immutable and refer to the (mutable) global field map, so one per
        # (vcpu, intid, user, half) serves the machine's whole life
        key = (vcpu, intid, user, half)
        c = self._ctx_cache.get(key)
        if c is None or c.device is not self.state.glob:
            c = _ctx(self.spec, self.semantics, self.config, vcpu, self.state.glob, self.host, intid, user, half)
            self._ctx_cache[key] = c
        return c

    def invariant(self) -> Value:
        ops = self.ops
        conds = [self.spec.invariant(ops, self.ctx(0), "global", self.state.glob)]
        conds += [self.spec.invariant(ops, self.ctx(c), "cpu", f) for c, f in self.state.cpu.items()]
        for (bank, intid), f in self.state.irq.items():
            conds.append(self.spec.invariant(ops, self.ctx(max(bank, 0), intid), "irq", f))
        if self.spec.cross_invariant is not None:
            conds += [c for _, c in self.spec.cross_invariant(ops, self.ctx(0), self.state.glob, self.state.cpu)]
        out = ops.const(1, 1)
        for c in conds:
            out = ops.and_(out, c)
        return out

    # -- register access ------------------------------------------------------------------
    def word_keys(self, reg: Register, word: int, vcpu: int) -> list[tuple[IrqKey, int]]:
        # the machine's interrupts never change after make_state, so the interrupts of a
        # word are computed once per (register, word, vCPU): every access asks for them
        ck = (reg.name, word, vcpu)
        got = self._word_keys_cache.get(ck)
        if got is not None and self._word_keys_state is self.state.irq:
            return got
        if self._word_keys_state is not self.state.irq:
            self._word_keys_cache.clear()
            self._word_keys_state = self.state.irq
        out = []
        for intid in reg.word_irqs(word):
            if not self.config.present(intid):
                continue
            key = (bank_of(self.spec, intid, vcpu), intid)
            if key in self.state.irq:
                out.append((key, intid))
        self._word_keys_cache[ck] = out
        return out

    def scope_fields(self, reg: Register, vcpu: int) -> dict[str, Value]:
        return self.state.glob if reg.scope == "global" else self.state.cpu[vcpu]

    def selected(self, reg: Register) -> list[tuple[Value, AccessContext, dict[str, Value]]]:
        """A selector-indexed register's instances (``Register.selects``): for each vCPU or
        shared interrupt held, (selected: 1 bit, its context, its fields)."""
        ops = self.ops
        sel = self.state.glob[reg.selected_by]
        width = self.spec.field_spec(reg.selected_by).width
        out = []
        if reg.selects == "cpu":
            for c, f in self.state.cpu.items():
                out.append((ops.eq(sel, ops.const(c, width)), self.ctx(c), f))
        else:
            for (bank, intid), f in self.state.irq.items():
                if bank == SPI_BANK:
                    out.append((ops.eq(sel, ops.const(intid, width)), self.ctx(0, intid), f))
        return out

    def read(self, reg: Register, word: int, vcpu: int, user: bool = True) -> Word:
        acc = reg.user_read if user else reg.guest_read
        half = reg.word_half(word)
        if reg.selects:
            # none selected (an invalid selector, or one naming no instance): reads 0
            out = self.ops.const(0, reg.width)
            for hit, ctx, f in self.selected(reg):
                out = self.ops.ite(hit, acc.fn(self.ops, ctx, f), out)
            return out
        if reg.scope == "irq":
            return {intid: acc.fn(self.ops, self.ctx(vcpu, intid, user, half), self.state.irq[key])
                    for key, intid in self.word_keys(reg, word, vcpu)}
        return acc.fn(self.ops, self.ctx(vcpu, -1, user, half), self.scope_fields(reg, vcpu))

    def read_error(self, reg: Register, word: int, vcpu: int, user: bool = True) -> tuple[Value, str]:
        """Whether the kernel refuses this read (1 bit), and its errno: a read accessor with an
        ``error`` (an ICC_AP1R<n>_EL1 beyond vgic_v3_max_apr_idx()); 0 for every other read."""
        acc = reg.user_read if user else reg.guest_read
        ops = self.ops
        if acc.error is None:
            return ops.const(0, 1), ""
        half = reg.word_half(word)
        if reg.selects:
            err = ops.const(0, 1)
            for hit, ctx, f in self.selected(reg):
                err = ops.or_(err, ops.and_(hit, acc.error(ops, ctx, f)))
            return err, acc.errno
        if reg.scope == "irq":
            err = ops.const(0, 1)
            for key, intid in self.word_keys(reg, word, vcpu):
                err = ops.or_(err, acc.error(ops, self.ctx(vcpu, intid, user, half), self.state.irq[key]))
            return err, acc.errno
        return acc.error(ops, self.ctx(vcpu, -1, user, half), self.scope_fields(reg, vcpu)), acc.errno

    def write(self, reg: Register, word: int, vcpu: int, data: Word, user: bool = True,
              guard: Value | None = None) -> tuple[Value, str]:
        """Write ``data``; returns (error condition, errno). A failing write changes nothing,
        nor does one whose ``guard`` (a step's condition, 1 bit) is 0; the returned error
        is the write's own (the caller ands it with the guard)."""
        acc = reg.user_write if user else reg.guest_write
        ops = self.ops
        error = ops.const(0, 1)
        errno = ""
        half = reg.word_half(word)
        if reg.selects:
            # the selected instance only (guarded by 'selected'); none selected: ignored
            for hit, ctx, f in self.selected(reg):
                eff = acc.fn(ops, ctx, f, data)
                g = hit if guard is None else ops.and_(hit, guard)
                self._apply(f, eff, g)
                if eff.error is not None:
                    error, errno = ops.or_(error, ops.and_(hit, eff.error)), eff.errno
            return error, errno
        if reg.scope == "irq":
            for key, intid in self.word_keys(reg, word, vcpu):
                if intid not in data:
                    continue
                eff = acc.fn(ops, self.ctx(vcpu, intid, user, half), self.state.irq[key], data[intid])
                self._apply(self.state.irq[key], eff, guard)
                if eff.error is not None:
                    error, errno = ops.or_(error, eff.error), eff.errno
            return error, errno
        fields = self.scope_fields(reg, vcpu)
        eff = acc.fn(ops, self.ctx(vcpu, -1, user, half), fields, data)
        target = self.state.glob if reg.scope == "global" else fields
        # a scalar accessor may update global fields (GICD_IIDR sets the group gate)
        updates = {k: v for k, v in eff.updates.items() if k in target}
        glob_updates = {k: v for k, v in eff.updates.items() if k not in target and k in self.state.glob}
        self._apply(target, Effect(updates, eff.error, eff.errno, eff.kept), guard)
        if glob_updates:
            self._apply(self.state.glob, Effect(glob_updates, eff.error, eff.errno, eff.kept), guard)
        if eff.error is not None:
            error, errno = eff.error, eff.errno if ops.symbolic else errno_of(eff)
        return error, errno

    def _apply(self, fields: dict[str, Value], eff: Effect, guard: Value | None = None) -> None:
        ops = self.ops
        for name, new in eff.updates.items():
            if name not in fields:
                continue  # a field this interrupt kind does not have
            old = eff.kept.get(name, fields[name])
            value = new if eff.error is None else ops.ite(eff.error, old, new)
            fields[name] = value if guard is None else ops.ite(guard, value, fields[name])

    def operation(self, name: str, vcpu: int = 0) -> tuple[Value, str]:
        op = self.spec.operation(name)
        if op.kind != "device":
            raise ValueError(f"{name} is a memory step: run_save / run_restore perform it")
        if op.cpus:
            eff = op.fn(self.ops, self.ctx(vcpu), self.state.glob, self.state.cpu)
        else:
            eff = op.fn(self.ops, self.ctx(vcpu), self.state.glob)
        self._apply(self.state.glob, eff)
        # on concrete values, the errno of the first check that fails (as for a write)
        errno = eff.errno if self.ops.symbolic else errno_of(eff)
        return (eff.error if eff.error is not None else self.ops.const(0, 1)), errno

    # -- guest memory ----------------------------------------------------------------------
    def memory(self) -> dict[tuple[str, Any, str], Value]:
        """Every field held in guest memory, as (scope, key, field) -> value."""
        mem = {f.name for f in self.spec.fields if f.memory}
        out: dict[tuple[str, Any, str], Value] = {}
        for name in mem:
            if name in self.state.glob:
                out[("global", None, name)] = self.state.glob[name]
        for c, fields in self.state.cpu.items():
            for name in mem & fields.keys():
                out[("cpu", c, name)] = fields[name]
        for key, fields in self.state.irq.items():
            for name in mem & fields.keys():
                out[("irq", key, name)] = fields[name]
        return out

    def load_memory(self, image: dict[tuple[str, Any, str], Value]) -> None:
        for (scope, key, name), v in image.items():
            target = self.state.glob if scope == "global" else (
                self.state.cpu[key] if scope == "cpu" else self.state.irq[key])
            target[name] = v

    # -- word-level helpers for concrete callers (guest fuzzing, reports) ----------------
    def read_word(self, reg: Register, word: int, vcpu: int, user: bool = True) -> int:
        val = self.read(reg, word, vcpu, user)
        if reg.scope != "irq":
            return int(val)
        out = 0
        for intid, s in val.items():
            out |= int(s) << reg.slice_shift(intid)
        return out

    def write_word(self, reg: Register, word: int, vcpu: int, value: int, user: bool = True) -> tuple[Value, str]:
        if reg.scope != "irq":
            return self.write(reg, word, vcpu, value & mask(reg.width), user)
        data = {intid: (value >> reg.slice_shift(intid)) & mask(reg.slice_bits)
                for _, intid in self.word_keys(reg, word, vcpu)}
        return self.write(reg, word, vcpu, data, user)


# ---------------------------------------------------------------------------------------
# Sequences: expansion into accesses, save and restore.


@dataclass(frozen=True)
class Access:
    """One step of a run: a register word on a CPU bank, or an operation.

    ``vcpu`` is the CPU the access goes to (its bank or interface); ``slot`` is the CPU
    whose saved value it reads or stores: the same, except for a step with ``vcpu = N``
    inside an ``each = "cpu"`` block, which sends every CPU's value to CPU N. A step
    naming an offset where the device has no register has ``register`` None."""

    number: int  # position in the expanded run (1-based)
    step: Step
    action: str  # read | write | check | op
    register: Register | None
    word: int
    vcpu: int
    slot: int = -1
    # the number of the enclosing each loop's instance (its vCPU, or its interrupt for a
    # loop over interrupts): what ``value = "index"`` writes; -1 outside a loop
    index: int = -1

    @property
    def saved_cpu(self) -> int:
        return self.vcpu if self.slot < 0 else self.slot

    @property
    def name(self) -> str:
        """The register (or operation, or unmapped offset) the access names."""
        if self.register is not None:
            return self.register.name
        return self.step.target if self.action == "op" else self.step.shown_target

    def label(self, spec: DeviceSpec) -> str:
        if self.action == "op":
            return self.step.target
        reg = self.register
        if reg is None:
            verb = {"write": "write", "check": "check", "read": "read"}[self.action]
            return f"{verb} {self.step.shown_target} cpu{self.vcpu}"
        where = ""
        if reg.scope == "cpu" or (reg.scope == "irq" and reg.word_irqs(self.word).start < spec.private_irqs):
            where = f" cpu{self.vcpu}"
        word = f"[{self.word}]" if reg.words > 1 else ""
        if reg.scope != "irq" and reg.words == 2:
            word = "[63:32]" if self.word else "[31:0]"
        verb = {"write": "write", "check": "check", "read": "read"}[self.action]
        val = ""
        if self.action in ("write", "check"):
            val = f" = {self.step.value.describe()}"
        when = f" ({self.step.when.describe()})" if self.step.when is not None else ""
        return f"{verb} {reg.name}{word}{where}{val}{when}"


_PRESENT_WORDS: dict[tuple[Any, ...], list[int]] = {}


def _present_words(reg: Register, config: Config) -> list[int]:
    """The words of an irq-scope register holding any of the machine's interrupts, once per
    (register shape, configuration): every expansion of a restore asks for them."""
    key = (reg.name, reg.offset, reg.words, reg.first_irq, reg.irqs, reg.bits_per_irq, config)
    got = _PRESENT_WORDS.get(key)
    if got is None:
        got = [w for w in range(reg.words) if config.any_present(reg.word_irqs(w))]
        if len(_PRESENT_WORDS) > 100_000:
            _PRESENT_WORDS.clear()
        _PRESENT_WORDS[key] = got
    return list(got)


def expand(spec: DeviceSpec, steps: Iterable[Step], config: Config) -> list[Access]:
    """Expand steps into accesses: every word of a register array (or the ``index``
    words), banked words once per CPU (DESIGN.md: a banked register named outside an
    ``each = "cpu"`` block is applied to every CPU in turn), ``each`` blocks per CPU.
    Words wholly beyond the configured interrupts are skipped (the kernel's check_region
    makes them RAZ/WI), as are words holding none of the machine's interrupts."""
    out: list[Access] = []

    def words_of(reg: Register, step: Step) -> list[int]:
        idx = step.index if step.index is not None else range(reg.words)
        if reg.scope != "irq":
            # a 64-bit register: both halves, low first (as QEMU writes GICR_PROPBASER)
            return [w for w in idx if w < reg.words]
        if step.index is None:
            return _present_words(reg, config)
        return [w for w in idx if w < reg.words and config.any_present(reg.word_irqs(w))]

    def emit(step: Step, cpu: int | None, index: int = -1) -> None:
        if step.action == "each":
            if spec.selector_domain(step.target) == "irq":
                # a loop over the shared interrupts held (IRS_SPI_SELR's IDs): the accesses
                # go to vCPU 0; each interrupt's values are saved apart (slot: its number)
                ids = config.intids if config.intids is not None else range(config.irqs)
                for i in sorted(i for i in ids if spec.private_irqs <= i < config.irqs):
                    for inner in step.steps:
                        emit_one(inner, None, i, i)
                return
            for c in config.held:
                for inner in step.steps:
                    emit(inner, c, c)
            return
        emit_one(step, cpu, index, -1)

    def emit_one(step: Step, cpu: int | None, index: int, slot: int) -> None:
        if step.action == "op":
            out.append(Access(len(out) + 1, step, "op", None, 0, cpu or 0, index=index))
            return
        if slot >= 0:
            reg = spec.register(step.target)
            target = step.vcpu if step.vcpu is not None else 0
            for w in words_of(reg, step):
                out.append(Access(len(out) + 1, step, step.action, reg, w, target, slot, index=index))
            return
        if step.unmapped:
            # no register at that offset: one access, read-as-zero / write-ignored
            target = step.vcpu if step.vcpu is not None else (cpu or 0)
            out.append(Access(len(out) + 1, step, step.action, unmapped_register(step), 0, target,
                              cpu if cpu is not None else target, index=index))
            return
        reg = spec.register(step.target)
        if step.stride is not None:
            # a VMM's own walk (QEMU's GICD_IROUTER loop): whatever words its offsets reach,
            # each one access, in the VMM's order
            for r, w in spec.strided_words(reg, step.stride, config.irqs):
                if r.scope == "irq" and not config.any_present(r.word_irqs(w)):
                    continue
                target = step.vcpu if step.vcpu is not None else (cpu or 0)
                out.append(Access(len(out) + 1, step, step.action, r, w, target,
                                  cpu if cpu is not None else target, index=index))
            return
        for w in words_of(reg, step):
            banked = reg.scope == "cpu" or (reg.scope == "irq" and reg.word_irqs(w).start < spec.private_irqs)
            if step.vcpu is not None:
                # 'vcpu = N': to CPU N's bank or interface whatever the loop; the value is
                # the loop CPU's (a VMM that computes the CPU field wrongly)
                slots = [cpu] if cpu is not None else [step.vcpu]
                for c in slots:
                    out.append(Access(len(out) + 1, step, step.action, reg, w, step.vcpu, c, index=index))
                continue
            cpus = [cpu] if (cpu is not None) else (config.held if banked else [0])
            for c in cpus:
                out.append(Access(len(out) + 1, step, step.action, reg, w, c, index=index))

    for s in steps:
        emit(s, None)
    return out


def ideal_save_steps(spec: DeviceSpec) -> tuple[Step, ...]:
    """The device's ideal save (DESIGN.md): read every register of the table (a device
    with tables in guest memory says its own: flush them, save the memory, then read)."""
    steps = tuple(spec.ideal_save) if spec.ideal_save is not None else \
        tuple(Step(0, "read", r.name) for r in spec.registers)
    return tuple(if_it_exists(spec, s) for s in steps)


def if_it_exists(spec: DeviceSpec, step: Step) -> Step:
    """The ideal save reads, and the ordering graph's interface writes, a register the
    kernel may refuse (ICC_AP0R1_EL1 beyond vgic_v3_max_apr_idx()) only where the kernel
    has it: a VMM that knows the device accesses every register that exists, and no more.
    The register exists where its read is not refused (vgic_v3_max_apr_idx guards the
    read and the write alike)."""
    if step.action == "each":
        return dataclasses.replace(step, steps=tuple(if_it_exists(spec, s) for s in step.steps))
    if step.action in ("read", "write") and step.target and step.when is None and \
            spec.register(step.target).user_read.error is not None and spec.register(step.target).user_read.absent:
        return dataclasses.replace(step, when=Condition("exists"))
    return step


SavedKey = tuple[str, int, int]  # (register, word, bank)


def access_error(machine: Machine, acc: Access) -> tuple[Any, str] | None:
    """The failure the kernel gives an access before looking at the register, if any:
    a vCPU that does not exist (vgic_v2_parse_attr: 'if (cpuid >= online_vcpus) return
    -EINVAL'; the oracle sees EINVAL for vCPU index 2 of 2 on every kernel)."""
    if acc.action == "op":
        return None
    if acc.vcpu >= machine.config.cpus:
        return machine.ops.const(1, 1), "EINVAL"
    return None


_UNMAPPED_SOURCE = ("arch/arm64/kvm/vgic/vgic-mmio.c: vgic_uaccess_read 'if (!region) { *val = 0; "
                    "return 0; }' and vgic_uaccess_write (no region: nothing done, success); seen on "
                    "Debian 5.10.223 and 7.2.13 by the oracle (only KVM_HAS_DEVICE_ATTR says ENXIO)")


def unmapped_register(step: Step) -> Register:
    """What the kernel does at an offset where the device has no register: reads as zero,
    writes ignored, no error."""
    from spec.behaviours import read_raz, write_wi

    rd, wr = read_raz(32, _UNMAPPED_SOURCE), write_wi(_UNMAPPED_SOURCE)
    return Register(step.shown_target, step.group, step.offset or 0, 1, "global", (), rd, wr, rd, wr,
                    doc="no register at this offset")


def saved_key(spec: DeviceSpec, reg: Register, word: int, vcpu: int) -> SavedKey:
    if reg.selects:
        # one value per loop instance (each = "pe": IRS_PE_CR0 per vCPU), else one
        return (reg.name, word, vcpu)
    if reg.scope == "global":
        return (reg.name, word, SPI_BANK)
    if reg.scope == "cpu":
        return (reg.name, word, vcpu)
    banked = reg.word_irqs(word).start < spec.private_irqs
    return (reg.name, word, vcpu if banked else SPI_BANK)


@dataclass
class SaveResult:
    saved: dict[SavedKey, Word]
    failed: Value  # 1-bit: some save step failed (a save-side check, or an access error)
    outcomes: list[StepOutcome] = field(default_factory=list)
    stopped_at: Access | None = None  # concrete runs stop at the first failure


def run_save_checked(machine: Machine, steps: Iterable[Step], accesses: list[Access] | None = None) -> SaveResult:
    """Run the save side: every read stores the word it read (userspace semantics); a
    save-side ``check`` compares the word read with its value, and a mismatch aborts
    the save (the VMM refuses to migrate), as does a read the kernel refuses.
    ``accesses``: the steps already expanded (``expand``)."""
    ops = machine.ops
    saved: dict[SavedKey, Word] = {}
    result = SaveResult(saved, ops.const(0, 1))
    for acc in accesses if accesses is not None else expand(machine.spec, steps, machine.config):
        guard, guard_err, guard_errno, tested = _condition(machine, acc, saved)
        skipped = guard is not None and not ops.symbolic and not int(guard)
        if acc.action == "op":
            err, errno = _memory_or_operation(machine, acc, saved, "save")
        elif (pre := access_error(machine, acc)) is not None:
            err, errno = pre
        elif skipped:
            # the condition does not hold: no access; the value saved before stays
            assert acc.register is not None
            key = saved_key(machine.spec, acc.register, acc.word, acc.saved_cpu)
            saved[key] = saved.get(key, _zero_word(machine, acc))
            err, errno = ops.const(0, 1), ""
        elif acc.action == "write":
            # a save-side write: a selector (IRS_PE_SELR) set before its data register is read
            assert acc.register is not None
            err, errno = machine.write(acc.register, acc.word, acc.vcpu, step_value(machine, acc, saved),
                                       guard=guard)
        else:
            assert acc.register is not None
            got = machine.read(acc.register, acc.word, acc.vcpu)
            read_err, read_errno = machine.read_error(acc.register, acc.word, acc.vcpu)
            key = saved_key(machine.spec, acc.register, acc.word, acc.saved_cpu)
            if guard is not None:
                got = _guarded_word(ops, guard, got, saved.get(key, _zero_word(machine, acc)))
            saved[key] = got
            if acc.action == "check":
                err, errno = _compare(machine, acc, got, step_value(machine, acc, saved)), "save-side check failed (the VMM refuses to save)"
            else:
                err, errno = ops.const(0, 1), ""
            err, errno = _or_read_error(ops, read_err, read_errno, err, errno)
        err, errno = _guarded_error(ops, guard, guard_err, guard_errno, err, errno)
        if acc.action == "op" and acc.step.on_error == "continue":
            err = ops.const(0, 1)  # failed, changed nothing, and the VMM went on
        bits = int(tested) if tested is not None and not ops.symbolic else None
        result.outcomes.append(StepOutcome(acc, err, errno, bits, skipped))
        result.failed = ops.or_(result.failed, err)
        if not ops.symbolic and err:
            result.stopped_at = acc
            break
    return result


def step_condition(machine: Machine, acc: Access, saved: dict[SavedKey, Word]) -> tuple[Value | None, Value, str]:
    """A step's condition at this access (``Step.when``): (holds, error, errno), holds None
    for a step without one. ``error`` is a condition's own read failing (``read``: the VMM
    reads the register first, and aborts if the kernel refuses)."""
    holds, err, errno, _ = _condition(machine, acc, saved)
    return holds, err, errno


def _condition(machine: Machine, acc: Access, saved: dict[SavedKey, Word]) -> tuple[Value | None, Value, str, Value | None]:
    """``step_condition`` and the bits it tested (None for ``exists``)."""
    ops = machine.ops
    cond: Condition | None = acc.step.when
    no = ops.const(0, 1)
    if cond is None or acc.action == "op":
        return None, no, "", None
    if cond.source == "exists":
        assert acc.register is not None
        err, _ = machine.read_error(acc.register, acc.word, acc.vcpu)
        return ops.not_(err, 1), no, "", None
    reg = machine.spec.register(cond.register)
    word = cond.lo // reg.width if reg.words > 1 else 0
    hi, lo = cond.hi - word * reg.width, cond.lo - word * reg.width
    err, errno = no, ""
    if cond.source == "saved":
        key = saved_key(machine.spec, reg, word, acc.saved_cpu)
        if key not in saved:
            raise MissingSaved(acc.step, reg.name, f"the step's condition tests the saved value of {reg.name}, "
                                                   "but the save has not read it (by this step)")
        value = saved[key]
    else:
        value = machine.read(reg, word, acc.vcpu)
        err, errno = machine.read_error(reg, word, acc.vcpu)
    bits = ops.extract(value, hi, lo)
    holds = no
    for v in cond.values:
        holds = ops.or_(holds, ops.eq(bits, ops.const(v, hi - lo + 1)))
    return holds, err, errno, bits


def _guarded_error(ops: Ops, guard: Value | None, guard_err: Value, guard_errno: str,
                   err: Value, errno: str) -> tuple[Value, str]:
    """A conditional step fails when its condition holds and its access fails, or when the
    condition's own read fails (before anything else happens)."""
    if guard is None:
        return err, errno
    return _or_read_error(ops, guard_err, guard_errno, ops.and_(guard, err), errno)


def _zero_word(machine: Machine, acc: Access) -> Word:
    """What a VMM holds for a register it has not read: zero (QEMU's state struct is zeroed
    at reset: arm_gicv3_icc_reset 'memset(c->icc_apr, 0, sizeof(c->icc_apr))')."""
    reg = acc.register
    assert reg is not None
    ops = machine.ops
    if reg.scope == "irq":
        return {intid: ops.const(0, reg.slice_bits) for _, intid in machine.word_keys(reg, acc.word, acc.vcpu)}
    return ops.const(0, reg.width)


def _guarded_word(ops: Ops, guard: Value, new: Word, old: Word) -> Word:
    if isinstance(new, dict):
        return {i: ops.ite(guard, s, old[i]) for i, s in new.items()}
    return ops.ite(guard, new, old)


def _or_read_error(ops: Ops, read_err: Value, read_errno: str, err: Value, errno: str) -> tuple[Value, str]:
    """A step's failure when its read may fail too: the read's errno wins (the kernel
    returned it before the VMM could compare anything)."""
    if read_errno == "":
        return err, errno
    if not ops.symbolic:
        return (read_err, read_errno) if int(read_err) else (err, errno)
    return ops.or_(read_err, err), read_errno


def run_save(machine: Machine, steps: Iterable[Step]) -> dict[SavedKey, Word]:
    """The saved words of ``run_save_checked`` (callers that need no save failures)."""
    return run_save_checked(machine, steps).saved


def _compare(machine: Machine, acc: Access, got: Word, want: Word) -> Value:
    """1 when the word read differs from the expected one."""
    ops = machine.ops
    if acc.register is not None and acc.register.scope == "irq":
        same = ops.const(1, 1)
        for intid, s in got.items():
            same = ops.and_(same, ops.eq(s, want[intid]))
    else:
        same = ops.eq(got, want)
    return ops.not_(same, 1)


MEMORY_KEY: SavedKey = ("<guest memory>", 0, SPI_BANK)  # the RAM image in the stream


def _memory_or_operation(machine: Machine, acc: Access, saved: dict[SavedKey, Word],
                         side: str) -> tuple[Value, str]:
    """An operation step: the engine's memory steps, or the device's operation. Saving
    memory puts the guest's RAM into the stream; restoring it on the save side is
    meaningless, and restoring it on the destination needs it saved."""
    op = machine.spec.operation(acc.step.target)
    ok = machine.ops.const(0, 1)
    if op.kind == SAVE_MEMORY:
        saved[MEMORY_KEY] = machine.memory()
        return ok, ""
    if op.kind == RESTORE_MEMORY:
        if side == "save":
            raise MissingSaved(acc.step, "guest memory", "restore_memory is a destination step")
        if MEMORY_KEY not in saved:
            raise MissingSaved(acc.step, "guest memory")
        machine.load_memory(saved[MEMORY_KEY])
        return ok, ""
    return machine.operation(acc.step.target, acc.vcpu)


class MissingSaved(Exception):
    def __init__(self, step: Step, register: str, why: str = ""):
        if register == "guest memory" and not why:
            why = "the restore loads the saved guest memory, but the save has no save_memory step"
        super().__init__(f"line {step.line}: " + (why or f"the restore writes the saved value of {register}, "
                                                   "but the save does not read it"))
        self.step = step


def lookup_saved(machine: Machine, acc: Access, saved: dict[SavedKey, Word]) -> Word:
    """The saved word for an access. A set/clear pair reads the same state through both
    views (the table checks their read accessors are the same), so a save that read one
    view serves a restore of the other: QEMU reads GICD_CPENDSGIR and writes
    GICD_SPENDSGIR (kvm_arm_gic_get/put)."""
    reg = acc.register
    assert reg is not None
    key = saved_key(machine.spec, reg, acc.word, acc.saved_cpu)
    if key in saved:
        return saved[key]
    if reg.pair:
        alt = (reg.pair, key[1], key[2])
        if alt in saved:
            return saved[alt]
    raise MissingSaved(acc.step, reg.name)


def step_value(machine: Machine, acc: Access, saved: dict[SavedKey, Word]) -> Word:
    """The value an access writes (or checks against): the step's value kind, then its
    modifiers in the order shift, and, or (DESIGN.md)."""
    reg = acc.register
    assert reg is not None
    ops = machine.ops
    vs: ValueSpec = acc.step.value
    spec = machine.spec
    if reg.scope != "irq":
        width = reg.width
        if vs.kind == "saved":
            v = lookup_saved(machine, acc, saved)
        elif vs.kind == "ones":
            v = ops.const(mask(width), width)
        elif vs.kind == "zeros":
            v = ops.const(0, width)
        elif vs.kind == "index":
            v = ops.const(acc.index & mask(width), width)  # the each loop's vCPU or interrupt
        elif vs.kind == "reset":
            ctx = machine.ctx(acc.vcpu, half=reg.word_half(acc.word))
            v = reg.user_read.fn(ops, ctx, spec.reset(ops, ctx, reg.scope))
        else:
            v = ops.const(vs.const, width)
        if vs.shift:
            v = _shift(ops, v, vs.shift, width)
        if vs.and_mask is not None:
            v = ops.and_(v, ops.const(vs.and_mask, width))
        if vs.or_mask is not None:
            v = ops.or_(v, ops.const(vs.or_mask, width))
        return v
    bits = reg.slice_bits
    out = {}
    word_saved = lookup_saved(machine, acc, saved) if vs.kind == "saved" else {}
    for (_bank, intid) in [k for k, _ in machine.word_keys(reg, acc.word, acc.vcpu)]:
        sh = reg.slice_shift(intid)
        if vs.kind == "saved":
            s = word_saved[intid]
        elif vs.kind == "ones":
            s = ops.const(mask(bits), bits)
        elif vs.kind == "zeros":
            s = ops.const(0, bits)
        elif vs.kind == "index":
            s = ops.const((acc.index >> sh) & mask(bits), bits)
        elif vs.kind == "reset":
            ctx = machine.ctx(acc.vcpu, intid, half=reg.word_half(acc.word))
            s = reg.user_read.fn(ops, ctx, spec.reset(ops, ctx, "irq"))
        else:
            s = ops.const((vs.const >> sh) & mask(bits), bits)
        if vs.and_mask is not None:
            s = ops.and_(s, ops.const((vs.and_mask >> sh) & mask(bits), bits))
        if vs.or_mask is not None:
            s = ops.or_(s, ops.const((vs.or_mask >> sh) & mask(bits), bits))
        out[intid] = s
    return out


def _shift(ops: Ops, v: Value, amount: int, width: int) -> Value:
    """Shift by a constant using extract/concat only (so both backends agree)."""
    if amount == 0:
        return v
    if amount >= width or -amount >= width:
        return ops.const(0, width)
    if amount > 0:
        return ops.concat(ops.extract(v, width - 1 - amount, 0), ops.const(0, amount), amount)
    a = -amount
    return ops.concat(ops.const(0, a), ops.extract(v, width - 1, a), width - a)


@dataclass
class StepOutcome:
    access: Access
    error: Value
    errno: str
    # a conditional step on the concrete backend: the bits its condition tested, and
    # whether it was skipped because they were none of the listed values
    condition_bits: int | None = None
    skipped: bool = False


@dataclass
class RestoreResult:
    failed: Value  # 1-bit: some step failed
    outcomes: list[StepOutcome] = field(default_factory=list)
    stopped_at: Access | None = None  # concrete runs stop at the first failure, as QEMU aborts


def run_restore(machine: Machine, steps: Iterable[Step], saved: dict[SavedKey, Word],
                observe: Callable[[Access, Machine], None] | None = None,
                accesses: list[Access] | None = None) -> RestoreResult:
    """Run the restore side on ``machine`` (the destination)."""
    ops = machine.ops
    failed = ops.const(0, 1)
    result = RestoreResult(failed)
    for acc in accesses if accesses is not None else expand(machine.spec, steps, machine.config):
        guard, guard_err, guard_errno, tested = _condition(machine, acc, saved)
        skipped = guard is not None and not ops.symbolic and not int(guard)
        if acc.action == "op":
            err, errno = _memory_or_operation(machine, acc, saved, "restore")
        elif (pre := access_error(machine, acc)) is not None:
            err, errno = pre
        elif skipped:
            step_value(machine, acc, saved)  # a value the save lacks is an error all the same
            err, errno = ops.const(0, 1), ""  # the condition does not hold: no access
        elif acc.action == "check":
            assert acc.register is not None
            want = step_value(machine, acc, saved)
            got = machine.read(acc.register, acc.word, acc.vcpu)
            err, errno = _compare(machine, acc, got, want), "check failed (the VMM aborts)"
            err, errno = _or_read_error(ops, *machine.read_error(acc.register, acc.word, acc.vcpu), err, errno)
        else:
            assert acc.register is not None
            err, errno = machine.write(acc.register, acc.word, acc.vcpu, step_value(machine, acc, saved),
                                       guard=guard)
        err, errno = _guarded_error(ops, guard, guard_err, guard_errno, err, errno)
        if acc.action == "op" and acc.step.on_error == "continue":
            err = ops.const(0, 1)  # failed, changed nothing, and the VMM went on
        bits = int(tested) if tested is not None and not ops.symbolic else None
        result.outcomes.append(StepOutcome(acc, err, errno, bits, skipped))
        failed = ops.or_(failed, err)
        if observe is not None:
            observe(acc, machine)
        if not ops.symbolic and err:
            result.stopped_at = acc
            break
    result.failed = failed
    return result


def carried_fields(spec: DeviceSpec) -> list[str]:
    """Environment fields the destination takes from the source (the interrupt lines,
    which the interrupt sources drive on both sides)."""
    return [f.name for f in spec.fields if f.classification == ENVIRONMENT and f.scope == "irq" and f.carried]


def carry_environment(spec: DeviceSpec, source: DeviceState, destination: DeviceState,
                      semantics: Any = None) -> None:
    """Give the destination the source's carried environment (see ``carried_fields``),
    where the destination's kernel records it (``DeviceSpec.records_environment``: the
    original GICv2 VGIC keeps no line level for an edge-triggered private interrupt)."""
    for name in carried_fields(spec):
        for key, f in destination.irq.items():
            if name not in f:
                continue
            if semantics is not None and spec.records_environment is not None and \
                    not spec.records_environment(semantics, spec.interrupt_kind(key[1]), name):
                continue
            f[name] = source.irq[key][name]
