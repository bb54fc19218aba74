"""The mutation suite: mutants of the shipped sequences, each judged twice, by the solver
(``proofs.cli.run_sequence``) and by concrete simulation from reachable states
(``models.reachable``, which never uses the solver), and the two verdicts compared.

A *disagreement* is a soundness bug of the tool:
  * a loss label the concrete simulation observed that the symbolic verdict did not
    report (the tool missed a loss), or
  * a symbolic PROVED where the concrete simulation found any loss or refusal.
Symbolic labels the random simulation does not hit are not disagreements (random search
is incomplete); they are counted as unconfirmed.

Used by ``tests/test_mutation.py`` and ``bench/mutate.py`` (which puts this directory on
``sys.path``).
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from models.machine import Config, MissingSaved
from models.reachable import (
    SMALL_PRIORITIES,
    Exploration,
    Plan,
    Reached,
    describe_path,
    explore,
    random_states,
    roundtrip,
    small_actions,
)
from spec.device import DeviceSpec
from spec.devices import DEVICES, shipped_sequences
from spec.sequence import Sequence, SequenceError, Step, ValueSpec, load

# the sizes of the random concrete simulation
SIZES = (Config(1, 64), Config(2, 96), Config(3, 128))
# the machines of the exhaustive check: 1 CPU, one representative interrupt of each kind
# (an SGI, a PPI, an SPI) per machine; see ``exhaustive_configs``
EXHAUSTIVE_INTIDS = (3, 17, 40)

OPERATORS = ("unmutated", "drop", "swap-adjacent", "swap", "duplicate", "clear-zeros", "narrow",
             "kernel", "source-kernel", "drop-save")


@dataclass(frozen=True)
class Mutant:
    name: str  # "qemu-current-6.12: drop line 53 (write GICD_ISENABLER)"
    operator: str
    seq: Sequence


def _stem(seq: Sequence) -> str:
    return Path(seq.path).stem


def _what(s: Step) -> str:
    return s.describe()


def _flat_restore(seq: Sequence) -> list[tuple[int, int | None, Step]]:
    """(top index, inner index or None, step) for every restore step, each-block steps too."""
    out: list[tuple[int, int | None, Step]] = []
    for i, s in enumerate(seq.restore):
        out.append((i, None, s))
        if s.action == "each":
            out.extend((i, j, t) for j, t in enumerate(s.steps))
    return out


def _replace_inner(steps: tuple[Step, ...], i: int, j: int | None, new: Step | None) -> tuple[Step, ...]:
    """``steps`` with step i (or step j of each-block i) replaced by ``new`` (None: removed)."""
    out = list(steps)
    if j is None:
        if new is None:
            del out[i]
        else:
            out[i] = new
        return tuple(out)
    block = out[i]
    inner = list(block.steps)
    if new is None:
        del inner[j]
    else:
        inner[j] = new
    if inner:
        out[i] = dataclasses.replace(block, steps=tuple(inner))
    else:
        del out[i]
    return tuple(out)


def mutants_of(seq: Sequence, spec: DeviceSpec | None = None) -> list[Mutant]:
    """Every mutant of one sequence, by every operator (see OPERATORS)."""
    spec = spec or DEVICES[seq.device]
    stem = _stem(seq)
    out: list[Mutant] = []
    names: set[str] = set()

    def add(op: str, what: str, **changes: object) -> None:
        name = f"{stem}: {what}"
        n = 2
        while name in names:
            name = f"{stem}: {what} #{n}"
            n += 1
        names.add(name)
        out.append(Mutant(name, op, dataclasses.replace(seq, **changes)))  # type: ignore[arg-type]

    add("unmutated", "unmutated")
    restore = seq.restore
    # drop a restore step (a whole step, or one step of an each block)
    for i, j, s in _flat_restore(seq):
        where = " (in the cpu block)" if j is not None else ""
        add("drop", f"drop line {s.line} ({_what(s)}){where}", restore=_replace_inner(restore, i, j, None))
    # swap two top-level restore steps
    for a in range(len(restore)):
        for b in range(a + 1, len(restore)):
            new = list(restore)
            new[a], new[b] = new[b], new[a]
            op = "swap-adjacent" if b == a + 1 else "swap"
            add(op, f"swap lines {restore[a].line} and {restore[b].line} "
                    f"({_what(restore[a])} <-> {_what(restore[b])})", restore=tuple(new))
    # duplicate a step: again right after it, and again at the end
    for i, s in enumerate(restore):
        add("duplicate", f"duplicate line {s.line} ({_what(s)}) right after it",
            restore=restore[:i + 1] + (s,) + restore[i + 1:])
        if i != len(restore) - 1:
            add("duplicate", f"duplicate line {s.line} ({_what(s)}) at the end", restore=restore + (s,))
    # write the clear view of a set/clear pair with zeros instead of ones
    for i, j, s in _flat_restore(seq):
        if s.action != "write":
            continue
        reg = spec.register(s.target)
        if reg.pair_role == "clear" and s.value.kind == "ones":
            add("clear-zeros", f"line {s.line}: {s.target} = zeros instead of ones",
                restore=_replace_inner(restore, i, j, dataclasses.replace(s, value=ValueSpec("zeros"))))
    # narrow the words of a per-interrupt step
    for i, j, s in _flat_restore(seq):
        if s.action not in ("write", "check"):
            continue
        reg = spec.register(s.target)
        if reg.scope != "irq" or reg.words < 2:
            continue
        words = s.index if s.index is not None else tuple(range(reg.words))
        first_spi = reg.word_of(spec.private_irqs) if reg.first_irq + reg.irqs > spec.private_irqs else None
        choices: list[tuple[int, ...]] = [words[:1], words[1:]]
        if first_spi is not None and first_spi > 1:
            choices.append(tuple(w for w in words if w >= first_spi))
        for idx in choices:
            if not idx or idx == words:
                continue
            desc = f"{idx[0]}" if len(idx) == 1 else f"{idx[0]}..{idx[-1]}"
            add("narrow", f"line {s.line}: {s.target} index {desc} instead of "
                          f"{'all words' if s.index is None else s.describe()}",
                restore=_replace_inner(restore, i, j, dataclasses.replace(s, index=idx)))
    # another kernel (the source follows unless the file names its own), migrations between
    # kernels (add source_kernel), and the file's source_kernel removed
    for k in spec.versions:
        if k == seq.kernel:
            continue
        add("kernel", f"kernel {k} instead of {seq.kernel}", kernel=k)
        if not seq.source_kernel:
            add("source-kernel", f"kernel {k}, source_kernel {seq.kernel} (a {seq.kernel} -> {k} migration)",
                kernel=k, source_kernel=seq.kernel)
            add("source-kernel", f"source_kernel {k} (a {k} -> {seq.kernel} migration)", source_kernel=k)
    if seq.source_kernel:
        add("source-kernel", f"no source_kernel (both {seq.kernel})", source_kernel="")
    # drop a save step
    if seq.save is not None:
        for i, s in enumerate(seq.save):
            if s.action == "each":
                for j, t in enumerate(s.steps):
                    add("drop-save", f"drop save line {t.line} ({_what(t)}) (in the cpu block)",
                        save=_replace_inner(seq.save, i, j, None))
            else:
                add("drop-save", f"drop save line {s.line} ({_what(s)})", save=_replace_inner(seq.save, i, None, None))
    return out


def all_mutants(quick: bool = False, seed: int = 0, per_operator: int = 4) -> list[Mutant]:
    """Every mutant of every shipped GICv2 sequence; ``quick`` keeps, per file and operator, a
    seeded sample of ``per_operator`` (and every unmutated file)."""
    out: list[Mutant] = []
    rng = random.Random(seed)
    for path in shipped_sequences():
        if path.parent.name != "gicv2":
            # the concrete side (models/reachable.py: reachable states by guest actions) is
            # GICv2's; GICv3 has no reachable-state generator yet
            continue
        seq = load(path, DEVICES)
        ms = mutants_of(seq)
        if not quick:
            out.extend(ms)
            continue
        by_op: dict[str, list[Mutant]] = {}
        for m in ms:
            by_op.setdefault(m.operator, []).append(m)
        for group in by_op.values():
            out.extend(group if len(group) <= per_operator else rng.sample(group, per_operator))
    return out


# ---------------------------------------------------------------------------------------
# Concrete simulation.


@dataclass
class Witness:
    """Where the concrete simulation saw a label: the size, and the guest/userspace paths
    from reset to the source state and to the destination's prior state."""

    config: Config
    source: tuple
    prior: tuple | None  # None: a freshly created destination

    def describe(self) -> str:
        dest = "fresh destination" if self.prior is None else f"destination prior: {describe_path(self.prior)}"
        return f"{self.config.describe()}; source: {describe_path(self.source)}; {dest}"


