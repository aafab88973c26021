/* SPDX-License-Identifier: MIT */
/*
 * devices/acpi_pm.c - ACPI PM1a event/control blocks and reset register
 * (ACPI 6.5, 4.8.3). Register behaviour:
 *
 *   PM1_STS  16 bits, write 1 to clear. Nothing ever sets a bit, so it
 *            reads 0 unless the guest finds a reason to poll it.
 *   PM1_EN   16 bits, read/write storage (ACPICA checks that GBL_EN sticks).
 *   PM1_CNT  SCI_EN always reads 1 (no SMI command port: permanently in
 *            ACPI mode); SLP_EN is write-only. Writing SLP_EN with
 *            SLP_TYP = ACPI_SLP_TYP_S5 powers the machine off. Other sleep
 *            types are not advertised by the DSDT and are ignored.
 *   RESET    8 bits, write-only: ACPI_RESET_VALUE resets the machine.
 *
 * Accesses of any width are split into bytes, so a guest may use byte, word
 * or dword accesses as it pleases; SLP_EN and SLP_TYP share the control
 * register's high byte, so a byte-wise write still carries both at once.
 */
#include "devices/acpi_pm.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices/device.h"
#include "devices/pci.h"
#include "vmm/acpi.h"
#include "vmm/vm.h"

struct acpi_pm {
	struct bus_dev dev; /* ACPI_PM_PORT_LEN ports at ACPI_PM_PORT */
	void (*on_event)(struct acpi_pm *pm, enum acpi_pm_event ev, void *opaque);
	void *opaque;
	pthread_mutex_t lock; /* the registers below */
	uint16_t sts;
	uint16_t en;
	uint16_t cnt; /* SLP_TYP and the writable low bits; SLP_EN never stored */
};

/* The DSDT's PCI root bridge must describe the window devices/pci.c uses. */
_Static_assert(ACPI_PCI_MMIO_BASE == PCI_MMIO_BASE && ACPI_PCI_MMIO_END == PCI_MMIO_END,
	       "ACPI's PCI window differs from the PCI bus's");
_Static_assert(ACPI_PM1_EVT_OFF + ACPI_PM1_EVT_LEN <= ACPI_PM1_CNT_OFF, "PM1 blocks overlap");
_Static_assert(ACPI_PM1_CNT_OFF + ACPI_PM1_CNT_LEN <= ACPI_RESET_OFF, "PM1 control overlaps reset");
_Static_assert(ACPI_RESET_OFF < ACPI_PM_PORT_LEN, "reset register outside the port block");

static uint8_t byte_of(uint16_t v, unsigned i)
{
	return (uint8_t)(v >> (8 * i));
}

static uint16_t with_byte(uint16_t v, unsigned i, uint8_t b)
{
	return (uint16_t)((v & ~(0xffu << (8 * i))) | ((unsigned)b << (8 * i)));
}

/* Called with the lock held. */
static uint8_t pm_read_byte(struct acpi_pm *pm, uint64_t off)
{
	switch (off) {
	case ACPI_PM1_EVT_OFF:
	case ACPI_PM1_EVT_OFF + 1:
		return byte_of(pm->sts, (unsigned)(off - ACPI_PM1_EVT_OFF));
	case ACPI_PM1_EVT_OFF + 2:
	case ACPI_PM1_EVT_OFF + 3:
		return byte_of(pm->en, (unsigned)(off - ACPI_PM1_EVT_OFF - 2));
	case ACPI_PM1_CNT_OFF:
	case ACPI_PM1_CNT_OFF + 1:
		return byte_of(pm->cnt | ACPI_PM1_CNT_SCI_EN, (unsigned)(off - ACPI_PM1_CNT_OFF));
	default:
		return 0; /* reserved, and the write-only reset register */
	}
}

