/* SPDX-License-Identifier: MIT */
/*
 * vmm/vcpu.c - vCPU creation, boot register state and the run loop.
 *
 * Stopping: vm_stop() sets vm->stopping, then for each vCPU sets
 * run->immediate_exit and sends SIGUSR1 (whose handler does nothing) to its
 * thread. A signal that lands outside KVM_RUN is caught by immediate_exit on
 * the next entry; one that lands inside makes KVM_RUN return -EINTR. Either
 * way the loop sees vm->stopping and leaves. Pausing uses the same kick;
 * the loop then parks in vcpu_park() until vm_resume().
 */
#include "vmm/vcpu.h"

#include "vmm/dirty.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "firmware/abi.h"
#include "vmm/cpuid.h"
#include "vmm/vm.h"

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static int vcpu_setup_lapic(struct vcpu *vcpu, struct err *e)
{
	struct kvm_lapic_state st;
	uint32_t v;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &st) < 0)
		return err_errno(e, -errno, "vCPU %u: KVM_GET_LAPIC", vcpu->id);
	/* Virtual-wire mode: LINT0 carries the PIC's ExtINT, LINT1 NMI. */
	memcpy(&v, st.regs + APIC_LVT_LINT0, 4);
	v = (v & ~0x700u) | (APIC_MODE_EXTINT << 8);
	memcpy(st.regs + APIC_LVT_LINT0, &v, 4);
	memcpy(&v, st.regs + APIC_LVT_LINT1, 4);
	v = (v & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(st.regs + APIC_LVT_LINT1, &v, 4);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &st) < 0)
		return err_errno(e, -errno, "vCPU %u: KVM_SET_LAPIC", vcpu->id);
	return 0;
}

int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned id, struct err *e)
{
	struct kvm_cpuid2 *cpuid;
	int r;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0) {
		vcpu->fd = -1;
		return err_errno(e, -errno, "KVM_CREATE_VCPU %u", id);
	}
	vcpu->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		r = err_errno(e, -errno, "vCPU %u: cannot map kvm_run", id);
		goto err_close;
	}
	/* CPUID before any sregs: real KVM refuses long-mode sregs otherwise. */
	cpuid = cpuid_for_vcpu(vm->cpuid, id, vm->nr_vcpus);
	if (!cpuid) {
		r = err_set(e, -ENOMEM, "out of memory for CPUID");
		goto err_unmap;
	}
	r = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
	free(cpuid);
	if (r < 0) {
		err_errno(e, r, "vCPU %u: KVM_SET_CPUID2", id);
		goto err_unmap;
	}
	r = vcpu_setup_lapic(vcpu, e);
	if (r < 0)
		goto err_unmap;
	if (vm->ring_entries && (r = dirty_ring_map(vcpu, e)) < 0)
		goto err_unmap;
	return 0;

err_unmap:
	munmap(vcpu->run, (size_t)vm->run_size);
	vcpu->run = NULL;
err_close:
	close(vcpu->fd);
	vcpu->fd = -1;
	return r;
}

static struct kvm_segment seg(uint16_t sel, uint8_t type, bool code64)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code64 ? 0 : 1,
		.s = 1,
		.l = code64 ? 1 : 0,
		.g = 1,
	};
}

