"""Generators of malformed and random-but-valid sequence files, and the oracle that judges
what the CLI did with them. Shared by tests/test_malformed.py (Hypothesis drives the
``random.Random``) and bench/fuzz_inputs.py (a seeded one).

Malformed files are shipped GICv2 sequences mutated at the text level: lines deleted,
duplicated, swapped or cut, bytes inserted (invalid UTF-8, NUL, control characters),
integers of thousands of digits, deep nesting, unknown keys and tables, misspelt names,
bad values and index ranges huge or out of range. Valid files are built from the device
table.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

from spec.devices import DEVICES, SEQUENCES_DIR
from spec.sequence import printable

GICV2 = DEVICES["gicv2"]
SHIPPED = sorted((SEQUENCES_DIR / "gicv2").glob("*.toml"))
SHIPPED_TEXT = {p.name: p.read_bytes() for p in SHIPPED}

# Options that keep a proof of a file that happens to be valid cheap.
CHEAP = ["--cpus", "1", "--irqs", "64"]

REGISTERS = [r.name for r in GICV2.registers]
OPERATIONS = [o.name for o in GICV2.operations]
BAD_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00",
             b"\x01", b"\x1b[31m", b"\r", b"\x0c", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\t", b'"', b"'",
             b"[", b"]", b"{", b"}", b"=", b"#", b",", b".", b"\\", b'"""', b"\n"]
UNKNOWN_TOP = ["[[restor]]", "[foo]", "viola.tes = 1", "destinaton = \"any\"", "[restore]",
               "[[save.steps]]", "\"quoted key\" = 1", "expect.x = 1", "[[ restore ]]\nwirte = \"GICD_CTLR\"",
               "foo = [1, 2]", "[save]", "name.first = \"x\""]
BAD_VALUES = ['"all"', "-1", "1.5", "true", "[1]", "{ a = 1 }", "0x1_0000_0000_0000_0000", "1979-05-27",
              '""', "inf", "nan", "18446744073709551616", "0o777", "0b102"]
BAD_INDEX = ['"0..99999999999"', '"40"', '"5..3"', '"a"', '"0..20000000"', '""', "-1", "true", '"1,,2"',
             '"0x10"', '" 3 "', '"٣"', '"0..31"', '"31"', '"1..2,4..5"']


def line_count(data: bytes) -> int:
    """Lines as an editor (and TOML) counts them: by "\\n", at least 1."""
    return max(1, data.count(b"\n") + (0 if data.endswith(b"\n") else 1))


def huge_int(rnd: random.Random) -> str:
    n = rnd.choice([25, 300, 4299, 4301, 5000, rnd.randint(4000, 20000)])
    return rnd.choice("123456789") + "".join(rnd.choice("0123456789") for _ in range(n - 1))


def deep(rnd: random.Random) -> str:
    n = rnd.choice([10, 100, 400, 500, 1000, rnd.randint(200, 3000)])
    if rnd.random() < 0.5:
        return "[" * n + "]" * n
    return "{ a = " * n + "1" + " }" * n


def misspell(word: str, rnd: random.Random) -> str:
    if len(word) < 2:
        return word + "X"
    i = rnd.randrange(len(word))
    how = rnd.randrange(3)
    if how == 0:
        return word[:i] + word[i + 1:]
    if how == 1:
        return word[:i] + rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ_x") + word[i:]
    return word[:i] + word[i + 1:i + 2] + word[i:i + 1] + word[i + 2:]


# -- text-level mutations of a file (list of byte lines) ----------------------------------

def _delete(lines: list[bytes], rnd: random.Random) -> None:
    if lines:
        del lines[rnd.randrange(len(lines))]


def _duplicate(lines: list[bytes], rnd: random.Random) -> None:
    if lines:
        i = rnd.randrange(len(lines))
        lines.insert(i, lines[i])


def _swap(lines: list[bytes], rnd: random.Random) -> None:
    if len(lines) > 1:
        i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]


def _truncate(lines: list[bytes], rnd: random.Random) -> None:
    if lines:
        i = rnd.randrange(len(lines))
        cut = rnd.randrange(len(lines[i]) + 1)
        lines[i:] = [lines[i][:cut]]


def _bytes(lines: list[bytes], rnd: random.Random) -> None:
    if not lines:
        lines.append(b"")
    i = rnd.randrange(len(lines))
    pos = rnd.randrange(len(lines[i]) + 1)
    junk = b"".join(rnd.choice(BAD_BYTES) for _ in range(rnd.randint(1, 3)))
    if rnd.random() < 0.2:
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    lines[i] = lines[i][:pos] + junk + lines[i][pos:]


def _insert_line(lines: list[bytes], rnd: random.Random, text: str) -> None:
    lines.insert(rnd.randrange(len(lines) + 1), text.encode())


def _huge(lines: list[bytes], rnd: random.Random) -> None:
    big = huge_int(rnd)
    choice = rnd.randrange(4)
    if choice == 0:
        _insert_line(lines, rnd, f"value = {big}")
    elif choice == 1:
        _insert_line(lines, rnd, f'index = "{big}"')
    elif choice == 2:
        _insert_line(lines, rnd, f'index = "0..{big}"')
    else:
        _insert_line(lines, rnd, f"x = {big}")


