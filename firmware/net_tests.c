/* SPDX-License-Identifier: MIT */
/*
 * firmware/net_tests.c - virtio-net workloads (test=net-*). Options are
 * key=value tokens of the command line:
 *
 *   net-info      "net mac=M max_pairs=N features=0xF" (device-offered
 *                 features); with up=1 also brings the device up and reports
 *                 "net up negotiated=0x.. status=0x.. link=0x..".
 *   any net-*     reassign=1 places the device's BARs from 0xc0000000 even
 *                 if firmware or the VMM programmed them (tests that path).
 *   net-xchg      count=N queues=Q size=S peer=MAC timeout=SEC sync=0|1
 *                 window=W (TX frames in flight per queue, default 32:
 *                 QEMU's UDP socket backend drops bursts its socket buffer
 *                 cannot hold)
 *                 Sends N FRNT frames per TX queue, receives N*Q from the
 *                 peer; "net tx=.. rx_ok=.. rx_bad=.. rx_dup=.. rx_gap=..
 *                 queues=Q", then "net detail ...".
 *   net-cvq       one of each control command the features allow:
 *                 "cvq CLASS.CMD=ack" each, then "cvq commands=N failed=M";
 *                 skip=CLASS[,CLASS] leaves classes out (QEMU with a socket
 *                 backend answers GUEST_OFFLOADS.SET with ERR: no vnet hdr).
 *                 loop=SEC then repeats a command of an unknown class
 *                 (answered ERR) for SEC seconds, each within 5 s, across
 *                 whatever happens to the VM meanwhile: "cvq loop started",
 *                 then "cvq loop commands=N wrong=M restarts=R" (a wrong
 *                 answer or none ends the loop); restart=1 also resets and
 *                 brings the device up again once a second.
 *   net-scribble  scribble=next|len|both: corrupts its own TX descriptors,
 *                 kicks, reports "net status=0x.." (NEEDS_RESET is 0x40).
 *
 * FRNT frame (all header fields little-endian, ethertype big-endian):
 *   dst[6] src[6] 0x88b5 | u32 magic 0x544e5246 ("FRNT") | u16 queue |
 *   u16 flags | u32 seq | u32 payload_len | payload_len pattern bytes |
 *   u32 CRC-32 (zlib's) over magic..end of pattern.
 *   pattern[i] = (seq * 31 + queue * 97 + i * 7) & 0xff.
 *   Total length = 34 + payload_len = size= (64..1514).
 *   flags bit 0 (HELLO): a sync frame (queue 0, seq 0), not counted as data.
 *
 * Sync (net-xchg, sync=1 by default): the peer's RX may not be up yet when
 * we start, so until the first valid FRNT frame arrives from the peer we
 * send only HELLO frames (every ~2^27 TSC ticks). Any frame from the peer
 * proves its RX ring is posted (it sends only after its own bring-up); data
 * frames arriving meanwhile are counted normally. A loopback device passes
 * our own HELLO back, which also ends the wait.
 */
#include "bootinfo.h"
#include "lib.h"
#include "virtio_net.h"

extern char __image_end[];

#define FRNT_ETHERTYPE 0x88b5
#define FRNT_MAGIC 0x544e5246u
#define FRNT_F_HELLO 0x0001
#define FRNT_OVERHEAD 34 /* Ethernet 14 + FRNT header 16 + CRC 4 */
#define FRNT_MIN 64
#define FRNT_MAX 1514
#define HELLO_PERIOD_TSC (1ull << 27)

static struct vnet net;

struct opts {
	unsigned count, queues, size, timeout, sync, up, window, reassign, hold, bigtable, rss, hash, loop, restart;
	uint8_t peer[6];
	int peer_given;
	char scribble[16];
	char skip[64];
};

static void mac_str(char *buf, const uint8_t m[6])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_mac(const char *s, uint8_t m[6])
{
	for (int i = 0; i < 6; i++) {
		int h = hexval(s[0]), l = hexval(s[1]);
		if (h < 0 || l < 0 || (i < 5 && s[2] != ':') || (i == 5 && s[2]))
			return -1;
		m[i] = (uint8_t)(h << 4 | l);
		s += 3;
	}
	return 0;
}

static unsigned opt_uint(const char *cmdline, const char *key, unsigned dflt)
{
	char buf[16];

	return cmdline_find(cmdline, key, buf, sizeof(buf)) ? parse_uint(buf) : dflt;
}

