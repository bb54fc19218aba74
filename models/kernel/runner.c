/*
 * gicproof kernel runner: performs KVM ioctls from a line-based script and prints one
 * result line per operation. Built statically for arm64 against the real UAPI headers
 * (<linux/kvm.h>, <asm/kvm.h>) and run inside a guest kernel booted by harness.py.
 *
 * Usage:
 *   runner [SCRIPT]        run SCRIPT (default: standard input)
 *   runner --constants     print the UAPI constants this binary was compiled with
 *
 * Script format: one operation per line; '#' starts a comment; blank lines are ignored;
 * fields are separated by blanks. Numbers are decimal or 0x-hex; where a field takes an
 * attribute group, control attribute, address type or IRQ type, the symbolic name below
 * may be used instead. An attribute may be written CPU:OFFSET, meaning
 * (CPU << 32) | OFFSET (the vCPU index of KVM_DEV_ARM_VGIC_CPUID_SHIFT for a GICv2, the
 * packed MPIDR of KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT for a GICv3: the caller encodes it).
 *
 *   program ID                start program ID: closes every fd of the previous program
 *                             (a fresh VM for each program; IDs are the caller's)
 *   vm [TYPE]                 KVM_CREATE_VM (TYPE: the machine type/IPA size, default 0)
 *   vcpus N                   KVM_CREATE_VCPU for the next N vCPU indices
 *   vcpu_init [FEATURE...]    KVM_ARM_PREFERRED_TARGET, then KVM_ARM_VCPU_INIT on every
 *                             vCPU created so far, with the given feature bit numbers
 *   device KIND               KVM_CREATE_DEVICE; KIND: v2 | v3 | its | a type number.
 *                             Devices are numbered 0, 1, ... in creation order (DEV below)
 *   test_device KIND          KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST
 *   set32 DEV GROUP ATTR VAL  KVM_SET_DEVICE_ATTR with a 32-bit value
 *   set64 DEV GROUP ATTR VAL  KVM_SET_DEVICE_ATTR with a 64-bit value
 *   get32 DEV GROUP ATTR      KVM_GET_DEVICE_ATTR, 32-bit value
 *   get64 DEV GROUP ATTR      KVM_GET_DEVICE_ATTR, 64-bit value
 *   has DEV GROUP ATTR        KVM_HAS_DEVICE_ATTR
 *   ctrl DEV ATTR             KVM_SET_DEVICE_ATTR in KVM_DEV_ARM_VGIC_GRP_CTRL (no value)
 *   irq TYPE VCPU NUM LEVEL   KVM_IRQ_LINE; irq field encoded from TYPE (CPU|SPI|PPI),
 *                             VCPU (VCPU2 bits used above 255) and NUM
 *   irq_raw IRQFIELD LEVEL    KVM_IRQ_LINE with the irq field as given
 *   cap CAP                   KVM_CHECK_EXTENSION on the VM (on /dev/kvm before a VM);
 *                             CAP: a number or CAP_IRQCHIP, CAP_NR_VCPUS, CAP_MAX_VCPUS,
 *                             CAP_DEVICE_CTRL, CAP_ARM_VM_IPA_SIZE
 *   finalize VCPU FEATURE     KVM_ARM_VCPU_FINALIZE (FEATURE: KVM_ARM_VCPU_SVE = 4 is the
 *                             one to finalize: an SVE vCPU lists no registers before it)
 *   reg_list VCPU             KVM_GET_REG_LIST
 *   get_reg VCPU ID           KVM_GET_ONE_REG (8, 16 bytes... as the ID's size field says;
 *                             at most 64 bits printed; larger registers print as hex bytes)
 *   set_reg VCPU ID VAL       KVM_SET_ONE_REG (registers of at most 64 bits)
 *   reg_dump VCPU             KVM_GET_REG_LIST (a call with n = 0 for the count, then
 *                             the list), then KVM_GET_ONE_REG on every index in KVM's
 *                             order: one "G" line per register (below), then the result
 *                             line with the count
 *   target                    KVM_ARM_PREFERRED_TARGET on the VM: prints the target
 *                             and the preferred feature words 0..6 (the VCPU_INIT base)
 *   cpuinfo                   the guest's own CPU (the one QEMU emulates): every line
 *                             of /proc/cpuinfo, MIDR_EL1/REVIDR_EL1 from sysfs and
 *                             AT_HWCAP/AT_HWCAP2, as "I" lines (below); result ok
 *   run VCPU                  KVM_RUN with kvm_run.immediate_exit = 1: the kernel does its
 *                             first-run initialisation (vgic resources mapped, timer
 *                             interrupts mapped to hardware) and returns EINTR without
 *                             entering the guest
 *   mem GPA SIZE              back guest-physical [GPA, GPA+SIZE) with zeroed anonymous
 *                             memory (KVM_SET_USER_MEMORY_REGION, the next free slot), so
 *                             that table saves/restores (ITS, LPI pending tables) have RAM
 *   peek GPA                  read the 64-bit little-endian word at GPA (from a `mem` region)
 *   poke GPA VAL              write the 64-bit word VAL at GPA (in a `mem` region)
 *   end                       close every fd (as the next `program` would)
 *
 * Output, on standard output, one line per operation:
 *   R PROG OP RESULT
 * PROG is the current program ID, OP the operation's 1-based number in its program, and
 * RESULT one of:
 *   ok                        the ioctl succeeded (and returns no value)
 *   0xHEX                     the value read (get32/get64/get_reg/cap)
 *   0xN 0xID 0xID ...         reg_list: the count, then every register ID
 *   ENAME                     the ioctl failed with this errno (EINVAL, ENXIO, EBUSY...)
 *   !MESSAGE                  the line could not be run (bad syntax, unknown device...)
 * reg_dump and cpuinfo print, before their result line, lines of their own:
 *   G PROG OP 0xID VALUE      VALUE: the register as one hex number, most significant
 *                             byte first, 2 digits per byte of the ID's size field; or
 *                             the errno name KVM_GET_ONE_REG failed with
 *   I PROG OP TEXT            one line of information (cpuinfo)
 * The run starts with "gicproof-runner start" and ends with
 *   gicproof-runner done programs=P ops=O ioctls=I ns=T
 * (T: nanoseconds spent in the ioctls, CLOCK_MONOTONIC), so a reader can tell that the
 * whole batch was run. --constants prints "const NAME VALUE" lines, then
 * "gicproof-runner constants-done".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/version.h>

/* <asm/kvm.h> sizes the GICv3 regions with SZ_64K, which no UAPI header defines. */
#ifndef SZ_64K
#define SZ_64K 0x10000
#endif

