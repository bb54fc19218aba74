"""Describe one tree's specifications as JSON, for ``gicproof regress``.

``proofs.regress`` runs this file in a fresh Python process whose ``sys.path`` starts with
the tree to describe (a revision extracted with ``git archive``, or the working tree), so
the tree's own ``spec`` and ``models`` packages are the ones imported: two versions of the
same package never meet in one process. It imports nothing of ours by name from
``proofs``, and reads only attributes every revision of ``spec`` has had, with defaults
for the newer ones, so it can describe old revisions too.

What it prints (``FORMAT``): per device the kernel revisions and their flags, host kinds,
version boundaries, assumptions, operations, state fields and register rows (offset,
size, views, accessors with a fingerprint of their code), and for each register what a
userspace read returns on a freshly initialised device (2 vCPUs, 64 interrupts) and a
fingerprint of its behaviour on probes (three values written to a few words, from reset
and from a state with every field set, then read back; with the state it leaves) at every
revision; the shipped sequence files (their keys and steps, or why they do not load); the
QEMU streams (``spec.streams``) and the vCPU register lists (``spec/cpregs``) if the tree
has them. A spec that does not import prints ``{"error": ...}`` instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import traceback
import types
from pathlib import Path
from typing import Any

FORMAT = "gicproof-regress-dump/1"
PATTERNS = (0x0, 0xFFFFFFFF, 0x5A5A5A5A)
CPUS, IRQS = 2, 64


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------
# Code fingerprints: the bytecode of a function, its constants, its closure and the spec
# functions and constants it names, recursively (so a changed helper changes the callers'
# fingerprint). Comparable only between runs of the same Python.


def _code_parts(code: types.CodeType, glb: dict[str, Any], seen: set[int], out: list[Any]) -> None:
    out.append(code.co_code.hex())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_parts(c, glb, seen, out)
        else:
            out.append(repr(c))
    for name in code.co_names:
        if name in glb:
            _value_parts(glb[name], seen, out, name)


def _value_parts(v: Any, seen: set[int], out: list[Any], name: str = "") -> None:
    if isinstance(v, (int, str, float, bool, bytes)) or v is None:
        out.append((name, repr(v)))
        return
    if id(v) in seen:
        return
    seen.add(id(v))
    if isinstance(v, types.FunctionType):
        mod = getattr(v, "__module__", "") or ""
        if not mod.startswith(("spec", "models")):
            out.append((name, f"{mod}.{v.__qualname__}"))
            return
        _code_parts(v.__code__, v.__globals__, seen, out)
        for cell in v.__closure__ or ():
            try:
                _value_parts(cell.cell_contents, seen, out)
            except ValueError:  # an empty cell
                out.append("<empty>")
        for d in v.__defaults__ or ():
            _value_parts(d, seen, out)
    elif hasattr(v, "func") and hasattr(v, "args"):  # functools.partial
        _value_parts(v.func, seen, out)
        for a in v.args:
            _value_parts(a, seen, out)
    elif isinstance(v, (tuple, list, frozenset, set)):
        for x in sorted(v, key=repr) if isinstance(v, (set, frozenset)) else v:
            _value_parts(x, seen, out)
    elif isinstance(v, dict):
        for k in sorted(v, key=repr):
            out.append(repr(k))
            _value_parts(v[k], seen, out)
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        out.append(type(v).__name__)
        for f in dataclasses.fields(v):
            _value_parts(getattr(v, f.name), seen, out, f.name)
    else:
        out.append((name, type(v).__name__))


def fingerprint(fn: Any) -> str:
    out: list[Any] = []
    try:
        _value_parts(fn, set(), out)
    except Exception as e:  # a fingerprint is advice, never a reason to fail
        return f"error:{type(e).__name__}"
    return _digest(out)


# ---------------------------------------------------------------------------------------
# Tables.


def _plain(v: Any) -> Any:
    if isinstance(v, (int, str, float, bool)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return repr(v)


def _flags(sem: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(sem) and not isinstance(sem, type):
        out = {}
        for f in dataclasses.fields(sem):
            if f.name in ("kernel", "revision", "source"):
                continue
            out[f.name] = _plain(getattr(sem, f.name))
        return out
    return {"repr": repr(sem)}


def _accessor(acc: Any) -> dict[str, Any]:
    return {"name": acc.name, "kind": acc.kind, "source": acc.source, "rule": getattr(acc, "rule", ""),
            "errno": getattr(acc, "errno", ""), "code": fingerprint(acc.fn),
            "error_code": fingerprint(acc.error) if getattr(acc, "error", None) is not None else ""}


def _register(r: Any) -> dict[str, Any]:
    return {
        "group": r.group, "offset": r.offset, "words": r.words, "scope": r.scope, "views": list(r.views),
        "bits_per_irq": r.bits_per_irq, "first_irq": r.first_irq, "irqs": r.irqs, "width": r.width,
        "sized": r.sized, "pair": r.pair, "pair_role": r.pair_role, "unit": getattr(r, "unit", 4),
        "doc": r.doc,
        "accessors": {role: _accessor(getattr(r, role)) for role in ("guest_read", "guest_write", "user_read",
                                                                      "user_write")},
    }


def _field(f: Any) -> dict[str, Any]:
    return {"width": f.width, "scope": f.scope, "classification": f.classification, "source": f.source,
            "reason": f.reason, "kinds": list(f.kinds), "carried": getattr(f, "carried", True),
            "memory": getattr(f, "memory", False)}


def _operation(o: Any) -> dict[str, Any]:
    return {"source": o.source, "rule": getattr(o, "rule", ""), "views": list(getattr(o, "views", ())),
            "kind": getattr(o, "kind", "device"), "side": getattr(o, "side", "restore"), "code": fingerprint(o.fn)}


def _boundary(b: Any) -> dict[str, Any]:
    out = {"what": getattr(b, "what", ""), "commit": getattr(b, "commit", "")}
    try:
        out["releases"] = b.releases()
    except Exception:
        out["releases"] = ""
    return out


# ---------------------------------------------------------------------------------------
# Probes on the concrete model.


def _probe_words(r: Any) -> list[int]:
    if r.scope != "irq":
        return list(range(r.words))
    out = []
    for intid in (0, 16, 32, IRQS - 1):
        if r.first_irq <= intid < r.first_irq + r.irqs and intid < IRQS:
            w = r.word_of(intid)
            if 0 <= w < r.words and w not in out:
                out.append(w)
    return out


def _diff(before: Any, after: Any, keys: list[Any]) -> list[tuple[str, int]]:
    """The fields that differ between two states, in the scopes a register reaches: the
    device-wide fields, every CPU's, and the interrupts ``keys`` (one word's)."""
    out = []
    for k, v in after.glob.items():
        if before.glob.get(k) != v:
            out.append((f"g.{k}", int(v)))
    for c, fields in enumerate(after.cpu):
        old = before.cpu[c]
        for k, v in fields.items():
            if old.get(k) != v:
                out.append((f"c{c}.{k}", int(v)))
    for key in keys:
        old, new = before.irq.get(key, {}), after.irq.get(key, {})
        for k, v in new.items():
            if old.get(k) != v:
                out.append((f"i{key[0]}.{key[1]}.{k}", int(v)))
    return sorted(out)


def probe(spec: Any, kernel: str, host: str = "") -> dict[str, Any]:
    """Every register's reset read and behaviour fingerprint at one kernel revision."""
    from models.concrete import CONCRETE
    from models.machine import Config, Machine, make_state

    sem = spec.semantics(kernel, host) if host else spec.semantics(kernel)
    cfg = Config(CPUS, IRQS)
    starts = {"reset": make_state(spec, sem, cfg, CONCRETE),
              "ones": make_state(spec, sem, cfg, CONCRETE, lambda scope, key, name, width: (1 << width) - 1)}
    out: dict[str, Any] = {}
    for r in spec.registers:
        reset_words: list[Any] = []
        detail: list[Any] = []
        for word in _probe_words(r):
            m = Machine(spec, sem, cfg, CONCRETE, starts["reset"].copy())
            reset_words.append(_read(m, r, word))
            keys = [k for k, _ in m.word_keys(r, word, 0)] if r.scope == "irq" else []
            for start, st in starts.items():
                for p in PATTERNS:
                    m = Machine(spec, sem, cfg, CONCRETE, st.copy())
                    try:
                        err, errno = m.write_word(r, word, 0, p)
                        wrote = f"ERR {errno}" if int(err) else "ok"
                    except Exception as e:
                        wrote = f"exception {type(e).__name__}"
                    diff = _diff(st, m.state, keys)
                    detail.append([word, start, f"{p:#x}", wrote, _read(m, r, word), _digest(diff),
                                   [f"{k}={v:#x}" for k, v in diff[:4]]])
        out[r.name] = {"reset": reset_words, "probe": _digest([d[:6] for d in detail]), "detail": detail}
    return out