static int parse_opts(const char *cmdline, struct opts *o)
{
	char buf[32];

	memset(o, 0, sizeof(*o));
	o->count = opt_uint(cmdline, "count", 100);
	o->queues = opt_uint(cmdline, "queues", 1);
	o->size = opt_uint(cmdline, "size", 256);
	o->timeout = opt_uint(cmdline, "timeout", 60);
	o->sync = opt_uint(cmdline, "sync", 1);
	o->up = opt_uint(cmdline, "up", 0);
	o->window = opt_uint(cmdline, "window", 32);
	o->reassign = opt_uint(cmdline, "reassign", 0);
	o->hold = opt_uint(cmdline, "hold", 0);
	o->bigtable = opt_uint(cmdline, "bigtable", 0);
	o->rss = opt_uint(cmdline, "rss", 0);
	o->hash = opt_uint(cmdline, "hash", 0);
	o->loop = opt_uint(cmdline, "loop", 0);
	o->restart = opt_uint(cmdline, "restart", 0);
	cmdline_find(cmdline, "skip", o->skip, sizeof(o->skip));
	memset(o->peer, 0xff, 6);
	if (cmdline_find(cmdline, "peer", buf, sizeof(buf))) {
		if (parse_mac(buf, o->peer) < 0) {
			report("error bad peer=%s", buf);
			return -1;
		}
		o->peer_given = !(o->peer[0] & 1); /* a unicast peer filters sources */
	}
	if (!cmdline_find(cmdline, "scribble", o->scribble, sizeof(o->scribble)))
		memcpy(o->scribble, "both", 5);
	if (o->size < FRNT_MIN || o->size > FRNT_MAX || o->queues < 1 || o->queues > VNET_MAX_PAIRS) {
		report("error size must be %u..%u and queues 1..%u", FRNT_MIN, FRNT_MAX, VNET_MAX_PAIRS);
		return -1;
	}
	return 0;
}

/* RAM for rings and buffers: from the end of the image to the end of its
 * e820 RAM range (below 4 GiB, which is all the identity map covers), short
 * of an initrd that lies there. */
void vnet_mem_from_bootinfo(const struct bootinfo *bi)
{
	uint64_t start = ((uint64_t)(uintptr_t)__image_end + 4095) & ~4095ull, end = start;

	for (unsigned i = 0; i < bi->nr_memmap; i++) {
		const struct memmap_entry *e = &bi->memmap[i];
		if (e->type == 1 && e->addr <= start && e->addr + e->len > start)
			end = e->addr + e->len;
	}
	if (end > (4ull << 30))
		end = 4ull << 30;
	if (bi->initrd_len && bi->initrd_addr < end && bi->initrd_addr + bi->initrd_len > start) {
		if (bi->initrd_addr > start)
			end = bi->initrd_addr;
		else
			start = end = 0;
	}
	vnet_mem_init(start, end);
}

static uint64_t ram_end(const struct bootinfo *bi)
{
	uint64_t end = 0;

	for (unsigned i = 0; i < bi->nr_memmap; i++)
		if (bi->memmap[i].type == 1 && bi->memmap[i].addr + bi->memmap[i].len > end)
			end = bi->memmap[i].addr + bi->memmap[i].len;
	return end;
}

/* ---- FRNT frames ---------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint8_t pattern(uint32_t seq, uint16_t queue, uint32_t i)
{
	return (uint8_t)(seq * 31 + queue * 97u + i * 7);
}

static void frnt_build(uint8_t *p, const uint8_t dst[6], const uint8_t src[6], uint16_t queue, uint16_t flags,
		       uint32_t seq, unsigned size)
{
	uint32_t plen = size - FRNT_OVERHEAD;

	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	p[12] = FRNT_ETHERTYPE >> 8;
	p[13] = FRNT_ETHERTYPE & 0xff;
	put32(p + 14, FRNT_MAGIC);
	put16(p + 18, queue);
	put16(p + 20, flags);
	put32(p + 22, seq);
	put32(p + 26, plen);
	for (uint32_t i = 0; i < plen; i++)
		p[30 + i] = pattern(seq, queue, i);
	put32(p + 30 + plen, crc32(0, p + 14, 16 + plen));
}

/* 1: a valid FRNT frame (fields returned), 0: not FRNT (other ethertype),
 * -1: FRNT but malformed or corrupted. */