#define MAX_VCPUS 512
#define MAX_DEVICES 16
#define MAX_FIELDS 16
#define MAX_MEM 8

static int kvm_fd = -1;
static int vm_fd = -1;
static int vcpu_fd[MAX_VCPUS];
static int nr_vcpus;
static int dev_fd[MAX_DEVICES];
static int nr_devices;
static struct {
	uint64_t gpa, size;
	void *host;
} mem[MAX_MEM];
static int nr_mem;

static long program_id;
static long op_no;
static long programs_run;
static long ops_run;
static long ioctls_run;
static uint64_t ioctl_ns;

struct name {
	const char *name;
	uint64_t value;
};

static const struct name symbols[] = {
	/* attribute groups */
	{ "ADDR", KVM_DEV_ARM_VGIC_GRP_ADDR },
	{ "DIST_REGS", KVM_DEV_ARM_VGIC_GRP_DIST_REGS },
	{ "CPU_REGS", KVM_DEV_ARM_VGIC_GRP_CPU_REGS },
	{ "NR_IRQS", KVM_DEV_ARM_VGIC_GRP_NR_IRQS },
	{ "CTRL", KVM_DEV_ARM_VGIC_GRP_CTRL },
	{ "REDIST_REGS", KVM_DEV_ARM_VGIC_GRP_REDIST_REGS },
	{ "CPU_SYSREGS", KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS },
	{ "LEVEL_INFO", KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO },
	{ "ITS_REGS", KVM_DEV_ARM_VGIC_GRP_ITS_REGS },
	/* control attributes */
	{ "INIT", KVM_DEV_ARM_VGIC_CTRL_INIT },
	{ "ITS_SAVE_TABLES", KVM_DEV_ARM_ITS_SAVE_TABLES },
	{ "ITS_RESTORE_TABLES", KVM_DEV_ARM_ITS_RESTORE_TABLES },
	{ "SAVE_PENDING_TABLES", KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES },
	{ "ITS_CTRL_RESET", KVM_DEV_ARM_ITS_CTRL_RESET },
	/* address types */
	{ "V2_DIST", KVM_VGIC_V2_ADDR_TYPE_DIST },
	{ "V2_CPU", KVM_VGIC_V2_ADDR_TYPE_CPU },
	{ "V3_DIST", KVM_VGIC_V3_ADDR_TYPE_DIST },
	{ "V3_REDIST", KVM_VGIC_V3_ADDR_TYPE_REDIST },
	{ "ITS", KVM_VGIC_ITS_ADDR_TYPE },
	{ "V3_REDIST_REGION", KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION },
	/* KVM_IRQ_LINE types */
	{ "CPU", KVM_ARM_IRQ_TYPE_CPU },
	{ "SPI", KVM_ARM_IRQ_TYPE_SPI },
	{ "PPI", KVM_ARM_IRQ_TYPE_PPI },
	/* capabilities (for cap) */
	{ "CAP_IRQCHIP", KVM_CAP_IRQCHIP },
	{ "CAP_NR_VCPUS", KVM_CAP_NR_VCPUS },
	{ "CAP_MAX_VCPUS", KVM_CAP_MAX_VCPUS },
	{ "CAP_DEVICE_CTRL", KVM_CAP_DEVICE_CTRL },
	{ "CAP_ARM_VM_IPA_SIZE", KVM_CAP_ARM_VM_IPA_SIZE },
	{ NULL, 0 },
};

