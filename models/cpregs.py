"""arm-cpregs: the CPU register list protocol, executable (spec in ``spec.cpregs``).

One semantics, two interpretations, as for the devices: the merge of cpu_post_load is
written once, as one step of its loop over a small list algebra (``ListOps``: positions,
64-bit indexes and values, arrays, conditions). ``CONCRETE_LISTS`` runs it on Python
integers and tuples (replay, real lists, reports); ``models.symbolic.SymbolicListOps`` on
Z3 terms (integer positions, 64-bit bit-vector indexes and values, arrays), which the
proofs use both unrolled (bounded witnesses) and as the transition relation of a loop
invariant (every length). The write of a register is ``spec.cpregs.write`` over
``spec.algebra`` ops, likewise on both backends.

The loop's state is QEMU's (``i``, ``v``, the destination's values) plus three ghost
arrays the proofs and reports read and QEMU does not keep: ``took[j]`` (1 + the incoming
position whose value destination entry ``j`` took, 0 if none), ``at[k]`` (the destination
position incoming entry ``k`` matched, -1 if none) and ``first_bad`` (the incoming position
of the first index the destination does not know, -1 if none).

Two loops (``spec.cpregs.Variant.loop``):
  qemu   - cpu_post_load today (and the seed): stops at the first unknown incoming index
           and when either list ends
  traces - the v6 rework (a384f27ce9): goes on past an unknown incoming index (v++), walks
           both tails (an incoming tail is unexpected; a destination tail is missing from
           the stream), and fails after the loop if anything was unexpected; an incoming
           index for which ``safe(index)`` holds (x-mig-safe-missing-regs) is skipped
           instead of counted. Its three loops are one loop here (guard: either list not
           exhausted), which takes the same steps in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from models.concrete import CONCRETE
from spec import cpregs as S

RUNNING, OK, FAIL = 0, 1, 2
STATUS = {RUNNING: "running", OK: "ok", FAIL: "fail"}


class ListOps(Protocol):
    """The list algebra of the merge. Positions (list positions, lengths, counters) are
    integers; indexes and values are 64-bit; conditions are the backend's Booleans."""

    symbolic: bool

    def pos(self, p: int) -> Any: ...
    def word(self, x: int) -> Any: ...
    def true(self) -> Any: ...
    def plt(self, a: Any, b: Any) -> Any: ...
    def peq(self, a: Any, b: Any) -> Any: ...
    def add(self, a: Any, k: int) -> Any: ...
    def ult(self, a: Any, b: Any) -> Any: ...
    def weq(self, a: Any, b: Any) -> Any: ...
    def and_(self, *cs: Any) -> Any: ...
    def or_(self, *cs: Any) -> Any: ...
    def not_(self, c: Any) -> Any: ...
    def ite(self, c: Any, a: Any, b: Any) -> Any: ...
    def read(self, arr: Any, p: Any) -> Any: ...
    def write(self, arr: Any, p: Any, x: Any) -> Any: ...


class ConcreteListOps:
    """``ListOps`` on Python ints, bools and tuples. Reading past the end gives 0 (the
    loop never uses such a read: every use is guarded by a position check)."""

    symbolic = False

    def pos(self, p: int) -> int:
        return p

    def word(self, x: int) -> int:
        return x & (2**64 - 1)

    def true(self) -> bool:
        return True

    def plt(self, a: int, b: int) -> bool:
        return a < b

    def peq(self, a: int, b: int) -> bool:
        return a == b

    def add(self, a: int, k: int) -> int:
        return a + k

    def ult(self, a: int, b: int) -> bool:
        return a < b

    def weq(self, a: int, b: int) -> bool:
        return a == b

    def and_(self, *cs: bool) -> bool:
        return all(cs)

    def or_(self, *cs: bool) -> bool:
        return any(cs)

    def not_(self, c: bool) -> bool:
        return not c

    def ite(self, c: bool, a: Any, b: Any) -> Any:
        return a if c else b

    def read(self, arr: tuple[int, ...], p: int) -> int:
        return arr[p] if 0 <= p < len(arr) else 0

    def write(self, arr: tuple[int, ...], p: int, x: int) -> tuple[int, ...]:
        if p < 0:
            raise IndexError(p)
        if p >= len(arr):
            arr = arr + (0,) * (p + 1 - len(arr))
        return arr[:p] + (x,) + arr[p + 1:]


