/* SPDX-License-Identifier: MIT */
/*
 * devices/net_announce.c - VIRTIO_NET_S_ANNOUNCE emulated by tern, and the
 * watch on the control queue that sees the guest acknowledge it (see the
 * header for why and how).
 */
#include "devices/net_announce.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio_pci.h"
#include "vdpa/cvq.h"
#include "vdpa/vdpa.h"
#include "vmm/vm.h"

#define NET_CFG_STATUS 6      /* le16 status in virtio-net config space */
#define NET_S_ANNOUNCE 0x0002

int net_announce_init(struct net_announce *a, struct vm *vm, struct err *e)
{
	const struct guest_mem *m = &vm->mem;
	int r;

	memset(a, 0, sizeof(*a));
	a->guest_kick = a->dev_kick = a->stop_fd = -1;
	r = iotlb_init(&a->ram);
	for (unsigned i = 0; r == 0 && i < m->nr_regions; i++)
		r = iotlb_map(&a->ram, m->regions[i].gpa, m->regions[i].size, m->hva + m->regions[i].offset,
			      VDPA_PERM_RW);
	if (r < 0)
		return err_errno(e, r, "guest memory map for the control-queue watch");
	a->dev_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->dev_kick < 0 || a->stop_fd < 0)
		return err_errno(e, -errno, "eventfd for the control-queue watch");
	return 0;
}

void net_announce_exit(struct net_announce *a)
{
	net_announce_unwatch(a);
	iotlb_exit(&a->ram);
	if (a->dev_kick >= 0)
		close(a->dev_kick);
	if (a->stop_fd >= 0)
		close(a->stop_fd);
	a->dev_kick = a->stop_fd = -1;
}

/* Reads every command the guest made available since the last look. A
 * malformed ring ends the reading for good: the device sees the same ring
 * and reports NEEDS_RESET; tern keeps forwarding kicks. */
static void scan(struct net_announce *a, bool *broken)
{
	struct vring_chain c;
	int r;

	while (!*broken && (r = vring_dev_pop(&a->cvq, &c)) == 1) {
		uint8_t hdr[2];
		if (vring_chain_read(&c, &a->ram, 0, hdr, sizeof(hdr)) == sizeof(hdr) && hdr[0] == CVQ_ANNOUNCE &&
		    hdr[1] == CVQ_ANNOUNCE_ACK && atomic_exchange(&a->pending, false))
			atomic_fetch_add(&a->acks, 1);
	}
	if (r < 0)
		*broken = true;
}

static void *watch_thread(void *arg)
{
	struct net_announce *a = arg;
	bool broken = false;
	uint64_t v = 1;

	for (;;) {
		struct pollfd p[2] = { { .fd = a->guest_kick, .events = POLLIN }, { .fd = a->stop_fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		if (read(a->guest_kick, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		scan(a, &broken);
		v = 1;
		/* the device may look at the ring only after we have read it */
		if (write(a->dev_kick, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
	}
	return NULL;
}

int net_announce_watch(struct net_announce *a, const struct virtio_pci_queue *q, uint16_t last_avail,
		       int *dev_kick)
{
	uint64_t drain;
	int r;

	net_announce_unwatch(a);
	/* a read-only view: no EVENT_IDX, so reading never writes the ring */
	a->cvq = (struct vring_dev){ .num = q->size, .desc_iova = q->desc, .avail_iova = q->driver,
				     .used_iova = q->device, .last_avail = last_avail };
	r = vring_dev_attach(&a->cvq, &a->ram, &a->ram);
	if (r < 0)
		return r;
	a->guest_kick = q->kick_fd;
	while (read(a->stop_fd, &drain, sizeof(drain)) > 0)
		;
	r = -pthread_create(&a->thread, NULL, watch_thread, a);
	if (r < 0)
		return r;
	a->watching = true;
	*dev_kick = a->dev_kick;
	return 0;
}

void net_announce_unwatch(struct net_announce *a)
{
	uint64_t one = 1;

	atomic_store(&a->pending, false);
	if (!a->watching)
		return;
	if (write(a->stop_fd, &one, sizeof(one)) < 0)
		pr_warn("control-queue watch: cannot stop: %s", strerror(errno));
	pthread_join(a->thread, NULL);
	a->watching = false;
}

void net_announce_request(struct net_announce *a)
{
	if (a->watching || a->shadowed)
		atomic_store(&a->pending, true);
}

void net_announce_acked(void *opaque)
{
	struct net_announce *a = opaque;

	if (atomic_exchange(&a->pending, false))
		atomic_fetch_add(&a->acks, 1);
}

void net_announce_config(const struct net_announce *a, unsigned off, void *buf, unsigned len)
{
	/* the low byte of the little-endian status holds S_ANNOUNCE */
	if (atomic_load(&a->pending) && off <= NET_CFG_STATUS && NET_CFG_STATUS < off + len)
		((uint8_t *)buf)[NET_CFG_STATUS - off] |= NET_S_ANNOUNCE;
}
