/* SPDX-License-Identifier: MIT */
/*
 * firmware/virtio_net.c - polling virtio-net driver over virtio-pci modern
 * (see virtio_net.h for the contracts). Runs at CPL3: the BARs are MMIO in
 * the user-accessible identity map, rings and buffers are ordinary RAM.
 *
 * Memory ordering. Rings live in write-back RAM that the device reads and
 * writes concurrently (another host thread). x86 keeps stores in program
 * order and loads in program order (TSO), so publishing needs only a compiler
 * barrier (vnet_wmb) and consuming likewise (vnet_rmb). The one reordering
 * x86 does - a later load passing an earlier store - matters where we store
 * avail->idx and then load used->flags to decide whether to notify: that
 * takes a full fence (vnet_mb).
 */
#include "lib.h"
#include "virtio_net.h"

/* Compiler barrier: gcc may otherwise move ordinary ring stores across the
 * volatile index store or an MMIO write. The CPU keeps store order (TSO). */
#define vnet_wmb() __asm__ volatile("" ::: "memory")
/* Compiler barrier: read the used ring entry only after used->idx; the CPU
 * does not reorder loads with older loads. */
#define vnet_rmb() __asm__ volatile("" ::: "memory")
/* Full fence: orders the avail->idx store before the used->flags load. */
#define vnet_mb() __asm__ volatile("mfence" ::: "memory")

/* virtio_pci_common_cfg offsets. */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX_CONFIG 0x10
#define CC_NUM_QUEUES 0x12
#define CC_STATUS 0x14
#define CC_GENERATION 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOTIFY_OFF 0x1e
#define CC_Q_DESC 0x20
#define CC_Q_AVAIL 0x28
#define CC_Q_USED 0x30
#define CC_MIN_LEN 0x38

/* virtio_pci_cap: cfg_type values and field offsets. */
#define VPCI_CAP_COMMON 1
#define VPCI_CAP_NOTIFY 2
#define VPCI_CAP_ISR 3
#define VPCI_CAP_DEVICE 4
#define VPCI_CAP_LEN 2
#define VPCI_CAP_TYPE 3
#define VPCI_CAP_BAR 4
#define VPCI_CAP_OFFSET 8
#define VPCI_CAP_LENGTH 12
#define VPCI_CAP_NOTIFY_MULT 16

#define VIRTIO_MSI_NO_VECTOR 0xffff

/* virtio_net_config offsets. */
#define NETCFG_MAC 0
#define NETCFG_STATUS 6
#define NETCFG_MAX_PAIRS 8

#define CMD_HDR 0
#define CMD_DATA 64
#define CMD_DATA_MAX 3072
#define CMD_ACK 4000

static const uint8_t default_mac[6] = { 0x02, 0x74, 0x65, 0x72, 0x6e, 0x01 }; /* local "tern" */

/* ---- memory --------------------------------------------------------------- */

static uint64_t mem_next, mem_end;

void vnet_mem_init(uint64_t start, uint64_t end)
{
	mem_next = start;
	mem_end = end;
}

/* Page-aligned, never freed (a run brings the device up a few times at
 * most). NULL when the RAM given to vnet_mem_init() is used up. */
void *vnet_mem_alloc(uint64_t n)
{
	uint64_t a = (mem_next + 4095) & ~4095ull;

	if (a < mem_next || a > mem_end || n > mem_end - a)
		return NULL;
	mem_next = a + n;
	return (void *)(uintptr_t)a;
}

/* ---- transport ------------------------------------------------------------ */

static int fail(struct vnet *v, const char *why)
{
	v->error = why;
	return -1;
}

static void dev_error(struct vnet *v, const char *why)
{
	v->dev_errors++;
	v->error = why;
}

uint8_t vnet_status(const struct vnet *v)
{
	return mmio_read8(v->common + CC_STATUS);
}

void vnet_set_status(struct vnet *v, uint8_t bits)
{
	mmio_write8(v->common + CC_STATUS, (uint8_t)(vnet_status(v) | bits));
}