static void print_constants(void)
{
#define C(x) printf("const %s 0x%llx\n", #x, (unsigned long long)(x))
	C(LINUX_VERSION_CODE);
	C(KVM_API_VERSION);
	C(KVM_DEV_ARM_VGIC_GRP_ADDR);
	C(KVM_DEV_ARM_VGIC_GRP_DIST_REGS);
	C(KVM_DEV_ARM_VGIC_GRP_CPU_REGS);
	C(KVM_DEV_ARM_VGIC_GRP_NR_IRQS);
	C(KVM_DEV_ARM_VGIC_GRP_CTRL);
	C(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS);
	C(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS);
	C(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO);
	C(KVM_DEV_ARM_VGIC_GRP_ITS_REGS);
	C(KVM_DEV_ARM_VGIC_CPUID_SHIFT);
	C(KVM_DEV_ARM_VGIC_CPUID_MASK);
	C(KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT);
	C(KVM_DEV_ARM_VGIC_V3_MPIDR_MASK);
	C(KVM_DEV_ARM_VGIC_OFFSET_SHIFT);
	C(KVM_DEV_ARM_VGIC_OFFSET_MASK);
	C(KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK);
	C(KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT);
	C(KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK);
	C(KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK);
	C(VGIC_LEVEL_INFO_LINE_LEVEL);
	C(KVM_DEV_ARM_VGIC_CTRL_INIT);
	C(KVM_DEV_ARM_ITS_SAVE_TABLES);
	C(KVM_DEV_ARM_ITS_RESTORE_TABLES);
	C(KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES);
	C(KVM_DEV_ARM_ITS_CTRL_RESET);
	C(KVM_VGIC_V2_ADDR_TYPE_DIST);
	C(KVM_VGIC_V2_ADDR_TYPE_CPU);
	C(KVM_VGIC_V2_DIST_SIZE);
	C(KVM_VGIC_V2_CPU_SIZE);
	C(KVM_VGIC_V3_ADDR_TYPE_DIST);
	C(KVM_VGIC_V3_ADDR_TYPE_REDIST);
	C(KVM_VGIC_ITS_ADDR_TYPE);
	C(KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION);
	C(KVM_VGIC_V3_DIST_SIZE);
	C(KVM_VGIC_V3_REDIST_SIZE);
	C(KVM_VGIC_V3_ITS_SIZE);
	C(KVM_DEV_TYPE_ARM_VGIC_V2);
	C(KVM_DEV_TYPE_ARM_VGIC_V3);
	C(KVM_DEV_TYPE_ARM_VGIC_ITS);
	C(KVM_CREATE_DEVICE_TEST);
	C(KVM_ARM_IRQ_TYPE_SHIFT);
	C(KVM_ARM_IRQ_TYPE_MASK);
	C(KVM_ARM_IRQ_VCPU_SHIFT);
	C(KVM_ARM_IRQ_VCPU_MASK);
	C(KVM_ARM_IRQ_VCPU2_SHIFT);
	C(KVM_ARM_IRQ_VCPU2_MASK);
	C(KVM_ARM_IRQ_NUM_SHIFT);
	C(KVM_ARM_IRQ_NUM_MASK);
	C(KVM_ARM_IRQ_TYPE_CPU);
	C(KVM_ARM_IRQ_TYPE_SPI);
	C(KVM_ARM_IRQ_TYPE_PPI);
	C(KVM_CREATE_VM);
	C(KVM_CHECK_EXTENSION);
	C(KVM_CREATE_VCPU);
	C(KVM_CREATE_DEVICE);
	C(KVM_SET_DEVICE_ATTR);
	C(KVM_GET_DEVICE_ATTR);
	C(KVM_HAS_DEVICE_ATTR);
	C(KVM_IRQ_LINE);
	C(KVM_ARM_PREFERRED_TARGET);
	C(KVM_ARM_VCPU_INIT);
	C(KVM_GET_REG_LIST);
	C(KVM_GET_ONE_REG);
	C(KVM_SET_ONE_REG);
	C(KVM_SET_USER_MEMORY_REGION);
	C(KVM_REG_SIZE_MASK);
	C(KVM_REG_SIZE_SHIFT);
	C(KVM_CAP_IRQCHIP);
	C(KVM_CAP_NR_VCPUS);
	C(KVM_CAP_MAX_VCPUS);
	C(KVM_CAP_DEVICE_CTRL);
	C(KVM_CAP_ARM_VM_IPA_SIZE);
#undef C
	printf("gicproof-runner constants-done\n");
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ioctl() counted and timed; returns the ioctl's value, or -errno. */
static long do_ioctl(int fd, unsigned long req, void *arg)
{
	uint64_t t0 = now_ns();
	long r = ioctl(fd, req, arg);
	int e = errno;

	ioctl_ns += now_ns() - t0;
	ioctls_run++;
	return r < 0 ? -e : r;
}

static void result(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void result(const char *fmt, ...)
{
	va_list ap;

	printf("R %ld %ld ", program_id, op_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void result_errno(long neg)
{
	const char *name = strerrorname_np((int)-neg);

	if (name)
		result("%s", name);
	else
		result("E%ld", -neg);
}

/* ok, or the errno name, for an ioctl return value. */
static void result_rc(long r)
{
	if (r < 0)
		result_errno(r);
	else
		result("ok");
}

static void close_all(void)
{
	for (int i = 0; i < nr_devices; i++)
		close(dev_fd[i]);
	for (int i = 0; i < nr_vcpus; i++)
		close(vcpu_fd[i]);
	if (vm_fd >= 0)
		close(vm_fd);
	for (int i = 0; i < nr_mem; i++)
		munmap(mem[i].host, mem[i].size);
	nr_mem = 0;
	nr_devices = 0;
	nr_vcpus = 0;
	vm_fd = -1;
}

/* Parse a number, a symbolic name or CPU:OFFSET. Returns 0 on success. */
static int parse_u64(const char *s, uint64_t *out)
{
	const char *colon = strchr(s, ':');
	char *end;

	if (colon) {
		char hi[64];
		uint64_t h, l;
		size_t n = (size_t)(colon - s);

		if (n == 0 || n >= sizeof(hi))
			return -1;
		memcpy(hi, s, n);
		hi[n] = 0;
		if (parse_u64(hi, &h) || parse_u64(colon + 1, &l) || h > 0xffffffffull ||
		    l > 0xffffffffull)
			return -1;
		*out = (h << 32) | l;
		return 0;
	}
	for (const struct name *n = symbols; n->name; n++) {
		if (!strcmp(s, n->name)) {
			*out = n->value;
			return 0;
		}
	}
	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-')
		return -1;
	return 0;
}

static int device_type(const char *s, uint64_t *type)
{
	if (!strcmp(s, "v2"))
		*type = KVM_DEV_TYPE_ARM_VGIC_V2;
	else if (!strcmp(s, "v3"))
		*type = KVM_DEV_TYPE_ARM_VGIC_V3;
	else if (!strcmp(s, "its"))
		*type = KVM_DEV_TYPE_ARM_VGIC_ITS;
	else
		return parse_u64(s, type);
	return 0;
}

static int get_kvm(void)
{
	if (kvm_fd < 0)
		kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	return kvm_fd;
}

#define NEED(n)                                                                    \
	do {                                                                       \
		if (argc != (n)) {                                                 \
			result("!%s takes %d operand%s", argv[0], (n) - 1,           \
			       (n) == 2 ? "" : "s");                               \
			return;                                                    \
		}                                                                  \
	} while (0)
#define NUM(i, var)                                                                \
	do {                                                                       \
		if (parse_u64(argv[i], &(var))) {                                  \
			result("!bad number '%s'", argv[i]);                         \
			return;                                                    \
		}                                                                  \
	} while (0)

static int device_fd(const char *s, int *fd)
{
	uint64_t d;

	if (parse_u64(s, &d) || d >= (uint64_t)nr_devices)
		return -1;
	*fd = dev_fd[d];
	return 0;
}

static int vcpu_index(const char *s, int *fd)
{
	uint64_t v;

	if (parse_u64(s, &v) || v >= (uint64_t)nr_vcpus)
		return -1;
	*fd = vcpu_fd[v];
	return 0;
}

static void op_attr(int argc, char **argv)
{
	const char *op = argv[0];
	int is_set = !strncmp(op, "set", 3), is_has = !strcmp(op, "has");
	int wide = !strcmp(op + strlen(op) - 2, "64");
	uint64_t group, attr, val = 0;
	union {
		uint64_t u64;
		uint32_t u32;
	} buf;
	struct kvm_device_attr a;
	int fd;
	long r;

	NEED(is_set ? 5 : 4);
	if (device_fd(argv[1], &fd)) {
		result("!no device '%s'", argv[1]);
		return;
	}
	NUM(2, group);
	NUM(3, attr);
	if (is_set)
		NUM(4, val);
	if (is_set && !wide && val > 0xffffffffull) {
		result("!value '%s' does not fit in 32 bits", argv[4]);
		return;
	}
	if (group > 0xffffffffull) {
		result("!group '%s' does not fit in 32 bits", argv[2]);
		return;
	}
	buf.u64 = 0;
	if (wide)
		buf.u64 = val;
	else
		buf.u32 = (uint32_t)val;
	memset(&a, 0, sizeof(a));
	a.group = (uint32_t)group;
	a.attr = attr;
	a.addr = (uint64_t)(uintptr_t)&buf;
	if (is_has) {
		result_rc(do_ioctl(fd, KVM_HAS_DEVICE_ATTR, &a));
	} else if (is_set) {
		result_rc(do_ioctl(fd, KVM_SET_DEVICE_ATTR, &a));
	} else {
		r = do_ioctl(fd, KVM_GET_DEVICE_ATTR, &a);
		if (r < 0)
			result_errno(r);
		else if (wide)
			result("0x%" PRIx64, buf.u64);
		else
			result("0x%" PRIx32, buf.u32);
	}
}

/*
 * KVM_GET_REG_LIST of vCPU argv[1]: the first call with n = 0 fails with E2BIG and sets n,
 * the second fills the list. NULL once the result has been reported (no such vCPU, an
 * error, or an empty list); the caller frees the list.
 */
static struct kvm_reg_list *reg_list(char **argv, int *fd)
{
	struct kvm_reg_list probe, *list;
	long r;

	if (vcpu_index(argv[1], fd)) {
		result("!no vcpu '%s'", argv[1]);
		return NULL;
	}
	probe.n = 0;
	r = do_ioctl(*fd, KVM_GET_REG_LIST, &probe);
	if (r != -E2BIG) {
		if (r < 0)
			result_errno(r);
		else
			result("0x0");
		return NULL;
	}
	list = calloc(1, sizeof(*list) + probe.n * sizeof(list->reg[0]));
	if (!list) {
		result("!out of memory");
		return NULL;
	}
	list->n = probe.n;
	r = do_ioctl(*fd, KVM_GET_REG_LIST, list);
	if (r < 0) {
		result_errno(r);
		free(list);
		return NULL;
	}
	return list;
}

static void op_reg_list(int argc, char **argv)
{
	struct kvm_reg_list *list;
	int fd;

	NEED(2);
	list = reg_list(argv, &fd);
	if (!list)
		return;
	printf("R %ld %ld 0x%llx", program_id, op_no, (unsigned long long)list->n);
	for (uint64_t i = 0; i < list->n; i++)
		printf(" 0x%llx", (unsigned long long)list->reg[i]);
	putchar('\n');
	free(list);
}

static void op_one_reg(int argc, char **argv)
{
	int is_set = !strcmp(argv[0], "set_reg");
	uint64_t id, val = 0;
	unsigned char buf[256];
	struct kvm_one_reg reg;
	size_t size;
	int fd;
	long r;

	NEED(is_set ? 4 : 3);
	if (vcpu_index(argv[1], &fd)) {
		result("!no vcpu '%s'", argv[1]);
		return;
	}
	NUM(2, id);
	if (is_set)
		NUM(3, val);
	size = (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
	if (size > sizeof(buf) || (is_set && size > 8)) {
		result("!register size %zu not supported", size);
		return;
	}
	memset(buf, 0, sizeof(buf));
	if (is_set)
		memcpy(buf, &val, size); /* little-endian: the low bytes */
	reg.id = id;
	reg.addr = (uint64_t)(uintptr_t)buf;
	r = do_ioctl(fd, is_set ? KVM_SET_ONE_REG : KVM_GET_ONE_REG, &reg);
	if (r < 0 || is_set) {
		result_rc(r);
	} else if (size <= 8) {
		memcpy(&val, buf, size);
		result("0x%" PRIx64, val);
	} else {
		/* most significant byte first, as one hex number */
		printf("R %ld %ld 0x", program_id, op_no);
		for (size_t i = size; i-- > 0;)
			printf("%02x", buf[i]);
		putchar('\n');
	}
}

static void op_reg_dump(int argc, char **argv)
{
	struct kvm_reg_list *list;
	unsigned char buf[256];
	struct kvm_one_reg reg;
	int fd;
	long r;

	NEED(2);
	list = reg_list(argv, &fd);
	if (!list)
		return;
	for (uint64_t i = 0; i < list->n; i++) {
		uint64_t id = list->reg[i];
		size_t size = (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);

		printf("G %ld %ld 0x%llx ", program_id, op_no, (unsigned long long)id);
		if (size > sizeof(buf)) {
			printf("!size %zu\n", size);
			continue;
		}
		memset(buf, 0, sizeof(buf));
		reg.id = id;
		reg.addr = (uint64_t)(uintptr_t)buf;
		r = do_ioctl(fd, KVM_GET_ONE_REG, &reg);
		if (r < 0) {
			const char *name = strerrorname_np((int)-r);

			if (name)
				printf("%s\n", name);
			else
				printf("E%ld\n", -r);
			continue;
		}
		/* little-endian in memory: most significant byte first, as one number */
		printf("0x");
		for (size_t b = size; b-- > 0;)
			printf("%02x", buf[b]);
		putchar('\n');
	}
	result("0x%llx", (unsigned long long)list->n);
	free(list);
}

static void op_target(int argc, char **argv)
{
	struct kvm_vcpu_init init;
	long r;

	NEED(1);
	memset(&init, 0, sizeof(init));
	r = do_ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &init);
	if (r < 0) {
		result_errno(r);
		return;
	}
	printf("R %ld %ld 0x%x", program_id, op_no, init.target);
	for (size_t i = 0; i < sizeof(init.features) / sizeof(init.features[0]); i++)
		printf(" 0x%x", init.features[i]);
	putchar('\n');
}

static void info_file(const char *prefix, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f) {
		printf("I %ld %ld %s!%s\n", program_id, op_no, prefix, strerrorname_np(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		printf("I %ld %ld %s%s\n", program_id, op_no, prefix, line);
	}
	fclose(f);
}

static void op_cpuinfo(int argc, char **argv)
{
	NEED(1);
	(void)argv;
	info_file("cpuinfo ", "/proc/cpuinfo");
	info_file("midr_el1 ", "/sys/devices/system/cpu/cpu0/regs/identification/midr_el1");
	info_file("revidr_el1 ", "/sys/devices/system/cpu/cpu0/regs/identification/revidr_el1");
	printf("I %ld %ld hwcap 0x%lx\n", program_id, op_no, getauxval(AT_HWCAP));
	printf("I %ld %ld hwcap2 0x%lx\n", program_id, op_no, getauxval(AT_HWCAP2));
	result("ok");
}

/* The host address of guest-physical [gpa, gpa+8) in a `mem` region, or NULL. */
static uint64_t *mem_word(uint64_t gpa)
{
	for (int i = 0; i < nr_mem; i++)
		if (gpa >= mem[i].gpa && gpa - mem[i].gpa + 8 <= mem[i].size && !(gpa & 7))
			return (uint64_t *)((char *)mem[i].host + (gpa - mem[i].gpa));
	return NULL;
}

static void op_mem(int argc, char **argv)
{
	struct kvm_userspace_memory_region region;
	uint64_t gpa, size, val;
	uint64_t *w;
	void *host;
	long r;

	if (!strcmp(argv[0], "mem")) {
		NEED(3);
		NUM(1, gpa);
		NUM(2, size);
		if (nr_mem == MAX_MEM || vm_fd < 0) {
			result("!%s", vm_fd < 0 ? "no vm" : "too many mem regions");
			return;
		}
		host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (host == MAP_FAILED) {
			result("!mmap of %" PRIu64 " bytes failed", size);
			return;
		}
		memset(&region, 0, sizeof(region));
		region.slot = (uint32_t)nr_mem;
		region.guest_phys_addr = gpa;
		region.memory_size = size;
		region.userspace_addr = (uint64_t)(uintptr_t)host;
		r = do_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
		if (r < 0) {
			munmap(host, size);
		} else {
			mem[nr_mem].gpa = gpa;
			mem[nr_mem].size = size;
			mem[nr_mem].host = host;
			nr_mem++;
		}
		result_rc(r);
		return;
	}
	if (!strcmp(argv[0], "peek")) {
		NEED(2);
		NUM(1, gpa);
		w = mem_word(gpa);
		if (!w) {
			result("!no mem word at 0x%" PRIx64, gpa);
			return;
		}
		result("0x%" PRIx64, *w);
		return;
	}
	NEED(3);
	NUM(1, gpa);
	NUM(2, val);
	w = mem_word(gpa);
	if (!w) {
		result("!no mem word at 0x%" PRIx64, gpa);
		return;
	}
	*w = val;
	result("ok");
}

static void op_run(int argc, char **argv)
{
	struct kvm_run *run;
	long size;
	int fd;
	long r;

	NEED(2);
	if (vcpu_index(argv[1], &fd)) {
		result("!no vcpu '%s'", argv[1]);
		return;
	}
	size = do_ioctl(get_kvm(), KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (size < 0) {
		result_errno(size);
		return;
	}
	run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (run == MAP_FAILED) {
		result("!mmap of the kvm_run area failed");
		return;
	}
	run->immediate_exit = 1;
	r = do_ioctl(fd, KVM_RUN, NULL);
	munmap(run, (size_t)size);
	result_rc(r);
}

static void run_op(int argc, char **argv)
{
	const char *op = argv[0];
	uint64_t n, m, k, l;
	long r;

	if (!strcmp(op, "vm")) {
		if (argc > 2) {
			result("!vm takes at most 1 operand");
			return;
		}
		n = 0;
		if (argc == 2)
			NUM(1, n);
		if (vm_fd >= 0) {
			result("!a VM exists in this program");
			return;
		}
		if (get_kvm() < 0) {
			result_errno(-errno);
			return;
		}
		r = do_ioctl(kvm_fd, KVM_CREATE_VM, (void *)(uintptr_t)n);
		if (r >= 0)
			vm_fd = (int)r;
		result_rc(r);
	} else if (!strcmp(op, "vcpus")) {
		NEED(2);
		NUM(1, n);
		if (n > (uint64_t)(MAX_VCPUS - nr_vcpus)) {
			result("!at most %d vcpus", MAX_VCPUS);
			return;
		}
		r = 0;
		for (uint64_t i = 0; i < n && r >= 0; i++) {
			r = do_ioctl(vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)nr_vcpus);
			if (r >= 0)
				vcpu_fd[nr_vcpus++] = (int)r;
		}
		result_rc(r);
	} else if (!strcmp(op, "vcpu_init")) {
		struct kvm_vcpu_init init;

		memset(&init, 0, sizeof(init));
		r = do_ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &init);
		for (int i = 1; i < argc && r >= 0; i++) {
			NUM(i, n);
			if (n >= 32 * sizeof(init.features) / sizeof(init.features[0])) {
				result("!feature %s out of range", argv[i]);
				return;
			}
			init.features[n / 32] |= 1u << (n % 32);
		}
		for (int i = 0; i < nr_vcpus && r >= 0; i++)
			r = do_ioctl(vcpu_fd[i], KVM_ARM_VCPU_INIT, &init);
		result_rc(r);
	} else if (!strcmp(op, "device") || !strcmp(op, "test_device")) {
		struct kvm_create_device cd;
		int test = !strcmp(op, "test_device");

		NEED(2);
		if (device_type(argv[1], &n) || n > 0xffffffffull) {
			result("!bad device kind '%s'", argv[1]);
			return;
		}
		if (!test && nr_devices == MAX_DEVICES) {
			result("!at most %d devices", MAX_DEVICES);
			return;
		}
		memset(&cd, 0, sizeof(cd));
		cd.type = (uint32_t)n;
		cd.flags = test ? KVM_CREATE_DEVICE_TEST : 0;
		r = do_ioctl(vm_fd, KVM_CREATE_DEVICE, &cd);
		if (r >= 0 && !test)
			dev_fd[nr_devices++] = (int)cd.fd;
		result_rc(r);
	} else if (!strcmp(op, "set32") || !strcmp(op, "set64") || !strcmp(op, "get32") ||
		   !strcmp(op, "get64") || !strcmp(op, "has")) {
		op_attr(argc, argv);
	} else if (!strcmp(op, "ctrl")) {
		struct kvm_device_attr a;
		int fd;

		NEED(3);
		if (device_fd(argv[1], &fd)) {
			result("!no device '%s'", argv[1]);
			return;
		}
		NUM(2, n);
		memset(&a, 0, sizeof(a));
		a.group = KVM_DEV_ARM_VGIC_GRP_CTRL;
		a.attr = n;
		result_rc(do_ioctl(fd, KVM_SET_DEVICE_ATTR, &a));
	} else if (!strcmp(op, "irq") || !strcmp(op, "irq_raw")) {
		struct kvm_irq_level lvl;

		if (!strcmp(op, "irq")) {
			NEED(5);
			NUM(1, n);
			NUM(2, m);
			NUM(3, k);
			NUM(4, l);
			if (n > KVM_ARM_IRQ_TYPE_MASK || k > KVM_ARM_IRQ_NUM_MASK ||
			    m > (KVM_ARM_IRQ_VCPU2_MASK << 8 | KVM_ARM_IRQ_VCPU_MASK)) {
				result("!irq operand out of range");
				return;
			}
			lvl.irq = (uint32_t)((n << KVM_ARM_IRQ_TYPE_SHIFT) |
					     ((m & KVM_ARM_IRQ_VCPU_MASK) << KVM_ARM_IRQ_VCPU_SHIFT) |
					     ((m >> 8) << KVM_ARM_IRQ_VCPU2_SHIFT) |
					     (k << KVM_ARM_IRQ_NUM_SHIFT));
		} else {
			NEED(3);
			NUM(1, n);
			NUM(2, l);
			lvl.irq = (uint32_t)n;
		}
		lvl.level = (uint32_t)l;
		result_rc(do_ioctl(vm_fd, KVM_IRQ_LINE, &lvl));
	} else if (!strcmp(op, "cap")) {
		int fd = vm_fd >= 0 ? vm_fd : get_kvm();

		NEED(2);
		NUM(1, n);
		r = do_ioctl(fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)n);
		if (r < 0)
			result_errno(r);
		else
			result("0x%lx", r);
	} else if (!strcmp(op, "reg_list")) {
		op_reg_list(argc, argv);
	} else if (!strcmp(op, "get_reg") || !strcmp(op, "set_reg")) {
		op_one_reg(argc, argv);
	} else if (!strcmp(op, "finalize")) {
		int fd, feature;

		NEED(3);
		if (vcpu_index(argv[1], &fd)) {
			result("!no vcpu '%s'", argv[1]);
			return;
		}
		NUM(2, n);
		if (n > 0x7fffffff) {
			result("!feature %s out of range", argv[2]);
			return;
		}
		feature = (int)n;
		result_rc(do_ioctl(fd, KVM_ARM_VCPU_FINALIZE, &feature));
	} else if (!strcmp(op, "reg_dump")) {
		op_reg_dump(argc, argv);
	} else if (!strcmp(op, "target")) {
		op_target(argc, argv);
	} else if (!strcmp(op, "cpuinfo")) {
		op_cpuinfo(argc, argv);
	} else if (!strcmp(op, "run")) {
		op_run(argc, argv);
	} else if (!strcmp(op, "mem") || !strcmp(op, "peek") || !strcmp(op, "poke")) {
		op_mem(argc, argv);
	} else if (!strcmp(op, "end")) {
		NEED(1);
		close_all();
		result("ok");
	} else {
		result("!unknown operation '%s'", op);
	}
}

int main(int argc, char **argv)
{
	FILE *in = stdin;
	char line[4096];
	long lineno = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "--constants")) {
		print_constants();
		return 0;
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1])) {
		fprintf(stderr, "usage: runner [SCRIPT] | runner --constants\n");
		return 2;
	}
	if (argc == 2 && strcmp(argv[1], "-")) {
		in = fopen(argv[1], "r");
		if (!in) {
			perror(argv[1]);
			return 1;
		}
	}
	printf("gicproof-runner start\n");
	while (fgets(line, sizeof(line), in)) {
		char *fields[MAX_FIELDS], *save = NULL, *tok;
		char *hash = strchr(line, '#');
		int n = 0;

		lineno++;
		if (hash)
			*hash = 0;
		for (tok = strtok_r(line, " \t\r\n", &save); tok && n < MAX_FIELDS;
		     tok = strtok_r(NULL, " \t\r\n", &save))
			fields[n++] = tok;
		if (tok) {
			op_no++;
			ops_run++;
			result("!more than %d fields", MAX_FIELDS);
			continue;
		}
		if (n == 0)
			continue;
		if (!strcmp(fields[0], "program")) {
			uint64_t id;

			close_all();
			if (n != 2 || parse_u64(fields[1], &id) || id > 0x7fffffff) {
				printf("gicproof-runner error line %ld: program takes one id\n",
				       lineno);
				continue;
			}
			program_id = (long)id;
			op_no = 0;
			programs_run++;
			continue;
		}
		op_no++;
		ops_run++;
		run_op(n, fields);
	}
	close_all();
	printf("gicproof-runner done programs=%ld ops=%ld ioctls=%ld ns=%llu\n", programs_run,
	       ops_run, ioctls_run, (unsigned long long)ioctl_ns);
	return 0;
}