Pools = dict[tuple[str, Config], list[Reached]]


def revision(spec: DeviceSpec, kernel: str) -> str:
    """The semantic revision a release falls in (pools are made per revision); a stable
    point release whose combination no mainline revision has is a revision of its own."""
    return getattr(spec.semantics(kernel), "revision", kernel)


def pool(pools: Pools, spec: DeviceSpec, kernel: str, cfg: Config) -> list:
    """The reachable states of ``kernel``'s revision at ``cfg`` (made on first use, with
    the same seeding as ``make_pools``, when the revision has none yet)."""
    key = (revision(spec, kernel), cfg)
    if key not in pools:
        walks, length = POOL_SHAPE
        pools[key] = random_states(spec, key[0], cfg, random.Random(f"0/{key[0]}/{cfg}"), walks, length)
    return pools[key]


POOL_SHAPE = (40, 40)  # walks, length of the pools made on first use


def make_pools(seed: int, walks: int, length: int, spec: DeviceSpec | None = None,
               sizes: tuple[Config, ...] = SIZES) -> Pools:
    """Random reachable states for every kernel and size (deterministic in ``seed``)."""
    spec = spec or DEVICES["gicv2"]
    pools: Pools = {}
    for k in spec.versions:
        for n, cfg in enumerate(sizes):
            rng = random.Random(f"{seed}/{k}/{n}")
            pools[(k, cfg)] = random_states(spec, k, cfg, rng, walks, length)
    return pools


