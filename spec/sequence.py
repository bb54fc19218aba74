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
  * ``when = { saved = "ICC_CTLR_EL1", bits = "10:8", in = [5, 6] }`` (or ``read = ...``
    instead of ``saved``) on a write, read or check step: the step runs only when those
    bits of the register's saved value (or of its value read at that step) are one of the
    listed values (``Condition``).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from spec.device import DeviceSpec

TOP_KEYS = {
    "name", "device", "kernel", "reference", "expect", "why", "destination", "host",
    "source_kernel", "source_host", "save", "restore", "lost", "violates", "cpus", "irqs", "assume",
}
STEP_KEYS = {"write", "read", "check", "op", "each", "steps", "value", "index", "and", "or", "shift",
             "vcpu", "group", "stride", "on_error", "when"}
WHEN_KEYS = ("saved", "read", "bits", "in")
WHEN_EXAMPLE = 'when = { saved = "ICC_CTLR_EL1", bits = "10:8", in = [5, 6] }'
VALUE_WORDS = ("saved", "ones", "zeros", "reset", "index")
EXPECTS = ("proved", "counterexample", "refused")
DESTINATIONS = ("fresh", "any")
U64 = (1 << 64) - 1
U64_VALID = "does not fit a register: valid values are 0..0xffffffffffffffff (64 bits)"


