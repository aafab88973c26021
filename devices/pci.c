/* SPDX-License-Identifier: MIT */
/*
 * devices/pci.c - configuration mechanism #1 and BAR dispatch. Register
 * layout from the PCI Local Bus Specification 3.0, chapter 6.
 */
#include "devices/pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "vmm/vm.h"

#define CF8_ENABLE 0x80000000u
#define CFG_PORT 0xcf8
#define HEADER_END 0x40

static struct pci_dev *cf8_target(struct pci_bus *b, unsigned *reg)
{
	uint32_t a = b->cf8;

	if (!(a & CF8_ENABLE) || ((a >> 16) & 0xff) != 0 || ((a >> 8) & 0x7) != 0)
		return NULL; /* bus 0, function 0 only */
	*reg = a & 0xfc;
	return b->slots[(a >> 11) & 0x1f];
}

static uint64_t bar_raw_addr(const struct pci_dev *d, unsigned bar)
{
	uint64_t lo = pci_cfg_get32(d, PCI_BAR0 + 4 * bar) & ~0xfull;
	bool is64 = (d->cfg[PCI_BAR0 + 4 * bar] & 0x6) == 0x4;

	return is64 ? lo | ((uint64_t)pci_cfg_get32(d, PCI_BAR0 + 4 * bar + 4) << 32) : lo;
}

/* Recomputes decoded BAR addresses after a config write; tells the device. */
static void update_bars(struct pci_dev *d)
{
	bool decode = pci_cfg_get16(d, PCI_COMMAND) & PCI_COMMAND_MEMORY;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		if (!d->bar_size[i])
			continue;
		uint64_t a = decode ? bar_raw_addr(d, i) : 0;
		/* an address the guest is sizing with, or outside the window,
		 * decodes nothing: accesses there stay unclaimed */
		if (a < PCI_MMIO_BASE || a + d->bar_size[i] > PCI_MMIO_END)
			a = 0;
		if (a != d->bar_addr[i]) {
			uint64_t old = d->bar_addr[i];
			d->bar_addr[i] = a;
			if (d->ops && d->ops->bar_moved)
				d->ops->bar_moved(d, i, old, a);
		}
	}
}

static void cfg_data_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	struct pci_bus *b = container_of(dev, struct pci_bus, cfg_dev);
	uint8_t *out = data;
	unsigned reg = 0;

	pthread_rwlock_rdlock(&b->lock);
	if (off < 4) {
		uint32_t v = b->cf8;
		memset(data, 0xff, len);
		memcpy(data, (uint8_t *)&v + off, len <= 4 - off ? len : 4 - off);
	} else {
		struct pci_dev *d = cf8_target(b, &reg);
		for (unsigned i = 0; i < len; i++) {
			unsigned o = reg + (unsigned)(off - 4) + i;
			out[i] = d && o < PCI_CFG_SIZE ? d->cfg[o] : 0xff;
		}
	}
	pthread_rwlock_unlock(&b->lock);
}

static void cfg_data_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct pci_bus *b = container_of(dev, struct pci_bus, cfg_dev);
	const uint8_t *in = data;
	unsigned reg = 0, first = PCI_CFG_SIZE, last = 0;
	struct pci_dev *d;

	pthread_rwlock_wrlock(&b->lock);
	if (off == 0 && len == 4) {
		memcpy(&b->cf8, data, 4);
		goto out;
	}
	if (off < 4)
		goto out; /* partial CONFIG_ADDRESS writes are not config cycles */
	d = cf8_target(b, &reg);
	if (!d)
		goto out;
	for (unsigned i = 0; i < len; i++) {
		unsigned o = reg + (unsigned)(off - 4) + i;
		if (o >= PCI_CFG_SIZE)
			break;
		d->cfg[o] = (uint8_t)((d->cfg[o] & ~d->wmask[o]) | (in[i] & d->wmask[o]));
		first = o < first ? o : first;
		last = o + 1;
	}
	if (first < HEADER_END)
		update_bars(d);
	if (last > HEADER_END && d->ops && d->ops->cfg_written) {
		unsigned s = first < HEADER_END ? HEADER_END : first;
		d->ops->cfg_written(d, s, last - s);
	}