static int frnt_parse(const uint8_t *p, uint32_t len, uint16_t *queue, uint16_t *flags, uint32_t *seq)
{
	if (len < 14)
		return -1;
	if (p[12] != (FRNT_ETHERTYPE >> 8) || p[13] != (FRNT_ETHERTYPE & 0xff))
		return 0;
	if (len < FRNT_OVERHEAD || get32(p + 14) != FRNT_MAGIC)
		return -1;
	uint32_t plen = get32(p + 26);
	if (plen != len - FRNT_OVERHEAD)
		return -1;
	if (crc32(0, p + 14, 16 + plen) != get32(p + 30 + plen))
		return -1;
	*queue = get16(p + 18);
	*flags = get16(p + 20);
	*seq = get32(p + 22);
	for (uint32_t i = 0; i < plen; i++)
		if (p[30 + i] != pattern(*seq, *queue, i))
			return -1;
	return 1;
}

/* ---- net-info ------------------------------------------------------------- */

static unsigned test_info(const struct opts *o)
{
	char m[18];

	mac_str(m, net.mac);
	report("net mac=%s max_pairs=%u features=0x%llx", m, net.max_pairs, (unsigned long long)net.dev_features);
	report("net pci=00:%02x.%u num_queues=%u common=0x%llx notify=0x%llx mult=%u", net.pci.dev, net.pci.fn,
	       net.num_queues, (unsigned long long)net.common, (unsigned long long)net.notify_base, net.notify_mult);
	if (!o->up)
		return GUEST_EXIT_PASS;
	int cvq = !!(net.dev_features & VBIT(VIRTIO_NET_F_CTRL_VQ));
	if (vnet_up(&net, 1, cvq) < 0) {
		report("error bring-up: %s (status=0x%x)", net.error, vnet_status(&net));
		return GUEST_EXIT_FAIL;
	}
	report("net up negotiated=0x%llx status=0x%x link=0x%x", (unsigned long long)net.features, vnet_status(&net),
	       vnet_link_status(&net));
	return GUEST_EXIT_PASS;
}

/* ---- net-xchg ------------------------------------------------------------- */

struct xchg {
	const struct opts *o;
	uint32_t next_tx[VNET_MAX_PAIRS], next_rx[VNET_MAX_PAIRS];
	uint64_t tx, rx_ok, rx_bad, rx_dup, rx_gap, ignored, hellos;
	uint64_t per_vq[VNET_MAX_PAIRS];
	int peer_seen;
};

static void xchg_frame(struct xchg *x, unsigned vq, const uint8_t *p, uint32_t len)
{
	uint16_t queue, flags;
	uint32_t seq;
	int r = frnt_parse(p, len, &queue, &flags, &seq);

	if (r == 0 || (r > 0 && x->o->peer_given && memcmp(p + 6, x->o->peer, 6))) {
		x->ignored++; /* not FRNT, or not from the peer */
		return;
	}
	if (r > 0 && (flags & FRNT_F_HELLO)) {
		x->hellos++;
		x->peer_seen = 1;
		return;
	}
	if (r < 0 || queue >= x->o->queues || seq >= x->o->count) {
		x->rx_bad++;
		return;
	}
	x->peer_seen = 1;
	x->per_vq[vq]++;
	if (seq < x->next_rx[queue]) {
		x->rx_dup++;
		return;
	}
	if (seq > x->next_rx[queue])
		x->rx_gap += seq - x->next_rx[queue];
	x->next_rx[queue] = seq + 1;
	x->rx_ok++;
}

/* Takes what each RX queue has (round robin, bounded per queue), reposts. */
static void xchg_rx(struct xchg *x)
{
	for (unsigned q = 0; q < x->o->queues; q++) {
		uint8_t *p;
		uint32_t len;
		uint16_t id;

		for (int n = 0; n < 64 && vnet_rx_poll(&net, q, &p, &len, &id); n++) {
			xchg_frame(x, q, p, len);
			vnet_rx_release(&net, q, id);
		}
		vnet_rx_kick(&net, q);
	}
}

static int xchg_send(struct xchg *x, unsigned q, uint16_t flags, uint32_t seq)
{
	uint16_t id;
	uint8_t *p = vnet_tx_alloc(&net, q, &id);

	if (!p)
		return -1;
	frnt_build(p, x->o->peer, net.mac, (uint16_t)q, flags, seq, x->o->size);
	vnet_tx_submit(&net, q, id, x->o->size);
	return 0;
}

