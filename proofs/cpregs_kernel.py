"""arm-cpregs on a real kernel: the write phase of the real-list matrix, confirmed.

For every migration of the matrix that gets past the length check and the merge (only
those reach KVM), the destination kernel is booted with the oracle harness
(``models.kernel.harness``: QEMU TCG, the guest kernel runs KVM) and one runner program
per such source does what QEMU's kvm_arm_cpu_post_load does: a fresh vCPU
(KVM_CREATE_VCPU, KVM_ARM_VCPU_INIT), then KVM_SET_ONE_REG on every register of the
destination's sorted list with the merged value (write_list_to_kvmstate at
KVM_PUT_FULL_STATE, not stopping at a failure), then every register read back
(reg_dump). The model's prediction for each register (accepted or refused; the value read
back, on the bits the model compares, running counters apart) is compared with the
kernel's answer. A disagreement is the model's error, reported with both answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models import cpregs as M
from models.kernel import harness
from proofs.cpregs import Matrix

WRITTEN = {"carried", "changed", "write-refused", "unknown-rule", "kept-reset"}


@dataclass
class Disagreement:
    source: str
    destination: str
    register: str
    index: int
    model: str
    kernel: str


@dataclass
class KernelCheck:
    """The confirmation of one matrix's write phases."""

    boots: list[tuple[str, str, float]] = field(default_factory=list)  # (label, uname -r, seconds)
    checked: list[tuple[str, str, int]] = field(default_factory=list)  # (source, destination, registers)
    disagreements: list[Disagreement] = field(default_factory=list)
    unknown_rules: list[tuple[str, str, str, str]] = field(default_factory=list)  # what the kernel did
    notes: list[str] = field(default_factory=list)
    # (source, destination, register, model, kernel) for every register written with a value
    # other than the destination's own: where the kernel's rules decide something
    evidence: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def render(self) -> str:
        out = ["On the real kernels (the write phase of every migration that reaches KVM, run as QEMU's "
               "kvm_arm_cpu_post_load does):"]
        for label, uname, secs in self.boots:
            out.append(f"  booted {label} ({uname}) in {secs:.1f} s")
        for a, b, n in self.checked:
            bad = [d for d in self.disagreements if (d.source, d.destination) == (a, b)]
            out.append(f"  {a} -> {b}: {n} registers written and read back: "
                       + ("the kernel agrees with the model" if not bad else f"{len(bad)} disagreement(s)"))
        for a, b, name, model, kernel in self.evidence:
            out.append(f"    {a} -> {b} {name}: model {model}; kernel {kernel}")
        for d in self.disagreements:
            out.append(f"    {d.source} -> {d.destination} {d.register} ({d.index:#018x}): model {d.model}; "
                       f"kernel {d.kernel}")
        for a, b, name, what in self.unknown_rules:
            out.append(f"    {a} -> {b} {name}: no rule modelled; the kernel: {what}")
        out += [f"  note: {n}" for n in self.notes]
        if not self.checked:
            out.append("  (no migration of this matrix reaches KVM: every one is refused before the writes)")
        return "\n".join(out)

    def json(self) -> dict[str, Any]:
        return {"boots": [{"kernel": a, "uname_r": u, "seconds": round(s, 1)} for a, u, s in self.boots],
                "checked": [{"source": a, "destination": b, "registers": n} for a, b, n in self.checked],
                "disagreements": [d.__dict__ | {"index": f"{d.index:#018x}"} for d in self.disagreements],
                "unknown_rules": [{"source": a, "destination": b, "register": n, "kernel": w}
                                  for a, b, n, w in self.unknown_rules],
                "evidence": [{"source": a, "destination": b, "register": n, "model": m, "kernel": k}
                             for a, b, n, m, k in self.evidence],
                "notes": self.notes}


def _writes(mig: M.Migration) -> list[tuple[M.Entry, int]]:
    """(entry, value QEMU writes) for every register of the destination's list, in order."""
    out = []
    for e in mig.entries:
        if e.what not in WRITTEN:
            continue
        value = e.dest_value if e.what == "kept-reset" else e.source_value
        assert value is not None
        out.append((e, value))
    return sorted(out, key=lambda x: x[0].index)


def confirm(mx: Matrix, progress: Any = None) -> KernelCheck:
    """Boot each destination kernel once and replay the write phases that reach it."""
    say = progress or (lambda s: None)
    chk = KernelCheck()
    for dst in mx.lists:
        cells = [(a, mig) for (a, b), mig in mx.cells.items()
                 if b == dst.label and a != b and mig.stage not in ("length", "merge")]
        if not cells:
            continue
        programs, plans = [], []
        for a, mig in cells:
            writes = _writes(mig)
            ops = [harness.Op.vm(), harness.Op.vcpus(1), harness.Op.vcpu_init()]
            ops += [harness.Op.set_reg(0, e.index, v) for e, v in writes]
            ops.append(harness.Op.reg_dump(0))
            programs.append(ops)
            plans.append((a, mig, writes))
        say(f"booting {dst.label} for {len(cells)} migration(s)")
        res = harness.run_batch(dst.label, 3, programs)
        chk.boots.append((dst.label, res.uname_r, res.total_seconds))
        release = ".".join(map(str, dst.release))
        if release.split(".")[:2] != res.uname_r.split(".")[:2]:
            chk.notes.append(f"the cached kernel {dst.label} is {res.uname_r}, the list was captured on {release}")
        for p, (a, _mig, writes) in enumerate(plans):
            results = res.programs[p]
            for n, r in enumerate(results[:3]):
                if not r.ok:
                    raise harness.KernelOracleError(f"{dst.label}: vCPU setup step {n + 1} failed: {r}")
            dump = dict(res.reg_dumps.get((p, len(programs[p])), []))
            for (e, value), r in zip(writes, results[3:-1], strict=True):
                reg = next(x for x in dst.registers if x.index == e.index)
                read = dump.get(e.index, "")
                got = int(read, 16) if read.startswith("0x") else None
                kernel = ("accepted" if r.ok else f"refused ({r.errno or r.text})") + \
                    (f", reads {got:#x}" if got is not None else f", read {read or 'nothing'}")
                if e.what == "unknown-rule":
                    chk.unknown_rules.append((a, dst.label, e.name, kernel))
                    continue
                model_ok = e.what != "write-refused"
                cmp = reg.rule.compared
                want = e.final if e.final is not None else reg.value
                model = ("accepted" if model_ok else "refused") + ("" if reg.live else f", reads {want:#x}")
                if value != reg.value and not reg.live:
                    chk.evidence.append((a, dst.label, f"{e.name} := {value:#x} (was {reg.value:#x})", model, kernel))
                if r.ok != model_ok:
                    chk.disagreements.append(Disagreement(a, dst.label, e.name, e.index, model, kernel))
                elif not reg.live and (got is None or (got & cmp) != (want & cmp)):
                    chk.disagreements.append(Disagreement(a, dst.label, e.name, e.index, model, kernel))
            chk.checked.append((a, dst.label, len(writes)))
    return chk


__all__ = ["KernelCheck", "confirm"]
