"""Reachable states by concrete simulation, and the concrete round trip.

This is the solver-free side of the mutation suite (``tests/mutants.py``,
``bench/mutate.py``): it never imports ``proofs``. It builds the states a running VM can
reach from the reset state by *doing things* to the model, not by assuming an invariant:

* guest register writes through the table's guest accessors (every writable distributor
  register, including the SGI bits of GICD_ISPENDR/ICPENDR and GICD_SPENDSGIR/CPENDSGIR,
  and the CPU interface registers the guest programs), GICD_SGIR (``guest.send_sgi``),
  an interrupt source raising or lowering its line, acknowledge and end of interrupt;
* userspace writes (``user=True``) of every writable register, GICD_IIDR included.

``random_states`` runs seeded random walks biased toward a few interrupts per word so
that accesses collide; ``explore`` enumerates every reachable state of a tiny machine
breadth-first, with a finite set of write values, and checks the device invariant on each
(``Machine.invariant()`` must be 1) keeping the shortest action path to any state that
breaks it.

``roundtrip`` saves a source state and restores it into a destination (the reset state,
or a given prior state) exactly as ``tests/test_stateful.py``'s ``migrate`` does, and
returns the loss labels in the format of ``proofs/roundtrip.py``: ``FIELD:1->0@KIND`` /
``FIELD:0->1@KIND`` for a one-bit field, ``FIELD@KIND`` for a wider one (``@KIND`` only for
per-interrupt fields), ``refused:REGISTER`` when a restore step fails.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from models import guest
from models.concrete import CONCRETE
from models.machine import (
    SPI_BANK,
    Access,
    Config,
    DeviceState,
    Machine,
    carry_environment,
    expand,
    ideal_save_steps,
    make_state,
    run_restore,
    run_save_checked,
)
from spec.device import ARCHITECTURAL, DeviceSpec, Register
from spec.sequence import Sequence

# An action, as a tuple (hashable, printable):
#   ("guest", REGISTER, word, vcpu, value)   guest write (guest accessor)
#   ("user", REGISTER, word, vcpu, value)    userspace write (KVM device attribute)
#   ("sgi", sender, GICD_SGIR value)         guest GICD_SGIR write
#   ("line", intid, cpu, level)              the interrupt's source drives its line
#   ("ack", cpu)                             GICC_IAR
#   ("eoi", cpu, intid)                      GICC_EOIR
Action = tuple[Any, ...]

# CPU interface registers a guest programs itself (through the virtual CPU interface);
# their table rows have one accessor for guest and userspace.
GUEST_CPU_REGS = ("GICC_CTLR", "GICC_PMR", "GICC_BPR", "GICC_ABPR", "GICC_APR0")


def _writes(acc_name: str) -> bool:
    return acc_name != "write_wi"


def guest_registers(spec: DeviceSpec) -> list[Register]:
    """Every register a guest can write with effect: the distributor rows whose guest
    accessor is not write-ignored, and the CPU interface registers it programs."""
    return [r for r in spec.registers
            if (r.scope != "cpu" and _writes(r.guest_write.name))
            or (r.scope == "cpu" and r.name in GUEST_CPU_REGS)]


def user_registers(spec: DeviceSpec) -> list[Register]:
    """Every register userspace can write with effect (GICD_IIDR included)."""
    return [r for r in spec.registers if _writes(r.user_write.name)]


def describe_action(a: Action) -> str:
    kind = a[0]
    if kind in ("guest", "user"):
        _, reg, word, vcpu, value = a
        who = "guest" if kind == "guest" else "userspace"
        return f"{who} cpu{vcpu} writes {reg}[{word}] = {value:#x}"
    if kind == "sgi":
        return f"guest cpu{a[1]} writes GICD_SGIR = {a[2]:#x} (SGI {a[2] & 0xF})"
    if kind == "line":
        return f"line of {a[1]} (cpu{a[2]}) {'raised' if a[3] else 'lowered'}"
    if kind == "ack":
        return f"cpu{a[1]} acknowledges (GICC_IAR)"
    if kind == "eoi":
        return f"cpu{a[1]} ends interrupt {a[2]} (GICC_EOIR)"
    return repr(a)


def describe_path(path: Iterable[Action]) -> str:
    steps = [describe_action(a) for a in path]
    return "; ".join(steps) if steps else "(reset state)"


def apply_action(m: Machine, a: Action) -> None:
    kind = a[0]
    if kind in ("guest", "user"):
        _, reg, word, vcpu, value = a
        r = m.register(reg) if isinstance(m, _Machine) else m.spec.register(reg)
        m.write_word(r, word, vcpu, value, user=(kind == "user"))
    elif kind == "sgi":
        guest.send_sgi(m, a[1], a[2])
    elif kind == "line":
        guest.raise_line(m, a[1], a[2], a[3])
    elif kind == "ack":
        guest.acknowledge(m, a[1])
    elif kind == "eoi":
        guest.end_of_interrupt(m, a[1], a[2])
    else:
        raise ValueError(f"unknown action {a!r}")


class _Machine(Machine):
    """``Machine`` with its per-word interrupt lists and register lookups cached (the
    interrupts a machine holds never change), for speed only."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._keys: dict[tuple[str, int, int], list[tuple[Any, int]]] = {}
        self._regs: dict[str, Register] = {}

    def word_keys(self, reg: Register, word: int, vcpu: int) -> list[tuple[Any, int]]:
        k = (reg.name, word, vcpu)
        out = self._keys.get(k)
        if out is None:
            out = self._keys[k] = super().word_keys(reg, word, vcpu)
        return out

    def register(self, name: str) -> Register:
        reg = self._regs.get(name)
        if reg is None:
            reg = self._regs[name] = self.spec.register(name)
        return reg