static int xchg_done(const struct xchg *x)
{
	for (unsigned q = 0; q < x->o->queues; q++)
		if (x->next_rx[q] < x->o->count || x->next_tx[q] < x->o->count || vnet_tx_inflight(&net, q))
			return 0;
	return 1;
}

static unsigned test_xchg(const struct opts *o)
{
	struct xchg x;
	struct timeout t;
	uint64_t last_hello = 0;
	int timed_out = 0;

	memset(&x, 0, sizeof(x));
	x.o = o;
	if (vnet_up(&net, o->queues, o->queues > 1) < 0 || vnet_set_pairs(&net) < 0) {
		report("error bring-up: %s (status=0x%x)", net.error, vnet_status(&net));
		return GUEST_EXIT_FAIL;
	}
	timeout_start(&t, o->timeout);
	/* Sync: HELLOs on queue 0 until the peer shows up. */
	x.peer_seen = !o->sync;
	while (!x.peer_seen && !(timed_out = timeout_expired(&t))) {
		if (rdtsc() - last_hello >= HELLO_PERIOD_TSC) {
			vnet_tx_reclaim(&net, 0);
			if (!xchg_send(&x, 0, FRNT_F_HELLO, 0))
				vnet_tx_kick(&net, 0);
			last_hello = rdtsc();
		}
		xchg_rx(&x);
	}
	/* benchmarks time the exchange from this line (tests/bench/net) */
	if (!timed_out)
		report("net xchg start");
	while (!timed_out && !xchg_done(&x)) {
		for (unsigned q = 0; q < o->queues; q++) {
			vnet_tx_reclaim(&net, q);
			for (int n = 0; n < 32 && x.next_tx[q] < o->count && vnet_tx_inflight(&net, q) < o->window;
			     n++) {
				if (xchg_send(&x, q, 0, x.next_tx[q]) < 0)
					break;
				x.next_tx[q]++;
				x.tx++;
			}
			vnet_tx_kick(&net, q);
		}
		xchg_rx(&x);
		timed_out = timeout_expired(&t);
	}
	report("net tx=%llu rx_ok=%llu rx_bad=%llu rx_dup=%llu rx_gap=%llu queues=%u", (unsigned long long)x.tx,
	       (unsigned long long)x.rx_ok, (unsigned long long)x.rx_bad, (unsigned long long)x.rx_dup,
	       (unsigned long long)x.rx_gap, o->queues);

	char per[8 * VNET_MAX_PAIRS + 1];
	size_t n = 0;
	uint64_t kicks_tx = 0, kicks_rx = 0;
	for (unsigned q = 0; q < o->queues; q++) {
		n += (size_t)snprintf(per + n, sizeof(per) - n, "%s%llu", q ? "," : "",
				      (unsigned long long)x.per_vq[q]);
		if (n >= sizeof(per))
			n = sizeof(per) - 1;
		kicks_tx += net.tx[q].kicks;
		kicks_rx += net.rx[q].kicks;
	}
	report("net detail rx_per_vq=%s ignored=%llu hellos=%llu kicks_tx=%llu kicks_rx=%llu dev_errors=%llu "
	       "status=0x%x",
	       per, (unsigned long long)x.ignored, (unsigned long long)x.hellos, (unsigned long long)kicks_tx,
	       (unsigned long long)kicks_rx, (unsigned long long)net.dev_errors, vnet_status(&net));
	if (net.dev_errors)
		report("error device misbehaved: %s", net.error);
	if (timed_out)
		report("error timeout after %u s (peer %s)", o->timeout, x.peer_seen ? "seen" : "never seen");
	if (timed_out || net.dev_errors || x.rx_ok != (uint64_t)o->count * o->queues || x.rx_bad || x.rx_dup ||
	    x.rx_gap)
		return GUEST_EXIT_FAIL;
	return GUEST_EXIT_PASS;
}

/* ---- net-cvq -------------------------------------------------------------- */

struct cvq_run {
	unsigned commands, failed;
	const char *skip;
};