void vnet_reset(struct vnet *v)
{
	struct timeout t;

	mmio_write8(v->common + CC_STATUS, 0);
	/* The reset is complete when status reads back 0. */
	timeout_start(&t, 2);
	while (vnet_status(v) && !timeout_expired(&t))
		cpu_relax();
	/* The rings are forgotten; their memory is not reused. */
	for (unsigned i = 0; i < VNET_MAX_PAIRS; i++)
		v->rx[i].size = v->tx[i].size = 0;
	v->cvq.size = 0;
	v->pairs = 0;
}

static uint64_t read_features(struct vnet *v)
{
	mmio_write32(v->common + CC_DFSELECT, 0);
	uint64_t lo = mmio_read32(v->common + CC_DF);
	mmio_write32(v->common + CC_DFSELECT, 1);
	uint64_t hi = mmio_read32(v->common + CC_DF);
	return lo | hi << 32;
}

/* Reads MAC and max_pairs under the config generation counter. */
static void read_config(struct vnet *v)
{
	for (int tries = 0; tries < 16; tries++) {
		uint8_t gen = mmio_read8(v->common + CC_GENERATION);

		memcpy(v->mac, default_mac, 6);
		if ((v->dev_features & VBIT(VIRTIO_NET_F_MAC)) && v->devcfg_len >= 6)
			for (unsigned i = 0; i < 6; i++)
				v->mac[i] = mmio_read8(v->devcfg + NETCFG_MAC + i);
		v->max_pairs = 1;
		if ((v->dev_features & VBIT(VIRTIO_NET_F_MQ)) && v->devcfg_len >= 10)
			v->max_pairs = mmio_read16(v->devcfg + NETCFG_MAX_PAIRS);
		if (gen == mmio_read8(v->common + CC_GENERATION))
			break;
	}
}

uint16_t vnet_link_status(const struct vnet *v)
{
	if (!(v->features & VBIT(VIRTIO_NET_F_STATUS)) || v->devcfg_len < 8)
		return 0;
	return mmio_read16(v->devcfg + NETCFG_STATUS);
}

int vnet_probe_device(struct vnet *v, uint16_t device, unsigned index, int reassign)
{
	memset(v, 0, sizeof(*v));
	if (pci_find(VIRTIO_PCI_VENDOR, device, index, &v->pci) < 0)
		return fail(v, device == VIRTIO_PCI_DEVICE_NET ? "no virtio-net-pci (1af4:1041) on bus 0"
							       : "no such virtio-pci device on bus 0");
	if (pci_enable(&v->pci, reassign) < 0)
		return fail(v, "cannot assign a BAR");
	for (unsigned cap = 0; (cap = pci_find_cap(&v->pci, PCI_CAP_ID_VNDR, cap));) {
		uint8_t type = pci_read8(&v->pci, cap + VPCI_CAP_TYPE);
		uint8_t bar = pci_read8(&v->pci, cap + VPCI_CAP_BAR);
		uint8_t clen = pci_read8(&v->pci, cap + VPCI_CAP_LEN);
		if (bar > 5 || clen < 16)
			continue;
		const struct pci_bar *b = &v->pci.bar[bar];
		uint32_t off = pci_read32(&v->pci, cap + VPCI_CAP_OFFSET);
		uint32_t len = pci_read32(&v->pci, cap + VPCI_CAP_LENGTH);
		/* The region must lie inside a memory BAR we can reach. */
		if (b->is_io || !b->addr || (uint64_t)off + len > b->size)
			continue;
		uint64_t gpa = b->addr + off;
		if (type == VPCI_CAP_COMMON && !v->common && len >= CC_MIN_LEN) {
			v->common = gpa;
		} else if (type == VPCI_CAP_NOTIFY && !v->notify_base && clen >= 20 && len >= 2) {
			v->notify_base = gpa;
			v->notify_len = len;
			v->notify_mult = pci_read32(&v->pci, cap + VPCI_CAP_NOTIFY_MULT);
		} else if (type == VPCI_CAP_ISR && !v->isr && len >= 1) {
			v->isr = gpa;
		} else if (type == VPCI_CAP_DEVICE && !v->devcfg) {
			v->devcfg = gpa;
			v->devcfg_len = len;
		}
	}
	if (!v->common || !v->notify_base)
		return fail(v, "no usable common/notify capability");
	vnet_reset(v);
	if (vnet_status(v))
		return fail(v, "device does not reset");
	v->dev_features = read_features(v);
	v->num_queues = mmio_read16(v->common + CC_NUM_QUEUES);
	if (device == VIRTIO_PCI_DEVICE_NET)
		read_config(v);
	return 0;
}

