/* SPDX-License-Identifier: MIT */
/*
 * vdpa/vduse.c - the VDUSE daemon behind `tern vduse-net` (vdpa/vduse.h).
 *
 *   kernel (VDUSE parent)                this daemon                sim_net
 *   SET_STATUS, GET_VQ_STATE,   --read-->  vdpa_ops calls  ------>  device core
 *   UPDATE_IOTLB messages       <-write--  one response each
 *   driver kicks                ------ kick eventfd (SETUP_KICKFD) ------> kick_fd
 *   VDUSE_VQ_INJECT_IRQ         <-ioctl--  poll(irq eventfds)  <-------- call_fd
 *
 * One thread, one poll() on the signalfd, the device fd and the interrupt
 * eventfds. Whoever caused a message (a VMM's VHOST_VDPA_SET_STATUS, say)
 * sleeps until we answer, and an unanswered message breaks the device after
 * a timeout: every message read gets one answer, and nothing here waits on
 * anything else.
 *
 * Memory: VDUSE is a VA-mode parent. VDUSE_IOTLB_GET_FD hands out the file
 * behind each kernel IOTLB entry (the VMM's memfd); we mmap it and give the
 * device the same IOVA range in ASID 0 (vdpa/vduse_iotlb.c: an update
 * never takes an unchanged range away from a running device). The kernel
 * keeps its IOTLB across a reset; the device, run without IOTLB_PERSIST,
 * drops its own, so after each reset the mappings we hold are given to it
 * again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "vdpa/cvq.h"
#include "vdpa/sim_net.h"
#include "vdpa/vduse.h"
#include "vdpa/vduse_iotlb.h"

#define VDUSE_CONTROL "/dev/vduse/control"
#define VDUSE_NR_VQS 2         /* rx0, tx0: one pair and no CVQ on 6.12 */
#define VDUSE_VQ_ALIGN 4096
#define VDUSE_ID_NET 1
#define VDUSE_DESTROY_TRIES 200 /* x 10 ms: how long EBUSY is waited out */

/* What 6.12 VDUSE net cannot have: the CVQ and every feature that needs it. */
#define VDUSE_NET_FEATURES_OFF                                                                         \
	((1ull << VNET_F_CTRL_VQ) | (1ull << VNET_F_CTRL_RX) | (1ull << VNET_F_CTRL_VLAN) |            \
	 (1ull << VNET_F_CTRL_RX_EXTRA) | (1ull << VNET_F_GUEST_ANNOUNCE) | (1ull << VNET_F_MQ) |      \
	 (1ull << VNET_F_CTRL_MAC_ADDR) | (1ull << VNET_F_CTRL_GUEST_OFFLOADS))

/* The kernel's IOTLB permissions go to the device unchanged. */
_Static_assert(VDUSE_ACCESS_RO == VDPA_PERM_RO && VDUSE_ACCESS_WO == VDPA_PERM_WO &&
		       VDUSE_ACCESS_RW == VDPA_PERM_RW,
	       "VDUSE and vdpa permission encodings differ");

struct vduse_net {
	const char *name;                  /* /dev/vduse/NAME, the vdpa device name */
	struct vdpa_dev *sim;              /* the device this daemon drives */
	int ctl_fd;                        /* /dev/vduse/control */
	int dev_fd;                        /* /dev/vduse/NAME: messages and ioctls */
	int sig_fd;                        /* SIGINT, SIGTERM */
	/* Eventfds, open as long as we run (so a number the device thread
	 * still polls is never reused): kernel -> device kicks, and device ->
	 * us interrupts, [0] config (VDUSE_DEV_INJECT_CONFIG_IRQ), [1 + i] vq
	 * i (VDUSE_VQ_INJECT_IRQ). */
	int kick_fd[VDUSE_NR_VQS];
	int irq_fd[1 + VDUSE_NR_VQS];
	bool created;                      /* VDUSE_CREATE_DEV succeeded */
	bool vq_started[VDUSE_NR_VQS];     /* queue handed to the device at DRIVER_OK */
	uint8_t status;                    /* last status the kernel got OK for */
	unsigned irq_errors;               /* failed injections (warnings are rate-limited) */
	struct vduse_iotlb tlb;            /* the kernel's IOTLB, mirrored into the device */
};