def _nest(lines: list[bytes], rnd: random.Random) -> None:
    key = rnd.choice(["x", "value", "steps", "lost", "index"])
    _insert_line(lines, rnd, f"{key} = {deep(rnd)}")


def _unknown(lines: list[bytes], rnd: random.Random) -> None:
    if rnd.random() < 0.7:
        _insert_line(lines, rnd, rnd.choice(UNKNOWN_TOP))
    else:
        _insert_line(lines, rnd, f"{misspell(rnd.choice(['value', 'index', 'write', 'and', 'shift']), rnd)} = 1")


def _misspell_name(lines: list[bytes], rnd: random.Random) -> None:
    hits = [i for i, raw in enumerate(lines) if re.search(rb"GIC[CD]_\w+|KVM_\w+|\"cpu\"|gicv2|\d+\.\d+\"", raw)]
    if not hits:
        return
    i = rnd.choice(hits)
    text = lines[i].decode("utf-8", "replace")
    m = re.search(r"GIC[CD]_\w+|KVM_\w+|(?<=\")cpu(?=\")|gicv2|\d+\.\d+(?=\")", text)
    if m:
        lines[i] = (text[:m.start()] + misspell(m.group(0), rnd) + text[m.end():]).encode()


def _bad_value(lines: list[bytes], rnd: random.Random) -> None:
    key = rnd.choice(["value", "value", "and", "or", "shift", "index", "expect", "destination", "kernel",
                      "device", "name", "why", "lost", "violates", "write", "each", "op", "steps", "restore"])
    val = rnd.choice(BAD_INDEX if key == "index" else BAD_VALUES + ['"GICD_CTLR"', "99", "-99", "[]"])
    # replace an existing assignment of that key when there is one, else add it
    hits = [i for i, raw in enumerate(lines) if re.match(rb"\s*" + key.encode() + rb"\s*=", raw)]
    if hits and rnd.random() < 0.7:
        lines[rnd.choice(hits)] = f"{key} = {val}".encode()
    else:
        _insert_line(lines, rnd, f"{key} = {val}")


def _index(lines: list[bytes], rnd: random.Random) -> None:
    hits = [i for i, raw in enumerate(lines) if re.match(rb"\s*(write|read|check)\s*=", raw)]
    if hits:
        i = rnd.choice(hits)
        lines.insert(i + 1, f"index = {rnd.choice(BAD_INDEX)}".encode())


def _inline_key(lines: list[bytes], rnd: random.Random) -> None:
    hits = [i for i, raw in enumerate(lines) if b"{ " in raw]
    if hits:
        i = rnd.choice(hits)
        extra = rnd.choice(["valu = 1", "index = \"99\"", "shift = 1", "and = -1", "each = \"cpu\"", "op = \"X\"",
                            "value = \"all\"", "index = \"0..99999999999\""])
        lines[i] = lines[i].replace(b"{ ", f"{{ {extra}, ".encode(), 1)


MUTATIONS: list[Callable[[list[bytes], random.Random], None]] = [
    _delete, _duplicate, _swap, _truncate, _bytes, _huge, _nest, _unknown, _misspell_name, _bad_value,
    _index, _inline_key,
]


def malformed(rnd: random.Random) -> bytes:
    """A shipped sequence with one to three text-level mutations (it may still be valid)."""
    base = SHIPPED_TEXT[rnd.choice(sorted(SHIPPED_TEXT))]
    lines = base.split(b"\n")
    for _ in range(rnd.choice([1, 1, 2, 3])):
        rnd.choice(MUTATIONS)(lines, rnd)
    return b"\n".join(lines)


# -- random valid files from the device table ---------------------------------------------

def _value(rnd: random.Random, scalar: bool) -> str:
    parts = []
    v = rnd.choice(["saved", "saved", "ones", "zeros", "reset", "int"])
    if v == "int":
        parts.append(f"value = {rnd.choice([0, 1, 0xff, 0xffffffff, rnd.randrange(1 << 32)]):#x}")
    elif v != "saved" or rnd.random() < 0.3:
        parts.append(f'value = "{v}"')
    if scalar and rnd.random() < 0.2:
        parts.append(f"shift = {rnd.randint(-8, 8)}")
    if rnd.random() < 0.2:
        parts.append(f"and = {rnd.randrange(1 << 32):#x}")
    if rnd.random() < 0.1:
        parts.append(f"or = {rnd.randrange(1 << 8):#x}")
    return ", ".join(parts)


