/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the control API's request handling (reliability target
 * A6), with a machine that accepts everything. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void info(void *o, struct api_vm_info *i)
{
	(void)o;
	memset(i, 0, sizeof(*i));
	i->vcpus = 1;
	i->memory = 1 << 20;
	i->kernel = "k";
	i->cmdline = "";
}

static enum api_vm_state state(void *o)
{
	(void)o;
	return API_VM_RUNNING;
}

static int ok(void *o, struct err *e)
{
	(void)o, (void)e;
	return 0;
}

static void shutdown_vm(void *o)
{
	(void)o;
}

static int snap(void *o, struct api_snapshot_req *r, struct err *e)
{
	(void)o, (void)e;
	return r->path[0] ? 0 : -1;
}

static const struct api_ops ops = {
	.info = info, .state = state, .pause = ok, .resume = ok, .shutdown = shutdown_vm, .snapshot = snap,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "PUT", "POST", "DELETE" };
	static const char *const paths[] = { "/vm", "/vm/status", "/vm/pause", "/vm/resume", "/vm/snapshot",
					     "/vm/shutdown", "/", "/vm/x" };
	struct api_reply r;
	char *body;

	if (size < 1)
		return 0;
	body = malloc(size);
	memcpy(body, data + 1, size - 1);
	body[size - 1] = '\0';
	memset(&r, 0, sizeof(r));
	if (api_handle(&ops, NULL, methods[data[0] % 4], paths[(data[0] >> 2) % 8], body, size - 1, &r) == 0) {
		if (r.status < 200 || r.status > 599 || !r.body)
			abort();
		api_reply_release(&r);
	}
	free(body);
	return 0;
}
