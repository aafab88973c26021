/* SPDX-License-Identifier: MIT */
/* devices/disk_config.c - the --disk option (disk_config.h). */
#include "devices/disk_config.h"

#include <errno.h>
#include <string.h>

static int parse_on_off(const char *key, const char *val, bool *out, struct err *e)
{
	if (strcmp(val, "on") && strcmp(val, "off"))
		return err_set(e, -EINVAL, "--disk: %s '%s' is not on or off", key, val);
	*out = !strcmp(val, "on");
	return 0;
}

static int parse_key(struct disk_config *c, const char *key, const char *val, struct err *e)
{
	uint64_t v;

	if (!strcmp(key, "path")) {
		if (!*val || strlen(val) >= sizeof(c->path))
			return err_set(e, -EINVAL, "--disk: path '%s' is empty or too long", val);
		strcpy(c->path, val);
		return 0;
	}
	if (!strcmp(key, "readonly"))
		return parse_on_off(key, val, &c->readonly, e);
	if (!strcmp(key, "discard"))
		return parse_on_off(key, val, &c->discard, e);
	if (!strcmp(key, "serial")) {
		if (strlen(val) > DISK_SERIAL_LEN)
			return err_set(e, -EINVAL, "--disk: serial '%s' is longer than %d bytes", val, DISK_SERIAL_LEN);
		for (const char *p = val; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				return err_set(e, -EINVAL, "--disk: serial '%s' is not printable ASCII", val);
		strcpy(c->serial, val);
		return 0;
	}
	if (!strcmp(key, "queues")) {
		if (parse_u64(val, 1, DISK_MAX_QUEUES, &v) < 0)
			return err_set(e, -EINVAL, "--disk: queues '%s' is not 1..%d", val, DISK_MAX_QUEUES);
		c->queues = (unsigned)v;
		return 0;
	}
	if (!strcmp(key, "cache")) {
		if (!strcmp(val, "none"))
			c->cache = DISK_CACHE_NONE;
		else if (!strcmp(val, "writeback"))
			c->cache = DISK_CACHE_WRITEBACK;
		else
			return err_set(e, -EINVAL, "--disk: cache '%s' is not none or writeback", val);
		return 0;
	}
	return err_set(e, -EINVAL, "--disk: unknown key '%s' (path, readonly, serial, queues, cache, discard)", key);
}

int disk_config_parse(const char *spec, struct disk_config *c, struct err *e)
{
	char buf[4400], *save = NULL;

	memset(c, 0, sizeof(*c));
	c->queues = 1;
	c->cache = DISK_CACHE_WRITEBACK;
	if (strlen(spec) >= sizeof(buf))
		return err_set(e, -EINVAL, "--disk: specification too long");
	strcpy(buf, spec);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');
		if (!val)
			return err_set(e, -EINVAL, "--disk: '%s' is not key=value", tok);
		*val++ = '\0';
		int r = parse_key(c, tok, val, e);
		if (r < 0)
			return r;
	}
	if (!c->path[0])
		return err_set(e, -EINVAL, "--disk: path=IMAGE is required");
	return 0;
}
