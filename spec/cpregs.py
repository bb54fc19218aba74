"""arm-cpregs: the CPU register list protocol, as data with sources (issue 10, seed 004).

QEMU migrates an Arm vCPU's system registers as a list of (index, value) pairs. This
module says WHAT that protocol is: the register kinds and how a write of each behaves
(written over the value algebra of ``spec.algebra``, so one rule runs on integers and on
Z3 terms), the protocol's steps, the upstream mitigations for registers that appear or
disappear between versions, and the KVM rules that decide how a real kernel takes a
written value (for the real lists of spec/cpregs/*.json). ``models.cpregs`` runs it;
``proofs.cpregs`` states what must hold.

Sources (every rule below names one; read, never copied):
  QEMU   = QEMU ece408818d (Peter Maydell's merge of 13 Feb 2026; the tree the mission
           ships, its machine.c and helper.c read in the qemu-ci mirror at that commit):
           target/arm/machine.c, target/arm/kvm.c, target/arm/helper.c,
           migration/vmstate-types.c
  seed   = ../shared/seeds/004_06eb553398e7d5b1.txt: Peter Maydell, "[4/7] target-arm:
           Convert TCG to using (index, value) list for cp migration", 17 May 2013 (the
           merge loop of cpu_post_load is unchanged since; Christoffer Dall reviewed it)
  KVM    = the Debian kernels' sources, arch/arm64/kvm/{sys_regs.c,arch_timer.c,
           hypercalls.c,psci.c} and arch/arm64/kernel/cpufeature.c of 5.10.223, 6.1.176,
           6.12.107 (for the 6.12.117 capture) and 7.1.8 (the newest source here, for the
           7.2.13 capture: a rule read in 7.1.8 is marked so)
  v6     = Eric Auger, "[PATCH v6 00/11] Mitigation of "failed to load
           cpu:cpreg_vmstate_array_len" migration failures", qemu-devel, 26 Jan 2026,
           <20260126165445.3033335-1-eric.auger@redhat.com> (not merged in QEMU master of
           15 Feb 2026)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spec.algebra import Ops, Value, bool_and, mask

QEMU = "QEMU ece408818d"
SEED = "seed 004 (Peter Maydell, [4/7] target-arm: Convert TCG to using (index, value) list for cp migration, 17 May 2013)"
V6 = ('Eric Auger, "[PATCH v6 00/11] Mitigation of "failed to load cpu:cpreg_vmstate_array_len" '
      'migration failures", qemu-devel, 26 Jan 2026, <20260126165445.3033335-1-eric.auger@redhat.com>')

WIDTH = 64  # indexes and values travel as uint64_t (cpreg_vmstate_indexes/_values)

# ---------------------------------------------------------------------------------------
# The protocol's steps, in the order they run. Each is a rule with its source.


@dataclass(frozen=True)
class Rule:
    name: str
    text: str
    source: str


PROTOCOL: tuple[Rule, ...] = (
    Rule("list (KVM)",
         "the vCPU's list is KVM_GET_REG_LIST, sorted ascending as uint64_t; core and SVE "
         "registers are left out (QEMU syncs them by hand and migrates them as fields of "
         "their own); only 32- and 64-bit registers are accepted",
         f"{QEMU} target/arm/kvm.c kvm_arm_init_cpreg_list: qsort(&rlp->reg, rlp->n, ..., "
         "compare_u64) 'since cpreg_tuples must be in strictly ascending order'; "
         "kvm_arm_reg_syncs_via_cpreg_list"),
    Rule("list (TCG)",
         "every emulated register without ARM_CP_NO_RAW or ARM_CP_ALIAS, sorted ascending",
         f"{QEMU} target/arm/helper.c count_cpreg, add_cpreg_to_list, arm_init_cpreg_list "
         "(qsort ... compare_u64); the seed's init_cpreg_list sorted with g_list_sort("
         "cpreg_key_compare) and required 'cpreg_tuples[] to be sorted by key ID'"),
    Rule("pre-save",
         "the source reads every register of its list (KVM_GET_ONE_REG, or the emulated "
         "state) and copies the length, the indexes and the values into the migration arrays",
         f"{QEMU} target/arm/machine.c cpu_pre_save: write_kvmstate_to_list or "
         "write_cpustate_to_list, then cpreg_vmstate_array_len = cpreg_array_len and two memcpy"),
    Rule("stream",
         "the stream carries the length, then the indexes, then the values",
         f"{QEMU} target/arm/machine.c vmstate_arm_cpu: VMSTATE_INT32_POSITIVE_LE("
         "cpreg_vmstate_array_len), VMSTATE_VARRAY_INT32(cpreg_vmstate_indexes), "
         "VMSTATE_VARRAY_INT32(cpreg_vmstate_values)"),
    Rule("length",
         "the incoming length must be from 0 to the destination's own list length, else the "
         "load fails before any index is read (QEMU says \"failed to load "
         "cpu:cpreg_vmstate_array_len\" and names no register)",
         f"{QEMU} migration/vmstate-types.c get_int32_le: 'if (loaded >= 0 && loaded <= *cur)'"),
    Rule("merge",
         "both lists are walked in order: an index only in the destination keeps its current "
         "(reset) value; an index only in the incoming list fails the load; an index in both "
         "takes the incoming value",
         f"{QEMU} target/arm/machine.c cpu_post_load: 'for (i = 0, v = 0; i < "
         "cpu->cpreg_array_len && v < cpu->cpreg_vmstate_array_len; i++)' (the seed's loop, "
         "unchanged): '/* register in our list but not incoming : skip it */', "
         "'/* register in their list but not ours: fail migration */ return -1;', "
         "'/* matching register, copy the value over */'"),
    Rule("merge ends",
         "the loop stops as soon as either list is exhausted: incoming indexes above the "
         "destination's last index are never compared, so they neither fail the load nor "
         "reach the destination",
         f"{QEMU} target/arm/machine.c cpu_post_load: the loop condition 'i < "
         "cpu->cpreg_array_len && v < ...' and no check of v after the loop"),
    Rule("write (KVM)",
         "every register of the destination's list is written with KVM_SET_ONE_REG at level "
         "KVM_PUT_FULL_STATE, in order, not stopping at a failure; any failure fails the "
         "load (QEMU names it: 'Could not set register ... to ... (is ...)'). KVM refuses a "
         "value it cannot take (an invariant register written with another value: EINVAL)",
         f"{QEMU} target/arm/kvm.c kvm_arm_cpu_post_load -> write_list_to_kvmstate(cpu, "
         "KVM_PUT_FULL_STATE)"),
    Rule("write (TCG)",
         "every register is written, then read back; a read-back that differs from the value "
         "written fails the load",
         f"{QEMU} target/arm/helper.c write_list_to_cpustate: 'Write value and confirm it "
         "reads back as written (to catch read-only registers and partially read-only "
         "registers where the incoming migration value doesn't match)'"),
    Rule("put levels",
         "KVM_REG_ARM_TIMER_CNT and KVM_REG_ARM_PTIMER_CNT (the counters) are written only at "
         "KVM_PUT_FULL_STATE; every other register at KVM_PUT_RUNTIME_STATE and above",
         f"{QEMU} target/arm/kvm.c kvm_arm_cpreg_level, write_list_to_kvmstate ('if "
         "(kvm_arm_cpreg_level(regidx) > level) continue;'), kvm_arch_put_registers(cs, level)"),
)

# ---------------------------------------------------------------------------------------
# Register kinds and how a write of each behaves.
#
# A write is ``write(ops, rule, current, value)`` -> (accepted, after): ``current`` is the
# destination register's value before the write (its reset value on a fresh destination),
# ``value`` the incoming one, ``accepted`` a condition (KVM_SET_ONE_REG returned 0, or the
# TCG raw write succeeded), ``after`` what a read returns afterwards. ``compared`` says which
# bits of ``after`` must equal the source's value for the register to have round-tripped
# (all bits, except bits that are derived state the kernel computes on a read).

PLAIN, CONSTANT, PARTLY_RO, NO_MIGRATE, FULL_STATE = "plain", "constant", "partly-ro", "no-migrate", "full-state"
# KVM-specific rules, for the real lists (``kvm_rule``)
LEVEL, ID_FIELDS, CCSIDR, CLIDR, UNMODELLED = "level", "id-fields", "ccsidr", "clidr", "unmodelled"

KINDS: dict[str, tuple[str, str]] = {
    PLAIN: ("a write stores the value; a read returns it",
            f"{QEMU} target/arm/helper.c write_raw_cp_reg / read_raw_cp_reg (CPREG_FIELD64); "
            "KVM reg_from_user/reg_to_user for a register without set_user"),
    CONSTANT: ("the value is fixed: a write of another value fails (TCG: the write is ignored "
               "and the read-back differs; KVM: EINVAL)",
               f"{QEMU} target/arm/helper.c write_raw_cp_reg ('if (ri->type & ARM_CP_CONST) "
               "return;'), read_raw_cp_reg (ri->resetvalue); KVM 5.10/6.1 sys_regs.c set_id_reg "
               "and set_invariant_sys_reg: 'This is what we mean by invariant: you can't change it.'"),
    PARTLY_RO: ("some bits (ro_mask) are read-only: a write keeps them; TCG's read-back check "
                "fails when the written value's read-only bits differ, KVM takes the write",
                f"{QEMU} target/arm/helper.c write_list_to_cpustate ('partially read-only "
                "registers'); KVM arch_timer.c kvm_arm_timer_write: 'timer_set_ctl(timer, val & "
                "~ARCH_TIMER_CTRL_IT_STAT)' (5.10.223, 6.1.176, 6.12.107, 7.1.8)"),
    NO_MIGRATE: ("not in the list: neither sent nor written; the destination keeps its own value",
                 f"{QEMU} target/arm/helper.c add_cpreg_to_list ('if (!(ri->type & (ARM_CP_NO_RAW "
                 "| ARM_CP_ALIAS)))'); target/arm/kvm.c kvm_arm_reg_syncs_via_cpreg_list (core and "
                 "SVE registers: migrated as fields of vmstate_arm_cpu instead)"),
    FULL_STATE: ("written only by a put at KVM_PUT_FULL_STATE (incoming migration, reset); a "
                 "runtime put skips it",
                 f"{QEMU} target/arm/kvm.c kvm_arm_cpreg_level: 'case KVM_REG_ARM_TIMER_CNT: case "
                 "KVM_REG_ARM_PTIMER_CNT: return KVM_PUT_FULL_STATE;'"),
    LEVEL: ("a level the kernel provides: a value up to the kernel's own is accepted, and a read "
            "returns the kernel's own (the written one is not stored)",
            "KVM hypercalls.c kvm_arm_set_fw_reg (psci.c in 5.10), SMCCC_ARCH_WORKAROUND_1/3: 'if "
            "(get_kernel_wa_level(reg->id) < val) return -EINVAL; return 0;'"),
    ID_FIELDS: ("a writable ID register (Linux 6.7 and later): bits outside the writable mask must "
                "equal the kernel's limit; each writable field may be lowered, not raised",
                "KVM 6.12.107 and 7.1.8 sys_regs.c set_id_reg -> arm64_check_features ('For fields "
                "that are not writable, values in limit are the safe values'), "
                "kvm_arm64_ftr_safe_value (PMUVer, DebugVer, PerfMon: FTR_LOWER_SAFE), "
                "cpufeature.c ftr_id_aa64mmfr1 (HCX: FTR_LOWER_SAFE)"),
    CCSIDR: ("a cache size ID (6.3 and later): any value without RES0 bits whose line size is at "
             "least the host's minimum is stored",
             "KVM 6.12.107 and 7.1.8 sys_regs.c set_ccsidr"),
    CLIDR: ("the cache level ID (6.3 and later): any value without RES0 bits (63:47) is stored "
            "when the host's CTR_EL0.IDC is set",
            "KVM 6.12.107 and 7.1.8 sys_regs.c set_clidr"),
    UNMODELLED: ("a register whose write rule for a value other than its current one is not "
                 "modelled: writing the current value is accepted (every KVM rule here accepts "
                 "it); any other value makes the verdict UNKNOWN for that register",
                 "model choice (no KVM rule transcribed for this register)"),
}


@dataclass(frozen=True)
class RegRule:
    """How a write of one register behaves (``kind`` one of KINDS)."""

    kind: str
    width: int = WIDTH
    ro_mask: int = 0  # PARTLY_RO: the read-only bits
    derived: bool = False  # PARTLY_RO: the read-only bits are derived state (not compared)
    writable: int = 0  # ID_FIELDS: the writable mask
    lower_safe: tuple[tuple[int, int], ...] = ()  # ID_FIELDS: (lsb, width) of fields that may be lowered
    unmodelled: int = 0  # ID_FIELDS: writable bits whose field rule is not modelled
    minimum: tuple[tuple[int, int, int], ...] = ()  # ID_FIELDS: (lsb, width, min) lower bounds
    level_mask: int = mask(WIDTH)  # LEVEL: the bits a level may have (KVM_REG_FEATURE_LEVEL_MASK)
    min_line: int = 0  # CCSIDR: the host's minimum line size, log2 bytes
    ctr_idc: bool = True  # CLIDR: the host's CTR_EL0.IDC
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown register kind {self.kind!r}: valid: {', '.join(KINDS)}")

    @property
    def compared(self) -> int:
        """The bits that must equal the source's value after the migration."""
        return mask(self.width) & ~(self.ro_mask if self.derived else 0)


