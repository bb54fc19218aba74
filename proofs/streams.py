"""Old <-> new compatibility of QEMU's VMState streams (``spec.streams``), and what QEMU's
``scripts/vmstate-static-checker.py`` would say about the same pair.

``decide(stream, source, destination, source_host, destination_host)`` runs QEMU's load
algorithm (migration/vmstate.c vmstate_load_state, vmstate_subsection_load) on the two
descriptions, over every source state that matters: each field a ``needed`` predicate, a
``pre_load`` default or a reset value depends on takes every constant those mention and
one value different from all of them, so every branch of every predicate is taken (the
predicates compare a field with a constant). The configuration properties a predicate may
test take the only value a KVM VM can have (``Stream.config``), ID values the kernel's
value on each host kind (``Stream.hosts``). For each source state:

1. the section's version: a source ``version_id`` above the destination's, or below its
   ``minimum_version_id``, fails the load (-EINVAL, 'incoming version_id %d is too new/old');
2. the fields, in order (they carry no tags): different lists desynchronise the stream,
   which is reported as unknown (not modelled further);
3. every subsection whose ``needed`` holds on the source is sent; one the destination
   does not know fails the load (-ENOENT, vmstate_subsection_load 'sub_vmsd == NULL');
4. a destination field that nothing sent keeps its ``pre_load`` value, else its reset
   value (QEMU resets every device before an incoming migration);
5. the destination's post_load writes ID values to the kernel (``StreamVersion.checks``):
   a value other than the kernel's is refused, and QEMU aborts the destination;
6. what the guest sees afterwards is compared with the source: a state field whose value
   changed, or an ID value of the host that changed with nothing refusing it, is a silent
   change.

A cell is ``silent`` if some source state is silently changed, else ``refused`` if some
state is refused, else ``round trip``; ``unknown`` when the stream desynchronises.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from spec.streams import FIXED, HOST, STATE, Description, Field, Stream, StreamVersion

ROUND_TRIP = "round trip"
REFUSED = "refused"
SILENT = "silent"
UNKNOWN = "unknown"

VMSTATE = "migration/vmstate.c"


@dataclass
class Cell:
    """One migration: a source version on a host kind to a destination version on one."""

    source: str
    destination: str
    source_host: str
    destination_host: str
    verdict: str = ROUND_TRIP
    where: str = ""  # the step that refuses, or what changes
    errno: str = ""
    changed: list[str] = field(default_factory=list)  # silent changes: "field: before -> after"
    notes: list[str] = field(default_factory=list)  # why, one sentence each
    checker: str = ""  # what the static checker's report means for this cell
    checker_code: str = ""  # caught | false alarm | missed | flags it | right

    def side(self, version: str, host: str) -> str:
        return f"{version}@{host}" if host else version

    @property
    def label(self) -> str:
        return f"{self.side(self.source, self.source_host)} -> {self.side(self.destination, self.destination_host)}"

    @property
    def code(self) -> str:
        if self.verdict == REFUSED:
            return f"REFUSED {self.errno}"
        if self.verdict == SILENT:
            names = sorted({c.split(":")[0] for c in self.changed})
            return "SILENT " + ",".join(names[:2]) + (f"+{len(names) - 2}" if len(names) > 2 else "")
        if self.verdict == UNKNOWN:
            return "UNKNOWN"
        return "ok"

    def json(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "source_host": self.source_host,
                "destination_host": self.destination_host, "verdict": self.verdict, "where": self.where,
                "errno": self.errno, "changed": self.changed, "notes": self.notes, "static_checker": self.checker,
                "static_checker_code": self.checker_code}


# ---------------------------------------------------------------------------------------
# Walking descriptions.


def _walk(d: Description) -> Iterator[tuple[Field, Description]]:
    """Every field with the description that holds it (nested structs and subsections)."""
    for f in d.fields:
        yield f, d
        if f.struct is not None:
            yield from _walk(f.struct)
    for s in d.subsections:
        yield from _walk(s)


def _descriptions(d: Description) -> Iterator[Description]:
    yield d
    for f in d.fields:
        if f.struct is not None:
            yield from _descriptions(f.struct)
    for s in d.subsections:
        yield from _descriptions(s)


def _shape(d: Description, version: int) -> list[tuple[Any, ...]]:
    """The field list one side puts on (or reads from) the wire at ``version``."""
    out: list[tuple[Any, ...]] = []
    for f in d.fields:
        if f.version_id > version:
            continue
        inner = tuple(_shape(f.struct, f.struct.version_id)) if f.struct is not None else ()
        out.append((f.name, f.size, f.count, inner))
    return out


def _variables(stream: Stream, *versions: StreamVersion) -> dict[str, list[int]]:
    """The STATE fields the outcome depends on, each with its representative values."""
    consts: dict[str, set[int]] = {}
    for v in versions:
        for d in _descriptions(v.description):
            if d.needed is not None and d.needed.field and d.needed.field not in stream.config:
                consts.setdefault(d.needed.field, set()).add(d.needed.value)
            for name, value in d.pre_load.items():
                consts.setdefault(name, set()).add(value)
        for name, value in v.reset.items():
            if isinstance(value, int):
                consts.setdefault(name, set()).add(value)
    kinds: dict[str, str] = {}
    for v in versions:
        for f, _ in _walk(v.description):
            kinds.setdefault(f.name, f.value)
    out = {}
    for name, cs in sorted(consts.items()):
        if kinds.get(name, STATE) != STATE:
            continue
        out[name] = sorted(cs | {0, max(cs) + 1})
    return out


def _source_value(stream: Stream, f: Field, host: str, state: dict[str, int]) -> int | None:
    if f.value == HOST:
        return stream.hosts.get(host, {}).get(f.name, 0)
    if f.value == FIXED:
        return stream.fixed.get(f.name, 0)
    if f.value == STATE:
        return state.get(f.name)  # None: any value, carried as is
    return None


def _needed(stream: Stream, sub: Description, values: dict[str, int | None]) -> bool:
    n = sub.needed
    if n is None or not n.field:
        return True
    if n.field in stream.config:
        return n.holds(stream.config[n.field])
    v = values.get(n.field)
    if v is None:
        raise ValueError(f"{sub.name}: needed tests {n.field}, which has no value")
    return n.holds(v)


# ---------------------------------------------------------------------------------------
# Deciding one cell.


@dataclass
class _Run:
    verdict: str
    where: str = ""
    errno: str = ""
    changed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _hex(v: int | None) -> str:
    return "any" if v is None else f"{v:#x}"


def _load(stream: Stream, src: StreamVersion, dst: StreamVersion, hs: str, hd: str, state: dict[str, int]) -> _Run:
    sd, dd = src.description, dst.description
    notes: list[str] = []
    if sd.version_id > dd.version_id:
        return _Run(REFUSED, f"load of section {dd.name}", "EINVAL",
                    notes=[f"the source sends version_id {sd.version_id}; the destination's is {dd.version_id}: "
                           f"'{dd.name}: incoming version_id {sd.version_id} is too new for local version_id "
                           f"{dd.version_id}' ({VMSTATE} vmstate_load_state)"])
    if sd.version_id < dd.minimum_version_id:
        return _Run(REFUSED, f"load of section {dd.name}", "EINVAL",
                    notes=[f"the source sends version_id {sd.version_id}; the destination accepts "
                           f"{dd.minimum_version_id}..{dd.version_id}: '{dd.name}: incoming version_id "
                           f"{sd.version_id} is too old for local minimum version_id {dd.minimum_version_id}' "
                           f"({VMSTATE} vmstate_load_state)"])
    for s_desc, d_desc, version in _paired(sd, dd, sd.version_id):
        if _shape(s_desc, version) != _shape(d_desc, version):
            return _Run(UNKNOWN, f"fields of {d_desc.name}",
                        notes=[f"{d_desc.name}: the two sides' field lists differ at version {version}; the fields "
                               "carry no tags, so the destination reads the stream out of step (not modelled "
                               "further: QEMU may fail at a later marker or load wrong values)"])
    # source values of every field the source has
    src_values: dict[str, int | None] = {}
    for f, _ in _walk(sd):
        src_values[f.name] = _source_value(stream, f, hs, state)
    # subsections sent, recursively through the descriptions both sides load
    sent: set[str] = set()
    for s_desc, d_desc, _ in _paired(sd, dd, sd.version_id):
        d_subs = {x.name: x for x in d_desc.subsections}
        for sub in s_desc.subsections:
            if not _needed(stream, sub, src_values):
                continue
            if sub.name not in d_subs:
                return _Run(REFUSED, f"load of subsection {sub.name}", "ENOENT",
                            notes=[f"the source sends {sub.name} ({sub.needed.describe() if sub.needed else 'always'} "
                                   f"holds: {_needed_why(stream, sub, src_values)}); the destination does not know it: "
                                   f"{VMSTATE} vmstate_subsection_load 'if (sub_vmsd == NULL) {{ ... return -ENOENT; }}'; "
                                   "the load fails and the source resumes"])
            dsub = d_subs[sub.name]
            if sub.version_id > dsub.version_id or sub.version_id < dsub.minimum_version_id:
                return _Run(REFUSED, f"load of subsection {sub.name}", "EINVAL",
                            notes=[f"{sub.name}: version {sub.version_id} outside the destination's "
                                   f"{dsub.minimum_version_id}..{dsub.version_id} ({VMSTATE} vmstate_load_state)"])
            if _shape(sub, sub.version_id) != _shape(dsub, sub.version_id):
                return _Run(UNKNOWN, f"fields of {sub.name}",
                            notes=[f"{sub.name}: the two sides' field lists differ; the destination reads the stream "
                                   "out of step (not modelled further)"])
            sent.add(sub.name)
    # the destination's values: transferred, else pre_load, else reset
    dst_values: dict[str, int | None] = {}
    origin: dict[str, str] = {}
    pre_load = {k: v for d in _descriptions(dd) for k, v in d.pre_load.items()}
    main = {f.name for d in _main(dd) for f in d.fields}
    for f, holder in _walk(dd):
        if f.name in main or holder.name in sent:
            dst_values[f.name] = src_values.get(f.name)
            origin[f.name] = "the stream"
        elif f.name in pre_load:
            dst_values[f.name] = pre_load[f.name]
            origin[f.name] = "the destination's pre_load"
        else:
            r = dst.reset.get(f.name, 0)
            dst_values[f.name] = stream.hosts.get(hd, {}).get(f.name, 0) if r == HOST else int(r)
            origin[f.name] = "the destination's reset" + (" (the kernel's value)" if r == HOST else "")
    # post_load: the put writes ID values to the kernel
    for name, check in dst.checks.items():
        want = stream.hosts.get(hd, {}).get(name, 0)
        got = dst_values.get(name)
        if check.rule == "equal" and got is not None and got != want:
            return _Run(REFUSED, f"post_load: QEMU's put writes {check.register} = {got:#x}", check.errno,
                        notes=[f"{name} is {got:#x} (from {origin[name]}); the destination kernel's "
                               f"{check.register} reads {want:#x} on a {hd or 'its'} host and refuses another value "
                               f"({check.errno_detail or check.errno}); QEMU aborts the destination (error_abort), the source resumes"])
        if got == want and name in dst_values:
            notes.append(f"{name} = {_hex(got)} from {origin[name]}: the put writes it and the kernel accepts it")
    # what the guest sees afterwards
    changed: list[str] = []
    kinds: dict[str, str] = {}
    for f, _ in itertools.chain(_walk(sd), _walk(dd)):
        kinds.setdefault(f.name, f.value)  # a subsection's slice of a main field is that field
    host_names = set(stream.hosts.get(hs, {})) | set(stream.hosts.get(hd, {}))
    for name in sorted(set(kinds) | host_names):
        kind = kinds.get(name, HOST)
        if kind == HOST:
            before = stream.hosts.get(hs, {}).get(name, 0)
            after = stream.hosts.get(hd, {}).get(name, 0)
            if before != after:
                carried = name in dst_values and origin.get(name) == "the stream"
                changed.append(f"{name}: {before:#x} -> {after:#x}")
                notes.append(f"{name} (an ID value of the host) reads {before:#x} on the source's {hs} host and "
                             f"{after:#x} on the destination's {hd} host, and nothing refuses the migration"
                             + (" (the stream carries it, and the destination's put accepts its own value)"
                                if carried else
                                (" (neither stream carries it; each kernel keeps its own)" if name not in dst_values
                                 else f" ({'not in the source stream' if name not in src_values else 'not sent'}; the "
                                 f"destination has {_hex(dst_values[name])} from {origin[name]}, which its kernel "
                                 "accepts)")))
        elif kind == STATE and name in dst_values and origin[name] != "the stream":
            was = src_values.get(name)
            now = dst_values[name]
            if name not in src_values:
                changed.append(f"{name}: (not migrated) -> {_hex(now)}")
                notes.append(f"{name}: the source's stream does not carry it; the destination keeps {_hex(now)} "
                             f"from {origin[name]}")
            elif was is None or was != now:
                changed.append(f"{name}: {_hex(was)} -> {_hex(now)}")
                notes.append(f"{name}: not sent; the destination keeps {_hex(now)} from {origin[name]}")
        elif kind == FIXED and name in dst_values:
            if dst_values[name] != stream.fixed.get(name):
                changed.append(f"{name}: {_hex(stream.fixed.get(name))} -> {_hex(dst_values[name])}")
                notes.append(f"{name}: the destination writes {_hex(dst_values[name])} where the kernel keeps "
                             f"{_hex(stream.fixed.get(name))} (not modelled further)")
            elif origin[name] != "the stream":
                notes.append(f"{name}: not sent (the kernel's value {_hex(stream.fixed.get(name))} does not need "
                             f"it); {origin[name]} sets {_hex(dst_values[name])}, the same")
    return _Run(SILENT if changed else ROUND_TRIP, "", "", changed, notes)


def _needed_why(stream: Stream, sub: Description, values: dict[str, int | None]) -> str:
    n = sub.needed
    if n is None or not n.field:
        return "always"
    v = stream.config.get(n.field, values.get(n.field))
    return f"{n.field} = {_hex(v)}"


def _main(d: Description) -> Iterator[Description]:
    """The descriptions whose fields are always loaded: the section and its structs."""
    yield d
    for f in d.fields:
        if f.struct is not None:
            yield from _main(f.struct)


def _paired(sd: Description, dd: Description, version: int) -> Iterator[tuple[Description, Description, int]]:
    """The section and its nested structs, paired by position, with the version each is
    read at (a struct is loaded at the destination's own version_id: vmstate_load_state
    'vmstate_load_state(f, field->vmsd, curr_elem, field->vmsd->version_id)')."""
    yield sd, dd, version
    d_fields = {f.name: f for f in dd.fields}
    for f in sd.fields:
        g = d_fields.get(f.name)
        if f.struct is not None and g is not None and g.struct is not None:
            yield from _paired(f.struct, g.struct, g.struct.version_id)


def decide(stream: Stream, src: StreamVersion, dst: StreamVersion, hs: str = "", hd: str = "") -> Cell:
    """Migrate ``src``'s stream on host kind ``hs`` to ``dst`` on ``hd``."""
    variables = _variables(stream, src, dst)
    runs = []
    for combo in itertools.product(*variables.values()):
        state = dict(zip(variables, combo, strict=True))
        runs.append((state, _load(stream, src, dst, hs, hd, state)))
    cell = Cell(src.name, dst.name, hs, hd)
    for verdict in (UNKNOWN, SILENT, REFUSED, ROUND_TRIP):
        hit = [(s, r) for s, r in runs if r.verdict == verdict]
        if not hit:
            continue
        state, run = hit[0]
        cell.verdict, cell.where, cell.errno = verdict, run.where, run.errno
        cell.changed = sorted({c for _, r in hit for c in r.changed})
        cell.notes = list(run.notes)
        if state and len(hit) < len(runs):
            cell.notes.append("for the source states with " + ", ".join(f"{k} = {v:#x}" for k, v in state.items())
                              + f"; {len(runs) - len(hit)} of {len(runs)} other states are not {verdict}")
        break
    cell.checker_code, cell.checker = checker_meaning(static_check(src.description, dst.description), cell)
    return cell


