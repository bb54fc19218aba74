"""Counterexamples for people: replay on the concrete backend, then explain.

A witness from the solver is only shown after it replays. The replay is faithful to what
the proof assumed: the solver's witness gives values to one representative interrupt per
class (``proofs.classes``), which stands for every interrupt of its class, so in the
concrete machine *every* interrupt takes the values of its class's representative (a
check that compares whole words then sees what the proof saw). The replay runs at the
smallest interrupt count that holds the witness's interrupt and confirms it, trying
larger counts up to the witness's own; save and restore run access by access, and the
loss must show at the witness's field, or, for a refusal, the restore must stop at the
same register. A witness that does not replay is reported as a bug in the tool, never
shown as a counterexample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models.concrete import CONCRETE
from models.machine import (
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
from proofs.classes import class_of
from proofs.roundtrip import Witness
from spec.device import SAVE_MEMORY, DeviceSpec
from spec.sequence import Sequence, Step


@dataclass
class Replay:
    witness: Witness
    confirmed: bool
    config: Config
    source: DeviceState
    prior: DeviceState
    after: DeviceState
    accesses: list[Access]
    timeline: list[tuple[Access, int]] = field(default_factory=list)  # (access, field value after it)
    diverging: Access | None = None
    diverging_note: str = ""
    failed_at: Access | None = None
    errno: str = ""
    rule: str = ""
    rule_source: str = ""
    read_rule: str = ""
    source_value: int | None = None
    final_value: int | None = None

    @property
    def where_text(self) -> str:
        scope, key = self.witness.where
        if scope == "irq":
            bank, intid = key
            kind = self.spec_kind
            return f"{kind.upper()} {intid}" + (f" (banked, cpu{bank})" if bank >= 0 else "")
        if scope in ("cpu", "global") and self.scope_label is not None:
            return self.scope_label(scope, key)
        return f"step {key}"

    spec_kind: str = ""
    scope_label: Callable[[str, Any], str] | None = None  # the device's (DeviceSpec.scope_label)
    in_save: bool = False  # the failing step is a save step


def candidate_configs(spec: DeviceSpec, w: Witness) -> list[Config]:
    """The configurations a witness is replayed at, smallest first: every interrupt count
    from the smallest that holds its interrupt up to the witness's own."""
    scope, key = w.where
    need = key[1] + 1 if scope == "irq" else 0
    counts = [c for c in spec.irq_counts if need <= c <= w.config.irqs] or [w.config.irqs]
    return [Config(w.config.cpus, c, None, w.config.vcpus) for c in counts]


def _field_of(state: DeviceState, where: tuple[str, Any], name: str) -> int | None:
    scope, key = where
    if scope == "irq":
        return state.irq[key].get(name)
    if scope == "cpu":
        return state.cpu[key].get(name)
    if scope == "global":
        return state.glob.get(name)
    return None


def replay(spec: DeviceSpec, seq: Sequence, w: Witness, destination: str) -> Replay:
    """Replay ``w`` at the smallest configuration that confirms it; if none does, the
    (unconfirmed) replay at the witness's own configuration."""
    classes = class_of(spec, seq.save, seq.restore, max(spec.irq_counts))
    rep = None
    for cfg in candidate_configs(spec, w):
        rep = replay_at(spec, seq, w, destination, cfg, classes)
        if rep.confirmed:
            return rep
    assert rep is not None
    return rep


