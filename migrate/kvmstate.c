/* SPDX-License-Identifier: MIT */
/*
 * migrate/kvmstate.c - vCPU and in-kernel chip state as state-tree nodes.
 *
 * Each KVM structure is one property holding the x86-64 KVM uAPI layout
 * (fixed-width, little-endian, stable across kernels; sizes pinned below),
 * read back only with an exact-length check. Derived state (CPUID, MSR
 * lists) is recomputed from the configuration, never trusted from the
 * stream.
 *
 * Restore order follows what KVM needs (Firecracker and QEMU do the same):
 * MP state, regs, sregs, XSAVE, XCRs, debug regs, LAPIC, MSRs, events; then
 * PIC/IOAPIC, PIT and the clock.
 */
#include "migrate/kvmstate.h"

#include <errno.h>
#include <libfdt.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vcpu.h"
#include "vmm/vm.h"

_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs layout");
_Static_assert(sizeof(struct kvm_sregs) == 312, "kvm_sregs layout");
_Static_assert(sizeof(struct kvm_xcrs) == 392, "kvm_xcrs layout");
_Static_assert(sizeof(struct kvm_debugregs) == 128, "kvm_debugregs layout");
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "kvm_lapic_state layout");
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "kvm_vcpu_events layout");
_Static_assert(sizeof(struct kvm_mp_state) == 4, "kvm_mp_state layout");
_Static_assert(sizeof(struct kvm_irqchip) == 520, "kvm_irqchip layout");
_Static_assert(sizeof(struct kvm_pit_state2) == 112, "kvm_pit_state2 layout");
_Static_assert(sizeof(struct kvm_clock_data) == 48, "kvm_clock_data layout");
_Static_assert(sizeof(struct kvm_msr_entry) == 16, "kvm_msr_entry layout");

#define MAX_MSRS 512

static int xsave_size(struct vm *vm)
{
	int n = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? n : (int)sizeof(struct kvm_xsave);
}

/* The MSRs KVM saves for this vCPU: the index list minus any it refuses. */
static int read_msrs(struct vm *vm, struct vcpu *v, struct kvm_msrs **out, struct err *e)
{
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + MAX_MSRS * sizeof(uint32_t));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + MAX_MSRS * sizeof(struct kvm_msr_entry));
	uint32_t n = 0;
	int r = 0;

	if (!list || !m) {
		r = err_set(e, -ENOMEM, "out of memory for MSRs");
		goto out;
	}
	list->nmsrs = MAX_MSRS;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		r = err_errno(e, -errno, "KVM_GET_MSR_INDEX_LIST");
		goto out;
	}
	/* KVM_GET_MSRS stops at the first MSR it cannot read: skip that one
	 * and go on, so one unsupported MSR does not lose the rest. */
	for (uint32_t i = 0; i < list->nmsrs;) {
		/* header and 64 entries in one buffer (flexible array member) */
		union {
			struct kvm_msrs h;
			uint8_t raw[sizeof(struct kvm_msrs) + 64 * sizeof(struct kvm_msr_entry)];
		} batch;
		uint32_t k = 0;

		memset(&batch, 0, sizeof(batch));
		for (; k < 64 && i + k < list->nmsrs; k++)
			batch.h.entries[k].index = list->indices[i + k];
		batch.h.nmsrs = k;
		int got = ioctl(v->fd, KVM_GET_MSRS, &batch);
		if (got < 0) {
			r = err_errno(e, -errno, "vCPU %u: KVM_GET_MSRS", v->id);
			goto out;
		}
		memcpy(&m->entries[n], batch.h.entries, (size_t)got * sizeof(batch.h.entries[0]));
		n += (uint32_t)got;
		i += (uint32_t)got + ((uint32_t)got < k ? 1 : 0);
	}
	m->nmsrs = n;
	*out = m;
	m = NULL;
out:
	free(list);
	free(m);
	return r;
}

static int vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *what, struct err *e)
{
	return ioctl(v->fd, req, arg) < 0 ? err_errno(e, -errno, "vCPU %u: %s", v->id, what) : 0;
}

static int prop(void *fdt, const char *name, const void *data, size_t len, struct err *e)
{
	int r = fdt_property(fdt, name, data, (int)len);
	return r < 0 ? err_set(e, r == -FDT_ERR_NOSPACE ? -ENOBUFS : -ENOSPC, "state tree: %s: %s", name,
			       fdt_strerror(r))
		     : 0;
}

/*
 * The fixed-shape pieces of a vCPU's state, in restore order (MSRs and the
 * pending events follow them). Size 0 means the XSAVE area, whose size KVM
 * reports (KVM_CAP_XSAVE2).
 */