def valid(rnd: random.Random) -> str:
    """A random sequence the loader must accept: every register read (or the ideal save),
    then a random selection of restore steps, written in [[restore]] or inline form."""
    kernel = rnd.choice(list(GICV2.versions))
    out = [f'name = "random {rnd.randrange(1 << 30)}"', 'device = "gicv2"', f'kernel = "{kernel}"',
           f'destination = "{rnd.choice(["fresh", "any"])}"']
    if rnd.random() < 0.5:
        out.append('expect = "counterexample"')
        out.append('why = "random"')
    head = len(out)  # top-level keys go here: after a [[save]] they would belong to it
    dist = [r for r in GICV2.registers if r.scope != "cpu"]
    cpu = [r for r in GICV2.registers if r.scope == "cpu"]
    if rnd.random() < 0.5:  # an explicit full save
        for r in dist:
            out += ["[[save]]", f'read = "{r.name}"']
        if cpu:
            inner = ", ".join(f'{{ read = "{r.name}" }}' for r in cpu)
            out += ["[[save]]", 'each = "cpu"', f"steps = [ {inner} ]"]
    steps = []
    for _ in range(rnd.randint(1, 8)):
        r = rnd.choice(dist)
        action = rnd.choice(["write", "write", "write", "check"])
        mods = _value(rnd, r.scope != "irq")
        idx = ""
        if rnd.random() < 0.3:
            lo = rnd.randrange(r.words)
            hi = rnd.randrange(lo, r.words)
            idx = f'index = "{lo}..{hi}"' if hi > lo else f'index = "{lo}"'
        when = ""
        if rnd.random() < 0.15:  # a condition on a value read at that step (issue 9)
            bit = rnd.randrange(32)
            when = f'when = {{ read = "GICD_CTLR", bits = "{bit}", in = [{rnd.randrange(2)}] }}'
        steps.append([f'{action} = "{r.name}"'] + [m for m in (mods, idx, when) if m])
    if rnd.random() < 0.3 and OPERATIONS:
        steps.insert(rnd.randrange(len(steps) + 1), [f'op = "{rnd.choice(OPERATIONS)}"'])
    if cpu and rnd.random() < 0.5:
        steps.append(['each = "cpu"', "steps = [ " + ", ".join(
            f'{{ write = "{r.name}" }}' for r in rnd.sample(cpu, rnd.randint(1, len(cpu)))) + " ]"])
    inline = rnd.random() < 0.2
    if inline:
        block = ["restore = ["] + ["  { " + ", ".join(s) + " }," for s in steps] + ["]"]
        out[head:head] = block
    else:
        for s in steps:
            out.append("[[restore]]")
            for p in s:
                out.extend(p.split(", ") if not p.startswith(("steps", "when")) else [p])
    if rnd.random() < 0.3:
        out.insert(rnd.randrange(len(out) + 1), "# a comment")
    return "\n".join(out) + "\n"


# -- the oracle ---------------------------------------------------------------------------

KEY_ERRORS = [
    (re.compile(r"^unknown (?:step )?(?:key|table) '([^']+)'"), None),
    (re.compile(r"^key '([^']+)' does not apply"), None),
    (re.compile(r"^unknown register '([^']+)'"), None),
    (re.compile(r"^unknown operation '([^']+)'"), None),
    (re.compile(r"^(?:bad )?index\b"), "index"),
    (re.compile(r"^value\b"), "value"),
    (re.compile(r"^shift\b"), "shift"),
    (re.compile(r"^(and|or) "), None),
    (re.compile(r"^when\b"), "when"),
]


def judge(path: str, data: bytes, code: int, out: str, err: str, must_accept: bool = False) -> str:
    """What is wrong with the CLI's handling of one file ("" if nothing)."""
    if "Traceback" in err or "Traceback" in out:
        return f"traceback (exit {code}): {err[-500:]}"
    if code not in (0, 1, 2, 3):
        return f"exit {code}: {err[-500:]}"
    if "TOOL BUG" in out or "did not replay" in out.lower():
        # every counterexample shown must have replayed on the concrete model
        return f"a witness did not replay (exit {code})"
    if code == 3:
        # the default budget is deterministic and far above what these small proofs use
        return "UNKNOWN under the default budget"
    if code != 2:
        return ""
    if must_accept:
        return f"a valid file was rejected: {err.strip()}"
    lines = [x for x in err.splitlines() if x.strip()]
    if len(lines) != 1:
        return f"expected one line of error, got {len(lines)}: {err!r}"
    prefix = f"gicproof: error: {path}:"
    if not lines[0].startswith(prefix):
        return f"not of the form 'gicproof: error: FILE:LINE: ...': {lines[0]!r}"
    m = re.match(r"(\d+): (.*)", lines[0][len(prefix):])
    if not m:
        return f"no line number: {lines[0]!r}"
    n, msg = int(m.group(1)), m.group(2)
    if not 1 <= n <= line_count(data):
        return f"line {n} is not a line of the file (1..{line_count(data)}): {lines[0]!r}"
    cited = printable(data.split(b"\n")[n - 1].decode("utf-8", "replace"))  # as messages echo it
    for pattern, fixed in KEY_ERRORS:
        km = pattern.match(msg)
        if km:
            word = fixed or km.group(1)
            if word not in cited:
                return f"line {n} does not contain {word!r} ({cited[:120]!r}): {lines[0]!r}"
            break
    return ""


def write(tmp: Path, data: bytes, name: str = "fuzz.toml") -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p