CONCRETE_LISTS = ConcreteListOps()


@dataclass(frozen=True)
class MergeInputs:
    """What cpu_post_load's loop reads: the destination's indexes (``dest``, ``n`` of them,
    cpreg_indexes / cpreg_array_len) and the incoming indexes and values (``inc``,
    ``inc_val``, ``m``: cpreg_vmstate_indexes / _values / _array_len). ``safe(index)``: the
    x-mig-safe-missing-regs test (a condition), for the traces loop."""

    dest: Any
    n: Any
    inc: Any
    inc_val: Any
    m: Any
    safe: Callable[[Any], Any]


@dataclass(frozen=True)
class MergeState:
    i: Any
    v: Any
    values: Any  # cpreg_values: the destination's values, being merged
    took: Any  # ghost: destination position -> 1 + incoming position taken (0: none)
    at: Any  # ghost: incoming position -> destination position matched (-1: none)
    status: Any  # RUNNING / OK / FAIL
    unexpected: Any  # traces: unknown incoming indexes seen (not safe to miss)
    first_bad: Any  # ghost: incoming position of the first unknown index (-1: none)


def initial(lops: ListOps, values: Any, took0: Any, at0: Any) -> MergeState:
    """The state before the loop: ``values`` the destination's current values, ``took0``
    an all-0 array, ``at0`` an all-(-1) array."""
    z = lops.pos(0)
    return MergeState(z, z, values, took0, at0, lops.pos(RUNNING), z, lops.pos(-1))


def step(lops: ListOps, loop: str, inp: MergeInputs, st: MergeState) -> MergeState:
    """One iteration of the loop (or nothing once it has stopped). ``loop``: "qemu" or
    "traces" (module docstring). Every update is guarded by ``live``, so a stopped state
    is a fixed point."""
    L = lops
    live = L.peq(st.status, L.pos(RUNNING))
    in_i, in_v = L.plt(st.i, inp.n), L.plt(st.v, inp.m)
    ours = L.read(inp.dest, st.i)  # cpu->cpreg_indexes[i]
    theirs = L.read(inp.inc, st.v)  # cpu->cpreg_vmstate_indexes[v]
    both = L.and_(live, in_i, in_v)
    match = L.and_(both, L.weq(theirs, ours))
    if loop == "qemu":
        skip = L.and_(both, L.ult(ours, theirs))  # "register in our list but not incoming: skip it"
        bad = L.and_(both, L.ult(theirs, ours))  # "register in their list but not ours: fail migration"
        unknown = bad
        done = L.and_(live, L.not_(L.and_(in_i, in_v)))
        status = L.ite(bad, L.pos(FAIL), L.ite(done, L.pos(OK), st.status))
        unexpected = L.ite(bad, L.add(st.unexpected, 1), st.unexpected)
    elif loop == "traces":
        # first loop: as above, but an unknown index is recorded and skipped (v++);
        # then "for ( ; i < cpu->cpreg_array_len; i++)" (missing) and
        # "for ( ; v < cpu->cpreg_vmstate_array_len; v++)" (unexpected)
        skip = L.and_(live, in_i, L.or_(L.not_(in_v), L.ult(ours, theirs)))
        unknown = L.and_(live, in_v, L.or_(L.not_(in_i), L.ult(theirs, ours)))
        bad = L.and_(unknown, L.not_(inp.safe(theirs)))
        unexpected = L.ite(bad, L.add(st.unexpected, 1), st.unexpected)
        done = L.and_(live, L.not_(in_i), L.not_(in_v))
        # kvm_arm_cpu_post_load: "if (cpu->cpreg_vmstate_unexpected_indexes_array_len) return false"
        status = L.ite(done, L.ite(L.peq(st.unexpected, L.pos(0)), L.pos(OK), L.pos(FAIL)), st.status)
    else:
        raise ValueError(f"unknown loop {loop!r}")
    first_bad = L.ite(L.and_(bad, L.peq(st.first_bad, L.pos(-1))), st.v, st.first_bad)
    return MergeState(
        i=L.ite(L.or_(skip, match), L.add(st.i, 1), st.i),
        v=L.ite(L.or_(match, unknown) if loop == "traces" else match, L.add(st.v, 1), st.v),
        values=L.ite(match, L.write(st.values, st.i, L.read(inp.inc_val, st.v)), st.values),
        took=L.ite(match, L.write(st.took, st.i, L.add(st.v, 1)), st.took),
        at=L.ite(match, L.write(st.at, st.v, st.i), st.at),
        status=status,
        unexpected=unexpected,
        first_bad=first_bad,
    )