int vnet_probe(struct vnet *v, unsigned index, int reassign)
{
	return vnet_probe_device(v, VIRTIO_PCI_DEVICE_NET, index, reassign);
}

int vnet_write_features(struct vnet *v, uint64_t features)
{
	v->features = features;
	mmio_write32(v->common + CC_GFSELECT, 0);
	mmio_write32(v->common + CC_GF, (uint32_t)features);
	mmio_write32(v->common + CC_GFSELECT, 1);
	mmio_write32(v->common + CC_GF, (uint32_t)(features >> 32));
	vnet_set_status(v, VIRTIO_STATUS_FEATURES_OK);
	if (!(vnet_status(v) & VIRTIO_STATUS_FEATURES_OK)) {
		vnet_set_status(v, VIRTIO_STATUS_FAILED);
		return fail(v, "device rejected the features (FEATURES_OK clear)");
	}
	mmio_write16(v->common + CC_MSIX_CONFIG, VIRTIO_MSI_NO_VECTOR);
	return 0;
}

void vnet_notify(struct vnet *v, struct vq *q)
{
	vnet_wmb(); /* ring stores before the doorbell (the CPU keeps order) */
	mmio_write16(q->notify, q->index);
	q->kicks++;
	(void)v;
}

static void mmio_write64_split(uint64_t gpa, uint64_t val)
{
	/* 64-bit common cfg fields as two 32-bit halves, as the spec allows:
	 * not every transport implements 8-byte accesses. */
	mmio_write32(gpa, (uint32_t)val);
	mmio_write32(gpa + 4, (uint32_t)(val >> 32));
}

/* Sets up virtqueue "index" into q; bufs: allocate a 2048-byte buffer per
 * descriptor. Leaves it enabled but with nothing posted. */