def new_machine(spec: DeviceSpec, kernel: str, config: Config) -> Machine:
    """A freshly created and initialised device (the reset state)."""
    sem = spec.semantics(kernel)
    return _Machine(spec, sem, config, CONCRETE, make_state(spec, sem, config, CONCRETE))


def machine_for(spec: DeviceSpec, kernel: str, config: Config, state: DeviceState) -> Machine:
    return _Machine(spec, spec.semantics(kernel), config, CONCRETE, state.copy())


def replay_path(spec: DeviceSpec, kernel: str, config: Config, path: Iterable[Action]) -> Machine:
    m = new_machine(spec, kernel, config)
    for a in path:
        apply_action(m, a)
    return m


# ---------------------------------------------------------------------------------------
# Random walks.


@dataclass
class Reached:
    """A reachable state and the actions that reached it from reset."""

    kernel: str
    config: Config
    state: DeviceState
    path: tuple[Action, ...]


def _hot(spec: DeviceSpec, config: Config) -> list[int]:
    """A few interrupts per word, so that different accesses hit the same ones."""
    n = config.irqs
    cand = [0, 1, 8, 15, 16, 17, 27, 31, 32, 33, 40, 63, n - 32, n - 1]
    return sorted({i for i in cand if config.present(i)})


class Walker:
    """Random guest and userspace actions on one machine size, biased toward ``_hot``."""

    SLICE8 = (0x00, 0x01, 0x02, 0x80, 0xA0, 0xF8, 0xFF)

    def __init__(self, spec: DeviceSpec, kernel: str, config: Config, rng: random.Random):
        self.spec = spec
        self.kernel = kernel
        self.config = config
        self.rng = rng
        self.hot = _hot(spec, config)
        self.guest_regs = guest_registers(spec)
        self.user_regs = user_registers(spec)
        self.iidrs = sorted({spec.semantics(k).iidr() for k in spec.versions}) \
            if hasattr(spec.semantics(kernel), "iidr") else []

    def _word_value(self, reg: Register, vcpu: int) -> tuple[int, int]:
        r = self.rng
        if reg.scope != "irq":
            if reg.name == "GICD_IIDR" and self.iidrs:
                own = self.spec.semantics(self.kernel).iidr()
                return 0, own if r.random() < 0.7 else r.choice(self.iidrs + [r.getrandbits(32)])
            if reg.name == "GICD_CTLR":
                return 0, r.choice((0, 1, r.getrandbits(32)))
            if reg.name == "GICC_APR0":
                return 0, r.choice((0, 1 << r.choice((0, 16, 20, 31)), r.getrandbits(32)))
            return 0, r.choice((0, 1, 3, 0x1F, 0x21F, 0xFF, r.getrandbits(32)))
        hot = [i for i in self.hot if reg.first_irq <= i < reg.first_irq + reg.irqs]
        if not hot or r.random() < 0.1:
            words = [w for w in range(reg.words) if reg.word_irqs(w).start < self.config.irqs]
            word = r.choice(words)
        else:
            word = reg.word_of(r.choice(hot))
        kind = r.random()
        if kind < 0.2:
            return word, r.getrandbits(32)
        if kind < 0.3:
            return word, 0xFFFFFFFF
        if kind < 0.35:
            return word, 0
        # the slices of one or two interrupts of the word
        value = 0
        for intid in r.sample(list(reg.word_irqs(word)), 2 if r.random() < 0.3 else 1):
            if reg.bits_per_irq == 8:
                s = r.choice(self.SLICE8)
            else:
                s = r.randrange(1, 1 << reg.slice_bits)
            value |= s << reg.slice_shift(intid)
        return word, value

    def action(self, m: Machine) -> Action:
        r = self.rng
        cpus = self.config.cpus
        x = r.random()
        if x < 0.40:
            reg = r.choice(self.guest_regs)
            vcpu = r.randrange(cpus)
            word, value = self._word_value(reg, vcpu)
            return ("guest", reg.name, word, vcpu, value)
        if x < 0.52:
            reg = r.choice(self.user_regs)
            vcpu = r.randrange(cpus)
            word, value = self._word_value(reg, vcpu)
            return ("user", reg.name, word, vcpu, value)
        if x < 0.67:
            sgis = [i for i in self.hot if self.spec.interrupt_kind(i) == "sgi"] or [0]
            mode = r.choice((0, 0, 1, 2, 2, 3))
            targets = r.randrange(1 << cpus) if r.random() < 0.8 else r.getrandbits(8)
            return ("sgi", r.randrange(cpus), (mode << 24) | (targets << 16) | r.choice(sgis))
        if x < 0.82:
            lines = [i for i in self.hot if i >= 16] or [16]
            return ("line", r.choice(lines), r.randrange(cpus), r.randrange(2))
        if x < 0.91:
            return ("ack", r.randrange(cpus))
        cpu = r.randrange(cpus)
        active = [k[1] for k, f in m.state.irq.items()
                  if f["active"] and (k[0] == cpu or k[0] == SPI_BANK)]
        return ("eoi", cpu, r.choice(active) if active and r.random() < 0.9 else r.choice(self.hot))


