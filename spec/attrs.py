"""What KVM does with a userspace access to a device attribute it has no register for, per
attribute group, and what QEMU does when such an access fails.

``gicproof regress`` uses this to decide what happens to a saved value whose register the
destination does not have (a register removed from a device table, or one a newer kernel
added and an older destination lacks): the write is refused (the kernel returns an errno,
QEMU aborts the destination, nothing has run there) or silently ignored (the kernel
returns 0 and the value is dropped). Every entry cites the kernel function that decides.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORED = "ignored"  # a write succeeds and changes nothing, a read returns 0
ERROR = "error"  # the access fails with an errno


@dataclass(frozen=True)
class UnknownAttribute:
    """A KVM attribute group's answer to an attribute (offset, encoding) it has no register
    for. ``errnos``: (first release, errno) from the oldest, for an ``error`` group."""

    group: str
    behaviour: str
    source: str
    errnos: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def errno_at(self, release: str | None = None) -> str:
        """The errno a release returns ("" for an ``ignored`` group); the newest without one."""
        if not self.errnos:
            return ""
        if release is None:
            return self.errnos[-1][1]
        out = self.errnos[0][1]
        for first, errno in self.errnos:
            if _release(release) >= _release(first):
                out = errno
        return out

    def describe(self) -> str:
        if self.behaviour == IGNORED:
            return "the kernel ignores the write (no register there: success, nothing changes)"
        if len(self.errnos) == 1:
            return f"the kernel refuses it with {self.errnos[0][1]}"
        parts = [f"{e} from {r}" if i else f"{e}" for i, (r, e) in enumerate(self.errnos)]
        return "the kernel refuses it with " + ", ".join(parts)


def _release(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


_UACCESS = ("arch/arm64/kvm/vgic/vgic-mmio.c: vgic_uaccess_read 'if (!region) { *val = 0; return 0; }' and "
            "vgic_uaccess_write (no region: nothing done, return 0); seen on Debian 5.10.223 and 7.2.13 by "
            "gicproof conform; only KVM_HAS_DEVICE_ATTR says -ENXIO there (vgic_v2_has_attr_regs, "
            "vgic_v3_has_attr_regs)")

UNKNOWN_ATTRIBUTE: dict[str, UnknownAttribute] = {
    g.group: g for g in (
        UnknownAttribute("KVM_DEV_ARM_VGIC_GRP_DIST_REGS", IGNORED, _UACCESS),
        UnknownAttribute("KVM_DEV_ARM_VGIC_GRP_CPU_REGS", IGNORED,
                         "vgic-kvm-device.c: vgic_v2_attr_regs_access -> vgic_v2_cpuif_uaccess -> "
                         "vgic_uaccess; " + _UACCESS),
        UnknownAttribute("KVM_DEV_ARM_VGIC_GRP_REDIST_REGS", IGNORED,
                         "vgic-kvm-device.c: vgic_v3_attr_regs_access -> vgic_v3_redist_uaccess -> "
                         "vgic_uaccess; " + _UACCESS),
        UnknownAttribute("KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS", ERROR,
                         "5.10.223 vgic-sys-reg-v3.c: vgic_v3_cpu_sysregs_uaccess 'if (!r) return -ENXIO'; "
                         "6.1.176 sys_regs.c: kvm_sys_reg_get_user/kvm_sys_reg_set_user 'if (!r || "
                         "sysreg_hidden(vcpu, r)) return -ENOENT' (the boundary is taken as 6.1, not pinned; "
                         "models/kernel/model.py SYSREG_ENOENT_SINCE)",
                         errnos=(("5.10", "ENXIO"), ("6.1", "ENOENT"))),
        UnknownAttribute("KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO", ERROR,
                         "vgic-kvm-device.c: vgic_v3_attr_regs_access 'if (info == VGIC_LEVEL_INFO_LINE_LEVEL) "
                         "... else ret = -EINVAL'", errnos=(("5.10", "EINVAL"),)),
        UnknownAttribute("KVM_DEV_ARM_VGIC_GRP_ITS_REGS", ERROR,
                         "vgic-its.c: vgic_its_attr_regs_access 'region = vgic_find_mmio_region(its_registers, "
                         "...); if (!region) { ret = -ENXIO; goto out; }'", errnos=(("5.10", "ENXIO"),)),
    )
}

# Any other group: vgic_v3_set_attr / vgic_v2_set_attr fall back to vgic_set_common_attr,
# whose default is -ENXIO.
OTHER_GROUP = UnknownAttribute("(other group)", ERROR,
                               "vgic-kvm-device.c: vgic_set_common_attr 'return -ENXIO' for a group it does not "
                               "know", errnos=(("5.10", "ENXIO"),))


def unknown_attribute(group: str) -> UnknownAttribute:
    """What the kernel does with an attribute of ``group`` that has no register."""
    return UNKNOWN_ATTRIBUTE.get(group, OTHER_GROUP)


# What QEMU does when a register access fails on the destination: every GIC access of its
# KVM backends passes &error_abort, so the destination QEMU aborts; nothing has run there
# and the source keeps running (the migration fails).
VMM_ON_ERROR = ("QEMU aborts the destination (error_abort): hw/intc/arm_gicv3_kvm.c kvm_gicd_access/kvm_gicr_access/"
                "kvm_gicc_access 'kvm_device_access(..., &error_abort)', hw/intc/arm_gicv3_its_kvm.c "
                "kvm_arm_its_post_load, and hw/intc/arm_gic_kvm.c likewise; the source keeps running")
