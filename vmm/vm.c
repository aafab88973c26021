/* SPDX-License-Identifier: MIT */
/*
 * vmm/vm.c - the machine and its life cycle.
 *
 * vm_create() order: /dev/kvm and its capabilities -> VM -> TSS/identity
 * map -> irqchip + PIT -> guest RAM -> vCPUs (CPUID first); then, from
 * machine_create() above: devices -> kernel (vm_load_guest()). vm_destroy()
 * undoes vm_create() in reverse.
 */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/dirty.h"
#include "vmm/cpuid.h"
#include "vmm/vcpu.h"

#define KVM_TSS_GPA 0xfffbd000ull
#define KVM_IDENTITY_MAP_GPA 0xfffbc000ull
#define KERNEL_MAX_SIZE (512 * MiB)
#define INITRD_MAX_SIZE (2 * GiB)

static const struct {
	unsigned cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" },
};

static int vm_irq_set(struct irq_line *line, int level)
{
	struct vm_irq *irq = container_of(line, struct vm_irq, line);

	return vm_irq_line(irq->vm, irq->gsi, level);
}

int vm_irq_line(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static int vm_open_kvm(struct vm *vm, struct err *e)
{
	const char *path = vm->cfg.kvm_path ? vm->cfg.kvm_path : "/dev/kvm";
	int v;

	vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int r = -errno;
		if (r == -ENOENT)
			return err_set(e, r, "KVM is not available: %s does not exist (is the kvm module loaded?)",
				       path);
		return err_errno(e, r, "cannot open %s", path);
	}
	v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return err_set(e, -ENOTSUP, "%s is not a KVM device with API version %d (got %d)", path,
			       KVM_API_VERSION, v);
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0)
			return err_set(e, -ENOTSUP, "KVM lacks a required capability: %s", required_caps[i].name);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return err_errno(e, vm->run_size < 0 ? -errno : -EINVAL, "KVM_GET_VCPU_MMAP_SIZE");
	return 0;
}

static int vm_check_limits(struct vm *vm, struct err *e)
{
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	unsigned bits;
	gpa_t top;

	if (max_vcpus <= 0)
		max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_vcpus > 0 && vm->cfg.nr_cpus > (unsigned)max_vcpus)
		return err_set(e, -EINVAL, "%u vCPUs requested, this host's KVM allows %d", vm->cfg.nr_cpus,
			       max_vcpus);
	bits = cpuid_phys_bits(vm->cpuid);
	top = vm->cfg.mem_size > MEM_HOLE_START ? vm->cfg.mem_size + (MEM_HOLE_END - MEM_HOLE_START)
						: vm->cfg.mem_size;
	if (bits < 64 && top > (1ull << bits))
		return err_set(e, -E2BIG,
			       "memory size %llu MiB is too large: guest RAM would end at 0x%llx, beyond the "
			       "%u-bit physical address space",
			       (unsigned long long)(vm->cfg.mem_size / MiB), (unsigned long long)top, bits);
	return 0;
}

static int vm_create_platform(struct vm *vm, struct err *e)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return err_errno(e, -errno, "KVM_CREATE_VM");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
		return err_errno(e, -errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		uint64_t addr = KVM_IDENTITY_MAP_GPA;
		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
			return err_errno(e, -errno, "KVM_SET_IDENTITY_MAP_ADDR");
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_errno(e, -errno, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_errno(e, -errno, "KVM_CREATE_PIT2");
	return irq_routes_init(&vm->irqs, vm->vm_fd, e);
}

/*
 * KVM keeps its own copy of each vCPU's XCR0, updated when the guest's
 * XSETBV exits to it, and derives CPUID 0xd.0 EBX (the XSAVE area size for
 * the enabled features) from that copy. QEMU's software emulation of nested
 * SVM (the nested Linux lane, docs/linux-lane.md) does not intercept XSETBV:
 * KVM's copy would stay at its reset value (x87 only), Linux's XSAVE size
 * check would warn, and KVM would load that stale XCR0 on every guest entry.
 * Starting each vCPU with every user feature its CPUID advertises - what
 * Linux enables anyway - keeps the two in step there; wherever XSETBV does
 * exit, the guest's own write replaces the value at once.
 */
static int vm_init_xcr0(struct vm *vm, struct err *e)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1 };

	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = cpuid_xcr0(vm->cpuid);
	if (!xcrs.xcrs[0].value || ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) <= 0)
		return 0;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (ioctl(vm->vcpus[i].fd, KVM_SET_XCRS, &xcrs) < 0)
			return err_errno(e, -errno, "vCPU %u: KVM_SET_XCRS (XCR0 0x%llx)", i,
					 (unsigned long long)xcrs.xcrs[0].value);
	return 0;
}

