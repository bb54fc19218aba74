"""``gicproof cpregs``: the Arm CPU register list protocol (arm-cpregs, issue 10).

    gicproof cpregs prove    [--variant V,..] [--json] [--rlimit N] [--timeout S]
    gicproof cpregs matrix   [--variant V] [--hidden I,..] [--safe-missing I,..]
                             [--lists FILE ...] [--no-sort] [--brief] [--on-kernel] [--json]
    gicproof cpregs migrate  SOURCE DESTINATION [the matrix options]
    gicproof cpregs variants [--json]
    gicproof cpregs describe

A module of its own (``proofs.cli`` only registers it), so that other commands can grow
beside it without touching it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from models import cpregs as M
from proofs import cpregs as P
from proofs.options import budget as _budget
from proofs.options import budget_options
from spec import cpregs as S

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_KERNEL_DISAGREES = 5  # --on-kernel: a real kernel answered otherwise than the model
JSON_VERSION = 1


def _error(msg: str) -> int:
    print(f"gicproof: error: {msg}", file=sys.stderr)
    return EXIT_INPUT


def _progress(enabled: bool) -> Any:
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        if enabled:
            sys.stderr.write(f"\r\033[K[{time.perf_counter() - t0:5.1f}s] {msg}")
            sys.stderr.flush()
    return say


def _done(enabled: bool) -> None:
    if enabled:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _variants(text: str | None, one: bool = False) -> tuple[list[str], str]:
    valid = ", ".join(S.VARIANTS)
    if text is None:
        return (["qemu"] if one else list(S.VARIANTS)), ""
    names = [t.strip() for t in text.split(",")]
    if one and len(names) != 1:
        return [], f"--variant {text!r}: give one variant: {valid}"
    for n in names:
        if n not in S.VARIANTS:
            return [], f"--variant: unknown variant {n!r}: valid: {valid}"
    return list(dict.fromkeys(names)), ""


def _indexes(option: str, text: str | None) -> tuple[list[int] | None, str]:
    if text is None:
        return None, ""
    if text.strip() in ("", "none"):
        return [], ""
    out = []
    for part in text.split(","):
        p = part.strip()
        try:
            v = int(p, 16) if p.lower().startswith("0x") else int(p, 0)
        except ValueError:
            return None, (f"{option}: {p!r} is not a register index: give KVM indexes in hex, comma-separated, "
                          "e.g. 0x6030000000160003 (KVM_REG_ARM_VENDOR_HYP_BMAP_2), or 'none'")
        if not 0 <= v < 1 << 64:
            return None, f"{option}: {p} is not a 64-bit register index"
        out.append(v)
    return out, ""


def _lists(args: argparse.Namespace) -> tuple[list[S.RegList], str]:
    if not args.lists:
        return M.shipped_lists(), ""
    out = []
    for f in args.lists:
        try:
            out.append(M.load_list(f))
        except M.ListError as e:
            return [], str(e)
    labels = [x.label for x in out]
    if len(set(labels)) != len(labels):
        return [], f"--lists: two files have the same kernel label ({', '.join(labels)}): each needs its own"
    return out, ""


def _one_list(text: str) -> tuple[S.RegList | None, str]:
    shipped = {x.label: x for x in M.shipped_lists()}
    for x in shipped.values():  # by label or by release (5.10, 5.10.223, 7.2.13, sid)
        if text in (x.label, ".".join(map(str, x.release)), ".".join(map(str, x.release[:2]))):
            return x, ""
    if Path(text).exists():
        try:
            return M.load_list(text), ""
        except M.ListError as e:
            return None, str(e)
    return None, (f"{text!r} is neither a shipped kernel ({', '.join(shipped)}, or its release "
                  f"{', '.join('.'.join(map(str, x.release)) for x in shipped.values())}) nor a register list "
                  "file (gicproof-cpregs/1, spec/cpregs/*.json)")


def _variant_options(args: argparse.Namespace) -> tuple[S.Variant | None, list[int] | None, list[int] | None, str]:
    names, err = _variants(args.variant, one=True)
    if err:
        return None, None, None, err
    v = S.VARIANTS[names[0]]
    hidden, err = _indexes("--hidden", args.hidden)
    if err:
        return None, None, None, err
    safe, err = _indexes("--safe-missing", args.safe_missing)
    if err:
        return None, None, None, err
    if hidden is not None and not v.hidden:
        return None, None, None, (f"--hidden: variant {v.name} has no hidden registers; use --variant hidden or "
                                  "v6-compat")
    if safe is not None and not v.safe_missing:
        return None, None, None, (f"--safe-missing: variant {v.name} has no safe-to-miss registers; use --variant "
                                  "safe-missing or v6-compat")
    return v, hidden, safe, ""


def cmd_prove(args: argparse.Namespace) -> int:
    names, err = _variants(args.variant)
    if err:
        return _error(err)
    tty = sys.stderr.isatty() and not args.json
    say = _progress(tty)
    t0 = time.perf_counter()
    obs = P.run(names, _budget(args), say)
    _done(tty)
    seconds = time.perf_counter() - t0
    unknown = sum(o.verdict == P.UNKNOWN for o in obs)
    bad = sum(o.verdict != P.UNKNOWN and not o.as_expected for o in obs)
    code = EXIT_FAIL if bad else (EXIT_UNKNOWN if unknown else EXIT_OK)
    if args.json:
        print(json.dumps({"gicproof": JSON_VERSION, "command": "cpregs prove",
                          "results": [o.json() for o in obs],
                          "summary": {"total": len(obs), "as_expected": len(obs) - bad - unknown,
                                      "not_as_expected": bad, "unknown": unknown, "seconds": round(seconds, 2)},
                          "exit": code}, indent=2))
        return code
    print(render_obligations(obs))
    print(f"\nsummary: {len(obs)} obligations, {len(obs) - bad - unknown} as expected, {bad} not as expected, "
          f"{unknown} unknown ({seconds:.1f} s)")
    return code


def render_obligations(obs: list[P.Obligation]) -> str:
    rows = [["obligation", "variant", "verdict", "expected", "time"]]
    for o in obs:
        rows.append([o.name, o.variant, o.verdict, "" if o.as_expected else f"NOT AS EXPECTED ({o.expected})",
                     f"{o.seconds:.2f} s"])
    out = [P._table(rows)]
    for o in obs:
        out.append(f"\n{o.name} [{o.variant}]: {o.verdict}")
        out.append(f"  claim: {o.claim}")
        out.append(f"  covers: {o.covers}")
        vac = [q for q in o.queries if "satisfiable" in q.name]
        rest = [q for q in o.queries if "satisfiable" not in q.name]
        counts = {st: sum(q.status == st for q in rest) for st in ("unsat", "sat", "unknown")}
        line = f"  solver: {len(rest)} queries (" + ", ".join(f"{n} {st}" for st, n in counts.items() if n) + ")"
        if vac:
            line += (f"; assumptions shown satisfiable on a concrete reachable state: "
                     f"{sum(q.status == 'sat' for q in vac)} of {len(vac)}")
        line += f"; slowest {max((q.seconds for q in o.queries), default=0):.2f} s"
        out.append(line)
        if o.note:
            out.append(f"  note: {o.note}")
        w = o.witness
        if w is not None:
            if w.dest or w.inc:
                out.append("  witness: destination " + _pairs(w.dest, w.dest_val) + ", incoming " + _pairs(w.inc, w.inc_val))
            if w.extra:
                out.append("  witness: " + ", ".join(f"{k} = {v:#x}" for k, v in w.extra.items()))
            out.append(f"  what happens: {w.outcome}")
            out.append(f"  the claim wants: {w.expected}")
            out.append(f"  replayed on the concrete interpreter: {'yes' if w.replayed else 'NO (a bug in gicproof)'}")
        out.append(f"  rule: {o.rule}")
    return "\n".join(out)


def _pairs(idx: list[int], vals: list[int]) -> str:
    return "[" + ", ".join(f"{i:#x}={v:#x}" for i, v in zip(idx, vals, strict=True)) + "]"


def cmd_matrix(args: argparse.Namespace) -> int:
    v, hidden, safe, err = _variant_options(args)
    if err or v is None:
        return _error(err)
    lists, err = _lists(args)
    if err:
        return _error(err)
    mx = P.real_matrix(lists, v, "kvm", hidden, safe, not args.no_sort)
    code = mx.exit_code()
    chk = None
    if args.on_kernel:
        if args.lists:
            return _error("--on-kernel: only the shipped lists (their kernels are the oracle's cached ones)")
        from models.kernel import harness
        from proofs import cpregs_kernel
        tty = sys.stderr.isatty() and not args.json
        try:
            chk = cpregs_kernel.confirm(mx, _progress(tty))
        except harness.KernelOracleError as e:
            _done(tty)
            print(f"gicproof: the kernel could not be booted: {e}", file=sys.stderr)
            return EXIT_UNKNOWN
        _done(tty)
        if chk.disagreements:
            code = EXIT_KERNEL_DISAGREES
    if args.json:
        doc = P.matrix_json(mx)
        if chk is not None:
            doc["on_kernel"] = chk.json()
        doc["exit"] = code
        print(json.dumps({"gicproof": JSON_VERSION, "command": "cpregs matrix", "results": [doc],
                          "exit": code}, indent=2))
    else:
        print(P.render_matrix(mx, details=not args.brief))
        if chk is not None:
            print("\n" + chk.render())
    return code


def cmd_migrate(args: argparse.Namespace) -> int:
    v, hidden, safe, err = _variant_options(args)
    if err or v is None:
        return _error(err)
    src, err = _one_list(args.source)
    if src is None:
        return _error(f"SOURCE: {err}")
    dst, err = _one_list(args.destination)
    if dst is None:
        return _error(f"DESTINATION: {err}")
    if src.label == dst.label and src.source != dst.source:
        dst = S.RegList(dst.label + "'", dst.release, dst.registers, dst.source)
    mx = P.real_matrix([src, dst], v, "kvm", hidden, safe, not args.no_sort)
    mig = mx.cells[(src.label, dst.label)]
    code = {M.SILENT: EXIT_FAIL, M.UNKNOWN: EXIT_UNKNOWN}.get(mig.verdict, EXIT_OK)
    if args.json:
        doc = P.matrix_json(mx)
        doc["cells"] = [c for c in doc["cells"] if (c["source"], c["destination"]) == (src.label, dst.label)]
        doc["exit"] = code
        print(json.dumps({"gicproof": JSON_VERSION, "command": "cpregs migrate", "results": [doc], "exit": code},
                         indent=2))
        return code
    print(f"{src.label} ({src.source}) -> {dst.label} ({dst.source}), variant {v.name}")
    print("\n".join(P.render_pair(mig, mx.blessed[(src.label, dst.label)])))
    return code


def cmd_variants(args: argparse.Namespace) -> int:
    rows = P.variant_table()
    lists = M.shipped_lists()
    mats = {name: P.real_matrix(lists, v) for name, v in S.VARIANTS.items()}
    if args.json:
        print(json.dumps({"gicproof": JSON_VERSION, "command": "cpregs variants",
                          "results": [{"classes": P.variants_json(rows),
                                       "real": {n: P.matrix_json(m) for n, m in mats.items()}}],
                          "exit": EXIT_OK}, indent=2))
        return EXIT_OK
    out = ["The mitigations as variants of the protocol, on one small migration of each kind "
           "(plain registers A < B < C < D; the extra register listed as hidden / safe to miss):", "",
           P.render_variant_table(rows), "", "On the shipped kernels' lists (source -> destination: verdict per variant; "
           "only pairs whose verdict or stage differs between variants):", ""]
    labels = [x.label for x in lists]
    head = [["pair"] + list(S.VARIANTS)]
    for a in labels:
        for b in labels:
            cells = [P.cell_text(mats[n].cells[(a, b)]) for n in S.VARIANTS]
            kinds = {(mats[n].cells[(a, b)].verdict, mats[n].cells[(a, b)].stage) for n in S.VARIANTS}
            if a != b and len(kinds) > 1:
                head.append([f"{a} -> {b}"] + cells)
    out.append(P._table(head))
    out += ["", "Variants:"]
    for v in S.VARIANTS.values():
        out.append(f"  {v.name}: {v.title}. {v.text}")
        out.append(f"    source: {v.source}")
    print("\n".join(out))
    return EXIT_OK


def cmd_describe(args: argparse.Namespace) -> int:
    out = ["arm-cpregs: the (index, value) register list QEMU migrates for an Arm vCPU", "",
           "Protocol (in the order it runs):"]
    for r in S.PROTOCOL:
        out += [f"  {r.name}: {r.text}", f"    source: {r.source}"]
    out += ["", "Register kinds (how a write behaves):"]
    for k, (text, src) in S.KINDS.items():
        out += [f"  {k}: {text}", f"    source: {src}"]
    out += ["", "Mitigations (variants; 'gicproof cpregs variants' compares them):"]
    for v in S.VARIANTS.values():
        out += [f"  {v.name}: {v.title}", f"    source: {v.source}"]
    out += ["", "History:"]
    for title, text in S.HISTORY:
        out.append(f"  {title}: {text}")
    print("\n".join(out))
    return EXIT_OK


def _matrix_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", metavar="V", help=f"the protocol variant (default qemu): {', '.join(S.VARIANTS)} "
                   "('gicproof cpregs describe' says what each is)")
    p.add_argument("--hidden", metavar="I,..", help="x-mig-hidden-regs: KVM indexes in hex (variants hidden, "
                   "v6-compat; default: the v6 example's 0x6030000000160003)")
    p.add_argument("--safe-missing", metavar="I,..", help="x-mig-safe-missing-regs: KVM indexes in hex (variants "
                   "safe-missing, v6-compat; default: the v6 example's TCR2_EL1, PIRE0_EL1, PIR_EL1)")
    p.add_argument("--no-sort", action="store_true", help="keep KVM's order instead of sorting the lists as "
                   "kvm_arm_init_cpreg_list does (shows what the sort is for)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def register(sub: Any) -> None:
    """Add ``cpregs`` and its subcommands to the ``gicproof`` parser."""
    c = sub.add_parser(
        "cpregs", help="the Arm CPU register list protocol: proofs, real kernels' lists, mitigations",
        description="The (index, value) list QEMU migrates for an Arm vCPU's system registers (seed 004, "
                    "target/arm/machine.c cpu_pre_save / cpu_post_load, target/arm/kvm.c): prove the merge for "
                    "sorted lists of every length, find replayed counterexamples, and migrate the shipped kernels' "
                    "real lists (spec/cpregs/*.json) between each other.",
        epilog="Exit status: 0 as expected (prove) / no silent change (matrix, migrate), 1 an obligation not as "
               "expected or a silent change, 2 bad input, 3 unknown (or, --on-kernel, a kernel that could not be "
               "booted), 4 a bug in gicproof, 5 (matrix --on-kernel) a real kernel disagreed with the model.")
    cs = c.add_subparsers(dest="cpregs_command", required=True, metavar="SUBCOMMAND")
    pr = cs.add_parser("prove", help="prove or refute every obligation of the protocol",
                       description="Every obligation: the merge for sorted lists of every length (a loop invariant "
                                   "checked by Z3), its consequences (identical sets, extra registers on either "
                                   "side), replayed witnesses (tail drop, unsorted lists, reset values kept, the "
                                   "mitigations' silent drops), and the write of each register kind.")
    pr.add_argument("--variant", metavar="V,..", help=f"variants to prove (default all): {', '.join(S.VARIANTS)}")
    budget_options(pr)
    pr.add_argument("--json", action="store_true", help="print the results as JSON")
    pr.set_defaults(func=cmd_prove)
    mx = cs.add_parser("matrix", help="migrate every ordered pair of the shipped kernels' register lists",
                       description="For every ordered pair of kernels (spec/cpregs/*.json, or --lists), one vCPU "
                                   "migrated QEMU-style: round trip, refused (at the length check, the merge or a "
                                   "KVM write, naming the registers), or a silent change (which registers, and "
                                   "why); beside it, what KVM's get-reg-list selftest would say with the source's "
                                   "list as its blessed list.")
    _matrix_options(mx)
    mx.add_argument("--lists", nargs="+", metavar="FILE", help="register list files (default: the shipped four)")
    mx.add_argument("--brief", action="store_true", help="the tables only, without the per-pair details")
    mx.add_argument("--on-kernel", action="store_true",
                    help="also boot each destination kernel whose migrations reach KVM (models/kernel/, QEMU TCG) "
                         "and replay their write phase there: every register written as kvm_arm_cpu_post_load "
                         "does, then read back, against the model's prediction (exit 5 on a disagreement)")
    mx.set_defaults(func=cmd_matrix)
    mg = cs.add_parser("migrate", help="one migration between two register lists, with every register's fate",
                       description="One vCPU migrated QEMU-style from SOURCE to DESTINATION (each a shipped kernel: "
                                   "5.10, 6.1, 6.12, sid or its release; or a register list file).")
    mg.add_argument("source", metavar="SOURCE")
    mg.add_argument("destination", metavar="DESTINATION")
    _matrix_options(mg)
    mg.set_defaults(func=cmd_migrate)
    va = cs.add_parser("variants", help="compare the upstream mitigations on small migrations and real lists",
                       description="Which migrations each mitigation turns from refused into a load, and whether "
                                   "the load loses a value (a silent change).")
    va.add_argument("--json", action="store_true", help="print the result as JSON")
    va.set_defaults(func=cmd_variants)
    de = cs.add_parser("describe", help="print the protocol's steps, register kinds and mitigations with sources")
    de.set_defaults(func=cmd_describe)