def replay_at(spec: DeviceSpec, seq: Sequence, w: Witness, destination: str, cfg: Config,
              classes: dict[int, int]) -> Replay:
    src_sem = seq.source_semantics(spec)
    dst_sem = seq.destination_semantics(spec)

    # an interrupt the witness does not name takes its class representative's values;
    # fields the witness does not constrain at all keep their reset value
    resets = {"src": make_state(spec, src_sem, cfg, CONCRETE), "dst": make_state(spec, dst_sem, cfg, CONCRETE)}

    def values(side: str):
        def fv(scope: str, key: Any, name: str, width: int) -> int:
            got = w.values.get((side, scope, key, name))
            if got is None and scope == "irq":
                bank, intid = key
                got = w.values.get((side, scope, (bank, classes.get(intid, intid)), name))
            if got is not None:
                return got
            return int(_field_of(resets[side], (scope, key), name))  # type: ignore[arg-type]

        return fv

    src = make_state(spec, src_sem, cfg, CONCRETE, values("src"))
    if destination == "fresh":
        dst = make_state(spec, dst_sem, cfg, CONCRETE)
    else:
        dst = make_state(spec, dst_sem, cfg, CONCRETE, values("dst"))
    carry_environment(spec, src, dst, dst_sem)
    m_src = Machine(spec, src_sem, cfg, CONCRETE, src.copy())  # the source as it stopped is compared
    m_dst = Machine(spec, dst_sem, cfg, CONCRETE, dst)
    prior = dst.copy()
    save_steps = seq.save if seq.save is not None else ideal_save_steps(spec)
    save = run_save_checked(m_src, save_steps)
    accesses = expand(spec, seq.restore, cfg)
    rep = Replay(w, False, cfg, src, prior, dst, accesses)
    rep.scope_label = spec.scope_label
    if w.where[0] == "irq":
        rep.spec_kind = spec.interrupt_kind(w.where[1][1])
    if save.stopped_at is not None:
        # the save refused: that confirms a save refusal at that step, and nothing else
        stopped = save.stopped_at
        rep.failed_at = stopped
        rep.errno = save.outcomes[-1].errno
        rep.in_save = True
        if w.label == f"refused:save:{stopped.name}":
            rep.confirmed = True
            rep.diverging = stopped
            _explain_failure(rep, stopped)
        return rep
    saved = save.saved
    timeline: list[tuple[Access, int]] = []

    def observe(acc: Access, m: Machine) -> None:
        if w.field:
            v = _field_of(m.state, w.where, w.field)
            if v is not None:
                timeline.append((acc, v))

    result = run_restore(m_dst, seq.restore, saved, observe, accesses)
    rep.timeline = timeline
    if w.label.startswith("refused:"):
        end = result.stopped_at
        if end is not None and f"refused:{end.name}" == w.label:
            rep.confirmed = True
            rep.failed_at = end
            rep.diverging = end
            rep.errno = result.outcomes[-1].errno
            _explain_failure(rep, end)
        return rep
    if result.stopped_at is not None:
        rep.failed_at = result.stopped_at
        rep.errno = result.outcomes[-1].errno
        return rep  # a silent loss must not come with a failing step
    src_v = _field_of(src, w.where, w.field)
    end_v = _field_of(dst, w.where, w.field)
    if (src_v is None) != (end_v is None):
        # a field only one side's host has (GICC_APR3 on a GICv3 host with 7 priority bits):
        # on the other it reads as zero and ignores writes, as the proof encodes it
        src_v, end_v = src_v or 0, end_v or 0
    rep.source_value, rep.final_value = src_v, end_v
    if src_v is None or end_v is None or src_v == end_v:
        return rep
    if ":" in w.label:
        want = w.label.split(":")[1].split("@")[0]
        if f"{src_v}->{end_v}" != want:
            return rep
    rep.confirmed = True
    unsaved = _never_saved(spec, seq, save_steps, cfg, w)
    if unsaved:
        # the save never read this state: no restore step is to blame
        rep.diverging_note = unsaved
        return rep
    # The diverging step: the last access that changed the field (to its wrong final
    # value); if none did, the first access to a register viewing the field, which had
    # no effect; if there is none, the field is restored by no step.
    prev = _field_of(prior, w.where, w.field)
    last_change = None
    for step_access, v in timeline:
        if v != prev:
            last_change = step_access
        prev = v
    if last_change is not None:
        rep.diverging = last_change
        rep.diverging_note = f"{w.field} becomes {end_v:#x} (source {src_v:#x})"
    else:
        for candidate in accesses:
            reg = candidate.register
            restoring_op = candidate.action == "op" and w.field in _op_views(spec, candidate.name)
            if restoring_op or (reg is not None and candidate.action == "write" and w.field in reg.views
                                and _touches(spec, candidate, w.where)):
                rep.diverging = candidate
                rep.diverging_note = f"no effect: {w.field} stays {end_v:#x} (source {src_v:#x})"
                out = next((o for o in result.outcomes if o.access is candidate), None)
                if out is not None and out.skipped and candidate.step.when is not None:
                    c = candidate.step.when
                    rep.diverging_note = (f"not run: {c.source} {c.register}[{c.bits}] is {out.condition_bits}, "
                                          f"not one of {{{', '.join(map(str, c.values))}}}; {w.field} stays "
                                          f"{end_v:#x} (source {src_v:#x})")
                break
        else:
            rep.diverging_note = f"no step restores {w.field}"
    if rep.diverging is not None and rep.diverging.register is None:
        rep.diverging_note += _memory_saved_early(spec, save_steps, cfg, w.field)
    if rep.diverging is not None and rep.diverging.register is not None:
        reg = rep.diverging.register
        rep.rule, rep.rule_source = reg.user_write.rule, reg.user_write.source
        if rep.diverging.step.value.kind == "saved":
            saved_from = _saved_from(spec, save_steps, reg.name)
            if saved_from is not None:
                rd = saved_from.user_read
                rep.read_rule = f"the saved value came from {saved_from.name}: {rd.rule} ({rd.source})"
    return rep