@dataclass
class MergeResult:
    """A concrete run of the loop."""

    status: str  # "ok" | "fail"
    values: tuple[int, ...]
    took: tuple[int, ...]
    at: tuple[int, ...]
    i: int
    v: int
    unexpected: int
    first_bad: int
    steps: int


def run_merge(loop: str, dest: Sequence[int], dest_val: Sequence[int], inc: Sequence[int],
              inc_val: Sequence[int], safe: Iterable[int] = ()) -> MergeResult:
    """Run the loop on concrete lists (in the order given: the caller sorts, or not)."""
    L = CONCRETE_LISTS
    safe_set = frozenset(safe)
    inp = MergeInputs(tuple(dest), len(dest), tuple(inc), tuple(inc_val), len(inc),
                      lambda x: x in safe_set)
    st = initial(L, tuple(dest_val), (0,) * len(dest), (-1,) * len(inc))
    steps = 0
    while st.status == RUNNING:
        st = step(L, loop, inp, st)
        steps += 1
        if steps > len(dest) + len(inc) + 1:  # the loop takes at most n + m + 1 steps
            raise AssertionError("the merge did not stop")
    return MergeResult(STATUS[st.status], st.values, st.took, st.at, st.i, st.v, st.unexpected,
                       st.first_bad, steps)


def spec_merge(dest: Sequence[int], dest_val: Sequence[int], inc: Sequence[int],
               inc_val: Sequence[int]) -> tuple[list[int], list[int]]:
    """What the merge should do, by sets: (destination values after it, incoming positions
    the destination does not know). Independent of order."""
    pos = {x: k for k, x in enumerate(inc)}
    values = [inc_val[pos[d]] if d in pos else dv for d, dv in zip(dest, dest_val, strict=True)]
    known = set(dest)
    return values, [k for k, x in enumerate(inc) if x not in known]


# ---------------------------------------------------------------------------------------
# The whole protocol on concrete lists.

ROUND_TRIP, REFUSED, SILENT, UNKNOWN = "round trip", "refused", "silent change", "unknown"
# the entries that make a load that succeeded a silent change: a value the source had that the
# destination does not end with
SILENT_KINDS = ("dropped", "hidden-dropped", "hidden-differs", "kept-reset", "changed")


@dataclass
class Entry:
    """What happened to one register in a migration."""

    index: int
    name: str
    what: str  # carried | kept-reset | dropped | refused | write-refused | unknown-rule | ...
    source_value: int | None = None
    dest_value: int | None = None  # the destination's value before (reset)
    final: int | None = None  # the destination's value after
    why: str = ""


@dataclass
class Migration:
    source: str
    destination: str
    variant: str
    accel: str
    verdict: str = ROUND_TRIP
    stage: str = ""  # where it was refused: "length" | "merge" | "write"
    reason: str = ""
    sent: int = 0
    capacity: int = 0
    entries: list[Entry] = field(default_factory=list)
    hidden: tuple[int, ...] = ()
    safe_missing: tuple[int, ...] = ()

    def by(self, what: str) -> list[Entry]:
        return [e for e in self.entries if e.what == what]


def build_list(regs: Iterable[S.Register], hidden: Iterable[int] = (), sort: bool = True) -> list[S.Register]:
    """The list QEMU keeps (kvm_arm_init_cpreg_list): no core/SVE (NO_MIGRATE) registers, no
    hidden ones, sorted ascending (unless ``sort`` is False, to show what breaks)."""
    hid = set(hidden)
    out = [r for r in regs if r.rule.kind != S.NO_MIGRATE and r.index not in hid]
    return sorted(out, key=lambda r: r.index) if sort else out