def printable(text: str) -> str:
    """``text`` with every character a terminal would not print as itself (control
    characters, line and paragraph separators, escape sequences) written as a Python
    escape, so an error message echoing the input stays one line and harmless."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SequenceError(Exception):
    """Bad input in a sequence file: ``path:line: message`` (``path: message`` when the
    error is about the file as a whole, e.g. it cannot be read: ``line`` is then 0)."""

    def __init__(self, path: str, line: int, message: str):
        where = f"{path}:{line}" if line > 0 else path
        super().__init__(printable(f"{where}: {message}" if where else message))
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ValueSpec:
    kind: str = "saved"  # saved | ones | zeros | reset | index (the each loop's number) | int
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
class Condition:
    """When a step runs (``when = { saved = "ICC_CTLR_EL1", bits = "10:8", in = [5, 6] }``):
    bits ``hi:lo`` of a register's value are one of ``values``. ``source`` says which value:

    * ``saved``: the value the save read (on the save side: read by an earlier save step),
      the same vCPU's for a per-CPU register (the loop's CPU in an ``each = "cpu"`` block);
    * ``read``: the value a userspace read of the register returns at this step, on the
      machine the step runs on (the source for a save step, the destination for a restore
      step), on the vCPU the step's access goes to;
    * ``exists`` (the engine's, not the file's): the step's own register is one the
      kernel lets userspace read here (the ideal save reads every register that exists).

    A step whose condition does not hold does nothing: no access, no error; a save read
    that does not happen leaves the value saved before (0 when none: a VMM's state
    struct starts zeroed)."""

    source: str  # saved | read | exists
    register: str = ""
    hi: int = 0
    lo: int = 0
    values: tuple[int, ...] = ()

    @property
    def bits(self) -> str:
        return f"{self.hi}:{self.lo}" if self.hi != self.lo else f"{self.hi}"

    def describe(self) -> str:
        if self.source == "exists":
            return "if the kernel has it"
        return f"when {self.source} {self.register}[{self.bits}] in {{{', '.join(map(str, self.values))}}}"


@dataclass(frozen=True)
class Step:
    line: int
    action: str  # write | read | check | op | each
    target: str = ""  # register, operation, or selector (each)
    value: ValueSpec = ValueSpec()
    index: tuple[int, ...] | None = None  # word indices, None = all
    steps: tuple[Step, ...] = ()
    vcpu: int | None = None  # send the access to this CPU's bank/interface, whatever the loop
    # a register named by its offset (``write = 0x104``): the attribute group and offset;
    # ``target`` is then the register at that offset, or "" when there is none
    group: str = ""
    offset: int | None = None
    # a VMM that walks a 64-bit-per-interrupt register with its own stride: interrupt i's
    # two words are taken at (the register's offset for interrupt 0) + stride * i and + 4,
    # whatever register word is there (QEMU's kvm_arm_gicv3_put/get use 4 for GICD_IROUTER)
    stride: int | None = None
    # an operation whose failure the VMM reports and goes on from ("continue"), as QEMU's
    # vm_change_state handlers do with KVM_DEV_ARM_ITS_SAVE_TABLES ('if (err)
    # error_report_err(err)'): the step changes nothing and the run does not stop
    on_error: str = "stop"
    # the step runs only when this holds (``when = { ... }``); None: always
    when: Condition | None = None

    @property
    def unmapped(self) -> bool:
        """A step naming an offset where the device has no register."""
        return self.offset is not None and not self.target

    @property
    def shown_target(self) -> str:
        if self.offset is None:
            return self.target
        at = f"{self.group.split('_GRP_')[-1]}+{self.offset:#x}"
        return f"{at} ({self.target})" if self.target else f"{at} (no register)"

    def describe(self) -> str:
        return self._describe() + (f" ({self.when.describe()})" if self.when is not None else "")

    def _describe(self) -> str:
        name = self.shown_target
        if self.index is not None and self.offset is None:
            name += f"[{_ranges(self.index)}]"
        if self.vcpu is not None:
            name += f" vcpu{self.vcpu}"
        if self.action == "write":
            return f"write {name} = {self.value.describe()}"
        if self.action == "read":
            return f"read {name}"
        if self.action == "check":
            return f"check {name} == {self.value.describe()}"
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
    cpus: tuple[int, ...] | None = None  # the VMM's fixed configuration (None: every count)
    irqs: tuple[int, ...] | None = None
    assume: tuple[str, ...] = ()  # assumptions the device declares (DeviceSpec.assumptions)

    @property
    def effective_source_kernel(self) -> str:
        return self.source_kernel or self.kernel

    @property
    def effective_source_host(self) -> str:
        return self.source_host or self.host

    def source_semantics(self, spec: Any) -> Any:
        """The source side's semantics: its kernel on its host kind."""
        return spec.semantics(self.effective_source_kernel, self.effective_source_host)

    def destination_semantics(self, spec: Any) -> Any:
        """The destination's semantics: the file's kernel on its host kind."""
        return spec.semantics(self.kernel, self.host)


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
    """Where keys, tables and array elements are in the TOML text (tomllib keeps no
    positions). Only run on text tomllib has accepted, so a small scanner suffices: it
    follows strings, comments and brackets, and counts lines as TOML does (by "\\n")."""

    def __init__(self, text: str):
        self.text = text
        self.count = line_count(text)
        # (line, kind, full key path, number of the table header it is under, element lines)
        self.entries: list[tuple[int, str, tuple[str, ...], int, list[int]]] = []
        self._scan()

    # -- scanner -------------------------------------------------------------------------
    def _scan(self) -> None:
        t, i, line = self.text, 0, 1
        current: tuple[str, ...] = ()
        table_no = 0
        while i < len(t):
            c = t[i]
            if c == "\n":
                line += 1
                i += 1
            elif c in " \t\r":
                i += 1
            elif c == "#":
                while i < len(t) and t[i] != "\n":
                    i += 1
            elif c == "[":
                double = t.startswith("[[", i)
                i += 2 if double else 1
                path, i = self._key(i)
                i += 2 if double else 1
                table_no += 1
                current = path
                self.entries.append((line, "array" if double else "table", path, table_no, []))
            else:
                start, at = line, i
                path, i = self._key(i)
                if i < len(t) and t[i] == "=":
                    i += 1
                elif i == at:  # not TOML after all: make progress
                    i += 1
                    continue
                elements, i, line = self._value(i, line)
                self.entries.append((start, "key", current + path, table_no, elements))

    def _key(self, i: int) -> tuple[tuple[str, ...], int]:
        t = self.text
        parts: list[str] = []
        while i < len(t):
            while i < len(t) and t[i] in " \t":
                i += 1
            if i < len(t) and t[i] in "\"'":
                q = t[i]
                j = i + 1
                while j < len(t) and t[j] != q:
                    j += 2 if (q == '"' and t[j] == "\\") else 1
                token = t[i:j + 1]
                try:
                    parts.append(str(tomllib.loads(f"k = {token}")["k"]))
                except (tomllib.TOMLDecodeError, ValueError):
                    parts.append(token[1:-1])
                i = j + 1
            else:
                j = i
                while j < len(t) and (t[j].isalnum() or t[j] in "_-"):
                    j += 1
                parts.append(t[i:j])
                i = j
            while i < len(t) and t[i] in " \t":
                i += 1
            if i < len(t) and t[i] == ".":
                i += 1
                continue
            break
        return tuple(parts), i

    def _value(self, i: int, line: int) -> tuple[list[int], int, int]:
        """Skip one value; return the lines where the elements of an array value start."""
        t = self.text
        depth = 0
        outer_array = False
        elements: list[int] = []
        want_element = False
        while i < len(t):
            c = t[i]
            if c == "\n":
                if depth == 0:
                    break
                line += 1
                i += 1
                continue
            if c in " \t\r":
                i += 1
                continue
            if c == "#":
                while i < len(t) and t[i] != "\n":
                    i += 1
                continue
            if want_element and depth == 1 and c != "]":
                elements.append(line)
            want_element = False
            if c in "\"'":
                i, line = self._string(i, line)
                continue
            if c in "[{":
                if depth == 0 and c == "[":
                    outer_array = True
                    want_element = True
                depth += 1
            elif c in "]}":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            elif c == "," and depth == 1 and outer_array:
                want_element = True
            i += 1
        return elements, i, line

    def _string(self, i: int, line: int) -> tuple[int, int]:
        t = self.text
        q = t[i]
        multi = t.startswith(q * 3, i)
        i += 3 if multi else 1
        while i < len(t):
            c = t[i]
            if c == "\\" and q == '"':
                if i + 1 < len(t) and t[i + 1] == "\n":
                    line += 1
                i += 2
                continue
            if c == "\n":
                line += 1
            if multi and t.startswith(q * 3, i):
                i += 3
                extra = 0
                while extra < 2 and i < len(t) and t[i] == q:
                    i += 1
                    extra += 1
                return i, line
            if not multi and c == q:
                return i + 1, line
            i += 1
        return i, line

    # -- queries -------------------------------------------------------------------------
    def top(self, key: str) -> int:
        """Line where the top-level key or table ``key`` is first defined (1 if nowhere)."""
        for line, _kind, path, _no, _el in self.entries:
            if path and path[0] == key:
                return line
        return 1

    def top_is_table(self, key: str) -> bool:
        """Whether the top-level ``key`` is first defined by a [table] or [[table]] header."""
        for _line, kind, path, _no, _el in self.entries:
            if path and path[0] == key:
                return kind != "key"
        return False

    def _array_table(self, name: str, i: int) -> tuple[int, int] | None:
        found = [(line, no) for line, kind, path, no, _ in self.entries if kind == "array" and path == (name,)]
        return found[i] if i < len(found) else None

    def _inline(self, name: str) -> tuple[int, list[int]] | None:
        for line, kind, path, _no, el in self.entries:
            if kind == "key" and path == (name,):
                return line, el
        return None

    def table(self, name: str, i: int) -> int:
        """Line of the i-th step of a section: its [[name]] header, or the i-th element of
        ``name = [ ... ]``."""
        hit = self._array_table(name, i)
        if hit:
            return hit[0]
        inline = self._inline(name)
        if inline:
            line, el = inline
            return el[i] if i < len(el) else line
        return self.top(name)

    def _key_entry(self, name: str, i: int, key: str) -> tuple[int, list[int]] | None:
        hit = self._array_table(name, i)
        if hit is None:
            return None
        for line, kind, path, no, el in self.entries:
            if no == hit[1] and kind == "key" and path[:2] == (name, key):
                return line, el
        return None

    def key_in_table(self, name: str, i: int, key: str) -> int:
        """Line of ``key`` in the i-th step of a section (the step's line if not found)."""
        hit = self._key_entry(name, i, key)
        return hit[0] if hit else self.table(name, i)

    def nested(self, name: str, i: int, j: int) -> int:
        """Line of the j-th inline table of a ``steps = [...]`` block."""
        hit = self._key_entry(name, i, "steps")
        if hit is None:
            return self.table(name, i)
        line, el = hit
        return el[j] if j < len(el) else line