def _field(ops: Ops, v: Value, lsb: int, width: int) -> Value:
    return ops.extract(v, lsb + width - 1, lsb)


def _ule(ops: Ops, a: Value, b: Value) -> Value:
    return ops.ule(a, b)


def write(ops: Ops, rule: RegRule, current: Value, value: Value, accel: str = "kvm") -> tuple[Value, Value]:
    """(accepted, value read afterwards) of writing ``value`` over ``current``. ``accel``:
    "kvm" (KVM_SET_ONE_REG's answer) or "tcg" (write, then QEMU's read-back check)."""
    w = rule.width
    one = ops.const(1, 1)
    k = rule.kind
    if k in (PLAIN, FULL_STATE, NO_MIGRATE):
        return one, value
    if k == CONSTANT:
        return ops.eq(value, current), current
    if k == PARTLY_RO:
        ro = ops.const(rule.ro_mask, w)
        after = ops.or_(ops.and_(value, ops.not_(ro, w)), ops.and_(current, ro))
        return (one if accel == "kvm" else ops.eq(after, value)), after
    if k == LEVEL:
        ok = bool_and(ops, ops.eq(ops.and_(value, ops.const(~rule.level_mask & mask(w), w)), ops.const(0, w)),
                      _ule(ops, value, current))
        return (ok if accel == "kvm" else ops.eq(value, current)), current
    if k == ID_FIELDS:
        fixed = ops.const(~rule.writable & mask(w), w)
        conds = [ops.eq(ops.and_(value, fixed), ops.and_(current, fixed))]
        for lsb, fw in rule.lower_safe:
            conds.append(_ule(ops, _field(ops, value, lsb, fw), _field(ops, current, lsb, fw)))
        for lsb, fw, lo in rule.minimum:
            conds.append(_ule(ops, ops.const(lo, fw), _field(ops, value, lsb, fw)))
        ok = bool_and(ops, *conds)
        return ok, ops.ite(ok, value, current)
    if k == CCSIDR:
        line = _field(ops, value, 0, 3)  # LineSize, 2:0 (log2 bytes - 4)
        # set_ccsidr: 'line_size = FIELD_GET(CCSIDR_EL1_LineSize, val) + 4' must reach
        # get_min_cache_line_size(); the value is a u32, so the RES0 bits 63:32 are clear
        ok = _ule(ops, ops.const(max(rule.min_line - 4, 0), 3), line) if rule.min_line >= 4 else one
        return ok, ops.ite(ok, value, current)
    if k == CLIDR:
        res0 = ops.const(mask(64) & ~mask(47), w)  # CLIDR_EL1 Res0 63:47 (arch/arm64/tools/sysreg)
        ok = ops.eq(ops.and_(value, res0), ops.const(0, w))
        if not rule.ctr_idc:
            # idc = !LoC || (!LoUIS && !LoUU): refused without CTR_EL0.IDC
            zero3 = ops.const(0, 3)
            loc, louis, louu = _field(ops, value, 24, 3), _field(ops, value, 21, 3), _field(ops, value, 27, 3)
            idc = ops.or_(ops.eq(loc, zero3), ops.and_(ops.eq(louis, zero3), ops.eq(louu, zero3)))
            ok = ops.and_(ok, ops.not_(idc, 1))
        return ok, ops.ite(ok, value, current)
    if k == UNMODELLED:
        return ops.eq(value, current), current
    raise ValueError(f"no write rule for kind {k}")


