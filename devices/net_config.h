/* SPDX-License-Identifier: MIT */
/*
 * devices/net_config.h - what one --net option asks for, parsed once (by
 * the command line, into struct vm_config) into a typed configuration
 * that the virtio-net front end builds its device from.
 */
#ifndef TERN_DEVICES_NET_CONFIG_H
#define TERN_DEVICES_NET_CONFIG_H

#include "vmm/util.h"

/* svq=: when the data queues go through shadow virtqueues. */
enum net_svq {
	NET_SVQ_AUTO, /* while a migration tracks dirty pages (the default) */
	NET_SVQ_ON,   /* always */
	NET_SVQ_OFF,  /* never: the device is frozen while pages are tracked */
};

/* What --net asks for. */
struct net_config {
	char socket[108], peer[108]; /* UNIX socket paths, or "" */
	char tap[16];                /* TAP interface name, or "" */
	bool kernel;                 /* vhost-vdpa,dev=: the kernel's device */
	char dev[108];               /* its path */
	uint8_t mac[6];
	bool mac_set;
	unsigned queues;        /* queue pairs */
	uint64_t features_off;  /* virtio feature bits to withhold */
	uint64_t backend_off;   /* backend feature bits to withhold */
	bool cost_mlx5;         /* cost=mlx5: the device-cost model */
	bool hash_report;       /* hash-report=on: vdpa-sim offers HASH_REPORT */
	bool strict;            /* strict=on: vdpa-sim as strict as hardware (sim_net.h) */
	enum net_svq svq;
	unsigned strategy;      /* switch=1..4, or 0: the best the device allows */
};

/* Parses "vhost-vdpa,dev=PATH,..." or "vdpa-sim,socket=A,peer=B,mac=..,
 * queues=N,..." (docs/cli.md) into *c; -EINVAL with a message naming the
 * bad key otherwise. */
int net_config_parse(const char *spec, struct net_config *c, struct err *e);

#endif