def random_states(spec: DeviceSpec, kernel: str, config: Config, rng: random.Random,
                  walks: int, length: int, per_walk: int = 2) -> list[Reached]:
    """States reached by ``walks`` random walks of up to ``length`` actions from reset;
    ``per_walk`` snapshots from each (the last one always)."""
    out: list[Reached] = []
    walker = Walker(spec, kernel, config, rng)
    for _ in range(walks):
        n = rng.randint(1, length)
        snaps = set(rng.sample(range(n), min(per_walk - 1, n))) | {n - 1}
        m = new_machine(spec, kernel, config)
        path: list[Action] = []
        for i in range(n):
            a = walker.action(m)
            apply_action(m, a)
            path.append(a)
            if i in snaps:
                out.append(Reached(kernel, config, m.state.copy(), tuple(path)))
    return out


# ---------------------------------------------------------------------------------------
# Exhaustive exploration of a tiny machine.


class StateCodec:
    """A DeviceState as a flat tuple (hashable), and back into a machine's field maps."""

    def __init__(self, template: DeviceState):
        self.glob = sorted(template.glob)
        self.cpu = [sorted(c) for c in template.cpu]
        self.irq = [(k, sorted(f)) for k, f in template.irq.items()]

    def key(self, s: DeviceState) -> tuple[int, ...]:
        out = [s.glob[n] for n in self.glob]
        for c, names in enumerate(self.cpu):
            out.extend(s.cpu[c][n] for n in names)
        for k, names in self.irq:
            f = s.irq[k]
            out.extend(f[n] for n in names)
        return tuple(out)

    def load(self, key: tuple[int, ...], s: DeviceState) -> None:
        it = iter(key)
        for n in self.glob:
            s.glob[n] = next(it)
        for c, names in enumerate(self.cpu):
            for n in names:
                s.cpu[c][n] = next(it)
        for k, names in self.irq:
            f = s.irq[k]
            for n in names:
                f[n] = next(it)

    def state(self, key: tuple[int, ...], template: DeviceState) -> DeviceState:
        s = template.copy()
        self.load(key, s)
        return s