def simulate(seq: Sequence, pools: Pools, sources: int, seed: int = 0,
             spec: DeviceSpec | None = None) -> dict[str, Witness]:
    """Concrete round trips of ``seq`` at every size of ``pools``: ``sources`` reachable
    source states (source kernel) per size, each restored into a fresh destination and,
    for ``destination = "any"``, into one reachable prior state (destination kernel).
    Returns each label seen with its first witness. Raises MissingSaved on bad input."""
    spec = spec or DEVICES[seq.device]
    seen: dict[str, Witness] = {}
    sizes = sorted({cfg for (_, cfg) in pools}, key=lambda c: (c.cpus, c.irqs))
    for cfg in sizes:
        rng = random.Random(f"{seed}/{seq.name}/{cfg}")
        src_pool = pool(pools, spec, seq.effective_source_kernel, cfg)
        dst_pool = pool(pools, spec, seq.kernel, cfg)
        plan = Plan(spec, seq, cfg)
        picks = src_pool if len(src_pool) <= sources else rng.sample(src_pool, sources)
        for src in picks:
            priors: list[Reached | None] = [None]
            if seq.destination == "any":
                priors.append(rng.choice(dst_pool))
            for prior in priors:
                rt = roundtrip(plan, src.state, prior.state if prior is not None else None)
                for label in rt.labels:
                    if label not in seen:
                        seen[label] = Witness(cfg, src.path, prior.path if prior is not None else None)
    return seen


def exhaustive_configs() -> list[Config]:
    """One machine per representative interrupt: the product of three interrupts'
    reachable states (with the CPU interface) is beyond 10^7 states, while each
    per-interrupt accessor touches only its own interrupt (proofs/classes.py, point 1)."""
    return [Config(1, 64, (i,)) for i in EXHAUSTIVE_INTIDS]


_EXPLORED: dict[tuple[str, Config, tuple[int, ...]], Exploration] = {}


def explored(kernel: str, config: Config, priorities: tuple[int, ...] | None = None,
             spec: DeviceSpec | None = None) -> Exploration:
    """The BFS of ``models.reachable.explore`` (cached per process). GICC_BPR and
    GICC_ABPR writes are left out: no action reads those fields, so they would only
    multiply the state count by 4 (the random walks write them)."""
    spec = spec or DEVICES["gicv2"]
    key = (kernel, config, priorities or ())
    if key not in _EXPLORED:
        acts = small_actions(spec, kernel, config, priorities or SMALL_PRIORITIES,
                             leave_out=("GICC_BPR", "GICC_ABPR"))
        _EXPLORED[key] = explore(spec, kernel, config, acts)
    return _EXPLORED[key]


def exhaustive(seq: Sequence, priors_per_source: int = 2, seed: int = 0,
               spec: DeviceSpec | None = None) -> dict[str, Witness]:
    """Round trips from every reachable source state of the exhaustive machines, into a
    fresh destination and (``destination = "any"``) into ``priors_per_source`` reachable
    prior states sampled from the destination kernel's exploration."""
    spec = spec or DEVICES[seq.device]
    seen: dict[str, Witness] = {}
    for cfg in exhaustive_configs():
        src_ex = explored(seq.effective_source_kernel, cfg)
        dst_ex = explored(seq.kernel, cfg)
        dst_keys = list(dst_ex.parent)
        rng = random.Random(f"{seed}/{seq.name}/{cfg}")
        plan = Plan(spec, seq, cfg)
        for key, state in src_ex.states():
            priors: list[tuple | None] = [None]
            if seq.destination == "any":
                priors += [rng.choice(dst_keys) for _ in range(priors_per_source)]
            for pk in priors:
                prior = dst_ex.codec.state(pk, dst_ex.template) if pk is not None else None
                for label in roundtrip(plan, state, prior).labels:
                    if label not in seen:
                        seen[label] = Witness(cfg, src_ex.path(key), dst_ex.path(pk) if pk is not None else None)
    return seen