/* 1 if the class of "CLASS.CMD" is listed in skip= (comma-separated). */
static int cvq_skipped(const struct cvq_run *r, const char *what)
{
	size_t n = 0;

	while (what[n] && what[n] != '.')
		n++;
	for (const char *p = r->skip; *p;) {
		size_t k = 0;
		while (p[k] && p[k] != ',')
			k++;
		if (k == n && !strncmp(p, what, n))
			return 1;
		p += k + (p[k] == ',');
	}
	return 0;
}

/* Issues "call" unless its class is skipped; reports and counts the ack. */
#define CVQ(r, what, call)                                          \
	do {                                                        \
		if (cvq_skipped(r, what))                           \
			report("cvq %s skipped (skip=)", what);     \
		else                                                \
			cvq_note(r, what, call);                    \
	} while (0)

static void cvq_note(struct cvq_run *r, const char *what, int ack)
{
	report("cvq %s=%d", what, ack);
	r->commands++;
	if (ack != VIRTIO_NET_OK)
		r->failed++;
}

/* Commands of an unknown class, one after another, for sec seconds: each
 * must come back ERR (-2: none came within 5 s). Returns the wrong ones. */
static unsigned cvq_loop(unsigned sec, unsigned restart)
{
	struct timeout t;
	unsigned n = 0, wrong = 0, restarts = 0, last = 0;

	report("cvq loop started");
	timeout_start(&t, sec);
	/* the clock is read (an exit to the VMM) once every 256 commands, so
	 * that nearly always one is in flight when the VM stops */
	while (!wrong && ((n & 255) || !timeout_expired(&t))) {
		if (restart && !(n & 255) && t.elapsed != last) {
			last = t.elapsed;
			if (vnet_up(&net, 1, 1) < 0) {
				report("cvq loop restart failed: %s", net.error);
				return 1;
			}
			restarts++;
		}
		int ack = vnet_ctrl(&net, 0xfe, 0, NULL, 0);
		n++;
		if (ack != VIRTIO_NET_ERR) {
			wrong++;
			report("cvq loop command %u answered %d", n, ack);
		}
	}
	report("cvq loop commands=%u wrong=%u restarts=%u", n, wrong, restarts);
	return wrong;
}

static unsigned test_cvq(const struct opts *o)
{
	static const uint8_t uc[2][6] = { { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 }, { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 } };
	static const uint8_t mc[2][6] = { { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 }, { 0x33, 0x33, 0x00, 0x00, 0x00, 0x01 } };
	struct cvq_run r = { 0, 0, o->skip };
	uint64_t f;

	if (vnet_up(&net, o->queues, 1) < 0) {
		report("error bring-up: %s (status=0x%x)", net.error, vnet_status(&net));
		return GUEST_EXIT_FAIL;
	}
	f = net.features;
	if (f & VBIT(VIRTIO_NET_F_CTRL_RX)) {
		CVQ(&r, "RX.PROMISC_ON", vnet_ctrl_rx(&net, VIRTIO_NET_CTRL_RX_PROMISC, 1));
		CVQ(&r, "RX.PROMISC_OFF", vnet_ctrl_rx(&net, VIRTIO_NET_CTRL_RX_PROMISC, 0));
		CVQ(&r, "RX.ALLMULTI_ON", vnet_ctrl_rx(&net, VIRTIO_NET_CTRL_RX_ALLMULTI, 1));
		CVQ(&r, "RX.ALLMULTI_OFF", vnet_ctrl_rx(&net, VIRTIO_NET_CTRL_RX_ALLMULTI, 0));
		CVQ(&r, "MAC.TABLE_SET", vnet_ctrl_mac_table_set(&net, uc, 2, mc, 2));
	}
	if (f & VBIT(VIRTIO_NET_F_CTRL_MAC_ADDR))
		CVQ(&r, "MAC.ADDR_SET", vnet_ctrl_mac_addr_set(&net, net.mac));
	if (f & VBIT(VIRTIO_NET_F_CTRL_VLAN)) {
		CVQ(&r, "VLAN.ADD", vnet_ctrl_vlan(&net, VIRTIO_NET_CTRL_VLAN_ADD, 100));
		CVQ(&r, "VLAN.DEL", vnet_ctrl_vlan(&net, VIRTIO_NET_CTRL_VLAN_DEL, 100));
	}
	if (f & VBIT(VIRTIO_NET_F_MQ))
		CVQ(&r, "MQ.VQ_PAIRS_SET", vnet_ctrl_mq_pairs(&net, net.pairs));
	if (f & VBIT(VIRTIO_NET_F_CTRL_GUEST_OFFLOADS))
		CVQ(&r, "GUEST_OFFLOADS.SET", vnet_ctrl_guest_offloads(&net, 0));
	/* ANNOUNCE.ACK acknowledges a pending announcement: without one the
	 * device rightly answers ERR (QEMU does), so it is sent only then. */
	if (f & VBIT(VIRTIO_NET_F_GUEST_ANNOUNCE)) {
		if (vnet_link_status(&net) & VIRTIO_NET_S_ANNOUNCE)
			CVQ(&r, "ANNOUNCE.ACK", vnet_ctrl_announce_ack(&net));
		else
			report("cvq ANNOUNCE.ACK skipped (no announcement pending)");
	}
	report("cvq commands=%u failed=%u features=0x%llx dev_errors=%llu status=0x%x", r.commands, r.failed,
	       (unsigned long long)f, (unsigned long long)net.dev_errors, vnet_status(&net));
	if (!r.commands || r.failed || net.dev_errors)
		return GUEST_EXIT_FAIL;
	return o->loop && cvq_loop(o->loop, o->restart) ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS;
}