int vnet_vq_setup(struct vnet *v, struct vq *q, uint16_t index, int bufs)
{
	memset(q, 0, sizeof(*q));
	if (index >= v->num_queues)
		return fail(v, "device has too few virtqueues");
	mmio_write16(v->common + CC_Q_SELECT, index);
	uint16_t max = mmio_read16(v->common + CC_Q_SIZE);
	if (!max)
		return fail(v, "virtqueue not available");
	uint16_t size = VNET_MAX_QSIZE;
	while (size > max) /* split rings need a power of two */
		size >>= 1;
	mmio_write16(v->common + CC_Q_SIZE, size);

	/* One page each: 256 descriptors are 4096 bytes, the used ring 2054. */
	q->desc = vnet_mem_alloc(4096);
	q->avail = vnet_mem_alloc(4096);
	q->used = vnet_mem_alloc(4096);
	q->bufs = bufs ? vnet_mem_alloc((uint64_t)size * VNET_BUF_LEN) : NULL;
	if (!q->desc || !q->avail || !q->used || (bufs && !q->bufs))
		return fail(v, "out of guest memory for rings");
	memset(q->desc, 0, 4096);
	memset(q->avail, 0, 4096);
	memset((void *)q->used, 0, 4096);
	q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT; /* we poll */
	q->index = index;
	q->size = size;
	for (uint16_t i = 0; i < size; i++)
		q->free[i] = (uint16_t)(size - 1 - i);
	q->nfree = size;

	uint32_t noff = mmio_read16(v->common + CC_Q_NOTIFY_OFF);
	uint64_t off = (uint64_t)noff * v->notify_mult;
	if (off + 2 > v->notify_len)
		return fail(v, "queue notify address outside the notify region");
	q->notify = v->notify_base + off;

	mmio_write16(v->common + CC_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	mmio_write64_split(v->common + CC_Q_DESC, (uint64_t)(uintptr_t)q->desc);
	mmio_write64_split(v->common + CC_Q_AVAIL, (uint64_t)(uintptr_t)q->avail);
	mmio_write64_split(v->common + CC_Q_USED, (uint64_t)(uintptr_t)q->used);
	vnet_wmb(); /* zeroed rings and avail->flags before the device may look */
	mmio_write16(v->common + CC_Q_ENABLE, 1);
	return 0;
}

/* Makes queued avail entries visible and notifies unless the device said it
 * does not need it. */
void vnet_vq_publish(struct vnet *v, struct vq *q)
{
	if (q->avail_idx == q->published)
		return;
	vnet_wmb(); /* descriptors and avail->ring[] before avail->idx */
	*(volatile uint16_t *)&q->avail->idx = q->avail_idx;
	q->published = q->avail_idx;
	/* StoreLoad: without it the used->flags load may complete before the
	 * idx store is visible; a device that cleared NO_NOTIFY and then
	 * re-checked avail->idx could miss both the entries and our kick. */
	vnet_mb();
	if (!(q->used->flags & VRING_USED_F_NO_NOTIFY))
		vnet_notify(v, q);
}

void vnet_vq_push(struct vq *q, uint16_t head, uint16_t ndesc)
{
	q->busy[head] = 1;
	q->chain[head] = ndesc;
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	q->avail_idx++;
}

/* Takes the next used entry after validating it against what we handed
 * out: 1 with *id and *len, 0 if none. Bad entries are counted and skipped. */
int vnet_vq_pop(struct vnet *v, struct vq *q, uint32_t max_len, uint16_t *id, uint32_t *len)
{
	for (;;) {
		uint16_t used_idx = *(volatile uint16_t *)&q->used->idx;
		uint16_t pending = (uint16_t)(used_idx - q->last_used);

		if (!pending || !q->size)
			return 0;
		if (pending > q->size) {
			/* More completions than descriptors: nothing in the
			 * ring can be trusted; stop consuming this queue. */
			dev_error(v, "used->idx ran ahead of the ring");
			q->size = 0;
			return 0;
		}
		vnet_rmb(); /* the entry is valid only once idx covers it */
		struct vring_used_elem e = q->used->ring[q->last_used & (q->size - 1)];
		q->last_used++;
		if (e.id >= q->size || !q->busy[e.id]) {
			dev_error(v, "used id out of range or not outstanding");
			continue;
		}
		q->busy[e.id] = 0;
		if (e.len > max_len) {
			dev_error(v, "used len beyond the buffer");
			e.len = UINT32_MAX; /* caller recycles the buffer */
		}
		*id = (uint16_t)e.id;
		*len = e.len;
		return 1;
	}
}

/* Posts RX descriptor id (bound to buffer id for the queue's life). */
static void rx_post(struct vq *q, uint16_t id)
{
	q->desc[id] = (struct vring_desc){
		.addr = (uint64_t)(uintptr_t)(q->bufs + (uint64_t)id * VNET_BUF_LEN),
		.len = VNET_BUF_LEN,
		.flags = VRING_DESC_F_WRITE,
	};
	vnet_vq_push(q, id, 1);
}

int vnet_up(struct vnet *v, unsigned pairs, int want_cvq)
{
	int cvq = want_cvq || pairs > 1;
	uint64_t want = VBIT(VIRTIO_F_VERSION_1) | VBIT(VIRTIO_NET_F_MAC) | VBIT(VIRTIO_NET_F_STATUS) |
			VBIT(VIRTIO_F_ACCESS_PLATFORM) | VBIT(VIRTIO_F_ORDER_PLATFORM);

	vnet_reset(v);
	if (!(v->dev_features & VBIT(VIRTIO_F_VERSION_1)))
		return fail(v, "device does not offer VERSION_1");
	if ((v->dev_features & VBIT(VIRTIO_NET_F_MQ)) && (v->max_pairs < 1 || v->max_pairs > 0x8000))
		return fail(v, "max_virtqueue_pairs outside 1..0x8000");
	if (pairs < 1 || pairs > VNET_MAX_PAIRS || pairs > v->max_pairs)
		return fail(v, "more queue pairs asked for than available");
	if (cvq) {
		if (!(v->dev_features & VBIT(VIRTIO_NET_F_CTRL_VQ)))
			return fail(v, "device offers no control virtqueue");
		if (pairs > 1 && !(v->dev_features & VBIT(VIRTIO_NET_F_MQ)))
			return fail(v, "device does not offer MQ");
		want |= VBIT(VIRTIO_NET_F_CTRL_VQ) | VBIT(VIRTIO_NET_F_MQ) | VBIT(VIRTIO_NET_F_CTRL_RX) |
			VBIT(VIRTIO_NET_F_CTRL_VLAN) | VBIT(VIRTIO_NET_F_CTRL_MAC_ADDR) | VBIT(VIRTIO_NET_F_CTRL_RX_EXTRA) |
			VBIT(VIRTIO_NET_F_GUEST_ANNOUNCE) | VBIT(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS) | v->want_extra;
	}
	vnet_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
	vnet_set_status(v, VIRTIO_STATUS_DRIVER);
	v->hdr_len = (v->dev_features & want & VBIT(VIRTIO_NET_F_HASH_REPORT)) ? VNET_HDR_HASH_LEN : VNET_HDR_LEN;
	if (vnet_write_features(v, v->dev_features & want) < 0)
		return -1;

	for (unsigned i = 0; i < pairs; i++) {
		if (vnet_vq_setup(v, &v->rx[i], (uint16_t)(2 * i), 1) < 0 ||
		    vnet_vq_setup(v, &v->tx[i], (uint16_t)(2 * i + 1), 1) < 0)
			goto failed;
		for (uint16_t d = 0; d < v->rx[i].size; d++)
			rx_post(&v->rx[i], d);
		v->rx[i].nfree = 0;
	}
	if (cvq) {
		/* The control queue follows all max_pairs pairs when MQ is on. */
		uint16_t idx = (v->features & VBIT(VIRTIO_NET_F_MQ)) ? (uint16_t)(2 * v->max_pairs) : 2;
		if (vnet_vq_setup(v, &v->cvq, idx, 0) < 0)
			goto failed;
		if (v->cvq.size < 4) {
			fail(v, "control virtqueue too small");
			goto failed;
		}
		if (!v->cmd && !(v->cmd = vnet_mem_alloc(4096))) {
			fail(v, "out of guest memory for commands");
			goto failed;
		}
	}
	v->pairs = (uint16_t)pairs;
	vnet_set_status(v, VIRTIO_STATUS_DRIVER_OK);
	/* Notifying is allowed only now; RX entries were published before. */
	for (unsigned i = 0; i < pairs; i++)
		vnet_vq_publish(v, &v->rx[i]);
	if (vnet_status(v) & VIRTIO_STATUS_NEEDS_RESET)
		return fail(v, "device needs reset right after DRIVER_OK");
	return 0;
failed:
	vnet_set_status(v, VIRTIO_STATUS_FAILED);
	return -1;
}

/* ---- data path ------------------------------------------------------------ */

uint8_t *vnet_tx_alloc(struct vnet *v, unsigned qn, uint16_t *id)
{
	struct vq *q = &v->tx[qn];

	if (qn >= v->pairs || !q->size || !q->nfree)
		return NULL;
	*id = q->free[--q->nfree];
	return q->bufs + (uint64_t)*id * VNET_BUF_LEN + v->hdr_len;
}

void vnet_tx_submit(struct vnet *v, unsigned qn, uint16_t id, size_t len)
{
	struct vq *q = &v->tx[qn];
	uint8_t *buf = q->bufs + (uint64_t)id * VNET_BUF_LEN;

	/* No offloads: flags 0, GSO_NONE, num_buffers 0 (unused on TX). */
	memset(buf, 0, v->hdr_len);
	q->desc[id] = (struct vring_desc){
		.addr = (uint64_t)(uintptr_t)buf,
		.len = (uint32_t)(v->hdr_len + len),
	};
	vnet_vq_push(q, id, 1);
}

int vnet_tx(struct vnet *v, unsigned q, const void *frame, size_t len)
{
	uint16_t id;
	uint8_t *p;

	if (len > VNET_BUF_LEN - v->hdr_len || !(p = vnet_tx_alloc(v, q, &id)))
		return -1;
	memcpy(p, frame, len);
	vnet_tx_submit(v, q, id, len);
	return 0;
}

void vnet_tx_kick(struct vnet *v, unsigned q)
{
	if (q < v->pairs && v->tx[q].size)
		vnet_vq_publish(v, &v->tx[q]);
}

unsigned vnet_tx_reclaim(struct vnet *v, unsigned qn)
{
	struct vq *q = &v->tx[qn];
	unsigned n = 0;
	uint16_t id;
	uint32_t len;

	if (qn >= v->pairs)
		return 0;
	/* TX buffers are device-readable only, so used len (bytes the device
	 * wrote) must be 0; more is counted as a device error. */
	while (vnet_vq_pop(v, q, 0, &id, &len)) {
		q->free[q->nfree++] = id;
		n++;
	}
	return n;
}

unsigned vnet_tx_inflight(const struct vnet *v, unsigned q)
{
	return q < v->pairs && v->tx[q].size ? (unsigned)(v->tx[q].size - v->tx[q].nfree) : 0;
}

int vnet_rx_poll(struct vnet *v, unsigned qn, uint8_t **frame, uint32_t *len, uint16_t *id)
{
	struct vq *q = &v->rx[qn];

	if (qn >= v->pairs)
		return 0;
	while (vnet_vq_pop(v, q, VNET_BUF_LEN, id, len)) {
		if (*len < v->hdr_len || *len > VNET_BUF_LEN) {
			if (*len < v->hdr_len)
				dev_error(v, "RX used len shorter than the header");
			rx_post(q, *id); /* give it straight back */
			continue;
		}
		*frame = q->bufs + (uint64_t)*id * VNET_BUF_LEN + v->hdr_len;
		*len -= v->hdr_len;
		return 1;
	}
	return 0;
}

void vnet_rx_release(struct vnet *v, unsigned qn, uint16_t id)
{
	if (qn < v->pairs && id < v->rx[qn].size && !v->rx[qn].busy[id])
		rx_post(&v->rx[qn], id);
}

void vnet_rx_kick(struct vnet *v, unsigned q)
{
	if (q < v->pairs && v->rx[q].size)
		vnet_vq_publish(v, &v->rx[q]);
}

/* ---- control virtqueue ---------------------------------------------------- */

int vnet_ctrl(struct vnet *v, uint8_t cls, uint8_t cmd, const void *data, size_t len)
{
	struct vq *q = &v->cvq;
	uint64_t base = (uint64_t)(uintptr_t)v->cmd;
	volatile uint8_t *ack = v->cmd + CMD_ACK;
	struct timeout t;
	uint16_t id, d = 0;
	uint32_t used_len;

	if (!q->size || !v->cmd)
		return -1;
	if (len > CMD_DATA_MAX || q->busy[0])
		return -3; /* too big, or an earlier command never came back */
	v->cmd[CMD_HDR] = cls;
	v->cmd[CMD_HDR + 1] = cmd;
	memcpy(v->cmd + CMD_DATA, data, len);
	*ack = 0xff;
	/* Chain at descriptors 0..2: header, data (if any), then the ack byte. */
	q->desc[d] = (struct vring_desc){ base + CMD_HDR, 2, VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
	d++;
	if (len) {
		q->desc[d] = (struct vring_desc){ base + CMD_DATA, (uint32_t)len, VRING_DESC_F_NEXT, (uint16_t)(d + 1) };
		d++;
	}
	q->desc[d] = (struct vring_desc){ base + CMD_ACK, 1, VRING_DESC_F_WRITE, 0 };
	vnet_vq_push(q, 0, (uint16_t)(d + 1));
	vnet_vq_publish(v, q);

	timeout_start(&t, 5);
	while (!vnet_vq_pop(v, q, 1, &id, &used_len)) {
		if (timeout_expired(&t) || !q->size)
			return -2;
		cpu_relax();
	}
	if (used_len != 1) {
		dev_error(v, "control ack not written (used len != 1)");
		return -3;
	}
	vnet_rmb(); /* the ack byte after the used entry that covers it */
	uint8_t r = *ack;
	/* The chain is the driver's again: point its head nowhere, as a
	 * driver that reuses its memory (Linux) may, so a device that takes a
	 * finished command again fails loudly instead of silently. */
	q->desc[0].addr = 0xdead00000000ull;
	return r;
}

int vnet_ctrl_rx(struct vnet *v, uint8_t cmd, int on)
{
	uint8_t b = on ? 1 : 0;

	return vnet_ctrl(v, VIRTIO_NET_CTRL_RX, cmd, &b, 1);
}

int vnet_ctrl_mac_addr_set(struct vnet *v, const uint8_t mac[6])
{
	return vnet_ctrl(v, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6);
}

/* Two virtio_net_ctrl_mac tables back to back: le32 entries, then MACs. */
int vnet_ctrl_mac_table_set(struct vnet *v, const uint8_t (*uc)[6], unsigned nuc, const uint8_t (*mc)[6],
			    unsigned nmc)
{
	uint8_t buf[CMD_DATA_MAX];
	size_t n = 0;

	if (8 + 6 * ((size_t)nuc + nmc) > sizeof(buf))
		return -3;
	memcpy(buf + n, &nuc, 4);
	n += 4;
	memcpy(buf + n, uc, 6 * (size_t)nuc);
	n += 6 * (size_t)nuc;
	memcpy(buf + n, &nmc, 4);
	n += 4;
	memcpy(buf + n, mc, 6 * (size_t)nmc);
	n += 6 * (size_t)nmc;
	return vnet_ctrl(v, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, buf, n);
}

int vnet_ctrl_vlan(struct vnet *v, uint8_t cmd, uint16_t vid)
{
	return vnet_ctrl(v, VIRTIO_NET_CTRL_VLAN, cmd, &vid, 2);
}

int vnet_ctrl_mq_pairs(struct vnet *v, uint16_t pairs)
{
	return vnet_ctrl(v, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2);
}

int vnet_ctrl_rss(struct vnet *v, uint32_t hash_types, const uint16_t *table, unsigned n, uint16_t unclassified,
		  uint16_t max_tx, const uint8_t *key, uint8_t key_len)
{
	uint8_t b[8 + 2 * 128 + 3 + 255];
	uint16_t mask = (uint16_t)(n - 1);
	unsigned o = 8;

	if (!n || n > 128)
		return -1;
	memcpy(b, &hash_types, 4);
	memcpy(b + 4, &mask, 2);
	memcpy(b + 6, &unclassified, 2);
	memcpy(b + o, table, 2 * n);
	o += 2 * n;
	memcpy(b + o, &max_tx, 2);
	b[o + 2] = key_len;
	memcpy(b + o + 3, key, key_len);
	return vnet_ctrl(v, VIRTIO_NET_CTRL_MQ, 1 /* RSS_CONFIG */, b, o + 3 + key_len);
}

int vnet_ctrl_hash(struct vnet *v, uint32_t hash_types, const uint8_t *key, uint8_t key_len)
{
	uint8_t b[4 + 8 + 1 + 255] = { 0 }; /* types, reserved[4], key length, key */

	memcpy(b, &hash_types, 4);
	b[12] = key_len;
	memcpy(b + 13, key, key_len);
	return vnet_ctrl(v, VIRTIO_NET_CTRL_MQ, 2 /* HASH_CONFIG */, b, 13u + key_len);
}

unsigned vnet_rx_hash(const struct vnet *v, const uint8_t *frame, uint32_t *value)
{
	const uint8_t *h = frame - v->hdr_len; /* the header before it */
	uint16_t report;

	*value = 0;
	if (v->hdr_len != VNET_HDR_HASH_LEN)
		return 0;
	memcpy(value, h + 12, 4);
	memcpy(&report, h + 16, 2);
	return report;
}

int vnet_ctrl_guest_offloads(struct vnet *v, uint64_t offloads)
{
	return vnet_ctrl(v, VIRTIO_NET_CTRL_GUEST_OFFLOADS, VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET, &offloads, 8);
}

int vnet_ctrl_announce_ack(struct vnet *v)
{
	return vnet_ctrl(v, VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0);
}

int vnet_set_pairs(struct vnet *v)
{
	if (v->pairs <= 1)
		return 0;
	int ack = vnet_ctrl_mq_pairs(v, v->pairs);
	if (ack != VIRTIO_NET_OK)
		return fail(v, "VQ_PAIRS_SET refused");
	return 0;
}