int vduse_net_dev_config(const uint8_t config[VDUSE_NET_CONFIG_SIZE], uint64_t features, const char *name,
			 void *buf, size_t cap, size_t *len, struct err *e)
{
	size_t n = strnlen(name, VDUSE_NAME_MAX);
	/* the reserved words must be zero */
	struct vduse_dev_config c = { .vendor_id = 0, .device_id = VDUSE_ID_NET, .features = features,
				      .vq_num = VDUSE_NR_VQS, .vq_align = VDUSE_VQ_ALIGN,
				      .config_size = VDUSE_NET_CONFIG_SIZE };

	if (!n || n >= VDUSE_NAME_MAX)
		return err_set(e, -EINVAL, "VDUSE device name must be 1 to %d bytes long", VDUSE_NAME_MAX - 1);
	/* it names /dev/vduse/NAME, next to /dev/vduse/control */
	if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "control"))
		return err_set(e, -EINVAL, "'%s' cannot name a VDUSE device (/dev/vduse/NAME)", name);
	if (!(features & (1ull << VIRTIO_F_VERSION_1)))
		return err_set(e, -EINVAL, "VDUSE net needs VIRTIO_F_VERSION_1 (features 0x%" PRIx64 ")", features);
	if (!(features & (1ull << VIRTIO_F_ACCESS_PLATFORM)))
		return err_set(e, -EINVAL, "VDUSE needs VIRTIO_F_ACCESS_PLATFORM (features 0x%" PRIx64 ")", features);
	if (features & (1ull << VNET_F_CTRL_VQ))
		return err_set(e, -EINVAL, "VDUSE net (Linux 6.12) refuses VIRTIO_NET_F_CTRL_VQ (features 0x%" PRIx64 ")",
			       features);
	if (cap < VDUSE_NET_DEV_CONFIG_LEN)
		return err_set(e, -ENOSPC, "VDUSE device config needs %zu bytes", VDUSE_NET_DEV_CONFIG_LEN);
	memcpy(c.name, name, n);
	memcpy(buf, &c, offsetof(struct vduse_dev_config, config));
	memcpy((uint8_t *)buf + offsetof(struct vduse_dev_config, config), config, VDUSE_NET_CONFIG_SIZE);
	*len = VDUSE_NET_DEV_CONFIG_LEN;
	return 0;
}

/* ---- IOTLB mirror (vdpa/vduse_iotlb.c) ------------------------------------ */

static int vduse_get_fd(void *opaque, struct vduse_iotlb_entry *en)
{
	struct vduse_net *v = opaque;
	int fd = ioctl(v->dev_fd, VDUSE_IOTLB_GET_FD, en);

	return fd < 0 ? -errno : fd;
}

static const struct vduse_iotlb_ops vduse_kernel_iotlb = { .get_fd = vduse_get_fd };

/* ---- status and queues ---------------------------------------------------- */

static void vduse_drain(int fd)
{
	uint64_t n;

	while (read(fd, &n, sizeof(n)) == sizeof(n)) {
	}
}

/* Takes the queues and interrupt eventfds back from the device (at reset, or
 * when DRIVER_OK fails half-way). */
static void vduse_stop_queues(struct vduse_net *v)
{
	const struct vdpa_ops *ops = v->sim->ops;

	ops->set_config_call(v->sim, -1);
	for (unsigned i = 0; i < VDUSE_NR_VQS; i++) {
		struct vduse_vq_eventfd kick = { .index = i, .fd = VDUSE_EVENTFD_DEASSIGN };

		if (v->vq_started[i]) {
			ops->set_vring_enable(v->sim, i, false);
			ops->set_vring_kick(v->sim, i, -1);
			ops->set_vring_call(v->sim, i, -1);
			if (ioctl(v->dev_fd, VDUSE_VQ_SETUP_KICKFD, &kick) < 0)
				pr_warn("vduse-net %s: VDUSE_VQ_SETUP_KICKFD vq %u (deassign): %s", v->name, i,
					strerror(errno));
		}
		v->vq_started[i] = false;
		vduse_drain(v->kick_fd[i]); /* kicks of the queue's old life are stale */
	}
	for (unsigned i = 0; i < ARRAY_SIZE(v->irq_fd); i++)
		vduse_drain(v->irq_fd[i]); /* so are its interrupts */
}

