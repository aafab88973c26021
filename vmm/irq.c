/* SPDX-License-Identifier: MIT */
#include "vmm/irq.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static void add_irqchip(struct kvm_irq_routing *t, uint32_t gsi, uint32_t chip, uint32_t pin)
{
	t->entries[t->nr++] = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP, .u.irqchip = { .irqchip = chip, .pin = pin } };
}

static int commit(struct irq_routes *r)
{
	return ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, r->table) < 0 ? -errno : 0;
}

int irq_routes_init(struct irq_routes *r, int vm_fd, struct err *e)
{
	memset(r, 0, sizeof(*r));
	r->vm_fd = vm_fd;
	r->next_gsi = IRQ_FIRST_MSI_GSI;
	pthread_mutex_init(&r->lock, NULL);
	r->table = calloc(1, sizeof(*r->table) + IRQ_MAX_ROUTES * sizeof(r->table->entries[0]));
	if (!r->table)
		return err_set(e, -ENOMEM, "out of memory for the IRQ routing table");
	/* KVM's own default: ISA IRQs to both PICs and the IOAPIC, 16-23 to
	 * the IOAPIC only. Rebuilt here because setting routes replaces it. */
	for (uint32_t i = 0; i < 16; i++) {
		add_irqchip(r->table, i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, i % 8);
		add_irqchip(r->table, i, KVM_IRQCHIP_IOAPIC, i);
	}
	for (uint32_t i = 16; i < 24; i++)
		add_irqchip(r->table, i, KVM_IRQCHIP_IOAPIC, i);
	return 0;
}

void irq_routes_exit(struct irq_routes *r)
{
	free(r->table);
	r->table = NULL;
	pthread_mutex_destroy(&r->lock);
}

int irq_msi_alloc(struct irq_routes *r, uint32_t *gsi)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (r->table->nr == IRQ_MAX_ROUTES) {
		ret = -ENOSPC;
	} else {
		*gsi = r->next_gsi++;
		r->table->entries[r->table->nr++] = (struct kvm_irq_routing_entry){
			.gsi = *gsi, .type = KVM_IRQ_ROUTING_MSI };
		ret = commit(r);
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_msi_set(struct irq_routes *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < r->table->nr; i++) {
		struct kvm_irq_routing_entry *en = &r->table->entries[i];
		if (en->gsi != gsi || en->type != KVM_IRQ_ROUTING_MSI)
			continue;
		en->u.msi.address_lo = (uint32_t)addr;
		en->u.msi.address_hi = (uint32_t)(addr >> 32);
		en->u.msi.data = data;
		ret = commit(r);
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_irqfd(int vm_fd, int efd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd f = { .fd = (uint32_t)efd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(vm_fd, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

int irq_ioeventfd(int vm_fd, int efd, uint64_t addr, uint32_t len, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr, .len = len, .fd = efd, .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN };
	int r = ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;

	if (r == -EINVAL && len == 0) {
		io.len = 2; /* kernels without KVM_CAP_IOEVENTFD_ANY_LENGTH */
		r = ioctl(vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
	}
	return r;
}
