/* SPDX-License-Identifier: MIT */
/*
 * devices/virtio_pci.h - the virtio 1.x modern PCI transport (virtio spec
 * §4.1), for devices whose data path belongs to a backend: each queue's
 * notify address is an ioeventfd (guest kicks never exit to tern) and each
 * queue's interrupt is an eventfd bound by irqfd to its MSI-X vector.
 *
 * BAR 0 (16 KiB): common config at 0, ISR at 0x1000, device config at
 * 0x2000, notify at 0x3000 (4 bytes per queue). BAR 2 (8 KiB): MSI-X table
 * at 0, PBA at 0x1000.
 */
#ifndef TERN_DEVICES_VIRTIO_PCI_H
#define TERN_DEVICES_VIRTIO_PCI_H

#include <pthread.h>

#include "devices/pci.h"

#define VPCI_MAX_QUEUES 34
#define VPCI_MAX_VECTORS 40
#define VPCI_NO_VECTOR 0xffff

struct vm;
struct virtio_pci;

struct virtio_pci_queue {
	uint16_t size;        /* as the driver set it (max offered by the device) */
	uint16_t vector;      /* MSI-X vector, or VPCI_NO_VECTOR */
	bool enabled;
	uint64_t desc, driver, device; /* GPAs */
	int kick_fd;          /* eventfd: ioeventfd on the notify address */
	int call_fd;          /* eventfd: irqfd to the vector's GSI */
	int irqfd_gsi;        /* GSI the call_fd is bound to, or -1 */
};

struct virtio_pci_ops {
	/* Device config space (BAR 0 + 0x2000). */
	void (*config_read)(struct virtio_pci *vp, unsigned off, void *buf, unsigned len);
	void (*config_write)(struct virtio_pci *vp, unsigned off, const void *buf, unsigned len);
	/* The driver set FEATURES_OK with vp->driver_features: 0 accepts. */
	int (*features_ok)(struct virtio_pci *vp);
	/* The driver set DRIVER_OK: start the backend on the queues. */
	int (*driver_ok)(struct virtio_pci *vp);
	/* The driver wrote status 0. */
	void (*reset)(struct virtio_pci *vp);
	/* Status bits the backend adds (NEEDS_RESET). May be NULL. */
	uint8_t (*backend_status)(struct virtio_pci *vp);
};

struct virtio_pci {
	struct pci_dev pci;
	const struct virtio_pci_ops *ops;
	struct vm *vm;
	pthread_mutex_t lock;       /* transport state below */
	uint64_t device_features;
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t config_generation;
	uint16_t queue_select;
	uint16_t config_vector;
	uint16_t queue_max;
	unsigned nqueues;
	struct virtio_pci_queue q[VPCI_MAX_QUEUES];
	uint8_t isr;
	int config_call_fd;         /* eventfd -> irqfd on config_vector */
	int config_irqfd_gsi;
	/* MSI-X */
	unsigned nvectors;
	uint32_t msix[VPCI_MAX_VECTORS][4]; /* addr lo, addr hi, data, control */
	uint32_t gsi[VPCI_MAX_VECTORS];
	bool msix_enabled, msix_masked;
	unsigned msix_cap;
	uint64_t notify_base;       /* GPA of the notify area while decoded, else 0 */
};

/* Transport state, part of a virtio device's node in the state tree
 * (fixed layout): a change here needs a version bump of every node that
 * holds it (devices/state.h). */
struct virtio_pci_state {
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint8_t status, config_generation, isr, rsvd0;
	uint16_t queue_select, config_vector, nqueues, rsvd1;
	uint32_t rsvd2;
	struct {
		uint16_t size, vector;
		uint8_t enabled, rsvd[3];
		uint64_t desc, driver, device;
	} q[VPCI_MAX_QUEUES];
	uint32_t msix[VPCI_MAX_VECTORS][4];
	uint8_t pci_cfg[PCI_CFG_SIZE];
};
_Static_assert(sizeof(struct virtio_pci_state) == 32 + 32 * VPCI_MAX_QUEUES + 16 * VPCI_MAX_VECTORS + 256,
	       "virtio_pci_state layout");

void virtio_pci_get_state(struct virtio_pci *vp, struct virtio_pci_state *st);
/* Loads transport state (before the VM runs): config space, queues, MSI-X
 * routes and irqfds. Does not touch the backend. -EINVAL when out of range. */
int virtio_pci_set_state(struct virtio_pci *vp, const struct virtio_pci_state *st);

/* Prepares the transport for a device with nqueues queues of up to
 * queue_max entries; the caller then calls virtio_pci_register(). */
int virtio_pci_init(struct virtio_pci *vp, struct vm *vm, const struct virtio_pci_ops *ops, uint16_t device_id,
		    uint64_t features, unsigned nqueues, uint16_t queue_max, struct err *e);
int virtio_pci_register(struct virtio_pci *vp, struct pci_bus *bus, struct err *e);
void virtio_pci_exit(struct virtio_pci *vp);
/* Raises the config-change interrupt (status bit changes, NEEDS_RESET). */
void virtio_pci_config_changed(struct virtio_pci *vp);
/* The same, for a caller that holds vp->lock (the lock is not recursive). */
void virtio_pci_config_changed_locked(struct virtio_pci *vp);
/* The same, without taking vp->lock (ISR and generation change
 * atomically): for a thread that must not wait for the lock's holder,
 * such as a shadow-queue relay the holder may be stopping. */
void virtio_pci_config_changed_async(struct virtio_pci *vp);

#endif