def _read(m: Any, r: Any, word: int) -> str:
    try:
        err, errno = m.read_error(r, word, 0) if hasattr(m, "read_error") else (0, "")
        if int(err):
            return f"ERR {errno}"
        return f"{m.read_word(r, word, 0):#x}"
    except Exception as e:
        return f"exception {type(e).__name__}"


def device(spec: Any, probes: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": spec.title, "default_kernel": spec.default_kernel,
        "default_host": getattr(spec, "default_host", ""),
        "revisions": {k: _flags(v) for k, v in spec.versions.items()},
        "hosts": {k: str(v) for k, v in dict(getattr(spec, "hosts", {}) or {}).items()},
        "boundaries": {getattr(b, "name", str(i)): _boundary(b) for i, b in enumerate(getattr(spec, "boundaries", ()))},
        "assumptions": {a.name: {"reason": a.reason, "source": a.source, "side": getattr(a, "side", "source")}
                        for a in getattr(spec, "assumptions", ())},
        "operations": {o.name: _operation(o) for o in spec.operations},
        "fields": {f.name: _field(f) for f in spec.fields},
        "registers": {r.name: _register(r) for r in spec.registers},
        "code": {"reset": fingerprint(spec.reset), "invariant": fingerprint(spec.invariant),
                 "conjuncts": fingerprint(getattr(spec, "invariant_conjuncts", None))},
        "probes": {}, "probe_error": "",
    }
    if probes:
        try:
            for kernel in spec.versions:
                out["probes"][kernel] = probe(spec, kernel)
            for host in getattr(spec, "hosts", {}) or {}:
                if host != out["default_host"]:
                    out["probes"][f"{spec.default_kernel}@{host}"] = probe(spec, spec.default_kernel, host)
        except Exception as e:  # an old tree whose models do not have what the probe uses
            out["probes"] = {}
            out["probe_error"] = f"{type(e).__name__}: {e}"
    return out