def line_count(text: str) -> int:
    """The number of lines as an editor shows them (at least 1)."""
    return max(1, text.count("\n") + (0 if text.endswith("\n") else 1))


def _const(value: int, _key: str) -> int:
    return value


def _suggest(word: str, valid: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, valid, n=3)
    if close:
        return f"did you mean {', '.join(close)}?"
    if len(valid) <= 12:
        return "valid: " + ", ".join(valid)
    return f"valid: {', '.join(valid[:12])}, ... ({len(valid)} in all)"


def _show(v: Any, limit: int = 40) -> str:
    """A value as a message shows it: repr, cut short if long."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 128:
        return f"an integer of {v.bit_length()} bits"
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _parse_index(text: Any, words: int, target: str, err: Callable[[str], NoReturn]) -> tuple[int, ...]:
    """Word numbers ``"0"``, ``"1..31"``, ``"0,2..3"``, each checked against the register's
    ``words`` before a range is expanded (so ``"0..99999999999"`` is an error, not a
    100-billion-element list)."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text) if text >= 0 else text
    if not isinstance(text, str) or not text.strip():
        err(f'index must be a string like "0", "1..31" or "0,2..3", not {_show(text)}')
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"([0-9]+)(?:\.\.([0-9]+))?", part)
        if not m:
            err(f'bad index {_show(text)}: use word numbers like "0", "1..31" or "0,2..3"')
        bounds = []
        for digits in (m.group(1), m.group(2) or m.group(1)):
            digits = digits.lstrip("0") or "0"
            # compare as text first: a bound of thousands of digits is out of range, and
            # int() would refuse it (Python's int-string conversion limit)
            n = int(digits) if len(digits) <= 18 else None
            if n is None or n >= words:
                shown = digits if len(digits) <= 20 else f"{digits[:12]}... ({len(digits)} digits)"
                err(f"index {shown} is out of range for {target}: it has words 0..{words - 1}")
            bounds.append(n)
        lo, hi = bounds
        if hi < lo:
            err(f'bad index {_show(text)}: range {lo}..{hi} is empty')
        out.update(range(lo, hi + 1))
    return tuple(sorted(out))