def unmodelled(rule: RegRule, current: int, value: int) -> bool:
    """Whether the model cannot say how the kernel takes ``value`` (concrete values only)."""
    if rule.kind == UNMODELLED:
        return value != current
    if rule.kind == ID_FIELDS:
        return bool((value ^ current) & rule.unmodelled)
    return False


# ---------------------------------------------------------------------------------------
# The mitigations proposed upstream for registers that appear or disappear between
# versions, as variants of the protocol.


@dataclass(frozen=True)
class Variant:
    name: str
    title: str
    loop: str  # "qemu": cpu_post_load's loop as in QEMU and the seed; "traces": the v6 rework
    extra_capacity: int  # incoming entries allowed beyond the destination's length
    hidden: bool  # x-mig-hidden-regs: listed indexes are left out of the list on both sides
    safe_missing: bool  # x-mig-safe-missing-regs: listed incoming indexes may be missing
    source: str
    text: str = ""
    default_hidden: tuple[int, ...] = ()
    default_safe_missing: tuple[int, ...] = ()


# MAX_CPREG_VMSTATE_ANOMALIES in the v6 series (target/arm/cpu.h)
ANOMALIES = 10

# The v6 series' example compat ([DO NOT UPSTREAM] 11/11): the indexes it lists
VENDOR_HYP_BMAP_2 = 0x6030000000160003
TCR2_EL1, PIRE0_EL1, PIR_EL1 = 0x603000000013C103, 0x603000000013C512, 0x603000000013C513

VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("qemu", "QEMU today (and the seed)", "qemu", 0, False, False,
            f"{QEMU} target/arm/machine.c cpu_post_load; {SEED}",
            "the loop of cpu_post_load as it is"),
    Variant("traces", "v6 02/11: improved traces (the loop goes on past a mismatch)", "traces", ANOMALIES,
            False, False,
            'Eric Auger, "[PATCH v6 02/11] target/arm/machine: Improve traces on register mismatch '
            f'during migration", 26 Jan 2026 (qemu-ci a384f27ce9); {V6}',
            "cpu_pre_load grows the incoming arrays by MAX_CPREG_VMSTATE_ANOMALIES (10); the loop "
            "records registers missing from the stream and unexpected in it and goes on, then walks "
            "both tails; kvm_arm_cpu_post_load fails the load if any was unexpected. Its message "
            "says 'The migration outcome is unchanged'"),
    Variant("hidden", "v6 03+07/11: x-mig-hidden-regs", "traces", ANOMALIES, True, False,
            'Eric Auger, "[PATCH v6 03/11] target/arm/cpu: Allow registers to be hidden" (qemu-ci '
            'b3ec73d8e0) and "[PATCH v6 07/11] target/arm/cpu: Expose x-mig-hidden-regs and '
            f'x-mig-safe-missing-regs properties", 26 Jan 2026; {V6}. First posted as the '
            '"kvm-hidden-regs" property: "[PATCH 1/2] target/arm/cpu: Add new CPU property for KVM '
            'regs to hide", Eric Auger, 11 Sep 2025',
            "a hidden index is left out of the list when it is built (kvm_arm_init_cpreg_list, "
            "add_cpreg_to_list), on whichever side has the property: it is never read, sent, "
            "expected or written",
            default_hidden=(VENDOR_HYP_BMAP_2,)),
    Variant("safe-missing", "v6 04+07/11: x-mig-safe-missing-regs", "traces", ANOMALIES, False, True,
            'Eric Auger, "[PATCH v6 04/11] target/arm/machine: Allow extra regs in the incoming '
            f'stream", 26 Jan 2026 (qemu-ci a2fad7b9e4); {V6}. First posted as "kvm-enforced-regs" '
            '(fake registers): "[PATCH 2/2] target/arm/kvm: Add new CPU property for KVM regs to '
            'enforce", Eric Auger, 11 Sep 2025, and "[PATCH 3/7] target/arm/kvm: Introduce the '
            'concept of enforced/fake registers", 16 Oct 2025',
            "cpu_pre_load grows the incoming arrays by the number of listed indexes too; an incoming "
            "index the destination lacks is ignored when it is listed (no failure, its value is "
            "dropped)",
            default_safe_missing=(TCR2_EL1, PIRE0_EL1, PIR_EL1)),
    Variant("v6-compat", "v6 with the series' example compat", "traces", ANOMALIES, True, True,
            'Eric Auger, "[PATCH v6 11/11] hw/arm/virt: [DO NOT UPSTREAM] Enforce compatibility with '
            f'older kernels", 26 Jan 2026 (qemu-ci f4305fadda); {V6}',
            "x-mig-hidden-regs = KVM_REG_ARM_VENDOR_HYP_BMAP_2 (0x6030000000160003), "
            "x-mig-safe-missing-regs = TCR2_EL1, PIRE0_EL1, PIR_EL1 (0x603000000013c103, "
            "0x603000000013c512, 0x603000000013c513), on both sides",
            default_hidden=(VENDOR_HYP_BMAP_2,), default_safe_missing=(TCR2_EL1, PIRE0_EL1, PIR_EL1)),
)}

