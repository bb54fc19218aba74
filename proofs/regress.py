"""``gicproof regress``: what a change of the specifications does to migration.

It compares the specifications at a git revision (``--base``, default HEAD) with the
working tree of the repository the current directory is in:

1. **Both sides are described by their own code.** The revision is extracted with ``git
   archive`` into a temporary directory, and each tree is described by
   ``proofs/regress_dump.py`` in its own Python process whose ``sys.path`` starts with that
   tree, so the two versions of ``spec`` never meet in one process (``regress_dump``).
2. **Diff.** For every device: registers added, removed (a register whose offset, size
   and views did not change but whose name did is a rename), changed (attribute group,
   offset, size, views, accessors and their code, what a read returns after reset, and
   the behaviour on probes at every kernel revision); state fields added, removed,
   changed (classification, width, scope); kernel revisions, host kinds, boundaries,
   assumptions and operations added or removed. Shipped sequence files added, removed or
   changed; QEMU's streams (``spec/streams.py``); the vCPU register lists
   (``spec/cpregs``).
3. **Verdicts.** Every shipped sequence file of a device whose specification changed, and
   every file that changed, is proved on each side with that side's own prover
   (``gicproof prove FILE --json`` run in the tree): a file whose verdict, losses or exit
   status changed is listed with the losses before and after.
4. **Migration between the two tables** (``classify``): for every register added, removed
   or changed, old source -> new destination and new -> old, whether it round-trips, is
   refused cleanly (the step, the errno: ``spec.attrs``) or silently changes state, from
   the tables alone. This is a table-level judgement, not a proof: the README says which
   rules it applies and where they are heuristics.
5. **Streams.** For every QEMU stream version added or changed, every pair of versions
   in both directions on every host kind (``proofs.streams``), with what QEMU's static
   checker would say.

Exit status: 1 if any migration or stream cell is a silent change or any shipped file
newly fails (fails on the working tree where it passed, or did not exist, at the base); 0
otherwise; 2 for bad input (not a git repository, a bad revision, specifications that do
not load).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import cpregs as cpregs_model
from proofs import streams as stream_model
from spec import streams as stream_spec
from spec.attrs import ERROR, VMM_ON_ERROR, unknown_attribute

ROUND_TRIP = "round trip"
REFUSED = "refused"
SILENT = "silent"
SEE_PROOFS = "semantics changed"  # the tables cannot say; the shipped files' proofs do
NOT_COMPARED = "not compared"
CLASSES = (ROUND_TRIP, REFUSED, SILENT, SEE_PROOFS, NOT_COMPARED)

DUMPER = Path(__file__).with_name("regress_dump.py")
ARCHITECTURAL = "architectural"


class RegressError(Exception):
    """Bad input: not a git repository, a bad revision, specifications that do not load."""


# ---------------------------------------------------------------------------------------
# Git and the two trees.


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise RegressError("git is not installed (regress reads the base revision with git)") from None
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip().splitlines()
        raise _GitError(msg[-1] if msg else f"git {' '.join(args)} failed")
    return out.stdout if binary else out.stdout.decode(errors="replace")


class _GitError(Exception):
    pass


def find_repository(start: Path) -> Path:
    """The top of the git repository ``start`` is in, which must be a gicproof tree."""
    if not start.is_dir():
        raise RegressError(f"{start}: no such directory")
    try:
        top = Path(_git(start, "rev-parse", "--show-toplevel").strip())
    except _GitError as e:
        raise RegressError(f"{start} is not in a git repository ({e}): regress compares a revision of the "
                           "repository the current directory is in with its working tree") from None
    if not (top / "spec" / "devices.py").is_file():
        raise RegressError(f"{top} is not a gicproof tree (it has no spec/devices.py)")
    return top


@dataclass
class Base:
    rev: str  # as given
    commit: str
    subject: str


def resolve(repo: Path, rev: str) -> Base:
    if not rev or rev.startswith("-"):
        raise RegressError(f"--base {rev!r}: not a revision (give a commit, a branch, a tag or e.g. HEAD~1)")
    try:
        commit = _git(repo, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}").strip()
    except _GitError as e:
        raise RegressError(f"--base {rev}: not a revision of {repo} ({e})") from None
    subject = _git(repo, "log", "-1", "--format=%s", commit).strip()
    return Base(rev, commit, subject)


def extract(repo: Path, commit: str, into: Path) -> Path:
    """The tree of ``commit`` (its tracked files) under ``into``."""
    data = _git(repo, "archive", "--format=tar", commit, binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def changed_dirs(repo: Path, commit: str) -> list[str]:
    """Which of spec/, models/, proofs/ differ between ``commit`` and the working tree
    (untracked files under spec/sequences count)."""
    out = []
    for d in ("spec", "models", "proofs"):
        diff = _git(repo, "diff", "--name-only", commit, "--", d).strip()
        untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "--", d).strip()
        if diff or untracked:
            out.append(d)
    return out


def _python(tree: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose imports come from ``tree``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("GICPROOF_DEBUG", None)
    boot = f"import sys; sys.path.insert(0, {str(tree)!r}); " + code
    return subprocess.run([sys.executable, "-c", boot, *args], cwd=tree, env=env, capture_output=True, text=True,
                          check=False)


def dump(tree: Path, label: str, probes: list[str] | None = None, only_probes: bool = False) -> dict[str, Any]:
    """The JSON description of ``tree``'s specifications (``regress_dump``), with the
    probes of the devices ``probes`` names (``only_probes``: nothing else)."""
    code = ("import runpy; sys.argv = [sys.argv[1]] + sys.argv[2:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    args = [str(DUMPER), str(tree)] + (["--probes", ",".join(probes)] if probes else []) \
        + (["--probes-only"] if only_probes else [])
    proc = _python(tree, code, *args)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RegressError(f"the specifications at {label} could not be described: "
                           f"{lines[-1] if lines else f'exit {proc.returncode}'}") from None
    if out.get("error"):
        raise RegressError(f"the specifications at {label} do not load: {_relative(out['error'], tree)}")
    return out


def _relative(text: str, tree: Path) -> str:
    return text.replace(str(tree) + "/", "")


# ---------------------------------------------------------------------------------------
# Verdicts: `gicproof prove FILE --json` in a tree.


PROVE = "from proofs.cli import main; sys.exit(main(['prove', sys.argv[1], '--json']))"


@dataclass
class Verdict:
    exit: int
    verdict: str = ""
    labels: list[str] = field(default_factory=list)
    matches: bool | None = None
    expect: str = ""
    error: str = ""

    def json(self) -> dict[str, Any]:
        return {"exit": self.exit, "verdict": self.verdict, "labels": self.labels, "matches": self.matches,
                "expect": self.expect, "error": self.error}

    @property
    def failing(self) -> bool:
        return self.exit != 0

    def short(self) -> str:
        if self.error:
            return f"does not load (exit {self.exit})" if self.exit == 2 else f"error (exit {self.exit})"
        n = len(self.labels)
        what = self.verdict + (f" ({n} loss{'es' if n != 1 else ''})" if self.verdict == "COUNTEREXAMPLE" else "")
        if self.matches is False:
            what += ", not as expected"
        return what


def prove(tree: Path, rel: str) -> Verdict:
    proc = _python(tree, PROVE, rel)
    try:
        doc = json.loads(proc.stdout)
        r = doc["results"][0]
        return Verdict(int(doc.get("exit", proc.returncode)), r.get("verdict", ""), list(r.get("labels", [])),
                       r.get("matches"), r.get("expect", ""))
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        lines = [x for x in (proc.stderr or proc.stdout).strip().splitlines() if x.strip()]
        msg = _relative(lines[-1], tree) if lines else f"exit {proc.returncode}"
        return Verdict(proc.returncode, error=msg.removeprefix("gicproof: error: "))


# ---------------------------------------------------------------------------------------
# Diffs.


def _keys(a: dict[str, Any] | None, b: dict[str, Any] | None) -> tuple[list[str], list[str], list[str]]:
    a, b = a or {}, b or {}
    return ([k for k in b if k not in a], [k for k in a if k not in b], [k for k in a if k in b])


def _hex(v: Any) -> str:
    return f"{v:#x}" if isinstance(v, int) else str(v)


def _reg_shape(r: dict[str, Any]) -> str:
    size = f"{r['words']} word{'s' if r['words'] != 1 else ''}"
    if r["scope"] == "irq":
        size += f", {r['bits_per_irq']} bit/irq"
    return f"{r['group'].split('_GRP_')[-1]} {r['offset']:#x}, {size}, {r['scope']}, views {','.join(r['views']) or '-'}"


def _revisions_differing(base: dict[str, Any], new: dict[str, Any], name: str, key: str) -> dict[str, Any]:
    """kernel revision -> (base, new) of one register's probe entry ``key``, where they differ."""
    out = {}
    for rev in sorted(set(base.get("probes", {})) & set(new.get("probes", {})), key=_rev_key):
        a = base["probes"][rev].get(name)
        b = new["probes"][rev].get(name)
        if a is None or b is None:
            continue
        if a.get(key) != b.get(key):
            out[rev] = (a, b)
    return out