def _op_views(spec: DeviceSpec, name: str) -> tuple[str, ...]:
    try:
        return spec.operation(name).views
    except KeyError:
        return ()


def _memory_saved_early(spec: DeviceSpec, save_steps: Any, cfg: Config, field_name: str) -> str:
    """For a field an operation restores from guest memory: when the save took guest memory
    before the save-side operation that writes the field's table into it, say so (the
    restore then reads a stale table: GICv5's IST save after the memory save)."""
    accesses = expand(spec, save_steps, cfg)
    memory = next((a for a in accesses if a.action == "op" and a.name == SAVE_MEMORY), None)
    writer = next((a for a in accesses if a.action == "op" and field_name in _op_views(spec, a.name)
                   and spec.operation(a.name).side == "save"), None)
    if memory is None or writer is None or memory.number > writer.number:
        return ""
    return (f"; guest memory was saved at line {memory.step.line}, before {writer.name} at line "
            f"{writer.step.line} wrote {field_name}'s table into it, so the restore reads a stale table")


def _explain_failure(rep: Replay, stopped: Access) -> None:
    """The rule behind a failing access: the kernel's attribute check for a missing vCPU,
    the VMM's comparison for a check, else the write accessor's rule."""
    reg = stopped.register
    if reg is None:
        return  # an operation
    if rep.errno == "EINVAL" and stopped.vcpu >= rep.config.cpus:
        rep.rule = f"the access names vCPU {stopped.vcpu}, but the VM has {rep.config.cpus}"
        rep.rule_source = ("arch/arm64/kvm/vgic/vgic-kvm-device.c: vgic_v2_parse_attr "
                           "'if (cpuid >= atomic_read(&dev->kvm->online_vcpus)) return -EINVAL'")
    elif stopped.action == "check":
        rd = reg.user_read
        rep.rule = (f"the VMM reads {reg.name} and aborts unless it equals "
                    f"{stopped.step.value.describe()}; the read: {rd.rule}")
        rep.rule_source = rd.source
    else:
        rep.rule, rep.rule_source = reg.user_write.rule, reg.user_write.source