# Small value sets for the exhaustive search (so the state space is finite and small).
SMALL_PRIORITIES = (0x00, 0x80, 0xF8)
SMALL_SGI_SOURCES = (0x01, 0x02)


def small_actions(spec: DeviceSpec, kernel: str, config: Config,
                  priorities: tuple[int, ...] = SMALL_PRIORITIES,
                  leave_out: tuple[str, ...] = ()) -> list[Action]:
    """Every action of the exhaustive search: each writable register word holding a
    present interrupt, with a few values (each present interrupt's bits alone, all of
    them, none; priorities in ``priorities``, SGI sources in SMALL_SGI_SOURCES), GICD_SGIR
    to self and to all, lines of the PPIs and SPIs up and down, acknowledge and EOI.
    Registers named in ``leave_out`` are not written."""
    out: list[Action] = []
    present = [i for i in range(config.irqs) if config.present(i)]
    sem = spec.semantics(kernel)

    def irq_values(reg: Register, word: int) -> list[int]:
        ids = [i for i in reg.word_irqs(word) if i in present]
        vals: set[int] = set()
        if reg.bits_per_irq == 1:
            vals.add(0)
            for i in ids:
                vals.add(1 << reg.slice_shift(i))
            vals.add(sum(1 << reg.slice_shift(i) for i in ids))
        elif reg.bits_per_irq == 2:
            vals.update((0, 0xFFFFFFFF))
        else:
            if reg.name == "GICD_IPRIORITYR":
                slices: tuple[int, ...] = priorities
            elif "SGIR" in reg.name:
                slices = SMALL_SGI_SOURCES
            else:
                slices = (0x00, 0xFF)
            for s in slices:
                vals.add(sum(s << reg.slice_shift(i) for i in ids))
        return sorted(vals)

    def scalar_values(reg: Register) -> list[int]:
        if reg.name == "GICD_IIDR":
            return [sem.iidr()] if hasattr(sem, "iidr") else []
        if reg.name == "GICD_CTLR":
            return [0, 1]
        if reg.name == "GICC_CTLR":
            return [0, 3]
        if reg.name == "GICC_PMR":
            return [0, 0x1F]
        if reg.name in ("GICC_BPR", "GICC_ABPR"):
            return [0, 7]
        if reg.name == "GICC_APR0":
            return [0]
        return [0]

    def reg_actions(kind: str, regs: list[Register]) -> None:
        for reg in regs:
            if reg.name in leave_out:
                continue
            for vcpu in range(config.cpus):
                if reg.scope == "irq":
                    for w in range(reg.words):
                        ids = [i for i in reg.word_irqs(w) if i in present]
                        if not ids or (vcpu and ids[0] >= spec.private_irqs):
                            continue
                        for v in irq_values(reg, w):
                            out.append((kind, reg.name, w, vcpu, v))
                elif reg.scope == "cpu" or vcpu == 0:
                    for v in scalar_values(reg):
                        out.append((kind, reg.name, 0, vcpu, v))

    reg_actions("guest", guest_registers(spec))
    reg_actions("user", user_registers(spec))
    for sender in range(config.cpus):
        for i in present:
            if spec.interrupt_kind(i) == "sgi":
                out.append(("sgi", sender, (2 << 24) | i))  # to self
                if config.cpus > 1:
                    out.append(("sgi", sender, (1 << 24) | i))  # to all but self
    for i in present:
        if i >= 16:
            for cpu in range(config.cpus if i < spec.private_irqs else 1):
                out.extend((("line", i, cpu, 1), ("line", i, cpu, 0)))
    for cpu in range(config.cpus):
        out.append(("ack", cpu))
        out.extend(("eoi", cpu, i) for i in present)
    return out