def _rev_key(rev: str) -> tuple[Any, ...]:
    k, _, host = rev.partition("@")
    return (host, tuple(int(x) if x.isdigit() else 0 for x in k.split(".")))


def _ranges(revs: list[str]) -> str:
    return ", ".join(revs)


def register_changes(name: str, a: dict[str, Any], b: dict[str, Any], base: dict[str, Any],
                     new: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed in one register row between the base and the working tree."""
    out: list[dict[str, Any]] = []

    def add(kind: str, text: str, **extra: Any) -> None:
        out.append({"kind": kind, "text": text, **extra})

    for key in ("group", "offset", "words", "scope", "bits_per_irq", "first_irq", "irqs", "width", "unit"):
        if a.get(key) != b.get(key):
            add("shape", f"{key} {_hex(a.get(key))} -> {_hex(b.get(key))}", key=key, base=a.get(key), new=b.get(key))
    if a["views"] != b["views"]:
        gone = [v for v in a["views"] if v not in b["views"]]
        came = [v for v in b["views"] if v not in a["views"]]
        add("views", "views " + ", ".join([f"-{v}" for v in gone] + [f"+{v}" for v in came]),
            removed=gone, added=came)
    for key in ("pair", "pair_role", "sized"):
        if a.get(key) != b.get(key):
            add("pair" if key != "sized" else "shape", f"{key} {a.get(key) or '-'} -> {b.get(key) or '-'}")
    # accessor changes, one line per accessor (the guest's and userspace's are often the same)
    same: dict[str, dict[str, Any]] = {}
    for role in ("user_read", "user_write", "guest_read", "guest_write"):
        x, y = a["accessors"][role], b["accessors"][role]
        if x["name"] != y["name"]:
            add("accessor", f"{role} {x['name']} -> {y['name']}", role=role)
            continue
        what = []
        if x["code"] != y["code"] or x.get("error_code") != y.get("error_code"):
            what.append("its code changed")
        if x.get("errno") != y.get("errno"):
            what.append(f"errno {x.get('errno') or '-'} -> {y.get('errno') or '-'}")
        if x["source"] != y["source"] or x["rule"] != y["rule"]:
            what.append("its rule or source text changed")
        if what:
            entry = same.setdefault(f"{y['name']}: {'; '.join(what)}", {"roles": [], "code": "its code changed" in what,
                                                                          "errno": any(w.startswith("errno") for w in what)})
            entry["roles"].append(role)
    for text, e in same.items():
        kind = "accessor" if e["errno"] else ("code" if e["code"] else "citation")
        add(kind, f"{'/'.join(e['roles'])} {text}", roles=e["roles"])
    resets = _revisions_differing(base, new, name, "reset")
    if resets:
        first = next(iter(resets.values()))
        add("reset", f"reset read at {_ranges(list(resets))}: {','.join(first[0]['reset'])} -> "
                     f"{','.join(first[1]['reset'])}", revisions=list(resets),
            base=first[0]["reset"], new=first[1]["reset"])
    probes = _revisions_differing(base, new, name, "probe")
    if probes:
        rev, (pa, pb) = next(iter(probes.items()))
        detail = _first_probe_difference(pa["detail"], pb["detail"])
        add("behaviour", f"behaviour on the probes differs at {_ranges(list(probes))}"
                         + (f"; e.g. at {rev}: {detail}" if detail else ""), revisions=list(probes), example=detail)
    return out


def _first_probe_difference(a: list[Any], b: list[Any]) -> str:
    for x, y in zip(a, b, strict=False):
        if x[:6] != y[:6]:
            word, start, pattern = x[0], x[1], x[2]
            what = []
            if x[3] != y[3]:
                what.append(f"the write {x[3]} -> {y[3]}")
            if x[4] != y[4]:
                what.append(f"reads back {x[4]} -> {y[4]}")
            if x[5] != y[5]:
                what.append(f"leaves {' '.join(x[6]) or 'nothing changed'} -> {' '.join(y[6]) or 'nothing changed'}")
            return f"write {pattern} to word {word} from {start}: " + "; ".join(what)
    if len(a) != len(b):
        return f"{len(a)} -> {len(b)} probes (the words probed differ)"
    return ""


def diff_device(base: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Every difference of one device's tables."""
    if base is None or new is None:
        return {"status": "added" if base is None else "removed"}
    out: dict[str, Any] = {"status": "unchanged"}
    added, removed, both = _keys(base["registers"], new["registers"])
    renamed = []
    for old in list(removed):
        ra = base["registers"][old]
        for cand in added:
            rb = new["registers"][cand]
            if all(ra[k] == rb[k] for k in ("group", "offset", "words", "scope", "views", "bits_per_irq")):
                renamed.append((old, cand))
                removed.remove(old)
                added.remove(cand)
                break
    changed = {}
    for name in both:
        ch = register_changes(name, base["registers"][name], new["registers"][name], base, new)
        if ch:
            changed[name] = ch
    out["registers"] = {"added": added, "removed": removed, "renamed": renamed, "changed": changed}
    fa, fr, fb = _keys(base["fields"], new["fields"])
    fchanged = {}
    for f in fb:
        x, y = base["fields"][f], new["fields"][f]
        diffs = [f"{k} {x.get(k)} -> {y.get(k)}" for k in ("classification", "width", "scope", "kinds", "carried",
                                                            "memory") if x.get(k) != y.get(k)]
        if diffs:
            fchanged[f] = diffs
    out["fields"] = {"added": fa, "removed": fr, "changed": fchanged}
    ra, rr, rb = _keys(base["revisions"], new["revisions"])
    rchanged = {}
    for rev in rb:
        x, y = base["revisions"][rev], new["revisions"][rev]
        diffs = [f"{k} {x.get(k)} -> {y.get(k)}" for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
        if diffs:
            rchanged[rev] = diffs
    out["revisions"] = {"added": ra, "removed": rr, "changed": rchanged}
    for key in ("hosts", "boundaries", "assumptions", "operations"):
        a_, r_, b_ = _keys(base.get(key, {}), new.get(key, {}))
        out[key] = {"added": a_, "removed": r_, "changed": [k for k in b_ if base[key][k] != new[key][k]]}
    code = [k for k in ("reset", "invariant", "conjuncts") if base.get("code", {}).get(k) != new.get("code", {}).get(k)]
    out["code"] = code
    if base.get("probe_error") or new.get("probe_error"):
        out["probe_error"] = {"base": base.get("probe_error", ""), "working_tree": new.get("probe_error", "")}
    if base.get("default_kernel") != new.get("default_kernel"):
        out["default_kernel"] = [base.get("default_kernel"), new.get("default_kernel")]
    material = any([added, removed, renamed, changed, fa, fr, fchanged, ra, rr, rchanged, code,
                    out.get("default_kernel")] + [out[k][x] for k in ("hosts", "boundaries", "assumptions",
                                                                       "operations") for x in ("added", "removed",
                                                                                              "changed")])
    if material:
        out["status"] = "changed"
    return out


def diff_sequences(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    added, removed, both = _keys(base, new)
    changed = {}
    for rel in both:
        a, b = base[rel], new[rel]
        if a["sha"] == b["sha"]:
            continue
        what = []
        for k in ("device", "name", "kernel", "source_kernel", "host", "source_host", "expect", "lost", "violates",
                  "destination", "cpus", "irqs", "assume", "error"):
            if a.get(k) != b.get(k):
                what.append(k)
        for side in ("save", "restore"):
            sa = _flat(a.get(side))
            sb = _flat(b.get(side))
            if sa != sb:
                gone = [s for s in sa if s not in sb]
                came = [s for s in sb if s not in sa]
                what.append(f"{side} steps -{len(gone)} +{len(came)}" if (gone or came) else f"{side} steps reordered")
        changed[rel] = what or ["text only (comments, layout)"]
    return {"added": added, "removed": removed, "changed": changed}


def _flat(steps: Any) -> list[str]:
    out: list[str] = []
    for s in steps or ():
        out.append(s[1])
        if len(s) > 2:
            out += ["  " + x for x in _flat(s[2])]
    return out


# ---------------------------------------------------------------------------------------
# Migration between the two tables.


@dataclass
class Direction:
    verdict: str
    why: str
    step: str = ""
    errno: str = ""

    def json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "why": self.why, "step": self.step, "errno": self.errno}

    @property
    def code(self) -> str:
        if self.verdict == REFUSED:
            return f"REFUSED {self.errno} @{self.step}" if self.step else f"REFUSED {self.errno}"
        if self.verdict == SILENT:
            return "SILENT"
        if self.verdict == SEE_PROOFS:
            return "see proofs"
        return {ROUND_TRIP: "round trip", NOT_COMPARED: "-"}.get(self.verdict, self.verdict)


@dataclass
class Migration:
    device: str
    register: str
    change: str  # added | removed | renamed | changed
    summary: str
    old_to_new: Direction
    new_to_old: Direction
    touched_by: list[str] = field(default_factory=list)  # shipped files that name the register

    def json(self) -> dict[str, Any]:
        return {"device": self.device, "register": self.register, "change": self.change, "summary": self.summary,
                "old_to_new": self.old_to_new.json(), "new_to_old": self.new_to_old.json(),
                "touched_by": self.touched_by}


def _arch(dev: dict[str, Any], views: list[str]) -> list[str]:
    return [v for v in views if dev["fields"].get(v, {}).get("classification") == ARCHITECTURAL]


def _restored_elsewhere(field_name: str, reg: str, src: dict[str, Any], dst: dict[str, Any]) -> list[str]:
    """Registers other than ``reg`` that view ``field_name`` in both tables (so a VMM can
    save it from the source and restore it on the destination through them)."""
    out = []
    for name, r in dst["registers"].items():
        if name == reg or field_name not in r["views"]:
            continue
        s = src["registers"].get(name)
        if s is not None and field_name in s["views"]:
            out.append(name)
    return out


def _reset_of(dev: dict[str, Any], reg: str) -> str:
    probes = dev.get("probes", {})
    rev = dev.get("default_kernel", "")
    entry = probes.get(rev, {}).get(reg)
    return ",".join(entry["reset"]) if entry else "?"


def _register_at(dev: dict[str, Any], group: str, offset: int) -> str:
    for name, r in dev["registers"].items():
        size = r.get("unit", 4) * r["words"]
        if r["group"] == group and r["offset"] <= offset < r["offset"] + size:
            return name
    return ""


def _absent_at_destination(reg: str, r: dict[str, Any], src: dict[str, Any], dst: dict[str, Any],
                           dst_label: str) -> Direction:
    """The source's save has ``reg``; the destination's table has no register of that name."""
    ua = unknown_attribute(r["group"])
    other = _register_at(dst, r["group"], r["offset"])
    step = f"write {reg}"
    arch = _arch(src, r["views"])
    if other:
        o = dst["registers"][other]
        if _arch(dst, o["views"]):
            return Direction(SILENT, f"the destination ({dst_label}) has {other} at {reg}'s offset {r['offset']:#x}: "
                             f"the saved value of {reg} is written to {other}, whose state "
                             f"({', '.join(_arch(dst, o['views']))}) it then sets from unrelated bits", step)
        return Direction(ROUND_TRIP, f"the destination has {other} (no guest state) at {reg}'s offset: the write "
                         "changes no state" + (f"; {', '.join(arch)} must come back another way" if arch else ""),
                         step)
    if ua.behaviour == ERROR:
        return Direction(REFUSED, f"the destination ({dst_label}) has no {reg}: {ua.describe()} ({ua.source}); "
                         f"{VMM_ON_ERROR}", step, ua.errno_at())
    # ignored: the saved value is dropped
    if not arch:
        return Direction(ROUND_TRIP, f"{reg} holds no guest state (views {', '.join(r['views']) or 'nothing'}); at "
                         f"the destination ({dst_label}) {ua.describe()}, so a check the VMM meant by writing it back "
                         "is silently not made")
    lost = []
    kept = []
    for f in arch:
        if f not in dst["fields"]:
            lost.append(f"{f} (the destination has no such state)")
            continue
        via = _restored_elsewhere(f, reg, src, dst)
        if via:
            kept.append(f"{f} through {', '.join(via)}")
        else:
            lost.append(f"{f} (keeps the destination's value)")
    if lost:
        return Direction(SILENT, f"the saved value is dropped, so {'; '.join(lost)} is lost"
                         + (f" ({'; '.join(kept)} comes back)" if kept else "")
                         + f": at the destination ({dst_label}) {ua.describe()} ({ua.source})", step)
    return Direction(ROUND_TRIP, f"at the destination ({dst_label}) {ua.describe()}, but every field it views comes "
                     f"back another way: {'; '.join(kept)} (heuristic: those registers view the field in both "
                     "tables; the proofs say whether they restore it)", step)


def _only_at_destination(reg: str, r: dict[str, Any], src: dict[str, Any], dst: dict[str, Any],
                         src_label: str) -> Direction:
    """The destination's table has ``reg``; the source's has none, so nothing saved it."""
    arch = _arch(dst, r["views"])
    reset = _reset_of(dst, reg)
    if not arch:
        return Direction(ROUND_TRIP, f"{reg} holds no guest state (views {', '.join(r['views']) or 'nothing'}): "
                         f"the destination reads its own value ({reset} after reset)")
    new_state: list[str] = []
    lost: list[str] = []
    kept: list[str] = []
    for f in arch:
        if f not in src["fields"]:
            new_state.append(f)
            continue
        via = _restored_elsewhere(f, reg, src, dst)
        (kept if via else lost).append(f"{f}" + (f" through {', '.join(via)}" if via else ""))
    if lost:
        return Direction(SILENT, f"the source ({src_label}) has {', '.join(lost)} but no register that saves it; "
                         f"the destination keeps its value ({reg} reads {reset} after reset), which the source's "
                         "can differ from")
    why = []
    if new_state:
        why.append(f"{', '.join(new_state)} is new: the source ({src_label}) has no such state, and the destination "
                   f"starts it at its reset value ({reg} reads {reset}): nothing is lost if the old kernel behaved "
                   "as if it had that value (which the tables cannot say)")
    if kept:
        why.append(f"{'; '.join(kept)} (heuristic: those registers view the field in both tables)")
    return Direction(ROUND_TRIP, "; ".join(why))


def classify(device: str, base: dict[str, Any] | None, new: dict[str, Any] | None, diff: dict[str, Any],
             touched: Callable[[str], list[str]]) -> list[Migration]:
    """Old source -> new destination and new -> old for every register the diff names."""
    out: list[Migration] = []
    if base is None or new is None:
        return out
    regs = diff["registers"]
    for name in regs["added"]:
        r = new["registers"][name]
        out.append(Migration(device, name, "added", _reg_shape(r),
                             _only_at_destination(name, r, base, new, "the base"),
                             _absent_at_destination(name, r, new, base, "the base"), touched(name)))
    for name in regs["removed"]:
        r = base["registers"][name]
        out.append(Migration(device, name, "removed", _reg_shape(r),
                             _absent_at_destination(name, r, base, new, "the working tree"),
                             _only_at_destination(name, r, new, base, "the working tree"), touched(name)))
    for old, cur in regs["renamed"]:
        same = Direction(ROUND_TRIP, "renamed in the table only: the same attribute group, offset, size and views "
                         "(a VMM names it by offset)")
        out.append(Migration(device, f"{old} -> {cur}", "renamed", _reg_shape(new["registers"][cur]), same, same,
                             touched(old) + touched(cur)))
    for name, changes in regs["changed"].items():
        a, b = base["registers"][name], new["registers"][name]
        out.append(Migration(device, name, "changed", "; ".join(c["text"] for c in changes),
                             _changed(name, a, b, base, new, changes, "old -> new"),
                             _changed(name, b, a, new, base, changes, "new -> old"), touched(name)))
    # registers whose views are unchanged but a field they view changed
    for f, diffs in diff["fields"]["changed"].items():
        for name, r in new["registers"].items():
            if f in r["views"] and name in base["registers"] and name not in regs["changed"]:
                out.append(Migration(device, name, "field changed", f"{f}: {'; '.join(diffs)}",
                                     _field_changed(f, base, new, "the working tree"),
                                     _field_changed(f, new, base, "the base"), touched(name)))
                break
    return out


def _field_changed(f: str, src: dict[str, Any], dst: dict[str, Any], dst_label: str) -> Direction:
    a, b = src["fields"][f], dst["fields"][f]
    if a["classification"] == ARCHITECTURAL and b["classification"] != ARCHITECTURAL:
        return Direction(SILENT, f"{f} is {b['classification']} at the destination ({dst_label}): it is no longer "
                         "compared or restored there (a reclassification; say why in the field's reason)")
    if a["width"] > b["width"] and a["classification"] == ARCHITECTURAL:
        return Direction(SILENT, f"{f} is {a['width']} bits at the source and {b['width']} at the destination: "
                         "the high bits are lost")
    return Direction(ROUND_TRIP, f"{f}: nothing the source can hold is lost by the change")


def _changed(name: str, a: dict[str, Any], b: dict[str, Any], src: dict[str, Any], dst: dict[str, Any],
             changes: list[dict[str, Any]], direction: str) -> Direction:
    """``name`` exists on both sides but differs: ``a`` is the source's row, ``b`` the
    destination's."""
    kinds = {c["kind"] for c in changes}
    if "shape" in kinds and (a["group"] != b["group"] or a["offset"] != b["offset"]):
        # the source's VMM writes the saved value where the source had it
        moved = _absent_at_destination(name, a, src, dst, "destination")
        return Direction(moved.verdict, f"{name} moved ({a['group'].split('_GRP_')[-1]} {a['offset']:#x} -> "
                         f"{b['group'].split('_GRP_')[-1]} {b['offset']:#x}); a VMM addresses it by offset: "
                         + moved.why, moved.step, moved.errno)
    arch_a = _arch(src, a["views"])
    if "shape" in kinds:
        if a["words"] > b["words"] and arch_a:
            ua = unknown_attribute(b["group"])
            if ua.behaviour == ERROR:
                return Direction(REFUSED, f"the source saves {a['words']} words of {name}, the destination has "
                                 f"{b['words']}: the extra words are refused ({ua.describe()})", f"write {name}",
                                 ua.errno_at())
            return Direction(SILENT, f"the source saves {a['words']} words of {name}, the destination has "
                             f"{b['words']}: {ua.describe()} for the rest, so their state is dropped")
        if a.get("width", 32) > b.get("width", 32) and arch_a:
            return Direction(SILENT, f"{name} is {a['width']} bits at the source and {b['width']} at the "
                             "destination: the high bits of the saved value are dropped")
    if "views" in kinds:
        dropped = [v for v in arch_a if v not in b["views"]]
        lost = [v for v in dropped if not _restored_elsewhere(v, name, src, dst)]
        if lost:
            return Direction(SILENT, f"at the destination {name} no longer views {', '.join(lost)}, and no other "
                             "register both sides have does: the saved value does not bring it back")
    if kinds & {"accessor", "behaviour", "views"}:
        return Direction(SEE_PROOFS, "the register exists on both sides and its shape is the same, but it "
                         "behaves differently (the changes listed): whether a migration between the two semantics "
                         "round-trips is for the proofs of the files that use it to say (the verdicts below); the "
                         "tables alone cannot")
    if "code" in kinds:
        return Direction(SEE_PROOFS, "its code changed but it behaves the same on every probe (a refactor, or a "
                         "change in states the probes do not reach): the proofs of the files that use it decide "
                         "(the verdicts below)")
    if "reset" in kinds and not arch_a:
        return Direction(SEE_PROOFS, f"{name} holds no guest state and reads differently after reset: a VMM that "
                         "writes the saved value back as a check (as QEMU does with IIDR and TYPER2) may be refused "
                         "by the other kernel; see the verdicts")
    return Direction(ROUND_TRIP, "the change does not touch what the source saves or how the destination restores "
                     "it (" + "; ".join(c["text"] for c in changes) + ")")


# ---------------------------------------------------------------------------------------
# The whole comparison.


@dataclass
class FileVerdict:
    file: str
    device: str
    base: Verdict | None
    new: Verdict | None
    change: str = ""
    newly_failing: bool = False
    lost_before_only: list[str] = field(default_factory=list)
    lost_now_only: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"file": self.file, "device": self.device, "base": self.base.json() if self.base else None,
                "working_tree": self.new.json() if self.new else None, "change": self.change,
                "newly_failing": self.newly_failing, "losses_only_at_base": self.lost_before_only,
                "losses_only_in_working_tree": self.lost_now_only}


def compare_verdicts(rel: str, device: str, a: Verdict | None, b: Verdict | None) -> FileVerdict:
    fv = FileVerdict(rel, device, a, b)
    if a is None and b is not None:
        fv.change = "added"
    elif b is None:
        fv.change = "removed"
    elif b.error and not a.error:  # type: ignore[union-attr]
        fv.change = "no longer loads" if b.exit == 2 else "now an error"
    elif a is not None and (a.verdict, sorted(a.labels), a.exit) == (b.verdict, sorted(b.labels), b.exit):
        fv.change = "same"
    elif a is not None and a.verdict != b.verdict:
        fv.change = f"verdict {a.verdict or 'error'} -> {b.verdict or 'error'}"
    elif a is not None and sorted(a.labels) != sorted(b.labels):
        fv.change = "losses changed"
    else:
        fv.change = "exit status changed"
    if a is not None and b is not None:
        fv.lost_before_only = sorted(set(a.labels) - set(b.labels))
        fv.lost_now_only = sorted(set(b.labels) - set(a.labels))
    fv.newly_failing = b is not None and b.failing and (a is None or not a.failing)
    return fv


@dataclass
class Report:
    repo: Path
    base: Base
    dirs: list[str]
    devices: dict[str, dict[str, Any]]
    sequences: dict[str, Any]
    migrations: list[Migration]
    verdicts: list[FileVerdict]
    rerun: str
    streams: dict[str, Any]
    cpregs: dict[str, Any]
    only: list[str]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def silent(self) -> int:
        n = sum(m.old_to_new.verdict == SILENT for m in self.migrations)
        n += sum(m.new_to_old.verdict == SILENT for m in self.migrations)
        n += sum(c["verdict"] == stream_model.SILENT for c in self.streams.get("cells", []))
        for c in self.cpregs.get("changed", {}).values():
            n += sum(bool(c.get(k)) and c[k]["verdict"] == cpregs_model.SILENT for k in ("old_to_new", "new_to_old"))
        return n

    @property
    def newly_failing(self) -> int:
        return sum(v.newly_failing for v in self.verdicts)

    def exit_code(self) -> int:
        return 1 if self.silent or self.newly_failing else 0

    def json(self) -> dict[str, Any]:
        return {
            "obligation": "regress",
            "base": {"rev": self.base.rev, "commit": self.base.commit, "subject": self.base.subject},
            "working_tree": str(self.repo), "changed_directories": self.dirs, "devices_compared": self.only,
            "devices": self.devices, "sequences": self.sequences,
            "migration": [m.json() for m in self.migrations],
            "verdicts": [v.json() for v in self.verdicts], "rerun": self.rerun,
            "streams": self.streams, "cpregs": self.cpregs, "notes": self.notes,
            "summary": {"silent": self.silent, "newly_failing": self.newly_failing,
                        "refused": sum(m.old_to_new.verdict == REFUSED for m in self.migrations)
                        + sum(m.new_to_old.verdict == REFUSED for m in self.migrations),
                        "files_rerun": len(self.verdicts), "seconds": round(self.seconds, 2)},
        }


def _touched_either(base: dict[str, Any], new: dict[str, Any], device: str) -> Callable[[str], list[str]]:
    """The shipped files (of either side) that name a register, each with the lines that do
    (the working tree's where the file is there)."""
    def f(reg: str) -> list[str]:
        out = []
        for rel in sorted(set(base) | set(new)):
            s = new.get(rel) or base[rel]
            if s.get("device") != device:
                continue
            lines = sorted({line for t, _, _, line in s.get("targets", []) if t == reg})
            if lines:
                out.append(f"{rel.removeprefix('spec/sequences/')} (line{'s' if len(lines) > 1 else ''} "
                           f"{', '.join(map(str, lines))})")
        return out
    return f


def _stream_report(base: dict[str, Any] | None, new: dict[str, Any] | None, devices: list[str]) -> dict[str, Any]:
    """Stream versions added, removed or changed, and every pair involving one of them (the
    streams of ``devices`` only)."""
    b = {k: v for k, v in ((base or {}).get("streams", {}) or {}).items() if v.get("device") in devices}
    n = {k: v for k, v in ((new or {}).get("streams", {}) or {}).items() if v.get("device") in devices}
    out: dict[str, Any] = {"base_has_streams": base is not None, "changed": [], "cells": [], "static_checker": {}}
    for name in sorted(set(b) | set(n)):
        if name not in n:
            out["changed"].append({"stream": name, "removed": True})
            continue
        cur = stream_spec.from_json(n[name])
        old = stream_spec.from_json(b[name]) if name in b else None
        new_json = {v["name"]: v for v in n[name]["versions"]}
        old_json = {v["name"]: v for v in b[name]["versions"]} if name in b else {}
        added = [v for v in new_json if v not in old_json]
        changed = [v for v in new_json if v in old_json and old_json[v] != new_json[v]]
        removed = [v for v in old_json if v not in new_json]
        data_changed = name in b and {k: v for k, v in b[name].items() if k != "versions"} != \
            {k: v for k, v in n[name].items() if k != "versions"}
        if not (added or changed or removed or data_changed):
            continue
        out["changed"].append({"stream": name, "device": cur.device, "added": added, "changed": changed,
                               "removed": removed, "hosts_or_config_changed": data_changed})
        fresh = set(added) | set(changed) | ({v.name for v in cur.versions} if data_changed else set())
        # every ordered pair, a version with itself too (on different host kinds)
        pairs = [(x, y) for x in cur.versions for y in cur.versions if x.name in fresh or y.name in fresh]
        # a changed version against its own base definition, both ways
        for vname in changed:
            assert old is not None
            was = dataclasses.replace(old.version(vname), name=f"{vname} (base)")
            pairs += [(was, cur.version(vname)), (cur.version(vname), was)]
        for cell in stream_model.matrix(cur, pairs):
            if cell.source == cell.destination and cell.source_host == cell.destination_host:
                continue  # nothing migrates between two versions or hosts
            out["cells"].append({"stream": name, **cell.json(), "code": cell.code})
        for x, y in pairs:
            out["static_checker"][f"{name}: {x.name} -> {y.name}"] = stream_model.static_check(x.description,
                                                                                              y.description)
    return out


def _cpregs_report(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    added, removed, both = _keys(base, new)
    changed = {}
    for f in both:
        a, b = base[f].get("registers", {}), new[f].get("registers", {})
        plus = [f"{b[i]} ({i})" for i in b if i not in a]
        minus = [f"{a[i]} ({i})" for i in a if i not in b]
        if plus or minus or base[f].get("kernel") != new[f].get("kernel"):
            changed[f] = {"added": plus, "removed": minus,
                          **_cpregs_migrations(f, base[f].get("text"), new[f].get("text"))}
    return {"added": added, "removed": removed, "changed": changed,
            "note": "each changed list is migrated base -> working tree and back by the working tree's "
                    "arm-cpregs model (QEMU's merge, variant 'qemu': models.cpregs.migrate), as "
                    "'gicproof cpregs migrate' does"}


def _cpregs_migrations(name: str, base_text: str | None, new_text: str | None) -> dict[str, Any]:
    """A vCPU of the base's kernel list migrated to the working tree's, and back: the
    verdict of QEMU's (index, value) merge and write-back (seed 004; target/arm/machine.c
    cpu_post_load), one cell each way, as the arm-cpregs model decides it."""
    from proofs.cpregs import cell_text  # imports z3: only when a list changed
    from spec.cpregs import VARIANTS
    if base_text is None or new_text is None:
        return {"old_to_new": None, "new_to_old": None, "error": "a side did not carry the list's text"}
    try:
        old = cpregs_model.parse_list(base_text, Path(f"{name} (base)"))
        new = cpregs_model.parse_list(new_text, Path(f"{name} (working tree)"))
    except cpregs_model.ListError as e:
        return {"old_to_new": None, "new_to_old": None, "error": str(e)}
    out: dict[str, Any] = {"error": ""}
    for key, (src, dst) in (("old_to_new", (old, new)), ("new_to_old", (new, old))):
        mig = cpregs_model.migrate(src, dst, VARIANTS["qemu"])
        out[key] = {"verdict": mig.verdict, "cell": cell_text(mig), "stage": mig.stage,
                    "registers": {what: [e.name for e in mig.by(what)]
                                  for what in sorted({e.what for e in mig.entries}) if what != "carried"}}
    return out


def run(start: Path, rev: str = "HEAD", jobs: int = 1, rerun: str = "changed", devices: list[str] | None = None,
        progress: Callable[[str], None] | None = None) -> Report:
    t0 = time.perf_counter()
    say = progress or (lambda _m: None)
    repo = find_repository(start)
    base = resolve(repo, rev)
    try:
        dirs = changed_dirs(repo, base.commit)
    except _GitError as e:
        raise RegressError(f"git: {e}") from None
    with tempfile.TemporaryDirectory(prefix="gicproof-regress-") as tmp:
        tree = extract(repo, base.commit, Path(tmp))
        if not (tree / "spec" / "devices.py").is_file():
            raise RegressError(f"--base {rev}: that revision has no spec/devices.py (not a gicproof tree)")
        base_label = f"{rev} ({base.commit[:12]})"
        say("describing both trees")
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, 2))) as pool:
            fa = pool.submit(dump, tree, base_label)
            fb = pool.submit(dump, repo, "the working tree")
            d_base, d_new = fa.result(), fb.result()
        names = list(dict.fromkeys(list(d_base["devices"]) + list(d_new["devices"])))
        if devices:
            unknown = [x for x in devices if x not in names]
            if unknown:
                raise RegressError(f"--devices: unknown device {', '.join(unknown)}: valid: {', '.join(names)}")
            names = [x for x in names if x in devices]
        # the probes (what each register does on the concrete model at every revision) for
        # the devices whose tables differ, or every device when the engine (models/) did
        probe = [n for n in names if n in d_base["devices"] and n in d_new["devices"]
                 and ("models" in dirs or d_base["devices"][n] != d_new["devices"][n])]
        if probe:
            say(f"probing the registers of {', '.join(probe)} on both trees")
            with ThreadPoolExecutor(max_workers=max(1, min(jobs, 2))) as pool:
                pa = pool.submit(dump, tree, base_label, probe, True)
                pb = pool.submit(dump, repo, "the working tree", probe, True)
                for full, part in ((d_base, pa.result()), (d_new, pb.result())):
                    for n, d in part["devices"].items():
                        full["devices"][n].update(d)
        diffs = {n: diff_device(d_base["devices"].get(n), d_new["devices"].get(n)) for n in names}
        seq_diff = diff_sequences(d_base.get("sequences", {}), d_new.get("sequences", {}))
        migrations: list[Migration] = []
        for n in names:
            if diffs[n]["status"] == "changed":
                migrations += classify(n, d_base["devices"].get(n), d_new["devices"].get(n), diffs[n],
                                       _touched_either(d_base.get("sequences", {}), d_new.get("sequences", {}), n))
        # which files to prove on both sides
        files: list[tuple[str, str]] = []
        all_seqs = {**d_base.get("sequences", {}), **d_new.get("sequences", {})}
        changed_files = set(seq_diff["added"]) | set(seq_diff["removed"]) | set(seq_diff["changed"])
        for rel in sorted(all_seqs):
            dev = all_seqs[rel].get("device", Path(rel).parent.name)
            if dev not in names:
                continue
            if rerun == "all" or (rerun == "changed" and (diffs.get(dev, {}).get("status") != "unchanged"
                                                          or rel in changed_files)):
                files.append((rel, dev))
        verdicts: list[FileVerdict] = []
        if files:
            jobs_list = [(side, rel) for rel, _ in files for side in ("base", "new")]
            done = 0

            def one(side: str, rel: str) -> Verdict | None:
                nonlocal done
                root = tree if side == "base" else repo
                src = d_base if side == "base" else d_new
                out = prove(root, rel) if rel in src.get("sequences", {}) else None
                done += 1
                say(f"proving the shipped files: {done}/{len(jobs_list)} done (last: {rel}, {side})")
                return out

            say(f"proving the shipped files: 0/{len(jobs_list)} done")
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futs = {(side, rel): pool.submit(one, side, rel) for side, rel in jobs_list}
                results = {k: f.result() for k, f in futs.items()}
            for rel, dev in files:
                verdicts.append(compare_verdicts(rel, dev, results[("base", rel)], results[("new", rel)]))
        streams = _stream_report(d_base.get("streams"), d_new.get("streams"), names)
        cp = _cpregs_report(d_base.get("cpregs", {}), d_new.get("cpregs", {}))
    notes = []
    if rerun == "changed" and ({"models", "proofs"} & set(dirs)):
        notes.append(f"{' and '.join(d + '/' for d in dirs if d != 'spec')} also changed: a change of the engine or "
                     "the prover can change verdicts of devices whose tables did not; --rerun all proves every "
                     "shipped file on both sides")
    for n in names:
        pe = diffs[n].get("probe_error")
        if pe:
            notes.append(f"{n}: the probes could not run ({pe['base'] or pe['working_tree']}): register behaviour "
                         "and reset values are not compared")
    report = Report(repo, base, dirs, diffs, seq_diff, migrations, verdicts, rerun, streams, cp, names,
                    notes=notes)
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------------
# Text.


