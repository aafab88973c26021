/* SPDX-License-Identifier: MIT */
/*
 * vmm/vm.h - the machine. Everything a VM owns hangs off struct vm, so two
 * VMs (a migration source and destination) can live in one process.
 */
#ifndef TERN_VMM_VM_H
#define TERN_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "vmm/boot.h"
#include "vmm/bus.h"
#include "vmm/irq.h"
#include "vmm/memory.h"
#include "vmm/privdrop.h"
#include "vmm/sandbox.h"
#include "vmm/test_faults.h"
#include "vmm/throttle.h"
#include "vmm/util.h"

#define VM_MAX_CPUS 64
#define VM_MAX_NETS 4 /* network devices (--net) per VM */
#define VM_MAX_DISKS 8 /* block devices (--disk) per VM */

/* tern's own exit statuses (the guest's test-device status passes through). */
#define VM_EXIT_OK 0
#define VM_EXIT_ERROR 1

struct vm_config {
	const char *kvm_path;   /* "/dev/kvm" unless overridden */
	unsigned nr_cpus;       /* 1..VM_MAX_CPUS */
	uint64_t mem_size;      /* bytes */
	const char *kernel;     /* path (unused when restoring) */
	const char *mem_file;   /* restore: guest RAM from this snapshot file, load no kernel */
	bool mem_copy;          /* restore: copy mem_file into shared RAM instead of mapping it */
	bool track_dirty;       /* keep a dirty log for diff snapshots (migrate/snapmem.h) */
	bool incoming;          /* RAM and state arrive by migration: load no kernel */
	uint8_t vm_id[16];      /* the VM's identity (--vm-id, or random); carried by snapshots and migrations */
	/* incoming, and the source copies its disks' contents (tern migrate
	 * --copy-disks): each image is created, or checked to have
	 * incoming_disk_size[i] bytes, and locked at once */
	bool incoming_copy_disks;
	/* incoming: the source's image sizes (0: not told, an older source) */
	uint64_t incoming_disk_size[VM_MAX_DISKS];
	unsigned dirty_ring;    /* entries of each vCPU's dirty ring; 0: KVM's dirty bitmap */
	const char *initrd;     /* path or NULL */
	const char *cmdline;    /* or NULL for "" */
	enum boot_protocol boot_protocol;
	bool test_device;       /* map the firmware/abi.h test device */
	FILE *testdev_out;      /* where test-device reports go (stderr if NULL) */
	int console_out_fd;     /* where the UART's output goes (normally 1) */
	/* nr_nets parsed --net options (devices/net_config.h), owned by the
	 * caller for the VM's life */
	const struct net_config *net_cfgs;
	const struct disk_config *disk_cfgs; /* nr_disks parsed --disk options (devices/disk_config.h) */
	unsigned nr_disks;
	struct test_faults faults; /* the test interface (all off unless TERN_TEST_FAULTS) */
	struct sandbox sandbox;    /* --seccomp; off unless the program asks */
	struct privdrop drop;      /* --user: the ids the VM runs under once it is built */
	unsigned nr_nets;
};

/* A legacy interrupt line as a device sees it. */
struct irq_line {
	int (*set)(struct irq_line *line, int level);
};

struct vm_irq {
	struct irq_line line; /* handed to the device */
	struct vm *vm;
	unsigned gsi;
};

struct vcpu;
struct serial;
struct i8042;
struct cmos;
struct acpi_pm;
struct testdev;
struct pci_bus;
struct net_dev;
struct net_config;
struct blk_dev;
struct disk_config;
struct kvm_cpuid2;
struct snap_lineage;
struct migration;
struct dirty_log;

