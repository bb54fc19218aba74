"""Sequence files (DESIGN.md "Sequence files"): loading and validation.

A sequence file is TOML. Every error names the file, the line and what would be valid
(``SequenceError``); the CLI prints it and exits 2.

Extensions to the DESIGN.md contract (compatible: files without them mean what they meant):
  * ``lost = ["group:1->0", "pending_latch:0->1"]`` (with ``expect = "counterexample"``):
    the exact set of losses the tool computed, so ``gicproof check`` notices when a
    sequence starts or stops losing a field. Labels: ``FIELD`` (a multi-bit field changed),
    ``FIELD:1->0`` / ``FIELD:0->1`` (a 1-bit field), ``refused:REGISTER`` (a step failed).
  * ``violates = ["GICD_ICFGR -> GICD_ISPENDR"]``: the ordering-graph edges the sequence
    is known to violate (default none); ``gicproof check`` compares them with the graph's.
  * ``shift`` is accepted on scalar registers only: shifting a per-interrupt array would
    move one interrupt's bits into another's.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from spec.device import DeviceSpec

TOP_KEYS = {
    "name", "device", "kernel", "reference", "expect", "why", "destination", "host",
    "source_kernel", "source_host", "save", "restore", "lost", "violates",
}
STEP_KEYS = {"write", "read", "check", "op", "each", "steps", "value", "index", "and", "or", "shift"}
VALUE_WORDS = ("saved", "ones", "zeros", "reset")
EXPECTS = ("proved", "counterexample", "refused")
DESTINATIONS = ("fresh", "any")


class SequenceError(Exception):
    """Bad input in a sequence file: ``path:line: message``."""

    def __init__(self, path: str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ValueSpec:
    kind: str = "saved"  # saved | ones | zeros | reset | int
    const: int = 0
    shift: int = 0
    and_mask: int | None = None
    or_mask: int | None = None

    def describe(self) -> str:
        base = f"{self.const:#x}" if self.kind == "int" else self.kind
        mods = []
        if self.shift:
            mods.append(f"shift {self.shift}")
        if self.and_mask is not None:
            mods.append(f"and {self.and_mask:#x}")
        if self.or_mask is not None:
            mods.append(f"or {self.or_mask:#x}")
        return base + (f" ({', '.join(mods)})" if mods else "")


@dataclass(frozen=True)
class Step:
    line: int
    action: str  # write | read | check | op | each
    target: str = ""  # register, operation, or selector (each)
    value: ValueSpec = ValueSpec()
    index: tuple[int, ...] | None = None  # word indices, None = all
    steps: tuple[Step, ...] = ()

    def describe(self) -> str:
        idx = ""
        if self.index is not None:
            idx = f"[{_ranges(self.index)}]"
        if self.action == "write":
            return f"write {self.target}{idx} = {self.value.describe()}"
        if self.action == "read":
            return f"read {self.target}{idx}"
        if self.action == "check":
            return f"check {self.target}{idx} == {self.value.describe()}"
        if self.action == "op":
            return self.target
        return f"each {self.target}"


@dataclass(frozen=True)
class Sequence:
    path: str
    name: str
    device: str
    kernel: str
    reference: str
    expect: str
    why: str
    destination: str
    restore: tuple[Step, ...]
    save: tuple[Step, ...] | None = None  # None: the device's ideal save
    host: str = ""
    source_kernel: str = ""
    source_host: str = ""
    lost: tuple[str, ...] | None = None
    violates: tuple[str, ...] = ()
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def effective_source_kernel(self) -> str:
        return self.source_kernel or self.kernel


def _ranges(idx: tuple[int, ...]) -> str:
    out: list[str] = []
    start = prev = None
    for i in idx:
        if start is None:
            start = prev = i
        elif prev is not None and i == prev + 1:
            prev = i
        else:
            out.append(str(start) if start == prev else f"{start}..{prev}")
            start = prev = i
    if start is not None:
        out.append(str(start) if start == prev else f"{start}..{prev}")
    return ",".join(out)


class _Lines:
    """Finds the line of a key or a [[table]] in the TOML text (tomllib keeps none)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.tables: dict[str, list[int]] = {}
        for n, raw in enumerate(self.lines, 1):
            m = re.match(r"\s*\[\[\s*([A-Za-z_]+)\s*\]\]", raw)
            if m:
                self.tables.setdefault(m.group(1), []).append(n)

    def top(self, key: str) -> int:
        for n, raw in enumerate(self.lines, 1):
            if raw.lstrip().startswith("[["):
                break
            if re.match(rf"\s*{re.escape(key)}\s*=", raw):
                return n
        return 1

    def table(self, name: str, i: int) -> int:
        found = self.tables.get(name, [])
        return found[i] if i < len(found) else 1

    def key_in_table(self, name: str, i: int, key: str) -> int:
        start = self.table(name, i)
        for n in range(start + 1, len(self.lines) + 1):
            raw = self.lines[n - 1]
            if raw.lstrip().startswith("[["):
                break
            if re.match(rf"\s*{re.escape(key)}\s*=", raw):
                return n
        return start

    def nested(self, name: str, i: int, j: int) -> int:
        """Line of the j-th inline table of a ``steps = [...]`` block."""
        start = self.key_in_table(name, i, "steps")
        seen = -1
        for n in range(start, len(self.lines) + 1):
            for _ in re.finditer(r"\{", self.lines[n - 1]):
                seen += 1
                if seen == j:
                    return n
        return start