/* ---- net-scribble --------------------------------------------------------- */

static unsigned test_scribble(const struct opts *o, const struct bootinfo *bi)
{
	int nxt = !strncmp(o->scribble, "next", 5) || !strncmp(o->scribble, "both", 5);
	int len = !strncmp(o->scribble, "len", 4) || !strncmp(o->scribble, "both", 5);
	struct vq *q = &net.tx[0];
	struct timeout t;
	uint16_t id;
	uint8_t st;

	if (!nxt && !len) {
		report("error scribble=%s (want next, len or both)", o->scribble);
		return GUEST_EXIT_USAGE;
	}
	if (vnet_up(&net, 1, 0) < 0) {
		report("error bring-up: %s (status=0x%x)", net.error, vnet_status(&net));
		return GUEST_EXIT_FAIL;
	}
	report("net scribble=%s status=0x%x", o->scribble, vnet_status(&net));
	if (nxt && vnet_tx_alloc(&net, 0, &id)) {
		/* A chain whose next index lies outside the table. */
		q->desc[id] = (struct vring_desc){ (uint64_t)(uintptr_t)(q->bufs + (uint64_t)id * VNET_BUF_LEN), 64,
						   VRING_DESC_F_NEXT, (uint16_t)(q->size + 7) };
		vnet_vq_push(q, id, 1);
	}
	if (len && vnet_tx_alloc(&net, 0, &id)) {
		/* A buffer starting in the last page of RAM and running 1 MiB on. */
		q->desc[id] = (struct vring_desc){ ram_end(bi) - 4096, 1u << 20, 0, 0 };
		vnet_vq_push(q, id, 1);
	}
	vnet_vq_publish(&net, q);
	vnet_notify(&net, q); /* even if the device asked for no notifications */
	timeout_start(&t, 2);
	while (!((st = vnet_status(&net)) & VIRTIO_STATUS_NEEDS_RESET) && !timeout_expired(&t))
		cpu_relax();
	report("net status=0x%x", st);
	vnet_reset(&net);
	report("net reset status=0x%x", vnet_status(&net));
	return GUEST_EXIT_PASS;
}

/* ---- dispatcher ----------------------------------------------------------- */

unsigned net_test(const char *name, const struct bootinfo *bi)
{
	struct opts o;

	if (parse_opts(bi->cmdline, &o) < 0)
		return GUEST_EXIT_USAGE;
	vnet_mem_from_bootinfo(bi);
	if (vnet_probe(&net, 0, (int)o.reassign) < 0) {
		report("error %s", net.error);
		return GUEST_EXIT_FAIL;
	}
	if (!strncmp(name, "net-info", 9))
		return test_info(&o);
	if (!strncmp(name, "net-xchg", 9))
		return test_xchg(&o);
	if (!strncmp(name, "net-cvq", 8))
		return test_cvq(&o);
	if (!strncmp(name, "net-scribble", 13))
		return test_scribble(&o, bi);
	if (!strncmp(name, "net-echo", 9))
		return net_echo_run(&net);
	if (!strncmp(name, "net-filter", 11))
		return net_filter_run(&net, o.timeout, o.hold, o.bigtable, o.rss, o.hash);
	report("error unknown test '%s'", name);
	return GUEST_EXIT_USAGE;
}