out:
	pthread_rwlock_unlock(&b->lock);
}

static struct pci_dev *bar_lookup(struct pci_bus *b, uint64_t addr, unsigned len, unsigned *bar, uint64_t *off)
{
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = b->slots[s];
		for (unsigned i = 0; d && i < PCI_NUM_BARS; i++) {
			uint64_t a = d->bar_addr[i];
			if (a && addr >= a && addr - a < d->bar_size[i] && len <= d->bar_size[i] - (addr - a)) {
				*bar = i;
				*off = addr - a;
				return d;
			}
		}
	}
	return NULL;
}

static void window_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	struct pci_bus *b = container_of(dev, struct pci_bus, mmio_dev);
	unsigned bar;
	uint64_t boff;

	pthread_rwlock_rdlock(&b->lock);
	struct pci_dev *d = bar_lookup(b, PCI_MMIO_BASE + off, len, &bar, &boff);
	if (d && d->ops->bar_read)
		d->ops->bar_read(d, bar, boff, data, len);
	else
		memset(data, 0xff, len);
	pthread_rwlock_unlock(&b->lock);
}

static void window_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct pci_bus *b = container_of(dev, struct pci_bus, mmio_dev);
	unsigned bar;
	uint64_t boff;

	pthread_rwlock_rdlock(&b->lock);
	struct pci_dev *d = bar_lookup(b, PCI_MMIO_BASE + off, len, &bar, &boff);
	if (d && d->ops->bar_write)
		d->ops->bar_write(d, bar, boff, data, len);
	pthread_rwlock_unlock(&b->lock);
}

static const struct bus_dev_ops cfg_ops = { .read = cfg_data_read, .write = cfg_data_write };
static const struct bus_dev_ops window_ops = { .read = window_read, .write = window_write };

void pci_dev_init(struct pci_dev *d, const struct pci_dev_ops *ops, const char *name, uint16_t vendor,
		  uint16_t device, uint32_t class_rev, uint16_t subsys_vendor, uint16_t subsys)
{
	memset(d->cfg, 0, sizeof(d->cfg));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->bar_size, 0, sizeof(d->bar_size));
	memset(d->bar_addr, 0, sizeof(d->bar_addr));
	d->ops = ops;
	d->name = name;
	d->cap_end = HEADER_END;
	pci_cfg_set16(d, PCI_VENDOR_ID, vendor);
	pci_cfg_set16(d, PCI_DEVICE_ID, device);
	pci_cfg_set32(d, PCI_CLASS_REVISION, class_rev);
	pci_cfg_set16(d, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	pci_cfg_set16(d, PCI_SUBSYSTEM_ID, subsys);
	/* memory space, bus master, INTx disable are the guest's to set */
	d->wmask[PCI_COMMAND] = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	d->wmask[PCI_COMMAND + 1] = 0x04;
	d->wmask[0x3c] = 0xff; /* interrupt line: scratch for the OS */
}

void pci_dev_add_bar(struct pci_dev *d, unsigned bar, uint64_t size, bool is64)
{
	d->bar_size[bar] = size;
	uint64_t mask = ~(size - 1);
	for (unsigned i = 0; i < (is64 ? 8u : 4u); i++)
		d->wmask[PCI_BAR0 + 4 * bar + i] = (uint8_t)(mask >> (8 * i));
	d->wmask[PCI_BAR0 + 4 * bar] &= 0xf0;
	d->cfg[PCI_BAR0 + 4 * bar] = is64 ? 0x4 : 0x0; /* memory, 32/64-bit, not prefetchable */
}