# ---------------------------------------------------------------------------------------
# Sequences, streams, register lists.


def _step(s: Any) -> list[Any]:
    try:
        text = s.describe()
    except Exception:
        text = f"{s.action} {s.target}"
    out = [s.line, text]
    if getattr(s, "steps", ()):
        out.append([_step(x) for x in s.steps])
    return out


def _targets(steps: Any, section: str) -> list[list[Any]]:
    out = []
    for s in steps or ():
        if getattr(s, "steps", ()):
            out += _targets(s.steps, section)
        elif s.action in ("write", "read", "check") and s.target:
            out.append([s.target, section, s.action, s.line])
    return out


def sequences(root: Path, devices: dict[str, Any]) -> dict[str, Any]:
    from spec.sequence import load

    out: dict[str, Any] = {}
    for p in sorted((root / "spec" / "sequences").glob("*/*.toml")):
        rel = p.relative_to(root).as_posix()
        text = p.read_bytes()
        entry: dict[str, Any] = {"sha": hashlib.sha1(text).hexdigest()[:12], "device": p.parent.name}
        try:
            seq = load(p, devices)
        except Exception as e:
            entry["error"] = " ".join(str(e).split())
            out[rel] = entry
            continue
        entry.update({
            "device": seq.device, "name": seq.name, "kernel": seq.kernel,
            "source_kernel": getattr(seq, "source_kernel", ""), "host": getattr(seq, "host", ""),
            "source_host": getattr(seq, "source_host", ""), "expect": seq.expect,
            "lost": _plain(getattr(seq, "lost", None)),
            "violates": list(getattr(seq, "violates", ())), "destination": seq.destination,
            "cpus": _plain(getattr(seq, "cpus", None)), "irqs": _plain(getattr(seq, "irqs", None)),
            "assume": list(getattr(seq, "assume", ())),
            "save": [_step(s) for s in seq.save] if seq.save is not None else None,
            "restore": [_step(s) for s in seq.restore],
            "targets": _targets(seq.save, "save") + _targets(seq.restore, "restore"),
        })
        out[rel] = entry
    return out


