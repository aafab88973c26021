/* SPDX-License-Identifier: MIT */
/*
 * vmm/irq.h - interrupt plumbing that bypasses tern: MSI routes in KVM's GSI
 * routing table, irqfds that inject them, and ioeventfds that turn guest
 * doorbell writes into eventfd signals without an exit to user space.
 *
 * KVM_SET_GSI_ROUTING replaces the whole table, so struct irq_routes keeps
 * the full table (the default legacy routes for GSIs 0-23 plus every MSI
 * route) and commits it after each change.
 */
#ifndef TERN_VMM_IRQ_H
#define TERN_VMM_IRQ_H

#include <pthread.h>

#include "vmm/util.h"

#define IRQ_FIRST_MSI_GSI 24
#define IRQ_MAX_ROUTES 1024

struct kvm_irq_routing;

struct irq_routes {
	int vm_fd;
	pthread_mutex_t lock;           /* everything below */
	struct kvm_irq_routing *table;  /* IRQ_MAX_ROUTES entries allocated */
	uint32_t next_gsi;              /* next MSI GSI to hand out */
};

int irq_routes_init(struct irq_routes *r, int vm_fd, struct err *e);
void irq_routes_exit(struct irq_routes *r);
/* Allocates a GSI for an MSI (initially masked: address 0). */
int irq_msi_alloc(struct irq_routes *r, uint32_t *gsi);
/* Points gsi at (addr, data) and commits the table. */
int irq_msi_set(struct irq_routes *r, uint32_t gsi, uint64_t addr, uint32_t data);
/* Injects gsi whenever efd is signalled (KVM_IRQFD); assign=false undoes. */
int irq_irqfd(int vm_fd, int efd, uint32_t gsi, bool assign);
/* Signals efd on guest writes to [addr, addr+len) of MMIO space (len 0: any
 * length where KVM allows it, else 2); assign=false undoes. */
int irq_ioeventfd(int vm_fd, int efd, uint64_t addr, uint32_t len, bool assign);

#endif