def migrate(src: S.RegList, dst: S.RegList, variant: S.Variant, accel: str = "kvm",
            hidden: Iterable[int] | None = None, safe_missing: Iterable[int] | None = None,
            sort: bool = True) -> Migration:
    """One QEMU-style migration of a vCPU from a fresh ``src`` (values as captured) to a
    fresh ``dst`` (values as captured, i.e. reset), under ``variant``."""
    hid = tuple(variant.default_hidden if hidden is None else hidden) if variant.hidden else ()
    safe = tuple(variant.default_safe_missing if safe_missing is None else safe_missing) \
        if variant.safe_missing else ()
    mig = Migration(src.label, dst.label, variant.name, accel, hidden=hid, safe_missing=safe)
    s_list = build_list(src.registers, hid, sort)
    d_list = build_list(dst.registers, hid, sort)
    s_raw = {r.index: r for r in src.registers}
    d_raw = {r.index: r for r in dst.registers}
    for idx in hid:  # hidden: left out of both lists (never read, sent, expected or written)
        sr, dr = s_raw.get(idx), d_raw.get(idx)
        if sr is None and dr is None:
            continue
        name = (sr or dr).name  # type: ignore[union-attr]
        if sr is not None and dr is not None:
            same = (sr.value & dr.rule.compared) == (dr.value & dr.rule.compared)
            mig.entries.append(Entry(idx, name, "hidden" if same else "hidden-differs", sr.value, dr.value, dr.value,
                                     why="hidden on both sides: not sent; the destination keeps its reset value"
                                     + (", which equals the source's" if same else ", not the source's")))
        elif sr is not None:
            mig.entries.append(Entry(idx, name, "hidden-dropped", sr.value,
                                     why="hidden: not sent; the destination's kernel has no such register"))
        else:
            mig.entries.append(Entry(idx, name, "kept-reset", None, dr.value, dr.value,  # type: ignore[union-attr]
                                     why="hidden: the destination's register keeps its reset value; the source's "
                                         "kernel has no such register"))
    n, m = len(d_list), len(s_list)
    mig.sent = m
    # cpu_pre_load (v6): the incoming arrays hold n + |safe| + 10 entries
    mig.capacity = n + variant.extra_capacity + len(safe)
    s_names = {r.index: r for r in s_list}
    d_by = {r.index: r for r in d_list}
    if not 0 <= m <= mig.capacity:
        mig.verdict, mig.stage = REFUSED, "length"
        mig.reason = (f"the stream's cpreg_vmstate_array_len {m} is above the destination's {mig.capacity} "
                      "(get_int32_le: 'failed to load cpu:cpreg_vmstate_array_len'; QEMU names no register)")
        for r in s_list:
            if r.index not in d_by and r.index not in safe:
                mig.entries.append(Entry(r.index, r.name, "unknown-incoming", r.value,
                                         why="only in the source's list (not named by QEMU: the length check "
                                             "fails first)"))
        return mig
    res = run_merge(variant.loop, [r.index for r in d_list], [r.value for r in d_list],
                    [r.index for r in s_list], [r.value for r in s_list], safe)
    if res.status == "fail":
        mig.verdict, mig.stage = REFUSED, "merge"
        bad = s_list[res.first_bad]
        if variant.loop == "qemu":
            mig.reason = (f"cpu_post_load returns -1 at {bad.name} ({bad.index:#018x}): an incoming index "
                          "the destination's list lacks (QEMU logs no name)")
            names = [bad]
        else:
            names = [r for k, r in enumerate(s_list) if r.index not in d_by and r.index not in safe]
            mig.reason = (f"{len(names)} incoming index(es) the destination's list lacks, named in QEMU's "
                          f"'Unexpected register in input stream' lines (at most {S.ANOMALIES})")
        for r in names:
            mig.entries.append(Entry(r.index, r.name, "refused", r.value, why="only in the source's list"))
        return mig
    # the merge succeeded: what each register became
    for k, r in enumerate(s_list):
        if res.at[k] < 0:
            why = ("listed in x-mig-safe-missing-regs: ignored, its value dropped" if r.index in safe else
                   "above the destination's last index: cpu_post_load's loop ended before reaching it, so "
                   "it is neither refused nor applied")
            mig.entries.append(Entry(r.index, r.name, "dropped", r.value, why=why))
    values = res.values
    failures: list[Entry] = []
    for j, d in enumerate(d_list):
        taken = res.took[j] > 0
        incoming = values[j]
        if not taken:
            mig.entries.append(Entry(d.index, d.name, "kept-reset", None, d.value, d.value,
                                     why="only in the destination's list: keeps its reset value; the "
                                         "source's state for it (if its guest had any) is not carried"))
            continue
        sv = s_names[d.index]
        if S.unmodelled(d.rule, d.value, incoming):
            mig.entries.append(Entry(d.index, d.name, "unknown-rule", incoming, d.value, None,
                                     why=f"no rule modelled for writing another value ({d.rule.source})"))
            continue
        ok, after = S.write(CONCRETE, d.rule, d.value, incoming, accel)
        if not ok:
            failures.append(Entry(d.index, d.name, "write-refused", incoming, d.value, d.value,
                                  why=f"{d.rule.kind}: {d.rule.source}"))
            continue
        cmp = d.rule.compared
        if d.live or sv.live:
            mig.entries.append(Entry(d.index, d.name, "carried", incoming, d.value, incoming,
                                     why="a running count: written at KVM_PUT_FULL_STATE, not compared"))
        elif (after & cmp) != (incoming & cmp):
            mig.entries.append(Entry(d.index, d.name, "changed", incoming, d.value, after,
                                     why=f"accepted but reads back {after:#x}: {d.rule.kind}: {d.rule.source}"))
        else:
            note = "" if after == incoming else f"read-only derived bits {d.rule.ro_mask:#x} read {after:#x}"
            mig.entries.append(Entry(d.index, d.name, "carried", incoming, d.value, after, why=note))
    if failures:
        mig.entries.extend(failures)
        mig.verdict, mig.stage = REFUSED, "write"
        mig.reason = ("KVM_SET_ONE_REG refused " + ", ".join(e.name for e in failures) +
                      " (write_list_to_kvmstate: 'Could not set register'; the load fails)"
                      if accel == "kvm" else
                      "the read-back differs for " + ", ".join(e.name for e in failures) +
                      " (write_list_to_cpustate; the load fails)")
        return mig
    if mig.by("unknown-rule"):
        mig.verdict = UNKNOWN
        mig.reason = "a value the model has no KVM rule for: " + ", ".join(e.name for e in mig.by("unknown-rule"))
    elif any(mig.by(w) for w in SILENT_KINDS):
        mig.verdict = SILENT
        parts = []
        if mig.by("dropped"):
            parts.append(f"{len(mig.by('dropped'))} incoming register(s) dropped without an error")
        if mig.by("hidden-dropped") or mig.by("hidden-differs"):
            parts.append(f"{len(mig.by('hidden-dropped')) + len(mig.by('hidden-differs'))} hidden register(s) "
                         "whose value does not reach the destination")
        if mig.by("kept-reset"):
            parts.append(f"{len(mig.by('kept-reset'))} destination-only register(s) left at reset")
        if mig.by("changed"):
            parts.append(f"{len(mig.by('changed'))} register(s) read back another value")
        mig.reason = "; ".join(parts)
    return mig