def _never_saved(spec: DeviceSpec, seq: Sequence, save_steps: Any, cfg: Config, w: Witness) -> str:
    """When the save reads no register that views the lost field at the witness's place
    (a word range skipped at save), say so: "GICD_ISPENDR word 0 (cpu0) is never saved"."""
    if seq.save is None or not w.field:
        return ""  # the ideal save reads everything
    save_accesses = expand(spec, save_steps, cfg)
    if any(acc.action == "op" and w.field in _op_views(spec, acc.name) for acc in save_accesses):
        return ""  # an operation of the save carries it (the IST save into guest memory)
    viewing = [r for r in spec.registers if w.field in r.views]
    revealing = [r for r in viewing if _read_reveals(spec, seq, cfg, r, w)]
    for acc in save_accesses:
        if acc.register in revealing and acc.action in ("read", "check") and _touches(spec, acc, w.where):
            return ""
    named = revealing or viewing
    # the register the restore writes the saved value to, if any: that is what was missing
    restored = [s.target for s in sorted(_flat(seq.restore), key=lambda s: s.value.kind != "saved")
                if s.target in {r.name for r in named}]
    reg = spec.register(restored[0]) if restored else named[0] if named else None
    if reg is None:
        return ""
    scope, key = w.where
    if reg.selects:
        # a selected register (IRS_SPI_CFGR): one word, the selected instance's
        place = f"{reg.name} of {'SPI ' + str(key[1]) if scope == 'irq' else f'cpu{key}'} (through its selector)"
    elif scope == "irq":
        bank, intid = key
        place = f"{reg.name} word {reg.word_of(intid)}" + (f" (cpu{bank})" if bank >= 0 else "")
    elif scope == "cpu":
        place = f"{reg.name} of cpu{key}"
    else:
        place = reg.name
    return (f"{place} is never saved: the save reads no register that holds {w.field} there, "
            "so no restore step can bring it back")


def _read_reveals(spec: DeviceSpec, seq: Sequence, cfg: Config, reg: Any, w: Witness) -> bool:
    """Whether reading ``reg`` shows the witness's field (a register may *view* a field
    only because a write changes it: GICD_ICFGR on 4.7 re-derives pending state, but its
    read shows the trigger alone). Probed concretely: from the reset state, with and
    without the field's bits flipped."""
    sem = seq.source_semantics(spec)
    m = Machine(spec, sem, cfg, CONCRETE, make_state(spec, sem, cfg, CONCRETE))
    scope, key = w.where
    if scope == "irq" and not (reg.scope == "irq" and reg.first_irq <= key[1] < reg.first_irq + reg.irqs):
        return False  # the register does not cover this interrupt (GICD_CPENDSGIR and a PPI)
    vcpu = max(key[0], 0) if scope == "irq" else (key if scope == "cpu" else 0)
    word = reg.word_of(key[1]) if scope == "irq" and reg.scope == "irq" else 0
    before = m.read_word(reg, word, vcpu)
    fields = m.state.irq[key] if scope == "irq" else m.state.cpu[key] if scope == "cpu" else m.state.glob
    if w.field not in fields:
        return False
    fields[w.field] ^= (1 << spec.field_spec(w.field).width) - 1
    return m.read_word(reg, word, vcpu) != before


def _flat(steps: Any) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        out.extend(s.steps if s.action == "each" else [s])
    return out


def _saved_from(spec: DeviceSpec, save_steps: Any, name: str) -> Any:
    flat: list[Step] = []
    for s in save_steps:
        flat.extend(s.steps if s.action == "each" else [s])
    names = {s.target for s in flat if s.action == "read"}
    reg = spec.register(name)
    if name in names:
        return reg
    if reg.pair and reg.pair in names:
        return spec.register(reg.pair)
    return None


def _touches(spec: DeviceSpec, acc: Access, where: tuple[str, Any]) -> bool:
    reg = acc.register
    assert reg is not None
    scope, key = where
    if scope == "irq":
        bank, intid = key
        if intid not in reg.word_irqs(acc.word) or reg.scope != "irq":
            return False
        return bank < 0 or acc.vcpu == bank
    if scope == "cpu":
        return reg.scope == "cpu" and acc.vcpu == key
    return reg.scope == "global"