def shrink(seq: Sequence, label: str, w: Witness, spec: DeviceSpec | None = None) -> Witness:
    """A shorter witness for ``label``: actions of the source and prior paths removed one
    at a time (last first) while the round trip still shows the label."""
    from models.reachable import replay_path

    spec = spec or DEVICES[seq.device]
    plan = Plan(spec, seq, w.config)

    def shows(src: tuple, prior: tuple | None) -> bool:
        s = replay_path(spec, seq.effective_source_kernel, w.config, src).state
        p = replay_path(spec, seq.kernel, w.config, prior).state if prior is not None else None
        return label in roundtrip(plan, s, p).labels

    src, prior = list(w.source), (list(w.prior) if w.prior is not None else None)
    if prior is not None and shows(tuple(src), None):
        prior = None
    for i in reversed(range(len(src))):
        cand = src[:i] + src[i + 1:]
        if shows(tuple(cand), tuple(prior) if prior is not None else None):
            src = cand
    if prior is not None:
        for i in reversed(range(len(prior))):
            cand = prior[:i] + prior[i + 1:]
            if shows(tuple(src), tuple(cand)):
                prior = cand
    return Witness(w.config, tuple(src), tuple(prior) if prior is not None else None)


# ---------------------------------------------------------------------------------------
# The comparison.


@dataclass
class Disagreement:
    mutant: str
    label: str
    why: str  # "missed" (a concrete loss the symbolic labels lack) | "proved" (PROVED with a loss)
    witness: Witness
    check: str = "random"  # "random" | "exhaustive"

    def describe(self) -> str:
        what = ("symbolic PROVED, concrete loss" if self.why == "proved"
                else "concrete loss the symbolic verdict does not report")
        return f"{self.mutant}: {self.label} ({what}, {self.check}) -- {self.witness.describe()}"


def compare(mutant: str, verdict: str, symbolic: set[str] | list[str], concrete: dict[str, Witness],
            check: str = "random") -> list[Disagreement]:
    """The disagreements between a symbolic verdict with its labels and the labels seen
    concretely (with witnesses)."""
    sym = set(symbolic)
    out = []
    for label, w in sorted(concrete.items()):
        if verdict == "PROVED":
            out.append(Disagreement(mutant, label, "proved", w, check))
        elif label not in sym:
            out.append(Disagreement(mutant, label, "missed", w, check))
    return out


@dataclass
class MutantResult:
    name: str
    operator: str
    kernel: str
    verdict: str  # PROVED | COUNTEREXAMPLE | REFUSED | UNKNOWN | INPUT-ERROR
    symbolic: list[str] = field(default_factory=list)
    replayed: int = 0  # symbolic witnesses confirmed by concrete replay
    concrete: dict[str, Witness] = field(default_factory=dict)
    exhaustive: dict[str, Witness] | None = None
    disagreements: list[Disagreement] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def confirmed(self) -> list[str]:
        return sorted(set(self.symbolic) & (set(self.concrete) | set(self.exhaustive or {})))

    @property
    def unconfirmed(self) -> list[str]:
        return sorted(set(self.symbolic) - set(self.confirmed))

    @property
    def proved_with_loss(self) -> bool:
        return self.verdict == "PROVED" and bool(self.concrete or self.exhaustive)


def evaluate(m: Mutant, pools: Pools, sources: int, timeout_s: float | None = None, seed: int = 0,
             exhaustive_for: tuple[str, ...] = ("PROVED",)) -> MutantResult:
    """Judge one mutant symbolically (all sizes) and concretely, and compare."""
    from proofs.cli import run_sequence  # the solver side; models.reachable stays solver-free

    t0 = time.perf_counter()
    res = MutantResult(m.name, m.operator, m.seq.kernel, "")
    try:
        from proofs.solver import Budget

        budget = Budget(timeout_ms=None if timeout_s is None else max(1, round(timeout_s * 1000)))
        rep = run_sequence(m.seq, budget=budget)  # the default, deterministic budget
    except SequenceError as e:
        res.verdict, res.error = "INPUT-ERROR", e.message
        res.seconds = time.perf_counter() - t0
        return res
    res.verdict = rep.verdict
    res.symbolic = list(rep.result.labels)
    res.replayed = sum(r.confirmed for r in rep.replays)
    try:
        res.concrete = simulate(m.seq, pools, sources, seed)
        if res.verdict in exhaustive_for:
            res.exhaustive = exhaustive(m.seq, seed=seed)
    except MissingSaved as e:  # the solver accepted what the concrete side refuses: report it
        res.error = f"concrete side: {e}"
    if res.verdict != "UNKNOWN":
        res.disagreements = compare(m.name, res.verdict, res.symbolic, res.concrete)
        if res.exhaustive is not None:
            res.disagreements += compare(m.name, res.verdict, res.symbolic, res.exhaustive, "exhaustive")
        for d in res.disagreements:
            d.witness = shrink(m.seq, d.label, d.witness)
    res.seconds = time.perf_counter() - t0
    return res