struct vm {
	struct vm_config cfg;     /* copy of what vm_create() was given */
	int kvm_fd;               /* /dev/kvm */
	int vm_fd;                /* KVM_CREATE_VM */
	int run_size;             /* KVM_GET_VCPU_MMAP_SIZE */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, unfiltered */
	struct guest_mem mem;     /* guest RAM */
	struct bus pio;           /* port I/O devices */
	struct bus mmio;          /* MMIO devices */
	unsigned nr_vcpus;
	struct vcpu *vcpus;       /* nr_vcpus entries */
	struct boot_setup boot;   /* entry state for the BSP */

	/* Devices, created in device_types[] order (vm.c). */
	struct serial *serial;
	struct i8042 *i8042;
	struct cmos *cmos;
	struct acpi_pm *acpi_pm;
	struct testdev *testdev;
	struct pci_bus *pci;
	struct net_dev *nets[VM_MAX_NETS];
	struct blk_dev *disks[VM_MAX_DISKS];
	struct irq_routes irqs;  /* GSI routing: legacy + MSI */
	struct vm_irq com1_irq;
	struct vm_irq kbd_irq;
	struct snap_lineage *lineage; /* cfg.track_dirty: the base of diff snapshots */
	struct migration *migration;  /* the last or current outgoing migration */
	/* Dirty rings (cfg.dirty_ring): harvests serialise on ring_lock and
	 * feed ring_log, the dirty log that is on, if any. */
	unsigned ring_entries;
	pthread_mutex_t ring_lock;
	struct dirty_log *ring_log;

	/* Life cycle. exit_* are written once, under lock, by the first
	 * vm_request_exit(); exit_fd then becomes readable. exit_requested is
	 * also read without the lock by vCPU threads, which stop running the
	 * guest once it is set (a reset the guest asked for takes effect at
	 * the instruction that asked, not when the main loop wakes). */
	pthread_mutex_t lock;
	int exit_fd;              /* eventfd */
	atomic_bool exit_requested;
	bool exit_error;          /* tern failed, rather than the guest asking */
	int exit_status;
	char exit_reason[160];
	atomic_bool stopping;     /* vCPU threads leave their run loops */
	bool started;             /* vCPU threads were launched */

	/* Pausing: vCPU threads park outside KVM_RUN while pause_requested;
	 * parked counts them. Both under pause_lock. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_bool pause_requested;
	unsigned parked;
	unsigned exited;          /* vCPU threads that left their loop */
	struct vm_throttle throttle; /* a migration slowing the vCPUs (vmm/throttle.h) */
};

/* Builds the machine: KVM VM, memory, vCPUs, their CPUID and xcr0 (the
 * devices, the guest and the state tracking above it come from
 * machine_create(), migrate/machine.h). Nothing runs until vm_start(). On
 * failure everything created is released and e says why. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e);
/* Loads the configured kernel (and initrd) into guest memory, once the
 * devices exist (the tables describe them); nothing for a VM whose memory
 * comes from a snapshot or an incoming migration. */
int vm_load_guest(struct vm *vm, struct err *e);
/* Launches one thread per vCPU. */
int vm_start(struct vm *vm, struct err *e);
/* Asks the VM to stop with the given tern exit status. Thread-safe, callable
 * from vCPU threads; only the first request counts. */
void vm_request_exit(struct vm *vm, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* As vm_request_exit(), for a failure of tern or KVM: status VM_EXIT_ERROR,
 * and the reason is reported to the user as an error. */
void vm_fail(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parks every vCPU outside KVM_RUN and returns once all are parked: vCPU
 * and VM state can then be read and written from this thread. Idempotent;
 * callers serialise pause/resume. */
void vm_pause(struct vm *vm);
/* Lets parked vCPUs run again. */
void vm_resume(struct vm *vm);
bool vm_is_paused(struct vm *vm);
/* Stops every vCPU thread and waits for them. Idempotent. */
void vm_stop(struct vm *vm);
/* Releases everything vm_create() made. Stops the VM first if needed;
 * the devices and what is above them must be gone (machine_destroy()). */
void vm_destroy(struct vm *vm);
/* Drives a legacy IRQ line of the in-kernel PIC/IOAPIC. */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);

#endif