/* DRIVER_OK: hand the device what the driver programmed into queue i. */
static int vduse_start_vq(struct vduse_net *v, unsigned i, struct err *e)
{
	const struct vdpa_ops *ops = v->sim->ops;
	struct vduse_vq_info info = { .index = i };
	struct vduse_vq_eventfd kick = { .index = i, .fd = v->kick_fd[i] };
	struct vdpa_vring_addr a;
	int r;

	if (ioctl(v->dev_fd, VDUSE_VQ_GET_INFO, &info) < 0)
		return err_errno(e, -errno, "VDUSE_VQ_GET_INFO vq %u", i);
	if (!info.ready)
		return 0; /* the driver left it disabled */
	if (!info.num || info.num > UINT16_MAX)
		return err_set(e, -EINVAL, "vq %u: size %u", i, info.num);
	a = (struct vdpa_vring_addr){ .desc = info.desc_addr, .avail = info.driver_addr, .used = info.device_addr };
	v->vq_started[i] = true; /* from here on vduse_stop_queues() undoes it */
	if ((r = ops->set_vring_num(v->sim, i, (uint16_t)info.num)) < 0 ||
	    (r = ops->set_vring_addr(v->sim, i, &a)) < 0 ||
	    (r = ops->set_vring_base(v->sim, i, info.split.avail_index)) < 0)
		return err_errno(e, r, "vq %u: size %u, rings 0x%" PRIx64 "/0x%" PRIx64 "/0x%" PRIx64 ", base %u", i,
				 info.num, a.desc, a.avail, a.used, info.split.avail_index);
	if (ioctl(v->dev_fd, VDUSE_VQ_SETUP_KICKFD, &kick) < 0)
		return err_errno(e, -errno, "VDUSE_VQ_SETUP_KICKFD vq %u", i);
	if ((r = ops->set_vring_kick(v->sim, i, v->kick_fd[i])) < 0 ||
	    (r = ops->set_vring_call(v->sim, i, v->irq_fd[1 + i])) < 0 ||
	    (r = ops->set_vring_enable(v->sim, i, true)) < 0)
		return err_errno(e, r, "vq %u: eventfds and enable", i);
	return 0;
}

/* FEATURES_OK: the driver's features, negotiated with the device the way a
 * virtio driver does it. */
static int vduse_negotiate(struct vduse_net *v, struct err *e)
{
	const struct vdpa_ops *ops = v->sim->ops;
	uint64_t f;
	uint8_t st = 0;
	int r;

	if (ioctl(v->dev_fd, VDUSE_DEV_GET_FEATURES, &f) < 0)
		return err_errno(e, -errno, "VDUSE_DEV_GET_FEATURES");
	if ((r = ops->set_status(v->sim, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER)) < 0 ||
	    (r = ops->set_features(v->sim, f)) < 0 ||
	    (r = ops->set_status(v->sim, VIRTIO_S_ACKNOWLEDGE | VIRTIO_S_DRIVER | VIRTIO_S_FEATURES_OK)) < 0 ||
	    (r = ops->get_status(v->sim, &st)) < 0)
		return err_errno(e, r, "device refused features 0x%" PRIx64, f);
	/* a device refuses FEATURES_OK by not keeping it */
	if (!(st & VIRTIO_S_FEATURES_OK))
		return err_set(e, -EINVAL, "device refused features 0x%" PRIx64, f);
	return 0;
}

static void vduse_reset(struct vduse_net *v)
{
	const struct vdpa_ops *ops = v->sim->ops;
	int r = ops->set_status(v->sim, 0);

	if (r < 0)
		pr_warn("vduse-net %s: device reset: %s", v->name, strerror(-r));
	vduse_stop_queues(v);
	vduse_iotlb_reapply(&v->tlb);
}