static const struct vcpu_piece {
	const char *name;
	unsigned long get, set;
	size_t size;
} pieces[] = {
	{ "mp-state", KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state) },
	{ "regs", KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs) },
	{ "sregs", KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs) },
	{ "xsave", KVM_GET_XSAVE, KVM_SET_XSAVE, 0 },
	{ "xcrs", KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs) },
	{ "debugregs", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs) },
	{ "lapic", KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state) },
};
#define NR_PIECES (sizeof(pieces) / sizeof(pieces[0]))

/* One buffer per piece, sized for this host's KVM. */
static int pieces_alloc(struct vm *vm, void *buf[NR_PIECES], size_t len[NR_PIECES], struct err *e)
{
	for (size_t i = 0; i < NR_PIECES; i++) {
		len[i] = pieces[i].size ? pieces[i].size : (size_t)xsave_size(vm);
		buf[i] = calloc(1, len[i]);
		if (!buf[i])
			return err_set(e, -ENOMEM, "out of memory for vCPU state");
	}
	return 0;
}

static void pieces_free(void *buf[NR_PIECES])
{
	for (size_t i = 0; i < NR_PIECES; i++)
		free(buf[i]);
}

int kvmstate_save_vcpu(struct vm *vm, struct vcpu *v, void *fdt, struct err *e)
{
	void *buf[NR_PIECES] = { 0 };
	size_t len[NR_PIECES];
	struct kvm_vcpu_events ev;
	struct kvm_msrs *msrs = NULL;
	int r = pieces_alloc(vm, buf, len, e);

	for (size_t i = 0; r == 0 && i < NR_PIECES; i++) {
		unsigned long req = pieces[i].get;
		if (!pieces[i].size && len[i] > sizeof(struct kvm_xsave))
			req = KVM_GET_XSAVE2;
		r = vcpu_ioctl(v, req, buf[i], pieces[i].name, e);
		if (r == 0)
			r = prop(fdt, pieces[i].name, buf[i], len[i], e);
	}
	if (r == 0)
		r = vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS", e);
	if (r == 0)
		r = read_msrs(vm, v, &msrs, e);
	if (r == 0)
		r = prop(fdt, "events", &ev, sizeof(ev), e);
	if (r == 0)
		r = prop(fdt, "msrs", msrs->entries, msrs->nmsrs * sizeof(msrs->entries[0]), e);
	/* the rate the guest's TSC counts at: a host with another rate must
	 * scale it, or the guest's clock runs fast or slow */
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (r == 0 && khz <= 0)
		r = err_errno(e, khz < 0 ? -errno : -EPROTO, "vCPU %u: KVM_GET_TSC_KHZ", v->id);
	uint32_t k32 = (uint32_t)khz;
	if (r == 0)
		r = prop(fdt, "tsc-khz", &k32, sizeof(k32), e);
	free(msrs);
	pieces_free(buf);
	return r;
}

/* Gives vCPU v the saved TSC rate (a state without one predates it: the
 * host's rate stays). KVM accepts a rate within its tolerance of the
 * host's as is, and another one only where the CPU scales the TSC. */
static int load_tsc_khz(struct vcpu *v, const void *fdt, int node, struct err *e)
{
	int plen;
	const void *p = fdt_getprop(fdt, node, "tsc-khz", &plen);
	uint32_t want;

	if (!p)
		return 0;
	if (plen != sizeof(want))
		return err_set(e, -EPROTO, "state: property 'tsc-khz' has %d bytes, 4 expected", plen);
	memcpy(&want, p, sizeof(want));
	int cur = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (want == 0 || want > 100u * 1000 * 1000)
		return err_set(e, -EPROTO, "state: vCPU %u: TSC rate %u kHz is out of range", v->id, want);
	if (cur > 0 && (uint32_t)cur == want)
		return 0;
	if (ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)want) < 0)
		return err_errno(e, -errno, "vCPU %u: the saved guest's TSC ran at %u kHz, this host's runs at %d kHz, "
					    "and KVM cannot scale it here (KVM_SET_TSC_KHZ): its clock would run %s",
				 v->id, want, cur, cur > 0 && (uint32_t)cur > want ? "fast" : "slow");
	return 0;
}

/* Copies property name of node into dst, which must be exactly len bytes. */
static int get_exact(const void *fdt, int node, const char *name, void *dst, size_t len, struct err *e)
{
	int plen;
	const void *p = fdt_getprop(fdt, node, name, &plen);

	if (!p)
		return err_set(e, -EPROTO, "state: property '%s' is missing", name);
	if ((size_t)plen != len)
		return err_set(e, -EPROTO, "state: property '%s' has %d bytes, %zu expected", name, plen, len);
	memcpy(dst, p, len);
	return 0;
}