def _wrap(text: str, indent: int, width: int = 110) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2),
                         break_on_hyphens=False, break_long_words=False) or [" " * indent]


def _table(rows: Sequence[tuple[str, ...]], indent: int = 2) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(" " * indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip() for r in rows]


def render(r: Report, timing: bool = True) -> str:
    out: list[str] = []
    out.append(f"gicproof regress: base {r.base.rev} ({r.base.commit[:12]} {r.base.subject!r}) -> the working tree")
    out.append(f"  directories that differ: {', '.join(d + '/' for d in r.dirs) or 'none'}")
    status = {n: d["status"] for n, d in r.devices.items()}
    out.append("  devices: " + ", ".join(f"{n} {s}" for n, s in status.items()))
    sq = r.sequences
    out.append(f"  shipped sequences: {len(sq['added'])} added, {len(sq['removed'])} removed, "
               f"{len(sq['changed'])} changed")
    printed: dict[tuple[str, str], str] = {}  # a composed device (gicv3-its) repeats its base's rows
    for n, d in r.devices.items():
        if d["status"] == "unchanged":
            continue
        out.append("")
        out.append(f"{n}: what changed in the tables")
        if d["status"] in ("added", "removed"):
            out.append(f"  the device was {d['status']}: nothing to compare it with")
            continue
        regs = d["registers"]
        for name in regs["added"]:
            out += _wrap(f"+ register {name}", 2)
        for name in regs["removed"]:
            out += _wrap(f"- register {name}", 2)
        for old, cur in regs["renamed"]:
            out += _wrap(f"~ register {old} renamed {cur}", 2)
        for name, changes in regs["changed"].items():
            text = "; ".join(c["text"] for c in changes)
            if (name, text) in printed:
                out += _wrap(f"~ register {name}: as in {printed[(name, text)]}", 2)
                continue
            printed[(name, text)] = n
            out += _wrap(f"~ register {name}: {text}", 2)
        fl = d["fields"]
        for f in fl["added"]:
            out += _wrap(f"+ field {f}", 2)
        for f in fl["removed"]:
            out += _wrap(f"- field {f}", 2)
        for f, diffs in fl["changed"].items():
            out += _wrap(f"~ field {f}: {'; '.join(diffs)}", 2)
        rv = d["revisions"]
        for k in rv["added"]:
            out.append(f"  + kernel revision {k}")
        for k in rv["removed"]:
            out.append(f"  - kernel revision {k}")
        for k, diffs in rv["changed"].items():
            out += _wrap(f"~ kernel revision {k}: {'; '.join(diffs)}", 2)
        for key, what in (("hosts", "host kind"), ("boundaries", "boundary"), ("assumptions", "assumption"),
                          ("operations", "operation")):
            for k in d[key]["added"]:
                out.append(f"  + {what} {k}")
            for k in d[key]["removed"]:
                out.append(f"  - {what} {k}")
            for k in d[key]["changed"]:
                out.append(f"  ~ {what} {k}")
        if d.get("code"):
            out.append(f"  ~ device code: {', '.join(d['code'])} changed")
    if r.migrations:
        out.append("")
        out.append("migration between the two tables (old = the base, new = the working tree; from the tables, "
                   "not proved: see README)")
        rows: list[tuple[str, ...]] = [("device", "register", "change", "old -> new", "new -> old")]
        for m in r.migrations:
            rows.append((m.device, m.register, m.change, m.old_to_new.code, m.new_to_old.code))
        out += _table(rows)
        explained: dict[tuple[Any, ...], str] = {}
        for m in r.migrations:
            same = (m.register, m.change, m.summary, m.old_to_new.why, m.new_to_old.why)
            if same in explained:
                out += _wrap(f"{m.device} {m.register}: as in {explained[same]}", 2)
                continue
            explained[same] = m.device
            out += _wrap(f"{m.device} {m.register} ({m.change}: {m.summary})", 2)
            if (m.old_to_new.verdict, m.old_to_new.why) == (m.new_to_old.verdict, m.new_to_old.why):
                out += _wrap(f"both ways: {m.old_to_new.verdict}: {m.old_to_new.why}", 4)
            else:
                out += _wrap(f"old -> new: {m.old_to_new.verdict}: {m.old_to_new.why}", 4)
                out += _wrap(f"new -> old: {m.new_to_old.verdict}: {m.new_to_old.why}", 4)
            if m.touched_by:
                more = f"; and {len(m.touched_by) - 4} more" if len(m.touched_by) > 4 else ""
                out += _wrap(f"shipped files naming it: {'; '.join(m.touched_by[:4])}{more}", 4)
    if r.verdicts:
        out.append("")
        out.append("shipped sequences, proved at the base (its own prover) and in the working tree")
        rows = [("file", "base", "working tree", "change")]
        for v in r.verdicts:
            rows.append((v.file.removeprefix("spec/sequences/"), v.base.short() if v.base else "-",
                         v.new.short() if v.new else "-", v.change + (" (NEWLY FAILING)" if v.newly_failing else "")))
        out += _table(rows)
        for v in r.verdicts:
            if v.lost_before_only or v.lost_now_only:
                out += _wrap(f"{v.file.removeprefix('spec/sequences/')}: losses only at the base: "
                             f"{', '.join(v.lost_before_only) or 'none'}; only in the working tree: "
                             f"{', '.join(v.lost_now_only) or 'none'}", 2)
            for side, x in (("base", v.base), ("working tree", v.new)):
                if x is not None and x.error:
                    out += _wrap(f"{v.file.removeprefix('spec/sequences/')} ({side}): {x.error}", 2)
    elif any(d["status"] != "unchanged" for d in r.devices.values()) or any(r.sequences.values()):
        out.append("")
        out.append(f"shipped sequences: none proved (--rerun {r.rerun})")
    st = r.streams
    if st.get("changed"):
        out.append("")
        out.append("QEMU migration streams (spec/streams.py): "
                   + "; ".join(_stream_change(c) for c in st["changed"]))
        cells = st["cells"]
        by_stream: dict[str, list[dict[str, Any]]] = {}
        for c in cells:
            by_stream.setdefault(c["stream"], []).append(c)
        for name, cs in by_stream.items():
            out.append(f"  {name}: source -> destination, each on every host kind")
            rows = [("source", "destination", "verdict", "static checker")]
            for c in cs:
                rows.append((_side(c["source"], c["source_host"]), _side(c["destination"], c["destination_host"]),
                             c["code"], c["static_checker_code"]))
            out += _table(rows, 4)
            shown: set[tuple[Any, ...]] = set()
            for c in cs:
                if c["verdict"] == stream_model.ROUND_TRIP:
                    continue
                seen = (c["verdict"], c["where"], tuple(c["changed"]), tuple(c["notes"][:1]))
                label = f"{_side(c['source'], c['source_host'])} -> {_side(c['destination'], c['destination_host'])}"
                out += _wrap(f"{label}: {c['verdict']}" + (f" at {c['where']}" if c["where"] else "")
                             + (f" ({c['errno']})" if c["errno"] else ""), 4)
                if seen in shown:
                    out += _wrap("as above", 6)
                    continue
                shown.add(seen)
                for note in c["notes"]:
                    if not note.startswith("icc_sre_el1") and "accepts it" not in note:
                        out += _wrap(note, 6)
                out += _wrap(f"static checker: {c['static_checker']}", 6)
    cp = r.cpregs
    if cp["added"] or cp["removed"] or cp["changed"]:
        out.append("")
        out.append("vCPU register lists (spec/cpregs; a vCPU migrated by QEMU's merge, arm-cpregs model)")
        for f in cp["added"]:
            out.append(f"  + {f}")
        for f in cp["removed"]:
            out.append(f"  - {f}")
        for f, c in cp["changed"].items():
            out += _wrap(f"~ {f}: +{len(c['added'])} -{len(c['removed'])} registers"
                         + (f" (+{', '.join(c['added'][:5])}{' ...' if len(c['added']) > 5 else ''})"
                            if c["added"] else "")
                         + (f" (-{', '.join(c['removed'][:5])}{' ...' if len(c['removed']) > 5 else ''})"
                            if c["removed"] else ""), 2)
            if c.get("error"):
                out += _wrap(f"not migrated: {c['error']}", 4)
            for key, label in (("old_to_new", "old -> new"), ("new_to_old", "new -> old")):
                if c.get(key):
                    out += _wrap(f"{label}: {c[key]['cell']}", 4)
    for note in r.notes:
        out.append("")
        out += _wrap(f"note: {note}", 0)
    out.append("")
    summary = (f"summary: {r.silent} silent change{'s' if r.silent != 1 else ''}, {r.newly_failing} newly failing "
               f"file{'s' if r.newly_failing != 1 else ''}, {len(r.verdicts)} file{'s' if len(r.verdicts) != 1 else ''} "
               "proved on both sides")
    if timing:
        summary += f" ({r.seconds:.1f} s)"
    out.append(summary)
    return "\n".join(out)


def _side(version: str, host: str) -> str:
    return f"{version} on {host}" if host else version


def _stream_change(c: dict[str, Any]) -> str:
    if c.get("removed"):
        return f"{c['stream']} removed"
    parts = []
    for key in ("added", "changed", "removed"):
        if c.get(key):
            parts.append(f"{key} {', '.join(c[key])}")
    if c.get("hosts_or_config_changed"):
        parts.append("host values or configuration changed")
    return f"{c['stream']}: " + "; ".join(parts)


__all__ = ["RegressError", "Report", "run", "render", "diff_device", "classify"]
