/* SPDX-License-Identifier: MIT */
/* devices/state.c - nodes of the state tree and their versions (state.h). */
#include "devices/state.h"

#include <errno.h>
#include <libfdt.h>
#include <string.h>

int state_fdt_err(struct err *e, const char *what, int r)
{
	return err_set(e, r == -FDT_ERR_NOSPACE ? -ENOBUFS : -ENOSPC, "state tree: %s: %s", what, fdt_strerror(r));
}

int state_begin(void *fdt, const char *name, const struct state_version *v, struct err *e)
{
	fdt32_t cells[2] = { cpu_to_fdt32(v->major), cpu_to_fdt32(v->minor) };
	int r = fdt_begin_node(fdt, name);

	if (!r)
		r = fdt_property(fdt, "version", cells, sizeof(cells));
	return r < 0 ? state_fdt_err(e, name, r) : 0;
}

int state_end(void *fdt, const char *name, struct err *e)
{
	int r = fdt_end_node(fdt);

	return r < 0 ? state_fdt_err(e, name, r) : 0;
}

int state_put(void *fdt, const char *prop, const void *p, size_t len, struct err *e)
{
	int r = fdt_property(fdt, prop, p, (int)len);

	return r < 0 ? state_fdt_err(e, prop, r) : 0;
}

int state_find(const void *fdt, const char *name, const struct state_version *v, unsigned *minor, struct err *e)
{
	int node = fdt_subnode_offset(fdt, 0, name), len = 0;
	const fdt32_t *cells = node < 0 ? NULL : fdt_getprop(fdt, node, "version", &len);
	uint32_t major, min;

	if (node < 0)
		return err_set(e, -EPROTO, "state: %s is missing", name);
	if (!cells || (len != 4 && len != 8))
		return err_set(e, -EPROTO, "state: %s has no version", name);
	major = fdt32_to_cpu(cells[0]);
	min = len == 8 ? fdt32_to_cpu(cells[1]) : 0;
	if (major != v->major || min > v->minor || min < v->floor)
		return err_set(e, -EPROTO, "state: %s is version %u.%u; this tern reads %u.%u to %u.%u", name, major,
			       min, v->major, v->floor, v->major, v->minor);
	if (minor)
		*minor = min;
	return node;
}

int state_get_optional(const void *fdt, int node, const char *name, const char *prop, void *dst, size_t len,
		       struct err *e)
{
	int plen = 0;
	const void *p = fdt_getprop(fdt, node, prop, &plen);

	if (!p)
		return 0;
	if ((size_t)plen != len)
		return err_set(e, -EPROTO, "state: %s's %s has %d bytes, not %zu (from another tern version?)", name,
			       prop, plen, len);
	memcpy(dst, p, len);
	return 1;
}

int state_get(const void *fdt, int node, const char *name, const char *prop, void *dst, size_t len, struct err *e)
{
	int r = state_get_optional(fdt, node, name, prop, dst, len, e);

	return r == 0 ? err_set(e, -EPROTO, "state: %s lacks its %s", name, prop) : r < 0 ? r : 0;
}

int state_put_regs(void *fdt, const char *name, const struct state_version *v, const void *p, size_t len,
		   struct err *e)
{
	int r = state_begin(fdt, name, v, e);

	if (r == 0)
		r = state_put(fdt, "regs", p, len, e);
	return r < 0 ? r : state_end(fdt, name, e);
}

int state_get_regs(const void *fdt, const char *name, const struct state_version *v, void *dst, size_t len,
		   struct err *e)
{
	int node = state_find(fdt, name, v, NULL, e);

	return node < 0 ? node : state_get(fdt, node, name, "regs", dst, len, e);
}