# ---------------------------------------------------------------------------------------
# QEMU's static checker.


def static_check(src: Description, dst: Description, section: str = "") -> list[str]:
    """What scripts/vmstate-static-checker.py prints for ``-s SRC -d DEST`` dumps of these
    descriptions (its check_version, check_fields, check_size and check_subsections): it
    compares the descriptions' shape only (names, version_id, minimum_version_id, field
    order and element size); it cannot evaluate ``needed``, ``pre_load``, reset values or
    what post_load does, and it does not compare array lengths (``num``)."""
    sec = section or src.name
    out = []
    out += _check_version(src.version_id, dst.version_id, dst.minimum_version_id, sec, src.name)
    d_iter = list(dst.fields)
    for i, s in enumerate(src.fields):
        if i >= len(d_iter):
            out.append(f'Section "{sec}", Description "{src.name}": expected field "{s.name}", while dest has no '
                       "further fields")
            break
        d = d_iter[i]
        if s.name != d.name:
            out.append(f'Section "{sec}", Description "{src.name}": expected field "{s.name}", got "{d.name}"; '
                       "skipping rest")
            break
        if s.version_id > d.version_id:
            out.append(f'Section "{sec}" Description "{src.name}": version error: {s.version_id} > {d.version_id}')
        if s.struct is None and s.size != d.size:
            out.append(f'Section "{sec}" Description "{src.name}" Field "{s.name}" size mismatch: {s.size} , {d.size}')
        if s.struct is not None:
            if d.struct is None:
                out.append(f'Section "{sec}", Description "{src.name}", Field "{s.name}": missing description')
            else:
                out += static_check(s.struct, d.struct, sec)
    d_subs = {x.name: x for x in dst.subsections}
    for sub in src.subsections:
        if sub.name not in d_subs:
            out.append(f'Section "{sec}", Description "{src.name}": Subsection "{sub.name}" not found')
        else:
            out += static_check(sub, d_subs[sub.name], sec)
    return out