def _suggest(word: str, valid: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, valid, n=3)
    if close:
        return f"did you mean {', '.join(close)}?"
    if len(valid) <= 12:
        return "valid: " + ", ".join(valid)
    return f"valid: {', '.join(valid[:12])}, ... ({len(valid)} in all)"


def _parse_index(text: Any, err: Callable[[str], NoReturn]) -> tuple[int, ...]:
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text.strip():
        err('index must be a string like "0", "1..31" or "0,2..3"')
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\.\.(\d+))?", part)
        if not m:
            err(f'bad index "{text}": use word numbers like "0", "1..31" or "0,2..3"')
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            err(f'bad index "{text}": range {lo}..{hi} is empty')
        out.extend(range(lo, hi + 1))
    return tuple(sorted(set(out)))


def _int(v: Any, what: str, err: Callable[[str], NoReturn]) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        err(f"{what} must be an integer (e.g. 0xffffffff), not {v!r}")
    return int(v)


def load(path: str | Path, devices: dict[str, DeviceSpec]) -> Sequence:
    """Load and validate a sequence file against the device it names."""
    p = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SequenceError(p, 0, f"cannot read the file: {e.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        line = int(m.group(1)) if m else 1
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise SequenceError(p, line, f"not valid TOML: {msg}") from None
    lines = _Lines(text)

    def top_err(key: str, msg: str) -> NoReturn:
        raise SequenceError(p, lines.top(key), msg)

    for key in doc:
        if key not in TOP_KEYS:
            top_err(key, f"unknown key '{key}': {_suggest(key, sorted(TOP_KEYS))}")
    for key in ("name", "device"):
        if key not in doc:
            raise SequenceError(p, 1, f"missing required key '{key}'")
    for key in ("name", "device", "kernel", "reference", "expect", "why", "destination",
                "host", "source_kernel", "source_host"):
        if key in doc and not isinstance(doc[key], str):
            top_err(key, f"'{key}' must be a string")
    dev_name = doc["device"]
    if dev_name not in devices:
        top_err("device", f"unknown device '{dev_name}': valid: {', '.join(sorted(devices))}")
    spec = devices[dev_name]
    kernel = doc.get("kernel", spec.default_kernel)
    if kernel not in spec.versions:
        top_err("kernel", f"kernel '{kernel}' is not modelled for {dev_name}: valid: {', '.join(spec.versions)}")
    source_kernel = doc.get("source_kernel", "")
    if source_kernel and source_kernel not in spec.versions:
        top_err("source_kernel", f"kernel '{source_kernel}' is not modelled for {dev_name}: valid: {', '.join(spec.versions)}")
    for key in ("host", "source_host"):
        if key in doc and doc[key] not in (spec.hosts or {spec.default_host: None}):
            valid = ", ".join(spec.hosts) if spec.hosts else (spec.default_host or "none")
            top_err(key, f"{key} '{doc[key]}' is not modelled for {dev_name}: valid: {valid}")
    expect = doc.get("expect", "proved")
    if expect not in EXPECTS:
        top_err("expect", f"expect must be one of {', '.join(EXPECTS)}, not '{expect}'")
    why = doc.get("why", "")
    if expect != "proved" and not why.strip():
        raise SequenceError(p, lines.top("expect"), f"'why' is required when expect = \"{expect}\": say in one line what is lost or refused")
    destination = doc.get("destination", "any")
    if destination not in DESTINATIONS:
        top_err("destination", f"destination must be one of {', '.join(DESTINATIONS)}, not '{destination}'")
    lost = doc.get("lost")
    if lost is not None:
        if not isinstance(lost, list) or not all(isinstance(x, str) for x in lost):
            top_err("lost", 'lost must be a list of strings like ["group:1->0"]')
        if expect != "counterexample":
            top_err("lost", "lost is only meaningful with expect = \"counterexample\"")
        field_names = {f.name for f in spec.fields}
        for label in lost:
            fname = label.split(":")[0].split("@")[0]
            if fname != "refused" and fname not in field_names:
                top_err("lost", f"lost label '{label}' names no field of {dev_name}: {_suggest(fname, sorted(field_names))}")

    violates = doc.get("violates", [])
    if not isinstance(violates, list) or not all(isinstance(x, str) for x in violates):
        top_err("violates", 'violates must be a list of strings like ["GICD_ICFGR -> GICD_ISPENDR"]')
    for v in violates:
        if not re.fullmatch(r"\S+ -> \S+", v):
            top_err("violates", f"'{v}' is not an edge: write \"STEP -> STEP\" (see gicproof graph {dev_name})")

    registers = [r.name for r in spec.registers]
    operations = [o.name for o in spec.operations]

    def parse_step(raw: Any, line: int, section: str, entry: int | None) -> Step:
        """``entry``: the step's index in its [[section]] (None for a step nested in an
        each block, which cannot nest again)."""
        def err(msg: str) -> NoReturn:
            raise SequenceError(p, line, msg)

        if not isinstance(raw, dict):
            err(f"a {section} step must be a table like {{ write = \"GICD_CTLR\" }}")
        for key in raw:
            if key not in STEP_KEYS:
                err(f"unknown step key '{key}': {_suggest(key, sorted(STEP_KEYS))}")
        actions = [k for k in ("write", "read", "check", "op", "each") if k in raw]
        if len(actions) != 1:
            err("a step needs exactly one of write, read, check, op, each" + (f" (it has {', '.join(actions)})" if actions else ""))
        action = actions[0]
        if section == "save" and action not in ("read", "op", "each"):
            err(f"a save step reads registers: use read, op or each, not {action}")
        if section == "restore" and action == "read":
            err("a restore step writes or checks registers: use write, check, op or each, not read")
        target = raw[action]
        if not isinstance(target, str):
            err(f"{action} must name a {'selector' if action == 'each' else 'register or operation'} as a string")
        if action == "each":
            if entry is None:
                err("each blocks cannot be nested")
            if target not in spec.selectors:
                err(f"unknown selector '{target}' for {dev_name}: valid: {', '.join(spec.selectors)}")
            inner = raw.get("steps")
            if not isinstance(inner, list) or not inner:
                err("an each block needs steps = [ { write = ... }, ... ]")
            for key in raw:
                if key not in ("each", "steps"):
                    err(f"key '{key}' does not apply to an each block")
            assert isinstance(inner, list)
            return Step(line, "each", target, steps=tuple(
                parse_step(s, lines.nested(section, entry, j), section, None) for j, s in enumerate(inner)))
        if "steps" in raw:
            err("steps belongs to an each block")
        if action == "op":
            if target not in operations:
                err(f"unknown operation '{target}' for {dev_name}: {_suggest(target, operations)}")
            for key in raw:
                if key != "op":
                    err(f"key '{key}' does not apply to an op step")
            return Step(line, "op", target)
        if target not in registers:
            err(f"unknown register '{target}' for {dev_name}: {_suggest(target, registers)}")
        reg = spec.register(target)
        index = None
        if "index" in raw:
            index = _parse_index(raw["index"], err)
            if index[-1] >= reg.words:
                err(f"index {index[-1]} is out of range for {target}: it has words 0..{reg.words - 1}")
        if action == "read":
            for key in raw:
                if key not in ("read", "index"):
                    err(f"key '{key}' does not apply to a read step")
            return Step(line, "read", target, index=index)
        value = raw.get("value", "saved")
        if isinstance(value, str):
            if value not in VALUE_WORDS:
                err(f"value must be one of {', '.join(VALUE_WORDS)} or an integer, not '{value}'")
            kind, const = value, 0
        else:
            const = _int(value, "value", err)
            if not 0 <= const < (1 << 64):
                err(f"value {const:#x} does not fit a register")
            kind = "int"
        shift = _int(raw.get("shift", 0), "shift", err)
        if shift and reg.scope == "irq":
            err(f"shift applies to scalar registers only; {target} holds one field per interrupt")
        and_mask = _int(raw["and"], "and", err) if "and" in raw else None
        or_mask = _int(raw["or"], "or", err) if "or" in raw else None
        return Step(line, action, target, ValueSpec(kind, const, shift, and_mask, or_mask), index)

    def steps_of(section: str) -> tuple[Step, ...] | None:
        if section not in doc:
            return None
        raw = doc[section]
        if not isinstance(raw, list):
            top_err(section, f"[{section}] must be written [[{section}]] (an array of steps)")
        out = []
        for i, s in enumerate(raw):
            line = lines.table(section, i)
            if isinstance(s, dict) and len(s) == 1 and "steps" not in s:
                line = max(line, lines.key_in_table(section, i, next(iter(s))))
            out.append(parse_step(s, line, section, i))
        return tuple(out)

    save = steps_of("save")
    restore = steps_of("restore")
    if not restore:
        raise SequenceError(p, 1, "a sequence needs at least one [[restore]] step")
    return Sequence(
        path=p, name=doc["name"], device=dev_name, kernel=kernel,
        reference=doc.get("reference", ""), expect=expect, why=why, destination=destination,
        restore=restore, save=save, host=doc.get("host", ""), source_kernel=source_kernel,
        source_host=doc.get("source_host", ""), lost=tuple(lost) if lost is not None else None,
        violates=tuple(violates),
    )
