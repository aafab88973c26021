/* SPDX-License-Identifier: MIT */
/* devices/net_config.c - the --net option (net_config.h). */
#include "devices/net_config.h"

#include <errno.h>
#include <string.h>

#include "vdpa/sim_net.h"

int net_config_parse(const char *spec, struct net_config *c, struct err *e)
{
	char buf[512], *save = NULL, *tok;
	uint64_t v;

	memset(c, 0, sizeof(*c));
	c->queues = 0; /* 1 for vdpa-sim, the device's pairs for vhost-vdpa */
	c->svq = NET_SVQ_AUTO;
	if (strlen(spec) >= sizeof(buf))
		return err_set(e, -EINVAL, "--net: specification too long");
	strcpy(buf, spec);
	tok = strtok_r(buf, ",", &save);
	if (!tok || (strcmp(tok, "vdpa-sim") && strcmp(tok, "vhost-vdpa")))
		return err_set(e, -EINVAL, "--net: unknown backend '%s' (expected vdpa-sim or vhost-vdpa)", tok ? tok : "");
	c->kernel = !strcmp(tok, "vhost-vdpa");
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');
		if (!val)
			return err_set(e, -EINVAL, "--net: '%s' is not key=value", tok);
		*val++ = '\0';
		static const char *const sim_only[] = { "socket", "peer", "tap", "mac", "cost", "hash-report", "strict" };
		for (unsigned i = 0; c->kernel && i < sizeof(sim_only) / sizeof(sim_only[0]); i++)
			if (!strcmp(tok, sim_only[i]))
				return err_set(e, -EINVAL, "--net: %s= is for vdpa-sim; a vhost-vdpa device's wire and MAC "
							   "are set where it is created (vdpa dev add, tern vduse-net)", tok);
		if (!strcmp(tok, "dev")) {
			if (!c->kernel)
				return err_set(e, -EINVAL, "--net: dev= is for vhost-vdpa");
			if (!*val || strlen(val) >= sizeof(c->dev))
				return err_set(e, -EINVAL, "--net: dev '%s' is empty or too long", val);
			strcpy(c->dev, val);
		} else if (!strcmp(tok, "socket") || !strcmp(tok, "peer") || !strcmp(tok, "tap")) {
			char *dst = tok[0] == 's' ? c->socket : tok[0] == 'p' ? c->peer : c->tap;
			size_t cap = tok[0] == 't' ? sizeof(c->tap) : sizeof(c->socket);
			if (!*val || strlen(val) >= cap)
				return err_set(e, -EINVAL, "--net: %s '%s' is empty or too long", tok, val);
			strcpy(dst, val);
		} else if (!strcmp(tok, "mac")) {
			if (parse_mac(val, c->mac) < 0)
				return err_set(e, -EINVAL, "--net: mac '%s' is not a unicast xx:xx:xx:xx:xx:xx", val);
			c->mac_set = true;
		} else if (!strcmp(tok, "queues")) {
			if (parse_u64(val, 1, SIM_NET_MAX_PAIRS, &v) < 0)
				return err_set(e, -EINVAL, "--net: queues '%s' is not 1..%d", val, SIM_NET_MAX_PAIRS);
			c->queues = (unsigned)v;
		} else if (!strcmp(tok, "svq")) {
			if (!strcmp(val, "off"))
				c->svq = NET_SVQ_OFF;
			else if (!strcmp(val, "on"))
				c->svq = NET_SVQ_ON;
			else if (!strcmp(val, "auto"))
				c->svq = NET_SVQ_AUTO;
			else
				return err_set(e, -EINVAL, "--net: svq '%s' is not off, on or auto", val);
		} else if (!strcmp(tok, "switch")) {
			if (!strcmp(val, "auto"))
				c->strategy = 0;
			else if (parse_u64(val, 1, 4, &v) == 0)
				c->strategy = (unsigned)v;
			else
				return err_set(e, -EINVAL, "--net: switch '%s' is not auto or a strategy 1..4", val);
		} else if (!strcmp(tok, "hash-report")) {
			if (strcmp(val, "on") && strcmp(val, "off"))
				return err_set(e, -EINVAL, "--net: hash-report '%s' is not on or off", val);
			c->hash_report = !strcmp(val, "on");
		} else if (!strcmp(tok, "strict")) {
			if (strcmp(val, "on") && strcmp(val, "off"))
				return err_set(e, -EINVAL, "--net: strict '%s' is not on or off", val);
			c->strict = !strcmp(val, "on");
		} else if (!strcmp(tok, "cost")) {
			if (strcmp(val, "mlx5") && strcmp(val, "none"))
				return err_set(e, -EINVAL, "--net: cost '%s' is not mlx5 or none", val);
			c->cost_mlx5 = !strcmp(val, "mlx5");
		} else if (!strcmp(tok, "features-off")) {
			if (parse_u64(val, 0, UINT64_MAX, &c->features_off) < 0)
				return err_set(e, -EINVAL, "--net: features-off '%s' is not a number", val);
		} else if (!strcmp(tok, "backend-off")) {
			if (parse_u64(val, 0, UINT64_MAX, &c->backend_off) < 0)
				return err_set(e, -EINVAL, "--net: backend-off '%s' is not a number", val);
		} else {
			return err_set(e, -EINVAL, "--net: unknown key '%s'", tok);
		}
	}
	if (!c->kernel && !c->queues)
		c->queues = 1;
	if (c->kernel)
		return c->dev[0] ? 0 : err_set(e, -EINVAL, "--net: vhost-vdpa needs dev=/dev/vhost-vdpa-N");
	if (!c->tap[0] && !(c->socket[0] && c->peer[0]))
		return err_set(e, -EINVAL, "--net: give socket=PATH,peer=PATH or tap=NAME");
	if (c->tap[0] && c->socket[0])
		return err_set(e, -EINVAL, "--net: socket= and tap= are exclusive");
	return 0;
}