def _parse_when(raw: Any, spec: DeviceSpec, err: Callable[[str], NoReturn]) -> Condition:
    """``when = { saved = "REG", bits = "HI:LO", in = [v, ...] }`` (or ``read = "REG"``)."""
    if not isinstance(raw, dict):
        err(f"when must be a table like {WHEN_EXAMPLE}, not {_show(raw)}")
    for key in raw:
        if key not in WHEN_KEYS:
            hint = ('the bit range is written bits = "10:8"' if key == "field"
                    else _suggest(key, list(WHEN_KEYS)))
            err(f"unknown key '{printable(str(key))}' in when: {hint} (valid: {', '.join(WHEN_KEYS)})")
    sources = [k for k in ("saved", "read") if k in raw]
    if len(sources) != 1:
        err("when needs exactly one of saved (the register's value the save read) or read (its value read "
            f"at this step){' (it has both)' if sources else ''}, e.g. {WHEN_EXAMPLE}")
    source = sources[0]
    name = raw[source]
    registers = [r.name for r in spec.registers]
    if not isinstance(name, str):
        err(f"when.{source} must name a register as a string, not {_show(name)}")
    if name not in registers:
        err(f"unknown register '{name}' in when.{source} for {spec.name}: {_suggest(name, registers)}")
    reg = spec.register(name)
    if reg.scope == "irq":
        err(f"when tests a per-CPU or device-wide register; {name} holds one field per interrupt")
    if "bits" not in raw:
        err(f'when needs bits = "HI:LO", the bit range of {name} it tests (e.g. "10:8"), or one bit ("0")')
    hi, lo = _parse_bits(raw["bits"], reg.width, reg.words, name, err)
    if "in" not in raw:
        err(f"when needs in = [...], the values bits {hi}:{lo} may have for the step to run, e.g. in = [5, 6]")
    values = raw["in"]
    if not isinstance(values, list) or not values:
        err(f"when.in must be a non-empty list of integers like [5, 6], not {_show(values)}")
    top = (1 << (hi - lo + 1)) - 1
    shown = f"{hi}:{lo}" if hi != lo else f"{hi}"
    out = {_int(v, "a value in when.in", err, 0, top, f"does not fit bits {shown}: 0..{top:#x}") for v in values}
    return Condition(source, name, hi, lo, tuple(sorted(out)))