@dataclass
class InvariantBreak:
    """A reachable state on which ``Machine.invariant()`` is 0."""

    kernel: str
    config: Config
    where: str  # the scope that breaks it, e.g. "SGI 3 (cpu0)"
    fields: dict[str, int]
    path: tuple[Action, ...]

    def describe(self) -> str:
        vals = " ".join(f"{k}={v:#x}" for k, v in sorted(self.fields.items()))
        return (f"kernel {self.kernel}, {self.config.describe()}: {self.where} breaks the invariant "
                f"({vals}) after: {describe_path(self.path)}")


@dataclass
class Exploration:
    kernel: str
    config: Config
    template: DeviceState
    codec: StateCodec
    parent: dict[tuple[int, ...], tuple[tuple[int, ...] | None, Action | None]]
    breaks: list[InvariantBreak] = field(default_factory=list)
    broken: int = 0  # reachable states that break the invariant
    complete: bool = True  # False when ``limit`` stopped the search

    def __len__(self) -> int:
        return len(self.parent)

    def path(self, key: tuple[int, ...]) -> tuple[Action, ...]:
        out: list[Action] = []
        k: tuple[int, ...] | None = key
        while k is not None:
            prev, a = self.parent[k]
            if a is not None:
                out.append(a)
            k = prev
        return tuple(reversed(out))

    def states(self) -> Iterator[tuple[tuple[int, ...], DeviceState]]:
        for k in self.parent:
            yield k, self.codec.state(k, self.template)


def _break_where(m: Machine) -> list[tuple[str, dict[str, int]]]:
    spec, ops = m.spec, m.ops
    out = []
    if not spec.invariant(ops, m.ctx(0), "global", m.state.glob):
        out.append(("distributor", dict(m.state.glob)))
    for c, f in enumerate(m.state.cpu):
        if not spec.invariant(ops, m.ctx(c), "cpu", f):
            out.append((f"CPU interface {c}", dict(f)))
    for (bank, intid), f in m.state.irq.items():
        if not spec.invariant(ops, m.ctx(max(bank, 0), intid), "irq", f):
            where = f"{spec.interrupt_kind(intid).upper()} {intid}" + (f" (cpu{bank})" if bank >= 0 else "")
            out.append((where, dict(f)))
    return out


def explore(spec: DeviceSpec, kernel: str, config: Config, actions: list[Action] | None = None,
            limit: int = 500_000) -> Exploration:
    """Every state reachable from reset by ``actions`` (default ``small_actions``),
    breadth-first, so each state's recorded path is a shortest one. Checks the device
    invariant on each state; keeps the first (shortest) break per place and kind of
    interrupt."""
    if actions is None:
        actions = small_actions(spec, kernel, config)
    m = new_machine(spec, kernel, config)
    template = m.state.copy()
    codec = StateCodec(template)
    start = codec.key(m.state)
    ex = Exploration(kernel, config, template, codec, {start: (None, None)})
    seen_where: set[str] = set()
    queue = deque([start])
    while queue:
        key = queue.popleft()
        for a in actions:
            codec.load(key, m.state)
            apply_action(m, a)
            nk = codec.key(m.state)
            if nk in ex.parent:
                continue
            ex.parent[nk] = (key, a)
            if not m.invariant():
                ex.broken += 1
                for where, fields in _break_where(m):
                    tag = where.split(" ")[0] + ":" + ",".join(f"{k}={v}" for k, v in sorted(fields.items()))
                    kind_tag = where.split(" ")[0]
                    if kind_tag not in seen_where or tag not in seen_where:
                        seen_where.update((kind_tag, tag))
                        if not any(b.where.split(" ")[0] == kind_tag for b in ex.breaks):
                            ex.breaks.append(InvariantBreak(kernel, config, where, fields, ex.path(nk)))
            if len(ex.parent) >= limit:
                ex.complete = False
                return ex
            queue.append(nk)
    return ex