static int vduse_set_status(struct vduse_net *v, uint8_t st, struct err *e)
{
	const struct vdpa_ops *ops = v->sim->ops;
	uint8_t added = (uint8_t)(st & ~v->status), cur = 0;
	bool start = added & VIRTIO_S_DRIVER_OK;
	int r = 0;

	if (st == 0) {
		vduse_reset(v);
		v->status = 0;
		return 0;
	}
	if ((added & VIRTIO_S_FEATURES_OK) && (r = vduse_negotiate(v, e)) < 0)
		return r;
	for (unsigned i = 0; start && i < VDUSE_NR_VQS && r == 0; i++)
		r = vduse_start_vq(v, i, e);
	if (start && r == 0 && (r = ops->set_config_call(v->sim, v->irq_fd[0])) < 0)
		err_errno(e, r, "config interrupt eventfd");
	/* the device only takes status bits added to the ones it has */
	if (r == 0 && ((r = ops->get_status(v->sim, &cur)) < 0 || (r = ops->set_status(v->sim, cur | st)) < 0))
		err_errno(e, r, "device status 0x%x", st);
	if (r < 0) {
		if (start)
			vduse_stop_queues(v);
		return r;
	}
	v->status = st;
	return 0;
}

/* VDUSE_GET_VQ_STATE backs VHOST_GET_VRING_BASE: the next avail index. */
static int vduse_get_vq_state(struct vduse_net *v, uint32_t idx, struct vduse_vq_state *out, struct err *e)
{
	struct vduse_vq_info info = { .index = idx };
	uint16_t base;
	int r;

	if (idx >= VDUSE_NR_VQS)
		return err_set(e, -EINVAL, "GET_VQ_STATE: no vq %u", idx);
	out->index = idx;
	if (!v->vq_started[idx]) {
		/* the device never had the queue: the base the driver set is it */
		if (ioctl(v->dev_fd, VDUSE_VQ_GET_INFO, &info) < 0)
			return err_errno(e, -errno, "VDUSE_VQ_GET_INFO vq %u", idx);
		out->split.avail_index = info.split.avail_index;
		return 0;
	}
	/* The index is final only once the device stops consuming. VDUSE has
	 * no suspend message, so stop it here (the device can; the driver
	 * resets it before using it again). */
	if ((r = v->sim->ops->suspend(v->sim)) < 0 || (r = v->sim->ops->get_vring_base(v->sim, idx, &base)) < 0)
		return err_errno(e, r, "GET_VQ_STATE vq %u", idx);
	out->split.avail_index = base;
	return 0;
}

/* ---- the loop ------------------------------------------------------------- */

/* Reads one message and answers it. 0, or -errno when the fd is unusable. */
static int vduse_serve_request(struct vduse_net *v, struct err *e)
{
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	struct err me = { { 0 } };
	ssize_t n = read(v->dev_fd, &req, sizeof(req));
	int r;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : err_errno(e, -errno, "read from /dev/vduse/%s", v->name);
	if (n != sizeof(req))
		return err_set(e, -EPROTO, "read from /dev/vduse/%s: %zd bytes, not %zu", v->name, n, sizeof(req));
	memset(&resp, 0, sizeof(resp)); /* reserved words must be zero */
	resp.request_id = req.request_id;
	pr_debug("vduse-net %s: request %u: type %u, words 0x%x 0x%x 0x%x 0x%x", v->name, req.request_id, req.type,
		 req.padding[0], req.padding[1], req.padding[2], req.padding[3]);
	switch (req.type) {
	case VDUSE_SET_STATUS:
		r = vduse_set_status(v, req.s.status, &me);
		break;
	case VDUSE_GET_VQ_STATE:
		r = vduse_get_vq_state(v, req.vq_state.index, &resp.vq_state, &me);
		break;
	case VDUSE_UPDATE_IOTLB:
		r = vduse_iotlb_update(&v->tlb, req.iova.start, req.iova.last, &me);
		break;
	default:
		r = err_set(&me, -EOPNOTSUPP, "unknown request type %u", req.type);
		break;
	}
	resp.result = r < 0 ? VDUSE_REQ_RESULT_FAILED : VDUSE_REQ_RESULT_OK;
	if (r < 0)
		pr_warn("vduse-net %s: answering FAILED: %s", v->name, me.msg);
	/* ENOENT: the kernel gave up waiting (timeout); the device is broken */
	if (write(v->dev_fd, &resp, sizeof(resp)) != (ssize_t)sizeof(resp))
		pr_warn("vduse-net %s: answer to request %u: %s", v->name, req.request_id, strerror(errno));
	return 0;
}

