"""Shared test helpers."""

from __future__ import annotations

import os
from collections.abc import Iterable
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import TypeVar

from hypothesis.stateful import RuleBasedStateMachine

from spec.devices import DEVICES, SEQUENCES_DIR
from spec.gicv2 import GICV2
from spec.sequence import Sequence, load

GICV2_DIR = SEQUENCES_DIR / "gicv2"
GOLDEN = Path(__file__).parent / "golden"


T = TypeVar("T")


def deep() -> bool:
    """GICPROOF_HYPOTHESIS=deep: the long search (nightly or by hand). The default run,
    sized for a 2-core machine, tests representatives where a test is parametrised over
    every kernel revision or every shipped file; deep tests all of them."""
    return os.environ.get("GICPROOF_HYPOTHESIS") == "deep"


def representatives(items: Seq[T], keep: Iterable[T]) -> list[T]:
    """Every one of ``items`` in the deep profile; by default only those in ``keep`` (in
    the order of ``items``). ``keep`` is chosen by the test, deliberately: the oldest and
    newest, and every item where a semantic boundary matters to that test. Each of ``keep``
    must be one of ``items``: a renamed file or a dropped revision fails the collection
    instead of silently shrinking the test."""
    keep = list(keep)
    missing = [k for k in keep if k not in items]
    assert not missing, f"representatives not among the items: {missing}"
    return list(items) if deep() else [x for x in items if x in keep]


def _derive_graph(device: str, kernel: str, cpus: int):
    from proofs.graph import build_graph

    return build_graph(DEVICES[device], kernel, "any", cpus)


def prebuild_graphs(wanted: Iterable[tuple[str, int]], device: str = "gicv2") -> None:
    """Derive the ordering graphs (kernel, CPUs) that tests will ask ``graph_for`` for, in
    parallel through gicproof's own executor (as ``check --jobs`` does), and put them in
    ``graph_for``'s cache. The graphs are the same (each proof has its own Z3 context);
    the cores are not idle while one graph is derived after another."""
    from proofs import check
    from proofs.executor import default_jobs, make_executor
    from proofs.solver import DEFAULT_BUDGET

    def key(kernel: str, cpus: int) -> tuple:
        return (device, kernel, "any", cpus, DEFAULT_BUDGET, "")

    todo = [(k, c) for k, c in dict.fromkeys(wanted) if key(k, c) not in check._GRAPHS]
    if not todo:
        return
    with make_executor(min(default_jobs(), len(todo))) as ex:
        futures = [(k, c, ex.submit(_derive_graph, device, k, c)) for k, c in todo]
        for k, c, fut in futures:
            check._GRAPHS[key(k, c)] = fut.result()


def shipped(name: str) -> Sequence:
    return load(GICV2_DIR / name, DEVICES)


def no_held_lines(spec):
    """The model with the GICv2 ABI's inherent losses assumed away on every state: no
    interrupt line is held (the latch/line-level conflation) and no SGI is active with a
    source other than vCPU 0 (the kernel's 'Oh well' in vgic_mmio_change_active), and no
    interrupt is mapped to hardware (on the destination that is no-mapped-destination; on
    the source it changes nothing a userspace read shows). These are the device's declared
    assumptions no-held-lines, no-active-sgi-source and no-mapped-destination."""
    import dataclasses

    from spec.algebra import bool_and

    names = ("no-held-lines", "no-active-sgi-source", "no-mapped-destination")

    def invariant(ops, ctx, scope, f):
        extra = [spec.assumption(n).fn(ops, scope, f) for n in names]
        return bool_and(ops, spec.invariant(ops, ctx, scope, f), *extra)

    return dataclasses.replace(spec, invariant=invariant)


def write_variant(tmp_path: Path, base: str, edit, name: str = "variant.toml") -> Path:
    """A copy of a shipped sequence with ``edit(text) -> text`` applied."""
    text = (GICV2_DIR / base).read_text()
    new = edit(text)
    assert new != text, "the edit changed nothing"
    p = tmp_path / name
    p.write_text(new)
    return p


__all__ = ["GICV2", "DEVICES", "GICV2_DIR", "GOLDEN", "shipped", "write_variant", "no_held_lines", "deep",
           "representatives", "prebuild_graphs"]


# --- the stateful differential machines (tests/test_stateful*.py) ---------------------------

def concrete_machine(device: str, kernel: str, cpus: int, irqs: int):
    """A concrete machine of ``device`` at its reset state."""
    from models.concrete import CONCRETE
    from models.machine import Config, Machine, make_state

    spec = DEVICES[device]
    sem = spec.semantics(kernel)
    cfg = Config(cpus, irqs)
    return Machine(spec, sem, cfg, CONCRETE, make_state(spec, sem, cfg, CONCRETE))


def migrate_through(m, seq, refused_save_keeps_source: bool = False):
    """Save ``m`` through ``seq`` (its ideal save when it has none) and restore into a fresh
    machine of the same size at the file's kernel; the environment (interrupt lines) is
    carried over. A refused restore raises AssertionError("refused at STEP"); a refused
    save too, unless ``refused_save_keeps_source`` (a VMM that refuses to save leaves the
    VM running where it was: ``m`` is returned)."""
    from models.machine import carry_environment, ideal_save_steps, run_restore, run_save_checked

    spec = m.spec
    save = run_save_checked(m, seq.save if seq.save is not None else ideal_save_steps(spec))
    if save.stopped_at is not None:
        if refused_save_keeps_source:
            return m
        raise AssertionError(f"save failed at {save.stopped_at.label(spec)}")
    dst = concrete_machine(spec.name, seq.kernel, m.config.cpus, m.config.irqs)
    carry_environment(spec, m.state, dst.state)
    result = run_restore(dst, seq.restore, save.saved)
    if result.stopped_at is not None:
        raise AssertionError(f"refused at {result.stopped_at.label(spec)}")
    return dst


def lost_field_names(path: Path) -> set[str]:
    """The fields the round trip of the file at ``path`` computed as lost (its ``lost``
    key: labels like "pe_dps:0->1" or "group:0->1@spi"), which a differential fuzzer does
    not compare: it checks that nothing *else* is lost."""
    seq = load(path, DEVICES)
    return {label.split(":")[0].split("@")[0] for label in seq.lost or ()}


class Lockstep(RuleBasedStateMachine):
    """The base of the stateful differential machines: two identical machines (``a``,
    ``b``) at the source kernel of the sequence file ``sequence_path()`` names, which
    the same guest actions drive (``both``) and one of which is migrated through it.
    Subclasses say ``sequence_path()`` and ``fresh(kernel)``."""

    def __init__(self):
        super().__init__()
        self.seq = load(self.sequence_path(), DEVICES)
        kernel = self.seq.effective_source_kernel
        self.a = self.fresh(kernel)
        self.b = self.fresh(kernel)
        self.migrations = 0

    def sequence_path(self) -> Path:
        raise NotImplementedError

    def fresh(self, kernel: str):
        raise NotImplementedError

    def both(self, fn):
        fn(self.a)
        fn(self.b)