def _parse_bits(text: Any, width: int, words: int, name: str, err: Callable[[str], NoReturn]) -> tuple[int, int]:
    """``"10:8"``, ``"8"`` or ``8``: a bit range of a register's value (``width`` bits per
    word, ``words`` words), within one word (a 64-bit register KVM accesses in halves)."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    m = re.fullmatch(r"\s*([0-9]{1,3})\s*(?::\s*([0-9]{1,3})\s*)?", text) if isinstance(text, str) else None
    if m is None:
        err(f'bits must be a bit range "HI:LO" like "10:8", or one bit like "0", not {_show(text)}')
    hi = int(m.group(1))
    lo = int(m.group(2)) if m.group(2) is not None else hi
    total = width * words
    if hi < lo:
        err(f'bits "{hi}:{lo}": write the high bit first, "{lo}:{hi}"')
    if hi >= total:
        err(f"bits {hi}:{lo} are beyond {name}: it has bits {total - 1}:0")
    if words > 1 and hi // width != lo // width:
        err(f"bits {hi}:{lo} span two {width}-bit words of {name} (KVM accesses it in halves): "
            f"keep them within {width - 1}:0 or {total - 1}:{width}")
    return hi, lo


def _int(v: Any, what: str, err: Callable[[str], NoReturn], lo: int, hi: int, valid: str) -> int:
    """An integer between ``lo`` and ``hi`` (inclusive); ``valid`` says so in words."""
    if isinstance(v, bool) or not isinstance(v, int):
        err(f"{what} must be an integer (e.g. 0xffffffff), not {_show(v)}")
    if not lo <= v <= hi:
        shown = f"{v:#x}" if 0 <= v and v.bit_length() <= 128 else _show(v)
        err(f"{what} {shown} {valid}")
    return int(v)


MAX_FILE_BYTES = 4 << 20  # sequence files are a few KB; this only stops /dev/zero and the like


def _read(p: str) -> str:
    """The file's text (UTF-8, as TOML requires), or a SequenceError naming what is wrong."""
    if not p:
        raise SequenceError("", 0, "no sequence file given: the path is an empty string")
    try:
        path = Path(p)
        if path.is_dir():
            raise SequenceError(p, 0, "is a directory: give a sequence file (TOML), e.g. "
                                      "spec/sequences/gicv2/qemu-current-6.12.toml")
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise SequenceError(p, 0, f"cannot read the file: {e.strerror or e}") from None
    except ValueError as e:  # an embedded NUL byte in the path
        raise SequenceError(repr(p), 0, f"cannot read the file: {e}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SequenceError(p, 0, f"the file is larger than {MAX_FILE_BYTES >> 20} MiB: a sequence file is TOML text of a few KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SequenceError(p, line, f"not UTF-8 text: byte {data[e.start]:#04x} at column {column} ({e.reason}); "
                                     "a sequence file is TOML, which is UTF-8") from None


def _first_failing_line(text: str, exc: type[BaseException]) -> int:
    """The first line whose prefix of the file makes tomllib raise ``exc``: tomllib parses
    in order and gives no position for errors outside its own TOMLDecodeError."""
    lines = text.split("\n")
    lo, hi = 1, len(lines)  # the prefix of hi lines fails
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            tomllib.loads("\n".join(lines[:mid]))
            failed = False
        except tomllib.TOMLDecodeError:  # a ValueError too: the prefix cut a value short
            failed = False
        except exc:
            failed = True
        except Exception:
            failed = False
        if failed:
            hi = mid
        else:
            lo = mid + 1
    return min(hi, line_count(text))


def _parse_toml(p: str, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        line = int(m.group(1)) if m else line_count(text)  # "at end of document"
        msg = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)", "", str(e))
        where = "" if m else " (at the end of the file)"
        raise SequenceError(p, min(line, line_count(text)), f"not valid TOML: {msg}{where}") from None
    except RecursionError:
        line = _first_failing_line(text, RecursionError)
        raise SequenceError(p, line, "arrays or inline tables nested too deeply: a sequence file "
                                     "nests at most steps = [ { ... } ] inside a step") from None
    except ValueError as e:  # tomllib lets int()'s limit on decimal digits through
        line = _first_failing_line(text, ValueError)
        what = "an integer with too many digits" if "digits" in str(e) else f"a bad value ({e})"
        raise SequenceError(p, line, f"{what}: a register value has at most 64 bits "
                                     "(e.g. 0xffffffffffffffff)") from None


def load(path: str | Path, devices: dict[str, DeviceSpec]) -> Sequence:
    """Load and validate a sequence file against the device it names."""
    p = str(path)
    text = _read(p)
    doc = _parse_toml(p, text)
    lines = _Lines(text)

    def top_err(key: str, msg: str) -> NoReturn:
        raise SequenceError(p, lines.top(key), msg)

    for key in doc:
        if key not in TOP_KEYS:
            what = "table" if lines.top_is_table(key) else "key"
            top_err(key, f"unknown {what} '{key}': {_suggest(key, sorted(TOP_KEYS))}")
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
    if why_not := spec.kernel_error(kernel):
        top_err("kernel", why_not)
    source_kernel = doc.get("source_kernel", "")
    if source_kernel and (why_not := spec.kernel_error(source_kernel)):
        top_err("source_kernel", why_not)
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

    def counts(key: str, valid: tuple[int, ...], what: str) -> tuple[int, ...] | None:
        """``cpus`` / ``irqs``: a number or a range "A..B", of values the device accepts."""
        if key not in doc:
            return None
        raw = doc[key]
        shown = f"{what}: {min(valid)} to {max(valid)}" + (" in steps of 32" if key == "irqs" else "")
        if isinstance(raw, int) and not isinstance(raw, bool):
            lo = hi = raw
        elif isinstance(raw, str) and re.fullmatch(r"\s*\d{1,6}\s*\.\.\s*\d{1,6}\s*", raw):
            lo, hi = (int(x) for x in raw.split(".."))
        else:
            top_err(key, f"{key} must be a number or a range like \"1..8\" ({shown}), not {_show(raw)}")
        chosen = tuple(v for v in valid if lo <= v <= hi)
        if lo > hi or not chosen or lo not in valid or hi not in valid:
            top_err(key, f"{key} = {_show(raw)} is not a configuration {dev_name} accepts ({shown})")
        return chosen

    cpus = counts("cpus", tuple(range(1, spec.max_cpus + 1)), "CPUs")
    irqs = counts("irqs", tuple(spec.irq_counts), "interrupts")
    assume = doc.get("assume", [])
    known = [a.name for a in spec.assumptions]
    if not isinstance(assume, list) or not all(isinstance(x, str) for x in assume):
        top_err("assume", f'assume must be a list of names like ["no-held-lines"]: valid: {", ".join(known) or "none"}')
    for name in assume:
        if name not in known:
            top_err("assume", f"unknown assumption '{printable(name)}' for {dev_name}: "
                              f"{_suggest(name, known) if known else 'the device declares none'}")

    registers = [r.name for r in spec.registers]
    operations = [o.name for o in spec.operations]
    groups = sorted({r.group for r in spec.registers})

    def parse_step(raw: Any, line: int, section: str, entry: int | None,
                   key_line: Callable[[str], int]) -> Step:
        """``entry``: the step's index in its [[section]] (None for a step nested in an
        each block, which cannot nest again). ``key_line(key)``: the line of one of its
        keys, which an error about that key cites."""
        def err(msg: str, key: str | None = None) -> NoReturn:
            raise SequenceError(p, key_line(key) if key is not None else line, msg)

        if not isinstance(raw, dict):
            err(f"a {section} step must be a table like {{ write = \"GICD_CTLR\" }}, not {_show(raw)}")
        for key in raw:
            if key not in STEP_KEYS:
                err(f"unknown step key '{key}': {_suggest(key, sorted(STEP_KEYS))}", key)
        actions = [k for k in ("write", "read", "check", "op", "each") if k in raw]
        if len(actions) != 1:
            err("a step needs exactly one of write, read, check, op, each" + (f" (it has {', '.join(actions)})" if actions else ""))
        action = actions[0]
        if section == "save" and action not in ("read", "check", "op", "each", "write"):
            err(f"a save step reads registers: use read, check, op, each or write, not {action}", action)
        if section == "restore" and action == "read":
            err("a restore step writes or checks registers: use write, check, op or each, not read", action)
        target = raw[action]
        offset = None
        group = ""
        if action in ("write", "read", "check") and isinstance(target, int) and not isinstance(target, bool):
            # a register named by its offset in an attribute group: the table's register
            # at that offset (or none: the kernel then fails the access)
            group = raw.get("group", groups[-1] if "KVM_DEV_ARM_VGIC_GRP_DIST_REGS" not in groups
                            else "KVM_DEV_ARM_VGIC_GRP_DIST_REGS")
            if not isinstance(group, str) or group not in groups:
                err(f"group must be one of {', '.join(groups)}, not {_show(group)}", "group")
            offset = _int(target, "an offset", lambda m: err(m, action), 0, 0x1FFFF,
                          "is not an offset: 0..0x1ffff (a redistributor's SGI frame is at 0x10000)")
            # an unaligned offset names no register: the kernel finds no region there and
            # reads zero / ignores the write (vgic_uaccess, as for an unknown offset)
            found = spec.register_at(group, offset)
            target = found[0].name if found else ""
            why_not = spec.unmodelled_writes.get((group, offset), "") if action == "write" else ""
            if why_not:
                err(f"a write to offset {offset:#x} is not modelled yet: {why_not}", action)
        elif "group" in raw:
            err("group applies to a register named by its offset (write = 0x104)", "group")
        elif not isinstance(target, str):
            err(f"{action} must name a {'selector' if action == 'each' else 'register or operation'} "
                f"as a string, not {_show(target)}", action)
        when = None
        if "when" in raw:
            if action in ("op", "each"):
                err(f"when applies to a register access (write, read, check), not to an {action} step"
                    + ("; put it on the steps inside the block" if action == "each" else ""), "when")
            when = _parse_when(raw["when"], spec, lambda m: err(m, "when"))
        vcpu = None
        if "vcpu" in raw:
            if action in ("op", "each"):
                err(f"vcpu applies to a register access, not to an {action} step", "vcpu")
            vcpu = _int(raw["vcpu"], "vcpu", lambda m: err(m, "vcpu"), 0, spec.max_cpus - 1,
                        f"is not a vCPU of {dev_name}: 0..{spec.max_cpus - 1}")
        if action == "each":
            if entry is None:
                err("each blocks cannot be nested", action)
            if target not in spec.selectors:
                err(f"unknown selector '{target}' for {dev_name}: valid: {', '.join(spec.selectors)}", action)
            inner = raw.get("steps")
            if not isinstance(inner, list) or not inner:
                err("an each block needs steps = [ { write = ... }, ... ]", "steps" if "steps" in raw else None)
            for key in raw:
                if key not in ("each", "steps"):
                    err(f"key '{key}' does not apply to an each block", key)
            assert isinstance(inner, list) and entry is not None
            out = []
            for j, s in enumerate(inner):
                at = lines.nested(section, entry, j)
                # an inline table is on one line: every key of it is on that line
                out.append(parse_step(s, at, section, None, functools.partial(_const, at)))
            return Step(line, "each", target, steps=tuple(out))
        if "steps" in raw:
            err("steps belongs to an each block", "steps")
        if "on_error" in raw and action != "op":
            err("on_error applies to an op step (the VMM's reaction to a failing operation); "
                f"key 'on_error' does not apply to a {action} step", "on_error")
        if action == "op":
            if target not in operations:
                err(f"unknown operation '{target}' for {dev_name}: {_suggest(target, operations)}", action)
            for key in raw:
                if key not in ("op", "on_error"):
                    err(f"key '{key}' does not apply to an op step", key)
            on_error = raw.get("on_error", "stop")
            if on_error not in ("stop", "continue"):
                err(f"on_error must be \"stop\" (the VMM aborts: the default) or \"continue\" (the VMM "
                    f"reports the error and goes on), not {_show(on_error)}", "on_error")
            return Step(line, "op", target, on_error=on_error)
        if offset is None and target not in registers:
            err(f"unknown register '{target}' for {dev_name}: {_suggest(target, registers)}", action)
        reg = spec.register(target) if target else None
        index = None
        if "index" in raw:
            if offset is not None:
                err("index does not apply to a register named by its offset: the offset names the word", "index")
            assert reg is not None
            index = _parse_index(raw["index"], reg.words, target, lambda m: err(m, "index"))
        elif offset is not None and reg is not None:
            found = spec.register_at(group, offset)
            assert found is not None
            index = (found[1],)
        stride = None
        if "stride" in raw:
            if offset is not None or reg is None or reg.bits_per_irq != 64:
                err("stride applies to a 64-bit-per-interrupt register named by name (GICD_IROUTER): "
                    "the VMM's step between interrupts, in bytes", "stride")
            if "index" in raw:
                err("stride and index do not go together: a strided walk covers every interrupt", "stride")
            stride = _int(raw["stride"], "stride", lambda m: err(m, "stride"), 4, 64,
                          "is not a stride: 4..64 bytes, a multiple of 4")
            if stride % 4:
                err(f"stride {stride} is not a multiple of 4: KVM's GICv3 register attributes are "
                    "aligned 32-bit accesses", "stride")
        if action == "read":
            for key in raw:
                if key not in ("read", "index", "vcpu", "group", "stride", "when"):
                    err(f"key '{key}' does not apply to a read step", key)
            return Step(line, "read", target, index=index, vcpu=vcpu, group=group, offset=offset,
                        stride=stride, when=when)
        if section == "save" and action == "check" and "value" not in raw:
            err("a save-side check needs the value it expects (value = 0, \"ones\", \"zeros\" or "
                "\"reset\"): the save has no saved value yet")
        value = raw.get("value", "saved")
        if isinstance(value, str):
            if value not in VALUE_WORDS:
                err(f"value must be one of {', '.join(VALUE_WORDS)} or an integer, not {_show(value)}", "value")
            kind, const = value, 0
        else:
            const = _int(value, "value", lambda m: err(m, "value"), 0, U64, U64_VALID)
            kind = "int"
        if section == "save" and action == "write" and "value" not in raw:
            err("a save-side write (a selector set before its data register is read) needs its value "
                "(value = \"index\" in an each block, or an integer)")
        if section == "save" and kind == "saved":
            err(("a save-side check compares with a given value" if action == "check" else
                 "a save-side write writes a given value") + ": \"saved\" means nothing before the save", "value")
        if kind == "index" and entry is not None:
            err("value = \"index\" is the number of an each block's vCPU or interrupt: it applies only "
                "to a step inside an each block", "value")
        shift = _int(raw.get("shift", 0), "shift", lambda m: err(m, "shift"), -63, 63,
                     "is out of range: a shift is -63..63 (negative shifts right)")
        if shift and reg is not None and reg.scope == "irq":
            err(f"shift applies to scalar registers only; {target} holds one field per interrupt", "shift")
        and_mask = _int(raw["and"], "and", lambda m: err(m, "and"), 0, U64, U64_VALID) if "and" in raw else None
        or_mask = _int(raw["or"], "or", lambda m: err(m, "or"), 0, U64, U64_VALID) if "or" in raw else None
        return Step(line, action, target, ValueSpec(kind, const, shift, and_mask, or_mask), index,
                    vcpu=vcpu, group=group, offset=offset, stride=stride, when=when)

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
            out.append(parse_step(s, line, section, i, functools.partial(lines.key_in_table, section, i)))
        return tuple(out)

    save = steps_of("save")
    restore = steps_of("restore")
    if not restore:
        raise SequenceError(p, lines.top("restore"), "a sequence needs at least one [[restore]] step")
    return Sequence(
        path=p, name=doc["name"], device=dev_name, kernel=kernel,
        reference=doc.get("reference", ""), expect=expect, why=why, destination=destination,
        restore=restore, save=save, host=doc.get("host", ""), source_kernel=source_kernel,
        source_host=doc.get("source_host", ""), lost=tuple(lost) if lost is not None else None,
        violates=tuple(violates), cpus=cpus, irqs=irqs, assume=tuple(assume),
    )