unsigned pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len)
{
	unsigned off = (d->cap_end + 3u) & ~3u;

	if (off + len > PCI_CFG_SIZE)
		return 0;
	d->cfg[off] = id;
	d->cfg[off + 1] = d->cfg[PCI_CAPABILITY_LIST]; /* push on the list head */
	d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
	pci_cfg_set16(d, PCI_STATUS, pci_cfg_get16(d, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	d->cap_end = (uint8_t)(off + len);
	return off;
}

int pci_register(struct pci_bus *b, struct pci_dev *d, struct err *e)
{
	unsigned slot;

	for (slot = 0; slot < PCI_MAX_SLOTS && b->slots[slot]; slot++)
		;
	if (slot == PCI_MAX_SLOTS)
		return err_set(e, -ENOSPC, "PCI bus full: no slot for %s", d->name);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		uint64_t size = d->bar_size[i];
		if (!size)
			continue;
		uint64_t a = (b->next_mmio + size - 1) & ~(size - 1);
		if (a + size > PCI_MMIO_END)
			return err_set(e, -ENOSPC, "PCI MMIO window full: no room for %s BAR %u", d->name, i);
		b->next_mmio = a + size;
		pci_cfg_set32(d, PCI_BAR0 + 4 * i, (uint32_t)a | (d->cfg[PCI_BAR0 + 4 * i] & 0xf));
		if ((d->cfg[PCI_BAR0 + 4 * i] & 0x6) == 0x4)
			pci_cfg_set32(d, PCI_BAR0 + 4 * i + 4, (uint32_t)(a >> 32));
	}
	d->slot = slot;
	d->bus = b;
	pthread_rwlock_wrlock(&b->lock);
	b->slots[slot] = d;
	pthread_rwlock_unlock(&b->lock);
	return 0;
}

void pci_dev_load_config(struct pci_dev *d, const uint8_t cfg[PCI_CFG_SIZE])
{
	pthread_rwlock_wrlock(&d->bus->lock);
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		d->cfg[i] = (uint8_t)((d->cfg[i] & ~d->wmask[i]) | (cfg[i] & d->wmask[i]));
	update_bars(d);
	pthread_rwlock_unlock(&d->bus->lock);
}

int pci_bus_init(struct pci_bus *b, struct bus *pio, struct bus *mmio, struct err *e)
{
	int r;

	memset(b, 0, sizeof(*b));
	pthread_rwlock_init(&b->lock, NULL);
	b->next_mmio = PCI_MMIO_BASE;
	b->cfg_dev = (struct bus_dev){ .ops = &cfg_ops, .name = "pci-cfg" };
	b->mmio_dev = (struct bus_dev){ .ops = &window_ops, .name = "pci-mmio" };
	/* 00.0: a host bridge, which Linux's type-1 sanity check looks for
	 * (ids as Cloud Hypervisor's and Firecracker's host bridges use). */
	pci_dev_init(&b->host_bridge, NULL, "host-bridge", 0x8086, 0x0d57, 0x06000000, 0, 0);
	b->host_bridge.wmask[PCI_COMMAND] = 0;
	b->slots[0] = &b->host_bridge;
	r = bus_register(pio, CFG_PORT, 8, &b->cfg_dev);
	if (r == 0)
		r = bus_register(mmio, PCI_MMIO_BASE, PCI_MMIO_END - PCI_MMIO_BASE, &b->mmio_dev);
	if (r < 0)
		return err_errno(e, r, "cannot place the PCI host bridge");
	return 0;
}

void pci_bus_exit(struct pci_bus *b)
{
	pthread_rwlock_destroy(&b->lock);
}

static int pci_dev_type_init(struct vm *vm, struct err *e)
{
	vm->pci = calloc(1, sizeof(*vm->pci));
	if (!vm->pci)
		return err_set(e, -ENOMEM, "out of memory for the PCI bus");
	return pci_bus_init(vm->pci, &vm->pio, &vm->mmio, e);
}

static void pci_dev_type_exit(struct vm *vm)
{
	if (!vm->pci)
		return;
	pci_bus_exit(vm->pci);
	free(vm->pci);
	vm->pci = NULL;
}

const struct device_type pci_device_type = {
	.name = "pci",
	.init = pci_dev_type_init,
	.exit = pci_dev_type_exit,
};