/* Called with the lock held; returns the event the write asks for, or 0. */
static enum acpi_pm_event pm_write_byte(struct acpi_pm *pm, uint64_t off, uint8_t v)
{
	switch (off) {
	case ACPI_PM1_EVT_OFF:
	case ACPI_PM1_EVT_OFF + 1:
		pm->sts &= (uint16_t)~((unsigned)v << (8 * (off - ACPI_PM1_EVT_OFF)));
		return 0;
	case ACPI_PM1_EVT_OFF + 2:
	case ACPI_PM1_EVT_OFF + 3:
		pm->en = with_byte(pm->en, (unsigned)(off - ACPI_PM1_EVT_OFF - 2), v);
		return 0;
	case ACPI_PM1_CNT_OFF:
	case ACPI_PM1_CNT_OFF + 1: {
		uint16_t cnt = with_byte(pm->cnt, (unsigned)(off - ACPI_PM1_CNT_OFF), v);
		unsigned typ = (cnt & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;

		pm->cnt = (uint16_t)(cnt & ~ACPI_PM1_CNT_SLP_EN);
		if ((cnt & ACPI_PM1_CNT_SLP_EN) && typ == ACPI_SLP_TYP_S5)
			return ACPI_PM_POWER_OFF;
		return 0;
	}
	case ACPI_RESET_OFF:
		return v == ACPI_RESET_VALUE ? ACPI_PM_RESET : 0;
	default:
		return 0;
	}
}

static void pm_read(struct bus_dev *dev, uint64_t off, void *data, unsigned len)
{
	struct acpi_pm *pm = container_of(dev, struct acpi_pm, dev);
	uint8_t *out = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++)
		out[i] = pm_read_byte(pm, off + i);
	pthread_mutex_unlock(&pm->lock);
}

static void pm_write(struct bus_dev *dev, uint64_t off, const void *data, unsigned len)
{
	struct acpi_pm *pm = container_of(dev, struct acpi_pm, dev);
	const uint8_t *in = data;
	enum acpi_pm_event ev = 0;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++) {
		enum acpi_pm_event r = pm_write_byte(pm, off + i, in[i]);
		if (r && !ev)
			ev = r;
	}
	pthread_mutex_unlock(&pm->lock);
	/* The callback may stop the VM: call it without the lock. */
	if (ev && pm->on_event)
		pm->on_event(pm, ev, pm->opaque);
}

static const struct bus_dev_ops acpi_pm_ops = { .read = pm_read, .write = pm_write };

struct acpi_pm *acpi_pm_new(void (*on_event)(struct acpi_pm *pm, enum acpi_pm_event ev, void *opaque),
			    void *opaque)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pm->dev = (struct bus_dev){ .ops = &acpi_pm_ops, .name = "acpi-pm" };
	pm->on_event = on_event;
	pm->opaque = opaque;
	pthread_mutex_init(&pm->lock, NULL);
	return pm;
}

void acpi_pm_free(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

struct bus_dev *acpi_pm_bus_dev(struct acpi_pm *pm)
{
	return &pm->dev;
}

static void acpi_pm_vm_event(struct acpi_pm *pm, enum acpi_pm_event ev, void *opaque)
{
	(void)pm;
	if (ev == ACPI_PM_POWER_OFF)
		vm_request_exit(opaque, VM_EXIT_OK, "guest powered off (ACPI S5)");
	else
		vm_request_exit(opaque, VM_EXIT_OK, "guest requested a reset (ACPI reset register)");
}

static int acpi_pm_dev_init(struct vm *vm, struct err *e)
{
	int r;

	vm->acpi_pm = acpi_pm_new(acpi_pm_vm_event, vm);
	if (!vm->acpi_pm)
		return err_set(e, -ENOMEM, "out of memory for the ACPI PM device");
	r = bus_register(&vm->pio, ACPI_PM_PORT, ACPI_PM_PORT_LEN, &vm->acpi_pm->dev);
	if (r < 0)
		return err_errno(e, r, "cannot place the ACPI PM device at 0x%x", ACPI_PM_PORT);
	return 0;
}

static void acpi_pm_dev_exit(struct vm *vm)
{
	acpi_pm_free(vm->acpi_pm);
	vm->acpi_pm = NULL;
}

const struct device_type acpi_pm_device_type = {
	.name = "acpi-pm",
	.init = acpi_pm_dev_init,
	.exit = acpi_pm_dev_exit,
};
