/* SPDX-License-Identifier: MIT */
/*
 * firmware/net_echo.c - test=net-echo: sends every frame of ethertype
 * 0x88b5 that arrives back to its sender (MAC addresses swapped, payload
 * unchanged) until a 'q' on the console. Reports "net echo ready" once the
 * device is up and "net echo count=N" at the end. A peer can thus check,
 * across a snapshot and restore, that the device's rings, indices and
 * buffers still work (tests/kvm/test_snapshot.py).
 *
 * Frames of KEEP_BASE + 1 .. KEEP_BASE + 128 bytes are not echoed and not
 * read: their buffers stay the guest's, and only their length (from the
 * used ring) is noted: seq = length - KEEP_BASE. A frame of VRFY_LEN
 * bytes checks every kept buffer - the pattern (seq * 7 + offset) after
 * the 14-byte Ethernet header - reports "net keep n=N bad=B" and gives
 * them back. Migrated between the KEEP frames and VRFY, this proves that
 * what the device wrote into guest memory on the source is on the
 * destination (issue 8's RX-payload check). Not reading them matters: on
 * a shadow-paging host a guest's read fault can mark a page dirty, which
 * would hide a VMM that failed to.
 *
 * An 'r' on the console resets and restarts the device ("net echo
 * restarted"), as a driver reloading would.
 *
 * With a control queue on offer it is used, with GUEST_ANNOUNCE: whenever
 * the device shows VIRTIO_NET_S_ANNOUNCE (after a restore or migration) the
 * guest reports "net announce seen", acknowledges it through the control
 * queue and reports "net announce ack=R cleared=C" (C: the bit went away).
 */
#include "lib.h"
#include "virtio_net.h"

#define KEEP_BASE 1100u
#define VRFY_LEN 1000u

struct kept {
	const uint8_t *p;
	uint32_t len;
	uint16_t id;
};

static struct kept kept[VNET_MAX_QSIZE];

/* 1 when the frame was a KEEP or VRFY (and is dealt with), else 0. */
static int keep_or_verify(struct vnet *v, const uint8_t *p, uint32_t len, uint16_t id, unsigned *nkept)
{
	if (len > KEEP_BASE && len <= KEEP_BASE + VNET_MAX_QSIZE / 2) {
		if (*nkept >= VNET_MAX_QSIZE / 2)
			return 0;
		kept[*nkept] = (struct kept){ p, len, id };
		++*nkept;
		return 1; /* the buffer stays ours, unread */
	}
	if (len != VRFY_LEN)
		return 0;
	unsigned bad = 0;
	for (unsigned k = 0; k < *nkept; k++) {
		const struct kept *x = &kept[k];
		uint32_t seq = x->len - KEEP_BASE;
		int ok = x->p[12] == 0x88 && x->p[13] == 0xb5 && !memcmp(x->p, v->mac, 6);
		for (uint32_t i = 14; ok && i < x->len; i++)
			ok = x->p[i] == (uint8_t)(seq * 7 + i);
		bad += !ok;
		vnet_rx_release(v, 0, x->id);
	}
	report("net keep n=%u bad=%u", *nkept, bad);
	*nkept = 0;
	vnet_rx_release(v, 0, id);
	return 1;
}

unsigned net_echo_run(struct vnet *v)
{
	uint64_t count = 0;
	unsigned nkept = 0;

	if (vnet_up(v, 1, (v->dev_features & VBIT(VIRTIO_NET_F_CTRL_VQ)) != 0) < 0) {
		report("error bring-up: %s (status=0x%x)", v->error, vnet_status(v));
		return GUEST_EXIT_FAIL;
	}
	report("net echo features=0x%llx", (unsigned long long)v->features);
	report("net echo ready");
	for (unsigned spin = 0;; spin++) {
		uint8_t *p, *out;
		uint32_t len;
		uint16_t id, tid;

		while (vnet_rx_poll(v, 0, &p, &len, &id)) {
			if (keep_or_verify(v, p, len, id, &nkept))
				continue;
			if (len >= 14 && len <= VNET_FRAME_MAX && p[12] == 0x88 && p[13] == 0xb5) {
				vnet_tx_reclaim(v, 0);
				out = vnet_tx_alloc(v, 0, &tid);
				if (out) {
					memcpy(out, p + 6, 6); /* back to the sender */
					memcpy(out + 6, v->mac, 6);
					memcpy(out + 12, p + 12, len - 12);
					vnet_tx_submit(v, 0, tid, len);
					vnet_tx_kick(v, 0);
					count++;
				}
			}
			vnet_rx_release(v, 0, id);
		}
		vnet_rx_kick(v, 0);
		vnet_tx_reclaim(v, 0);
		if (spin & 0xfff)
			continue;
		int ch = uart_getc_poll();
		if (ch == 'q')
			break;
		if (ch == 'r') {
			/* the driver resets and restarts its device (the kept
			 * buffers go with the old rings) */
			vnet_reset(v);
			nkept = 0;
			if (vnet_up(v, 1, (v->dev_features & VBIT(VIRTIO_NET_F_CTRL_VQ)) != 0) < 0) {
				report("error restart: %s (status=0x%x)", v->error, vnet_status(v));
				return GUEST_EXIT_FAIL;
			}
			report("net echo restarted");
		}
		if ((v->features & VBIT(VIRTIO_NET_F_GUEST_ANNOUNCE)) && (vnet_link_status(v) & VIRTIO_NET_S_ANNOUNCE)) {
			report("net announce seen");
			int ack = vnet_ctrl_announce_ack(v);
			report("net announce ack=%d cleared=%d", ack, !(vnet_link_status(v) & VIRTIO_NET_S_ANNOUNCE));
		}
	}
	report("net echo count=%llu", (unsigned long long)count);
	return GUEST_EXIT_PASS;
}