static int vm_load_kernel(struct vm *vm, struct err *e)
{
	struct boot_request req = {
		.cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "",
		.nr_cpus = vm->cfg.nr_cpus,
		.protocol = vm->cfg.boot_protocol,
	};
	uint8_t *kernel = NULL, *initrd = NULL;
	int r;

	r = read_file(vm->cfg.kernel, "kernel", KERNEL_MAX_SIZE, &kernel, &req.kernel_len, e);
	if (r < 0)
		return r;
	req.kernel = kernel;
	if (vm->cfg.initrd) {
		r = read_file(vm->cfg.initrd, "initrd", INITRD_MAX_SIZE, &initrd, &req.initrd_len, e);
		if (r < 0)
			goto out;
		req.initrd = initrd;
	}
	r = boot_load(&vm->mem, &req, &vm->boot, e);
	if (r < 0) {
		/* Name the file: the loaders only know its bytes. */
		struct err wrapped = { { 0 } };
		err_set(&wrapped, r, "%s: %s", vm->cfg.kernel, e->msg);
		*e = wrapped;
		goto out;
	}
	r = vcpu_set_boot_state(&vm->vcpus[0], &vm->boot, e);
out:
	free(kernel);
	free(initrd);
	return r;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->exit_fd = -1;
	vm->mem.fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_mutex_init(&vm->ring_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	vm->com1_irq = (struct vm_irq){ .line.set = vm_irq_set, .vm = vm };
	vm->kbd_irq = (struct vm_irq){ .line.set = vm_irq_set, .vm = vm };

	if (!cfg->nr_cpus || cfg->nr_cpus > VM_MAX_CPUS) {
		r = err_set(e, -EINVAL, "vCPU count %u is out of range (1..%d)", cfg->nr_cpus, VM_MAX_CPUS);
		goto err;
	}
	vm->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_fd < 0) {
		r = err_errno(e, -errno, "eventfd");
		goto err;
	}
	r = vm_open_kvm(vm, e);
	if (r < 0)
		goto err;
	r = cpuid_get_supported(vm->kvm_fd, &vm->cpuid, e);
	if (r < 0)
		goto err;
	r = vm_check_limits(vm, e);
	if (r < 0)
		goto err;
	r = vm_create_platform(vm, e);
	if (r < 0)
		goto err;
	r = cfg->mem_file ? mem_init_file(&vm->mem, cfg->mem_file, cfg->mem_size, cfg->mem_copy, e)
			  : mem_init(&vm->mem, cfg->mem_size, e);
	if (r < 0)
		goto err;
	r = mem_register_kvm(&vm->mem, vm->vm_fd, e);
	if (r < 0)
		goto err;

	if (cfg->dirty_ring) { /* before any vCPU exists */
		r = dirty_ring_enable(vm, cfg->dirty_ring, e);
		if (r < 0)
			goto err;
	}
	vm->vcpus = calloc(cfg->nr_cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		r = err_set(e, -ENOMEM, "out of memory for vCPUs");
		goto err;
	}
	for (unsigned i = 0; i < cfg->nr_cpus; i++)
		vm->vcpus[i].fd = -1;
	vm->nr_vcpus = cfg->nr_cpus;
	for (unsigned i = 0; i < cfg->nr_cpus; i++) {
		r = vcpu_init(&vm->vcpus[i], vm, i, e);
		if (r < 0)
			goto err;
	}
	r = vm_init_xcr0(vm, e);
	if (r < 0)
		goto err;
	return 0;

err:
	vm_destroy(vm);
	return r;
}

int vm_load_guest(struct vm *vm, struct err *e)
{
	/* a restore or an incoming migration brings its own memory */
	if (vm->cfg.mem_file || vm->cfg.incoming)
		return 0;
	return vm_load_kernel(vm, e);
}

static void vm_kick_signal(int sig)
{
	(void)sig;
}

int vm_start(struct vm *vm, struct err *e)
{
	struct sigaction sa = { .sa_handler = vm_kick_signal };
	int r;

	/* No SA_RESTART: the kick must interrupt KVM_RUN with EINTR. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		return err_errno(e, -errno, "sigaction(SIGUSR1)");
	vm->started = true;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		r = vcpu_start(&vm->vcpus[i], e);
		if (r < 0) {
			vm_stop(vm);
			return r;
		}
	}
	return 0;
}

__attribute__((format(printf, 4, 0))) static void vm_vrequest_exit(struct vm *vm, int status, bool error, const char *fmt, va_list ap)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vm->lock);
	if (!vm->exit_requested) {
		vm->exit_requested = true;
		vm->exit_error = error;
		vm->exit_status = status;
		vsnprintf(vm->exit_reason, sizeof(vm->exit_reason), fmt, ap);
		if (write(vm->exit_fd, &one, sizeof(one)) < 0)
			pr_warn("cannot signal VM exit: %s", strerror(errno));
	}
	pthread_mutex_unlock(&vm->lock);
}

void vm_request_exit(struct vm *vm, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vm_vrequest_exit(vm, status, false, fmt, ap);
	va_end(ap);
}

void vm_fail(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vm_vrequest_exit(vm, VM_EXIT_ERROR, true, fmt, ap);
	va_end(ap);
}

void vm_pause(struct vm *vm)
{
	unsigned running = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		running += vm->vcpus[i].thread_started;
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, true);
	pthread_cond_broadcast(&vm->pause_cond); /* ends a throttled vCPU's wait */
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	pthread_mutex_lock(&vm->pause_lock);
	/* a thread that has left its loop (guest exit, failure, stop)
	 * never parks: count it as settled */
	while (vm->parked + vm->exited < running && !atomic_load(&vm->stopping))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_requested, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_is_paused(struct vm *vm)
{
	return atomic_load(&vm->pause_requested);
}

void vm_stop(struct vm *vm)
{
	if (!vm->vcpus)
		return;
	atomic_store(&vm->stopping, true);
	/* release parked threads so they can see stopping */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

void vm_destroy(struct vm *vm)
{
	vm_stop(vm);
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	irq_routes_exit(&vm->irqs);
	mem_destroy(&vm->mem);
	free(vm->cpuid);
	vm->cpuid = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->exit_fd >= 0)
		close(vm->exit_fd);
	vm->vm_fd = vm->kvm_fd = vm->exit_fd = -1;
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_mutex_destroy(&vm->ring_lock);
	pthread_cond_destroy(&vm->pause_cond);
}