/* An interrupt from the device (irq_fd[k]): pass it on to the kernel. */
static void vduse_irq(struct vduse_net *v, unsigned k)
{
	uint32_t idx = k - 1;
	int vq = (int)k - 1; /* -1: config */
	char what[32] = "VDUSE_DEV_INJECT_CONFIG_IRQ";
	uint64_t n;
	int r, err;

	if (read(v->irq_fd[k], &n, sizeof(n)) != sizeof(n))
		return; /* already drained */
	r = vq < 0 ? ioctl(v->dev_fd, VDUSE_DEV_INJECT_CONFIG_IRQ) : ioctl(v->dev_fd, VDUSE_VQ_INJECT_IRQ, &idx);
	if (r >= 0)
		return;
	err = errno;
	/* EINVAL: no DRIVER_OK in the kernel (a race with reset); warn at 1, 2, 4, ... */
	v->irq_errors++;
	if (v->irq_errors & (v->irq_errors - 1))
		return;
	if (vq >= 0)
		snprintf(what, sizeof(what), "VDUSE_VQ_INJECT_IRQ vq %d", vq);
	pr_warn("vduse-net %s: %s: %s (%u so far)", v->name, what, strerror(err), v->irq_errors);
}

static int vduse_serve(struct vduse_net *v, struct err *e)
{
	struct pollfd pf[2 + ARRAY_SIZE(v->irq_fd)];
	struct signalfd_siginfo si;
	int r;

	pf[0] = (struct pollfd){ .fd = v->sig_fd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = v->dev_fd, .events = POLLIN };
	for (unsigned k = 0; k < ARRAY_SIZE(v->irq_fd); k++)
		pf[2 + k] = (struct pollfd){ .fd = v->irq_fd[k], .events = POLLIN };
	for (;;) {
		if (poll(pf, ARRAY_SIZE(pf), -1) < 0) {
			if (errno == EINTR)
				continue;
			return err_errno(e, -errno, "poll");
		}
		if ((pf[0].revents & POLLIN) && read(v->sig_fd, &si, sizeof(si)) == sizeof(si)) {
			pr_info("vduse-net %s: stopping on %s", v->name, strsignal((int)si.ssi_signo));
			return 0;
		}
		/* POLLERR: a message timed out and the kernel gave the device up */
		if (pf[1].revents & (POLLERR | POLLHUP | POLLNVAL))
			return err_set(e, -EIO, "the kernel marked VDUSE device %s broken (a message went unanswered); "
						"it has to be created again", v->name);
		if ((pf[1].revents & POLLIN) && (r = vduse_serve_request(v, e)) < 0)
			return r;
		for (unsigned k = 0; k < ARRAY_SIZE(v->irq_fd); k++)
			if (pf[2 + k].revents & POLLIN)
				vduse_irq(v, k);
	}
}

/* ---- set-up and teardown -------------------------------------------------- */