# Related history, cited in reports (not variants of the list protocol):
HISTORY: tuple[tuple[str, str], ...] = (
    ("the problem, upstream",
     'Eric Auger, "[RESEND PATCH 0/7] Mitigation of "failed to load cpu:cpreg_vmstate_array_len" '
     'migration failures", qemu-devel, 16 Oct 2025, <20251016140039.250111-1-eric.auger@redhat.com> '
     "(kvm-hidden-regs and kvm-fake-regs); v2 and v3 (25 Nov 2025) renamed them x-mig-hidden-regs "
     "and x-mig-safe-missing-regs; v4 22 Dec 2025; v5 21 Jan 2026; v6 26 Jan 2026"),
    ("a condition on hiding",
     "Sebastian Ott's review of the kvm-hidden-regs patch (qemu-devel, Sep 2025): once the impl-cpu "
     "series lands, KVM_REG_ARM_VENDOR_HYP_BMAP_2 should be ignored only when its value is 0 or "
     "impl-cpu is unused"),
    ("TCG precedent",
     'Peter Maydell, "target/arm: Reinstate bogus AArch32 DBGDTRTX register for migration compat", '
     "31 Jul 2025 (QEMU 4f2b82f604): 'We don't have a mechanism for saying \"it's OK to ignore this "
     "sysreg in the inbound data\"' (v6 10/11 reverts it, v6 09/11 declares the register safe to miss)"),
    ("kernel changes behind it",
     "Linux 6.13: 0fcb4eea5345 'KVM: arm64: Hide TCR2_EL1 from userspace when disabled for guests', "
     "a68cddbe47ef 'KVM: arm64: Hide S1PIE registers from userspace when disabled for guests'; Linux "
     "6.16: c0000e58c74e 'KVM: arm64: Introduce KVM_REG_ARM_VENDOR_HYP_BMAP_2' (as the v6 cover "
     "letter and patches 03 and 04 cite them)"),
)