def _check_version(s: int, d: int, d_min: int, sec: str, desc: str) -> list[str]:
    out = []
    if s > d:
        out.append(f'Section "{sec}" Description "{desc}": version error: {s} > {d}')
    if s < d_min:
        out.append(f'Section "{sec}" Description "{desc}": minimum version error: {s} < {d_min}')
    return out


def checker_meaning(messages: list[str], cell: Cell) -> tuple[str, str]:
    """What the static checker's report means for one cell: a short code and a sentence."""
    if messages:
        said = "; ".join(messages)
        if cell.verdict == REFUSED and "load" in cell.where:
            return "caught", f"caught: {said}"
        if cell.verdict == REFUSED:
            return "flags it", (f"reports {said}, but the cell fails for another reason the checker cannot see "
                                f"({cell.where})")
        if cell.verdict == ROUND_TRIP:
            return "false alarm", (f"false alarm here: it reports {said}, but on this host kind nothing it names "
                                   "is sent (it cannot evaluate needed)")
        return "flags it", f"reports {said}; the silent change is another matter ({', '.join(cell.changed)})"
    if cell.verdict == ROUND_TRIP:
        return "right", "nothing to report (right)"
    if cell.verdict == REFUSED:
        return "missed", (f"missed: the shapes are compatible; the refusal comes from {cell.where} (the kernel), "
                          "which the checker does not see")
    if cell.verdict == SILENT:
        return "missed", ("missed: the shapes are compatible; the change is in values (reset, pre_load, the "
                          "host's ID registers), which the checker does not see")
    return "missed", "missed"


# ---------------------------------------------------------------------------------------
# Every pair.


def hosts_of(stream: Stream) -> list[str]:
    return list(stream.hosts) or [""]


def matrix(stream: Stream, pairs: list[tuple[StreamVersion, StreamVersion]]) -> list[Cell]:
    """Every pair in both host dimensions."""
    out = []
    for src, dst in pairs:
        for hs in hosts_of(stream):
            for hd in hosts_of(stream):
                out.append(decide(stream, src, dst, hs, hd))
    return out
