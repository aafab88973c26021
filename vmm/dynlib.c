/* SPDX-License-Identifier: MIT */
/* vmm/dynlib.c - see dynlib.h. */
#include "vmm/dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>

void *dynlib_open(const char *soname, const char *package, const struct dynlib_sym *syms, size_t n, void *fns,
		  struct err *e)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		err_set(e, -ENOENT, "cannot load %s (Debian package %s): %s", soname, package, dlerror());
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		void *p = dlsym(h, syms[i].name);
		if (!p) {
			err_set(e, -ENOENT, "%s lacks %s: %s", soname, syms[i].name, dlerror());
			dlclose(h);
			return NULL;
		}
		/* a function's address as dlsym gives it (POSIX): copied, as C
		 * has no conversion from void * to a function pointer */
		memcpy((char *)fns + syms[i].offset, &p, sizeof(p));
	}
	return h;
}

void dynlib_close(void *handle)
{
	if (handle)
		dlclose(handle);
}

void *dynlib_preload(const char *soname)
{
	return dlopen(soname, RTLD_NOW | RTLD_LOCAL);
}