int kvmstate_load_vcpu(struct vm *vm, struct vcpu *v, const void *fdt, int node, struct err *e)
{
	void *buf[NR_PIECES] = { 0 };
	size_t len[NR_PIECES];
	struct kvm_vcpu_events ev;
	struct kvm_msrs *msrs = NULL;
	const void *raw;
	int plen, r = pieces_alloc(vm, buf, len, e);

	/* read and check everything before the first KVM_SET */
	for (size_t i = 0; r == 0 && i < NR_PIECES; i++)
		r = get_exact(fdt, node, pieces[i].name, buf[i], len[i], e);
	if (r == 0)
		r = get_exact(fdt, node, "events", &ev, sizeof(ev), e);
	if (r < 0)
		goto out;
	raw = fdt_getprop(fdt, node, "msrs", &plen);
	if (!raw || plen < 0 || plen % (int)sizeof(struct kvm_msr_entry) ||
	    plen / (int)sizeof(struct kvm_msr_entry) > MAX_MSRS) {
		r = err_set(e, -EPROTO, "state: vCPU %u: bad 'msrs' property", v->id);
		goto out;
	}
	msrs = calloc(1, sizeof(*msrs) + (size_t)plen);
	if (!msrs) {
		r = err_set(e, -ENOMEM, "out of memory for MSRs");
		goto out;
	}
	msrs->nmsrs = (uint32_t)plen / sizeof(struct kvm_msr_entry);
	memcpy(msrs->entries, raw, (size_t)plen);
	const struct kvm_mp_state *mp = buf[0];
	const struct kvm_xcrs *xcrs = buf[4];
	_Static_assert(sizeof(pieces) / sizeof(pieces[0]) == 7, "pieces[0] is mp-state, pieces[4] xcrs");
	if (xcrs->nr_xcrs > KVM_MAX_XCRS || mp->mp_state > KVM_MP_STATE_AP_RESET_HOLD) {
		r = err_set(e, -EPROTO, "state: vCPU %u: XCR count or MP state out of range", v->id);
		goto out;
	}
	/* the rate before the registers and MSRs (the TSC value among them) */
	if ((r = load_tsc_khz(v, fdt, node, e)) < 0)
		goto out;
	for (size_t i = 0; r == 0 && i < NR_PIECES; i++)
		r = vcpu_ioctl(v, pieces[i].set, buf[i], pieces[i].name, e);
	if (r < 0)
		goto out;
	int set = ioctl(v->fd, KVM_SET_MSRS, msrs);
	if (set < 0 || (uint32_t)set != msrs->nmsrs) {
		r = err_set(e, -EPROTO, "vCPU %u: KVM_SET_MSRS accepted %d of %u MSRs (MSR 0x%x refused)", v->id, set,
			    msrs->nmsrs, set >= 0 && (uint32_t)set < msrs->nmsrs ? msrs->entries[set].index : 0);
		goto out;
	}
	r = vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS", e);
out:
	free(msrs);
	pieces_free(buf);
	return r;
}

int kvmstate_save_vm(struct vm *vm, void *fdt, struct err *e)
{
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };
	static const char *const names[3] = { "pic-master", "pic-slave", "ioapic" };
	int r;

	for (unsigned i = 0; i < 3; i++) {
		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = i;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip[i]) < 0)
			return err_errno(e, -errno, "KVM_GET_IRQCHIP %s", names[i]);
		r = prop(fdt, names[i], &chip[i], sizeof(chip[i]), e);
		if (r < 0)
			return r;
	}
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return err_errno(e, -errno, "KVM_GET_PIT2");
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return err_errno(e, -errno, "KVM_GET_CLOCK");
	r = prop(fdt, "pit", &pit, sizeof(pit), e);
	if (r == 0)
		r = prop(fdt, "clock", &clock, sizeof(clock), e);
	return r;
}

int kvmstate_load_vm(struct vm *vm, const void *fdt, int node, struct err *e)
{
	static const char *const names[3] = { "pic-master", "pic-slave", "ioapic" };
	struct kvm_irqchip chip;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	int r;

	for (unsigned i = 0; i < 3; i++) {
		r = get_exact(fdt, node, names[i], &chip, sizeof(chip), e);
		if (r < 0)
			return r;
		if (chip.chip_id != i)
			return err_set(e, -EPROTO, "state: %s has chip id %u", names[i], chip.chip_id);
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return err_errno(e, -errno, "KVM_SET_IRQCHIP %s", names[i]);
	}
	if ((r = get_exact(fdt, node, "pit", &pit, sizeof(pit), e)) < 0 ||
	    (r = get_exact(fdt, node, "clock", &clock, sizeof(clock), e)) < 0)
		return r;
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0)
		return err_errno(e, -errno, "KVM_SET_PIT2");
	/* only the clock value carries over: flags and host times are this
	 * host's business */
	struct kvm_clock_data c = { .clock = clock.clock };
	if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0)
		return err_errno(e, -errno, "KVM_SET_CLOCK");
	return 0;
}