# ---------------------------------------------------------------------------------------
# KVM's rules for the registers of the real lists (spec/cpregs/*.json). ``kvm_rule`` maps a
# register record of a destination kernel to the rule its KVM_SET_ONE_REG follows. Only
# the registers whose values differ between the shipped kernels need more than "a write
# of the current value is accepted", and those have rules with sources; the others are
# UNMODELLED (their current value is accepted by every rule; another value would be
# reported UNKNOWN, never guessed).

# Writable ID registers arrived in Linux 6.7 (set_id_reg -> arm64_check_features); the
# CCSIDR and CLIDR rules in 6.3. The shipped kernels are either side of both.
WRITABLE_ID_SINCE = (6, 7)

# ID_AA64DFR0_EL1 writable fields (6.12.107 and 7.1.8: DoubleLock 39:36, WRPs 23:20, PMUVer
# 11:8, DebugVer 3:0); PMUVer and DebugVer lower-safe (kvm_arm64_ftr_safe_value), DebugVer
# at least 6 (set_id_aa64dfr0_el1: 'if (debugver < ID_AA64DFR0_EL1_DebugVer_IMP) return -EINVAL')
_DFR0_W = (0xF << 36) | (0xF << 20) | (0xF << 8) | 0xF


def kvm_rule(release: tuple[int, ...], name: str, cls: str, kind: str, ctr_el0: int = 0) -> RegRule:
    """The rule of KVM_SET_ONE_REG for a register of the given name, class (``cls``: the
    record's "class") and kind (the record's "kind") on a kernel of ``release``.
    ``ctr_el0``: the destination's CTR_EL0 (the host's minimum cache line sizes and IDC,
    which set_ccsidr and set_clidr read from the sanitised host value; the vCPU's value
    in the captures is that sanitised value)."""
    new = release >= WRITABLE_ID_SINCE
    if cls in ("core", "sve"):
        return RegRule(NO_MIGRATE, source=KINDS[NO_MIGRATE][1])
    if kind == "counter":  # CNTVCT_EL0 (KVM_REG_ARM_TIMER_CNT), CNTPCT_EL0 (KVM_REG_ARM_PTIMER_CNT)
        return RegRule(FULL_STATE, source=KINDS[FULL_STATE][1] + "; KVM arch_timer.c kvm_arm_timer_set_reg "
                       "(a written count sets the timer offset)")
    if name in ("CNTV_CTL_EL0", "CNTP_CTL_EL0"):
        return RegRule(PARTLY_RO, ro_mask=0x4, derived=True,
                       source=KINDS[PARTLY_RO][1] + "; ISTATUS (bit 2) is computed on a read (read_timer_ctl)")
    if name in ("SMCCC_ARCH_WORKAROUND_1", "SMCCC_ARCH_WORKAROUND_3"):
        return RegRule(LEVEL, level_mask=0xF, source=KINDS[LEVEL][1] + " (KVM_REG_FEATURE_LEVEL_MASK 0xf)")
    if kind == "id":
        if name.startswith("CCSIDR_EL1["):
            if not new:
                return RegRule(CONSTANT, width=32, source="KVM 5.10.223/6.1.176 sys_regs.c demux_c15_set: "
                               "'This is also invariant: you can't change it.'")
            dmin, imin = (ctr_el0 >> 16) & 0xF, ctr_el0 & 0xF
            ind = name.endswith("I]")
            # get_min_cache_line_size: CTR_EL0.IminLine/DminLine (log2 words) + 2 = log2 bytes
            return RegRule(CCSIDR, width=32, min_line=(imin if ind else dmin) + 2,
                           source=KINDS[CCSIDR][1] + " (get_min_cache_line_size from CTR_EL0)")
        if name == "CLIDR_EL1":
            if not new:
                return RegRule(CONSTANT, source="KVM 5.10.223/6.1.176 sys_regs.c invariant_sys_regs, "
                               "set_invariant_sys_reg: 'This is what we mean by invariant'")
            return RegRule(CLIDR, ctr_idc=bool(ctr_el0 >> 28 & 1), source=KINDS[CLIDR][1])
        if not new:
            if name == "ID_AA64PFR0_EL1":  # 5.10/6.1 set_id_aa64pfr0_el1: CSV2, CSV3 writable
                return RegRule(ID_FIELDS, writable=0xFF << 56, unmodelled=0xFF << 56,
                               source="KVM 5.10.223/6.1.176 sys_regs.c set_id_aa64pfr0_el1 ('We can only "
                               "differ with CSV[23], and anything else is an error')")
            return RegRule(CONSTANT, source=KINDS[CONSTANT][1])
        if name in ("MIDR_EL1", "REVIDR_EL1", "AIDR_EL1") and release < (7, 0):
            return RegRule(CONSTANT, source="KVM 6.12.107 sys_regs.c invariant_sys_regs (MIDR_EL1, "
                           "REVIDR_EL1, AIDR_EL1), set_invariant_sys_reg")
        if name == "ID_AA64DFR0_EL1":
            return RegRule(ID_FIELDS, writable=_DFR0_W, lower_safe=((8, 4), (0, 4)),
                           unmodelled=(0xF << 36) | (0xF << 20), minimum=((0, 4, 6),),
                           source=KINDS[ID_FIELDS][1] + "; ID_AA64DFR0_EL1: set_id_aa64dfr0_el1, writable "
                           "DoubleLock|WRPs|PMUVer|DebugVer")
        if name == "ID_DFR0_EL1":
            return RegRule(ID_FIELDS, writable=mask(32), lower_safe=((24, 4),),
                           unmodelled=mask(32) & ~(0xF << 24),
                           source=KINDS[ID_FIELDS][1] + "; ID_DFR0_EL1: '.val = GENMASK(31, 0)', PerfMon "
                           "lower-safe")
        if name == "ID_AA64MMFR1_EL1":
            # ID_WRITABLE(ID_AA64MMFR1_EL1, ~(RES0 | HCX | TWED | XNX | VH | VMIDBits)) in
            # 6.12.107; ~(RES0 | XNX | VH | VMIDBits) in 7.1.8 (HCX and TWED writable)
            hcx, twed, xnx, vh, vmid = 0xF << 40, 0xF << 32, 0xF << 28, 0xF << 8, 0xF << 4
            res0 = 0  # no RES0 field of ID_AA64MMFR1_EL1 is set in any shipped value
            fixed = res0 | xnx | vh | vmid | (0 if release >= (7, 0) else hcx | twed)
            writable = mask(64) & ~fixed
            lower = ((40, 4),) if release >= (7, 0) else ()
            modelled = sum(0xF << lsb for lsb, _ in lower)
            why = ("; ID_AA64MMFR1_EL1 in 7.1.8: ID_WRITABLE(~(RES0 | XNX | VH | VMIDBits)), HCX lower-safe"
                   if release >= (7, 0) else
                   "; ID_AA64MMFR1_EL1 in 6.12.107: ID_WRITABLE(~(RES0 | HCX | TWED | XNX | VH | VMIDBits)): "
                   "HCX is not writable")
            return RegRule(ID_FIELDS, writable=writable, lower_safe=lower, unmodelled=writable & ~modelled,
                           source=KINDS[ID_FIELDS][1] + why)
        return RegRule(UNMODELLED, source=KINDS[UNMODELLED][1] + " (a writable ID register, Linux 6.7+)")
    return RegRule(UNMODELLED, source=KINDS[UNMODELLED][1])


@dataclass(frozen=True)
class Register:
    """One entry of a vCPU's register list: its KVM index, name, rule and value (on a source:
    the value sent; on a destination: its current, reset value)."""

    index: int
    name: str
    rule: RegRule
    value: int
    live: bool = False  # a running counter: differs on every read (not compared)
    note: str = ""


@dataclass(frozen=True)
class RegList:
    """A vCPU's register list as one kernel gives it (KVM's order)."""

    label: str
    release: tuple[int, ...]
    registers: tuple[Register, ...] = field(default_factory=tuple)
    source: str = ""