static int vduse_fds_open(struct vduse_net *v, const sigset_t *sigs, struct err *e)
{
	v->sig_fd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (v->sig_fd < 0)
		return err_errno(e, -errno, "signalfd");
	for (unsigned i = 0; i < ARRAY_SIZE(v->kick_fd); i++)
		if ((v->kick_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			return err_errno(e, -errno, "eventfd");
	for (unsigned i = 0; i < ARRAY_SIZE(v->irq_fd); i++)
		if ((v->irq_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			return err_errno(e, -errno, "eventfd");
	return 0;
}

static void vduse_fds_close(struct vduse_net *v)
{
	if (v->sig_fd >= 0)
		close(v->sig_fd);
	for (unsigned i = 0; i < ARRAY_SIZE(v->kick_fd); i++)
		if (v->kick_fd[i] >= 0)
			close(v->kick_fd[i]);
	for (unsigned i = 0; i < ARRAY_SIZE(v->irq_fd); i++)
		if (v->irq_fd[i] >= 0)
			close(v->irq_fd[i]);
}

static int vduse_control_open(struct vduse_net *v, struct err *e)
{
	uint64_t api = VDUSE_API_VERSION;

	v->ctl_fd = open(VDUSE_CONTROL, O_RDWR | O_CLOEXEC);
	if (v->ctl_fd < 0 && errno == ENOENT)
		return err_set(e, -ENOENT, "%s does not exist: load the VDUSE module with 'modprobe vduse' "
					   "(virtio-net over VDUSE needs Linux >= 6.10)", VDUSE_CONTROL);
	if (v->ctl_fd < 0)
		return err_errno(e, -errno, "cannot open %s", VDUSE_CONTROL);
	/* API 0 is the only one 6.12 has; selecting it pins the layouts we use */
	if (ioctl(v->ctl_fd, VDUSE_SET_API_VERSION, &api) < 0)
		return err_errno(e, -errno, "VDUSE_SET_API_VERSION %" PRIu64, api);
	return 0;
}

static int vduse_sim_open(struct vduse_net *v, const struct vduse_net_options *o, uint64_t *features,
			  uint8_t config[VDUSE_NET_CONFIG_SIZE], struct err *e)
{
	struct sim_net_config c = { .max_pairs = 1, .mtu = 1500, .mac_table_max = 64,
				    .features_off = VDUSE_NET_FEATURES_OFF, .socket_path = o->socket_path,
				    .peer_path = o->peer_path, .tap = o->tap };
	pid_t pid = getpid();
	int r;

	if (o->mac_set) {
		memcpy(c.mac, o->mac, 6);
	} else { /* locally administered, unicast: 02:74:6e ("tn"), then the pid */
		const uint8_t mac[6] = { 0x02, 0x74, 0x6e, (uint8_t)(pid >> 16), (uint8_t)(pid >> 8), (uint8_t)pid };
		memcpy(c.mac, mac, 6);
	}
	v->sim = sim_net_create(&c, e);
	if (!v->sim)
		return -EINVAL;
	v->tlb = (struct vduse_iotlb){ .ops = &vduse_kernel_iotlb, .opaque = v, .dev = v->sim, .name = v->name };
	/* we are its only driver and need none of the backend extras */
	if ((r = v->sim->ops->set_backend_features(v->sim, 0)) < 0 ||
	    (r = v->sim->ops->get_features(v->sim, features)) < 0 ||
	    (r = v->sim->ops->get_config(v->sim, 0, config, VDUSE_NET_CONFIG_SIZE)) < 0)
		return err_errno(e, r, "software vDPA device set-up");
	/* VDUSE offers the device only to drivers that accept an IOMMU (ACCESS_PLATFORM) */
	*features |= (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM);
	return 0;
}

static int vduse_dev_create(struct vduse_net *v, uint64_t features,
			    const uint8_t config[VDUSE_NET_CONFIG_SIZE], struct err *e)
{
	uint8_t blob[VDUSE_NET_DEV_CONFIG_LEN];
	uint16_t qmax = v->sim->ops->vring_num_max(v->sim);
	char path[sizeof("/dev/vduse/") + VDUSE_NAME_MAX];
	size_t len;
	int r;

	r = vduse_net_dev_config(config, features, v->name, blob, sizeof(blob), &len, e);
	if (r < 0)
		return r;
	if (ioctl(v->ctl_fd, VDUSE_CREATE_DEV, blob) < 0) {
		r = -errno;
		if (r == -EPERM)
			return err_set(e, r, "VDUSE_CREATE_DEV %s: not permitted: a VDUSE net device needs "
					     "CAP_NET_ADMIN (run as root)", v->name);
		if (r == -EEXIST)
			return err_set(e, r, "a VDUSE device named '%s' already exists (another 'tern vduse-net', "
					     "or one left behind)", v->name);
		if (r == -EINVAL)
			return err_set(e, r, "VDUSE_CREATE_DEV %s: the kernel refused the device (EINVAL): virtio-net "
					     "over VDUSE needs Linux >= 6.10, VIRTIO_F_VERSION_1 and "
					     "VIRTIO_F_ACCESS_PLATFORM, and no VIRTIO_NET_F_CTRL_VQ (features 0x%" PRIx64 ")",
				       v->name, features);
		return err_errno(e, r, "VDUSE_CREATE_DEV %s", v->name);
	}
	v->created = true;
	snprintf(path, sizeof(path), "/dev/vduse/%s", v->name);
	/* where udev makes the node, it may lag behind CREATE_DEV a little */
	for (int i = 0; i < 100; i++) {
		v->dev_fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (v->dev_fd >= 0 || errno != ENOENT)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	if (v->dev_fd < 0)
		return err_errno(e, -errno, "cannot open %s", path);
	/* every queue must be set up before `vdpa dev add` can succeed */
	for (unsigned i = 0; i < VDUSE_NR_VQS; i++) {
		struct vduse_vq_config q = { .index = i, .max_size = qmax };

		if (ioctl(v->dev_fd, VDUSE_VQ_SETUP, &q) < 0)
			return err_errno(e, -errno, "VDUSE_VQ_SETUP vq %u (max size %u)", i, qmax);
	}
	return 0;
}

/* Closes the device fd, then destroys the VDUSE device: EBUSY while the fd
 * is open or a vdpa device sits on it ('vdpa dev del' not run yet). */
static void vduse_dev_destroy(struct vduse_net *v)
{
	char name[VDUSE_NAME_MAX] = { 0 }; /* the kernel copies all of it */
	int err = 0;

	if (v->dev_fd >= 0)
		close(v->dev_fd);
	v->dev_fd = -1;
	if (!v->created)
		return;
	memcpy(name, v->name, strnlen(v->name, VDUSE_NAME_MAX - 1));
	for (int i = 0; i < VDUSE_DESTROY_TRIES; i++) {
		if (ioctl(v->ctl_fd, VDUSE_DESTROY_DEV, name) == 0) {
			v->created = false;
			return;
		}
		err = errno;
		if (err != EBUSY)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	pr_warn("vduse-net %s: VDUSE_DESTROY_DEV: %s%s", v->name, strerror(err),
		err == EBUSY ? " (the vdpa device still exists: 'vdpa dev del NAME' first; the VDUSE device stays)"
			     : "");
}

int vduse_net_run(const struct vduse_net_options *o, struct err *e)
{
	struct vduse_net *v = calloc(1, sizeof(*v));
	uint8_t config[VDUSE_NET_CONFIG_SIZE];
	sigset_t sigs, old;
	uint64_t features;
	int r;

	if (!v)
		return err_set(e, -ENOMEM, "out of memory");
	v->name = o->name;
	v->ctl_fd = v->dev_fd = v->sig_fd = -1;
	memset(v->kick_fd, -1, sizeof(v->kick_fd));
	memset(v->irq_fd, -1, sizeof(v->irq_fd));
	/* Blocked before the device thread exists, so it inherits the mask and
	 * the signals reach the signalfd instead of killing the process. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);

	r = vduse_fds_open(v, &sigs, e);
	if (r < 0)
		goto out_fds;
	/* first: a machine without VDUSE fails before any wire is opened */
	r = vduse_control_open(v, e);
	if (r < 0)
		goto out_control;
	r = vduse_sim_open(v, o, &features, config, e);
	if (r < 0)
		goto out_sim;
	r = vduse_dev_create(v, features, config, e);
	if (r < 0)
		goto out_dev;
	/* from here the daemon reads what the kernel and the driver give it;
	 * the device's thread, running since its creation, gets the same
	 * filter (TSYNC), which includes the device calls */
	r = sandbox_enter(&o->sandbox, SANDBOX_VDUSE, "vduse-net", e);
	if (r < 0)
		goto out_dev;
	printf("vduse-net %s ready\n", v->name);
	fflush(stdout);
	pr_info("vduse-net %s: 'vdpa dev add name %s mgmtdev vduse' makes it a /dev/vhost-vdpa-N", v->name,
		v->name);
	r = vduse_serve(v, e);

out_dev:
	vduse_dev_destroy(v);
out_sim:
	if (v->sim)
		v->sim->ops->destroy(v->sim); /* its thread is gone: now the memory can go */
	vduse_iotlb_free(&v->tlb);
out_control:
	if (v->ctl_fd >= 0)
		close(v->ctl_fd);
out_fds:
	vduse_fds_close(v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(v);
	return r;
}
