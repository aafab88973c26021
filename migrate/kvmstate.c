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
	return r < 0 ? err_set(e, -ENOSPC, "state tree: %s: %s", name, fdt_strerror(r)) : 0;
}

int kvmstate_save_vcpu(struct vm *vm, struct vcpu *v, void *fdt, struct err *e)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_msrs *msrs = NULL;
	int xs = xsave_size(vm), r;
	void *xsave = calloc(1, (size_t)xs);

	if (!xsave)
		return err_set(e, -ENOMEM, "out of memory for XSAVE");
	if ((r = vcpu_ioctl(v, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_GET_REGS, &regs, "KVM_GET_REGS", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS", e)) < 0 ||
	    (r = vcpu_ioctl(v, xs > (int)sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave,
			    "KVM_GET_XSAVE", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_GET_DEBUGREGS, &dbg, "KVM_GET_DEBUGREGS", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS", e)) < 0)
		goto out;
	r = read_msrs(vm, v, &msrs, e);
	if (r < 0)
		goto out;
	if ((r = prop(fdt, "mp-state", &mp, sizeof(mp), e)) < 0 || (r = prop(fdt, "regs", &regs, sizeof(regs), e)) < 0 ||
	    (r = prop(fdt, "sregs", &sregs, sizeof(sregs), e)) < 0 || (r = prop(fdt, "xsave", xsave, (size_t)xs, e)) < 0 ||
	    (r = prop(fdt, "xcrs", &xcrs, sizeof(xcrs), e)) < 0 || (r = prop(fdt, "debugregs", &dbg, sizeof(dbg), e)) < 0 ||
	    (r = prop(fdt, "lapic", &lapic, sizeof(lapic), e)) < 0 || (r = prop(fdt, "events", &ev, sizeof(ev), e)) < 0 ||
	    (r = prop(fdt, "msrs", msrs->entries, msrs->nmsrs * sizeof(msrs->entries[0]), e)) < 0)
		goto out;
out:
	free(msrs);
	free(xsave);
	return r;
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
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_msrs *msrs = NULL;
	int xs = xsave_size(vm), r, plen;
	void *xsave = calloc(1, (size_t)xs);
	const void *mp_raw;

	if (!xsave)
		return err_set(e, -ENOMEM, "out of memory for XSAVE");
	if ((r = get_exact(fdt, node, "mp-state", &mp, sizeof(mp), e)) < 0 ||
	    (r = get_exact(fdt, node, "regs", &regs, sizeof(regs), e)) < 0 ||
	    (r = get_exact(fdt, node, "sregs", &sregs, sizeof(sregs), e)) < 0 ||
	    (r = get_exact(fdt, node, "xsave", xsave, (size_t)xs, e)) < 0 ||
	    (r = get_exact(fdt, node, "xcrs", &xcrs, sizeof(xcrs), e)) < 0 ||
	    (r = get_exact(fdt, node, "debugregs", &dbg, sizeof(dbg), e)) < 0 ||
	    (r = get_exact(fdt, node, "lapic", &lapic, sizeof(lapic), e)) < 0 ||
	    (r = get_exact(fdt, node, "events", &ev, sizeof(ev), e)) < 0)
		goto out;
	mp_raw = fdt_getprop(fdt, node, "msrs", &plen);
	if (!mp_raw || plen < 0 || plen % (int)sizeof(struct kvm_msr_entry) ||
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
	memcpy(msrs->entries, mp_raw, (size_t)plen);
	if (xcrs.nr_xcrs > KVM_MAX_XCRS || mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD) {
		r = err_set(e, -EPROTO, "state: vCPU %u: XCR count or MP state out of range", v->id);
		goto out;
	}
	if ((r = vcpu_ioctl(v, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_SET_REGS, &regs, "KVM_SET_REGS", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_SET_XSAVE, xsave, "KVM_SET_XSAVE", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_SET_DEBUGREGS, &dbg, "KVM_SET_DEBUGREGS", e)) < 0 ||
	    (r = vcpu_ioctl(v, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC", e)) < 0)
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
	free(xsave);
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