# ---------------------------------------------------------------------------------------
# The concrete round trip.


def loss_labels(spec: DeviceSpec, source: DeviceState, after: DeviceState) -> set[str]:
    """The architectural fields that differ, labelled as proofs/roundtrip.py labels them."""
    out: set[str] = set()
    arch = [f for f in spec.fields if f.classification == ARCHITECTURAL]

    def compare(scope: str, at: str, a: dict[str, Any], b: dict[str, Any]) -> None:
        for sf in arch:
            if sf.scope != scope or sf.name not in a:
                continue
            x, y = a[sf.name], b[sf.name]
            if x == y:
                continue
            if sf.width == 1:
                out.add(f"{sf.name}:{x}->{y}{at}")
            else:
                out.add(f"{sf.name}{at}")

    compare("global", "", source.glob, after.glob)
    for c in range(len(source.cpu)):
        compare("cpu", "", source.cpu[c], after.cpu[c])
    for key, f in source.irq.items():
        compare("irq", f"@{spec.interrupt_kind(key[1])}", f, after.irq[key])
    return out


class Plan:
    """A sequence's save and restore accesses for one configuration (expanded once)."""

    def __init__(self, spec: DeviceSpec, seq: Sequence, config: Config):
        self.spec = spec
        self.seq = seq
        self.config = config
        save = seq.save if seq.save is not None else ideal_save_steps(spec)
        self.save: list[Access] = expand(spec, save, config)
        self.restore: list[Access] = expand(spec, seq.restore, config)


@dataclass
class RoundTrip:
    labels: set[str]
    after: DeviceState
    failed_at: Access | None


def roundtrip(plan: Plan, source: DeviceState, prior: DeviceState | None = None) -> RoundTrip:
    """Save ``source`` (on the source kernel) and restore into ``prior`` (the destination
    before the restore, on the destination kernel; None = freshly created). The
    destination takes the source's interrupt lines (``carry_environment``). A failing
    step stops the restore, as the VMM aborts: the result is ``refused:REGISTER`` only.
    Raises ``models.machine.MissingSaved`` when the restore needs a value the save did
    not read (bad input)."""
    spec, seq, config = plan.spec, plan.seq, plan.config
    src = machine_for(spec, seq.effective_source_kernel, config, source)
    # a save step that fails (a vCPU the VM lacks, a read the kernel refuses, a save-side
    # check that does not match) stops the save: the VMM refuses to migrate
    save = run_save_checked(src, (), accesses=plan.save)
    if save.stopped_at is not None:
        return RoundTrip({f"refused:save:{save.stopped_at.name}"}, src.state, save.stopped_at)
    saved = save.saved
    if prior is None:
        dst = new_machine(spec, seq.kernel, config)
    else:
        dst = machine_for(spec, seq.kernel, config, prior)
    carry_environment(spec, src.state, dst.state, dst.semantics)
    result = run_restore(dst, seq.restore, saved, accesses=plan.restore)
    if result.stopped_at is not None:
        acc = result.stopped_at
        return RoundTrip({f"refused:{acc.name}"}, dst.state, acc)
    return RoundTrip(loss_labels(spec, src.state, dst.state), dst.state, None)