def streams() -> dict[str, Any] | None:
    try:
        import spec.streams as st
    except ImportError:
        return None
    return {"format": getattr(st, "FORMAT", ""), "streams": {n: st.to_json(s) for n, s in st.STREAMS.items()}}


def cpregs(root: Path) -> dict[str, Any]:
    out = {}
    for p in sorted((root / "spec" / "cpregs").glob("*.json")):
        try:
            d = json.loads(p.read_text())
            regs = d.get("registers", [])
            # the text too: the working tree's arm-cpregs model migrates the base's list
            # to the working tree's and back (proofs.regress._cpregs_report)
            out[p.name] = {"kernel": d.get("kernel", {}).get("version") or d.get("kernel", {}).get("label", ""),
                           "count": len(regs),
                           "registers": {str(r.get("index")): r.get("name", "") for r in regs},
                           "text": p.read_text()}
        except Exception as e:
            out[p.name] = {"error": f"{type(e).__name__}: {e}"}
    return out


def _error(e: BaseException) -> str:
    """One line: where in the tree the import failed, and why."""
    where = ""
    if isinstance(e, SyntaxError) and e.filename:
        where = f"{e.filename}:{e.lineno}: "
    else:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if "/spec/" in f.filename or
                  "/models/" in f.filename]
        if frames:
            where = f"{frames[-1].filename}:{frames[-1].lineno}: "
    return f"{where}{type(e).__name__}: {' '.join(str(e).split())}"


def main(argv: list[str]) -> int:
    """``regress_dump.py ROOT [--probes DEV,DEV|all]``: describe the tree at ROOT; run the
    probes for the named devices only (none by default: they take a second or two per
    device), and with ``--probes-only`` print only those."""
    root = Path(argv[0]).resolve() if argv else Path.cwd()
    probe_names: set[str] = set()
    if "--probes" in argv:
        probe_names = set(argv[argv.index("--probes") + 1].split(","))
    only = "--probes-only" in argv
    out: dict[str, Any] = {"format": FORMAT, "root": str(root)}
    try:
        from spec.devices import DEVICES
    except BaseException as e:  # the tree's spec does not load: say why, as data
        out["error"] = _error(e)
        print(json.dumps(out))
        return 0
    out["devices"] = {}
    for name, spec in DEVICES.items():
        if only:
            if name in probe_names or "all" in probe_names:
                d = device(spec, True)
                out["devices"][name] = {"probes": d["probes"], "probe_error": d["probe_error"]}
            continue
        out["devices"][name] = device(spec, name in probe_names or "all" in probe_names)
    if only:
        print(json.dumps(out))
        return 0
    try:
        out["sequences"] = sequences(root, DEVICES)
    except BaseException as e:
        out["error"] = "spec.sequence: " + _error(e)
    try:
        out["streams"] = streams()
    except BaseException as e:
        out["streams_error"] = _error(e)
    out["cpregs"] = cpregs(root)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
