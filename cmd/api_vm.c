/* SPDX-License-Identifier: MIT */
#include "cmd/api_vm.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio_net.h"
#include "migrate/migrate.h"
#include "migrate/snapshot.h"
#include "vmm/vm.h"

static enum api_vm_state api_vm_state(void *opaque)
{
	struct api_vm *av = opaque;
	struct vm *vm = av->vm;
	bool stopping;

	if (!atomic_load(&av->ready))
		return API_VM_INCOMING;
	pthread_mutex_lock(&vm->lock);
	stopping = vm->exit_requested;
	pthread_mutex_unlock(&vm->lock);
	if (stopping)
		return API_VM_STOPPING;
	return vm_is_paused(vm) ? API_VM_PAUSED : API_VM_RUNNING;
}

static void api_vm_info(void *opaque, struct api_vm_info *info)
{
	struct api_vm *av = opaque;
	const struct vm_config *cfg = &av->vm->cfg;
	uint64_t now = now_ns();

	memset(info, 0, sizeof(*info));
	if (!atomic_load(&av->ready)) {
		info->state = API_VM_INCOMING;
		return;
	}
	info->vcpus = cfg->nr_cpus;
	memcpy(info->id, cfg->vm_id, sizeof(info->id));
	info->memory = cfg->mem_size;
	info->kernel = cfg->kernel;
	info->initrd = cfg->initrd;
	info->cmdline = cfg->cmdline;
	info->uptime_ms = now > av->start_ns ? (now - av->start_ns) / 1000000u : 0;
	info->state = api_vm_state(opaque);
	for (unsigned i = 0; i < cfg->nr_nets && i < VM_MAX_NETS; i++)
		if (av->vm->nets[i])
			net_dev_info(av->vm->nets[i], &info->net[info->nr_nets++]);
	for (unsigned i = 0; i < cfg->nr_disks && i < VM_MAX_DISKS; i++)
		if (av->vm->disks[i])
			blk_dev_info(av->vm->disks[i], &info->disk[info->nr_disks++]);
}

/* The API thread is the only caller of vm_pause()/vm_resume() and handles
 * one request at a time, which is the serialisation they require. */
/* A migration pauses and resumes the VM itself: nothing else may then. */
static int refuse_if_migrating(struct api_vm *av, struct err *e)
{
	if (!atomic_load(&av->ready))
		return err_set(e, -EBUSY, "the VM is waiting for an incoming migration");
	/* handed over: running it here too would make two copies */
	if (migrate_handed_over(av->vm))
		return err_set(e, -EBUSY, "this VM was handed over to its migration's destination: it runs there now");
	return migrate_busy(av->vm) ? err_set(e, -EBUSY, "a migration is in progress") : 0;
}

static int api_vm_pause(void *opaque, struct err *e)
{
	struct api_vm *av = opaque;
	int r = refuse_if_migrating(av, e);

	if (r == 0)
		vm_pause(av->vm);
	return r;
}

static int api_vm_resume(void *opaque, struct err *e)
{
	struct api_vm *av = opaque;
	int r = refuse_if_migrating(av, e);

	if (r == 0) {
		migrate_thaw(av->vm);
		vm_resume(av->vm);
	}
	return r;
}

/* Pauses (if running), writes the snapshot, and leaves the VM running if
 * it ran and the request did not say otherwise; a paused VM stays paused
 * (its operator paused it, or a hand-over left it so on purpose: then its
 * devices stay frozen through the snapshot too). */
static int api_vm_snapshot(void *opaque, struct api_snapshot_req *req, struct err *e)
{
	struct api_vm *av = opaque;
	bool unresolved = migrate_unresolved(av->vm);
	struct snapshot_opts o = { .diff = req->diff, .devices_frozen = unresolved };
	int r = refuse_if_migrating(av, e);

	if (r < 0)
		return r;
	bool was_paused = vm_is_paused(av->vm);
	if (!unresolved)
		migrate_thaw(av->vm); /* the snapshot freezes the devices itself */
	vm_pause(av->vm);
	r = snapshot_create(av->vm, req->path, &o, e);
	req->pages = o.pages;
	if (!was_paused && (r < 0 || req->resume))
		vm_resume(av->vm);
	return r;
}

static int api_vm_migrate(void *opaque, const struct mig_params *p, struct err *e)
{
	struct api_vm *av = opaque;

	if (!atomic_load(&av->ready))
		return err_set(e, -EBUSY, "the VM is waiting for an incoming migration");
	return migrate_start(av->vm, p, e);
}

static int api_vm_migrate_cancel(void *opaque, struct err *e)
{
	struct api_vm *av = opaque;

	if (!atomic_load(&av->ready))
		return err_set(e, -EBUSY, "the VM is waiting for an incoming migration, not migrating out");
	return migrate_cancel(av->vm, e);
}

static void api_vm_migration(void *opaque, struct mig_progress *out, bool results)
{
	struct api_vm *av = opaque;

	if (!atomic_load(&av->ready)) {
		memset(out, 0, sizeof(*out)); /* no outgoing migration */
		return;
	}
	migrate_progress(av->vm, out, results);
}

static void api_vm_shutdown(void *opaque)
{
	struct api_vm *av = opaque;
	struct mig_progress p;
	uint64_t one = 1;

	if (!atomic_load(&av->ready)) {
		if (write(av->cancel_fd, &one, sizeof(one)) < 0)
			pr_warn("api: cannot stop the incoming migration: %s", strerror(errno));
		/* the VM may have started meanwhile: main() looks at
		 * cancel_fd once after setting ready (and then sends no
		 * DONE), so between the two one of us sees the request (both
		 * orders are seq_cst) */
		if (!atomic_load(&av->ready))
			return;
	}
	migrate_progress(av->vm, &p, false);
	if (p.state == MIG_S_COMPLETED)
		vm_request_exit(av->vm, VM_EXIT_OK, "migrated to %s", p.to);
	else
		vm_request_exit(av->vm, VM_EXIT_OK, "api: shutdown requested");
}

const struct api_ops api_vm_ops = {
	.info = api_vm_info,
	.state = api_vm_state,
	.pause = api_vm_pause,
	.resume = api_vm_resume,
	.shutdown = api_vm_shutdown,
	.snapshot = api_vm_snapshot,
	.migrate = api_vm_migrate,
	.migrate_cancel = api_vm_migrate_cancel,
	.migration = api_vm_migration,
};