int vcpu_set_boot_state(struct vcpu *vcpu, const struct boot_setup *boot, struct err *e)
{
	struct kvm_sregs s;
	struct kvm_regs regs = { .rflags = 0x2, .rip = boot->rip };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0)
		return err_errno(e, -errno, "vCPU %u: KVM_GET_SREGS", vcpu->id);
	s.gdt.base = BOOT_GDT_GPA;
	s.gdt.limit = 5 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.ds = s.es = s.fs = s.gs = s.ss = seg(BOOT_SEL_DATA, 3, false);
	if (boot->entry == BOOT_ENTRY_LINUX64) {
		s.cs = seg(BOOT_SEL_CODE64, 11, true);
		s.cr3 = BOOT_PML4_GPA;
		s.cr4 |= CR4_PAE;
		s.cr0 = (s.cr0 | CR0_PE | CR0_PG | CR0_ET);
		s.efer |= EFER_LME | EFER_LMA;
		regs.rsi = boot->arg;
		regs.rsp = 0x8ff0;
	} else {
		s.cs = seg(BOOT_SEL_CODE32, 11, false);
		s.cr0 = (s.cr0 | CR0_PE | CR0_ET) & ~CR0_PG;
		s.cr3 = 0;
		s.cr4 = 0;
		s.efer = 0;
		s.tr = (struct kvm_segment){
			.base = 0, .limit = 0x67, .selector = BOOT_SEL_TSS, .type = 11, .present = 1 };
		regs.rbx = boot->arg;
	}
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &s) < 0)
		return err_errno(e, -errno, "vCPU %u: KVM_SET_SREGS", vcpu->id);
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return err_errno(e, -errno, "vCPU %u: KVM_SET_REGS", vcpu->id);
	return 0;
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	/* KVM guarantees data_offset + size * count lies inside the run area. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus_write(&vcpu->vm->pio, run->io.port, data, run->io.size);
		else
			bus_read(&vcpu->vm->pio, run->io.port, data, run->io.size);
	}
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	unsigned len = run->mmio.len;

	if (NEVER(len > sizeof(run->mmio.data)))
		len = sizeof(run->mmio.data);
	if (run->mmio.is_write)
		bus_write(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	else
		bus_read(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
}

static uint64_t vcpu_rip(struct vcpu *vcpu)
{
	struct kvm_regs regs;

	return ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ? 0 : regs.rip;
}

/* Returns false when the loop must end. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		return true;
	case KVM_EXIT_DIRTY_RING_FULL:
		dirty_ring_full(vcpu);
		return true;
	case KVM_EXIT_SHUTDOWN:
		vm_fail(vm, "vCPU %u: guest triple fault (rip 0x%llx)", vcpu->id,
				(unsigned long long)vcpu_rip(vcpu));
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_exit(vm, VM_EXIT_OK, "guest powered off");
			break;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_exit(vm, VM_EXIT_OK, "guest requested a reset");
			break;
		default:
			vm_fail(vm, "vCPU %u: guest system event %u", vcpu->id,
					run->system_event.type);
			break;
		}
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vm_fail(vm, "vCPU %u: KVM entry failed (reason 0x%llx)", vcpu->id,
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vm_fail(vm, "vCPU %u: KVM internal error (suberror %u) at rip 0x%llx",
				vcpu->id, run->internal.suberror, (unsigned long long)vcpu_rip(vcpu));
		return false;
	default:
		vm_fail(vm, "vCPU %u: unhandled KVM exit reason %u", vcpu->id,
				run->exit_reason);
		return false;
	}
}

/* KVM finishes an I/O or MMIO exit - the value of an `in` or an MMIO read
 * into its register, the instruction's retirement - only when KVM_RUN is
 * entered again (Documentation/virt/kvm/api.rst, struct kvm_run: "the
 * corresponding operations are complete (and guest state is consistent)
 * only after userspace has re-entered the kernel with KVM_RUN"). Before a
 * pause lets anyone save this vCPU, enter once with immediate_exit set:
 * KVM completes the access, then returns EINTR before the next guest
 * instruction. Without it a restored or migrated guest would run that
 * instruction again: a byte read twice or written twice. */
static int vcpu_complete_exit(struct vcpu *vcpu)
{
	if (!vcpu->exit_incomplete)
		return 0;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	int r = ioctl(vcpu->fd, KVM_RUN, 0);
	int err = errno;
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (r == 0 || (err != EINTR && err != EAGAIN))
		return -(r == 0 ? EPROTO : err); /* it ran, or failed: state unknown */
	vcpu->exit_incomplete = false;
	return 0;
}

/* Waits, outside KVM_RUN, while the VM is paused. */
static void vcpu_park(struct vcpu *vcpu)
{
	struct vm *vm = vcpu->vm;
	int r = vcpu_complete_exit(vcpu);

	if (r < 0)
		vm_fail(vm, "vCPU %u: completing its last exit before a pause: %s", vcpu->id, strerror(-r));
	/* tells a kvmclock guest it was paused, so that a long pause is not
	 * taken for a soft lockup; EINVAL: the guest uses no kvmclock */
	if (ioctl(vcpu->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		pr_debug("vCPU %u: KVM_KVMCLOCK_CTRL: %s", vcpu->id, strerror(errno));
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_requested) && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	sandbox_enter_thread(&vm->cfg.sandbox, SANDBOX_VCPU, name);
	while (!atomic_load(&vm->stopping)) {
		if (atomic_load(&vm->pause_requested)) {
			vcpu_park(vcpu);
			continue;
		}
		throttle_wait(vcpu);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* KVM completed the last exit before it looked for
				 * the signal or immediate_exit */
				vcpu->exit_incomplete = false;
				vcpu->run->immediate_exit = 0;
				continue;
			}
			vm_fail(vm, "vCPU %u: KVM_RUN: %s", vcpu->id, strerror(errno));
			break;
		}
		vcpu->exits++;
		vcpu->exit_incomplete = vcpu->run->exit_reason == KVM_EXIT_IO || vcpu->run->exit_reason == KVM_EXIT_MMIO;
		if (!vcpu_handle_exit(vcpu))
			break;
		/* the exit just handled may have ended the VM (a reset, a
		 * test device exit, a device failure): run no further guest
		 * instruction; vm_stop() will find this thread gone */
		if (atomic_load(&vm->exit_requested))
			break;
	}
	pthread_mutex_lock(&vm->pause_lock);
	vm->exited++;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu, struct err *e)
{
	sigset_t all, old;
	int r;

	/* The thread inherits this mask; only SIGUSR1 (the kick) is wanted,
	 * and SIGSYS: a call outside its filter must reach the handler that
	 * says which (a blocked SIGSYS kills the process silently). */
	sigfillset(&all);
	sigdelset(&all, SIGUSR1);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return err_errno(e, -r, "cannot start vCPU %u thread", vcpu->id);
	vcpu->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, SIGUSR1);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	dirty_ring_unmap(vcpu);
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}