# ---------------------------------------------------------------------------------------
# Real lists: spec/cpregs/*.json (the format of models.kernel.reglist).

CPREGS_DIR = Path(S.__file__).resolve().parent / "cpregs"


# The record fields of a capture (models/kernel/reglist.py: Decoded.cls, Decoded.kind)
CLASSES = ("core", "sysreg", "firmware", "firmware-bitmap", "demux", "sve")
KINDS = ("core", "id", "firmware", "timer", "counter", "sve", "state")


class ListError(ValueError):
    """A register list file that cannot be used (message: file[:line]: what, and what is valid)."""


def _line_of(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 0


def load_list(path: Path | str) -> S.RegList:
    """A register list file (format gicproof-cpregs/1, as ``python -m models.kernel.reglist
    capture`` writes) as a ``RegList`` with each register's KVM rule on that kernel."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ListError(f"{p}: cannot read it: {e.strerror or e}") from None
    return parse_list(text, p)


def parse_list(text: str, p: Path) -> S.RegList:
    """``load_list`` of a file's text (``p``: the name its errors give); ``gicproof
    regress`` reads the base revision's lists this way, from git."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ListError(f"{p}:{e.lineno}: not JSON: {e.msg} (expected a gicproof-cpregs/1 file, as "
                        "'python -m models.kernel.reglist capture' writes)") from None
    if not isinstance(data, dict) or data.get("format") != "gicproof-cpregs/1":
        raise ListError(f"{p}:1: not a gicproof-cpregs/1 register list (its \"format\" must be "
                        "\"gicproof-cpregs/1\")")
    try:
        label = str(data["kernel"]["label"])
        release = _release(str(data["kernel"].get("version") or data["kernel"]["uname_r"]))
        records = data["registers"]
    except (KeyError, TypeError, ValueError) as e:
        raise ListError(f"{p}: missing or bad kernel/registers entry ({e}): expected \"kernel\": {{\"label\", "
                        "\"version\"}} and \"registers\": [...]") from None
    ctr = 0
    for r in records:
        if isinstance(r, dict) and r.get("name") == "CTR_EL0" and "value" in r:
            ctr = int(r["value"], 16)
    regs = []
    seen: set[int] = set()
    if not isinstance(records, list):
        raise ListError(f"{p}: \"registers\" must be a list of register entries")
    for r in records:
        line = _line_of(text, json.dumps(r.get("index"))) if isinstance(r, dict) else 0
        try:
            index = int(r["index"], 16)
            name, cls, kind = str(r["name"]), str(r["class"]), str(r["kind"])
            if cls not in CLASSES:
                raise ValueError(f"unknown register class {cls!r}: valid: {', '.join(CLASSES)}")
            if kind not in KINDS:
                raise ValueError(f"unknown register kind {kind!r}: valid: {', '.join(KINDS)}")
            if index in seen:
                raise ValueError(f"index {index:#018x} is listed twice")
            seen.add(index)
            if "value" not in r:
                raise ValueError(f"no value (errno {r.get('errno', '?')}): a register KVM_GET_ONE_REG "
                                 "refused cannot be migrated")
            value = int(r["value"], 16)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ListError(f"{p}:{line}: bad register entry: {e} (each entry needs \"index\" and \"value\" "
                            "in hex, \"name\", \"class\" and \"kind\")") from None
        rule = S.kvm_rule(release, name, cls, kind, ctr)
        regs.append(S.Register(index, name, rule, value, live=kind == "counter"))
    return S.RegList(label, release, tuple(regs), source=str(p))


MATRIX_EXPECTATIONS = CPREGS_DIR / "matrix.toml"


@dataclass(frozen=True)
class CellExpectation:
    source: str
    destination: str
    cell: str  # the cell text the tool computed (proofs.cpregs.cell_text)
    why: str
    line: int


def load_matrix_expectations(path: Path | str = MATRIX_EXPECTATIONS) -> dict[tuple[str, str], CellExpectation]:
    """The expected cells of the shipped lists' matrix (format gicproof-cpregs-matrix/1),
    by (source label, destination label). Errors name the file, the line and what is valid."""
    import tomllib

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ListError(f"{p}: cannot read it: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ListError(f"{p}: not TOML: {e}") from None
    if data.get("format") != "gicproof-cpregs-matrix/1":
        raise ListError(f"{p}:1: \"format\" must be \"gicproof-cpregs-matrix/1\"")
    out: dict[tuple[str, str], CellExpectation] = {}
    lines = [i + 1 for i, t in enumerate(text.splitlines()) if t.strip() == "[[cell]]"]
    cells = data.get("cell", [])
    if not isinstance(cells, list):
        raise ListError(f"{p}: \"cell\" must be an array of tables ([[cell]])")
    for n, c in enumerate(cells):
        line = lines[n] if n < len(lines) else 0
        unknown = sorted(set(c) - {"source", "destination", "cell", "why"})
        missing = [k for k in ("source", "destination", "cell", "why") if not isinstance(c.get(k), str) or not c[k]]
        if unknown or missing:
            raise ListError(f"{p}:{line}: a [[cell]] needs the strings source, destination, cell and why"
                            + (f" (missing: {', '.join(missing)})" if missing else "")
                            + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
        key = (c["source"], c["destination"])
        if key in out:
            raise ListError(f"{p}:{line}: {key[0]} -> {key[1]} is listed twice (first at line {out[key].line})")
        out[key] = CellExpectation(c["source"], c["destination"], c["cell"], c["why"], line)
    return out


def _release(version: str) -> tuple[int, ...]:
    nums = []
    for part in version.replace("-", ".").replace("+", ".").split("."):
        if not part.isdigit():
            break
        nums.append(int(part))
    if len(nums) < 2:
        raise ValueError(f"no release in {version!r}")
    return tuple(nums[:3])


def shipped_lists() -> list[S.RegList]:
    """The four shipped kernels' lists, oldest first."""
    lists = [load_list(p) for p in sorted(CPREGS_DIR.glob("*.json"))]
    return sorted(lists, key=lambda r: r.release)

