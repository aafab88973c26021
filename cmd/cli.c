/* SPDX-License-Identifier: MIT */
#include "cmd/cli.h"

#include "devices/virtio_net.h"
#include "migrate/transport.h"
#include "cmd/client.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

#define DEFAULT_MEMORY (256 * MiB)

void cli_usage(FILE *f)
{
	fprintf(f,
		"Usage: tern COMMAND [OPTIONS]\n"
		"\n"
		"tern is a small KVM virtual machine monitor for microVMs.\n"
		"\n"
		"Commands:\n"
		"  run            boot a microVM (see 'tern run --help')\n"
		"  vduse-net      export tern's software vDPA net device through VDUSE\n"
		"  vdpa-probe     show what a kernel vhost-vdpa device offers\n");
	client_usage_commands(f);
	fprintf(f,
		"  help           show this help\n"
		"  version        show the version\n"
		"\n"
		"The control API commands talk to a tern started with 'tern run --api-sock\n"
		"PATH' and take --api-sock PATH (see 'tern info --help' and docs/api.md).\n"
		"\n"
		"Options:\n"
		"  -h, --help     show this help\n"
		"  -V, --version  show the version\n");
}

void cli_usage_run(FILE *f)
{
	fprintf(f,
		"Usage: tern run --kernel PATH [OPTIONS]\n"
		"       tern run --restore DIR [--restore-memory map|copy] [--restore-parents DIR]\n"
		"                [--net SPEC]... [--disk SPEC]... [--track-dirty] [--api-sock PATH]\n"
		"                [--test-device[=PATH]]\n"
		"       tern run --incoming tcp:HOST:PORT|unix:PATH [--net SPEC]... [--disk SPEC]...\n"
		"                [--tls-dir DIR] [--incoming-timeout S] [--expect-vm ID]\n"
		"                [--max-memory SIZE] [--max-cpus N] [--api-sock PATH]\n"
		"                [--test-device[=PATH]]\n"
		"\n"
		"Boots a microVM. Its serial console (COM1) is tern's stdin and stdout;\n"
		"when stdin is a terminal it is switched to raw mode. Type Ctrl-A x to quit,\n"
		"Ctrl-A Ctrl-A to send a Ctrl-A to the guest.\n"
		"\n"
		"Options:\n"
		"  -k, --kernel PATH        kernel: bzImage, ELF vmlinux, or ELF with a PVH note\n"
		"  -i, --initrd PATH        initial ramdisk\n"
		"  -c, --cmdline STR        kernel command line (default: empty)\n"
		"  -n, --cpus N             number of vCPUs, 1..64 (default: 1)\n"
		"  -m, --memory SIZE        guest RAM; K, M, G or T suffix (default: 256M)\n"
		"      --boot-protocol P    auto|linux|pvh (default: auto: a bzImage uses the\n"
		"                           64-bit Linux boot protocol, an ELF uses PVH if it has\n"
		"                           the PVH note, else the 64-bit Linux protocol)\n"
		"      --test-device[=PATH] map tern's test device (firmware/abi.h): the test\n"
		"                           guest's reports are written to PATH (default:\n"
		"                           stderr) and its requested status becomes tern's\n"
		"      --net SPEC           a virtio-net device on a vDPA device; repeatable (up\n"
		"                           to 4). SPEC is vhost-vdpa,dev=/dev/vhost-vdpa-N[,OPTS]\n"
		"                           (the kernel's vhost-vdpa device: a vDPA NIC, or tern's\n"
		"                           software device exported by 'tern vduse-net'; its MAC\n"
		"                           and wire are set where it was created), or tern's\n"
		"                           software device: vdpa-sim,socket=PATH,peer=PATH[,OPTS]\n"
		"                           (a UNIX datagram socket bound at PATH, joined to the\n"
		"                           one at peer=PATH) or vdpa-sim,tap=NAME[,OPTS] (a TAP\n"
		"                           interface, created if absent). OPTS: queues=N (queue\n"
		"                           pairs, 1..16; for vhost-vdpa, the device's count),\n"
		"                           features-off=MASK and backend-off=MASK (feature bits\n"
		"                           withheld), mac=xx:xx:xx:xx:xx:xx (vdpa-sim),\n"
		"                           cost=mlx5|none (vdpa-sim: delays modelling a hardware\n"
		"                           NIC's control path; default none), hash-report=on|off\n"
		"                           (vdpa-sim: offer VIRTIO_NET_F_HASH_REPORT, a hash in\n"
		"                           each received frame's header; default off),\n"
		"                           strict=on|off (vdpa-sim: serve a queue found empty\n"
		"                           only after a kick and forget kicks sent while it is\n"
		"                           suspended or reset, as a hardware NIC may; default\n"
		"                           off), svq=auto|on|off (shadow\n"
		"                           virtqueues during migrations, always, or never;\n"
		"                           default auto), switch=auto|1|2|3|4 (the strategy of\n"
		"                           the switch into them; default the best the device\n"
		"                           allows)\n"
		"      --disk SPEC          a virtio-blk disk; repeatable (up to 8). SPEC is\n"
		"                           path=IMAGE[,readonly=on][,serial=ID][,queues=N]\n"
		"                           [,cache=none|writeback][,discard=on]: a raw image\n"
		"                           (a regular file, sparse is fine, or a block device;\n"
		"                           no commas in its path), locked so that no other\n"
		"                           process writes it while tern runs (read-only disks\n"
		"                           share a read lock); serial: up to 20 printable\n"
		"                           bytes the guest reads with GET_ID; queues: 1..8\n"
		"                           (default 1); cache=none opens it O_DIRECT where the\n"
		"                           filesystem allows (default writeback: the page\n"
		"                           cache; a guest flush is an fdatasync either way);\n"
		"                           discard=on passes the guest's discards on as holes\n"
		"      --restore DIR        resume the machine saved in snapshot directory DIR\n"
		"                           (its vCPUs, memory and devices); give --net again,\n"
		"                           once per saved network device (new wires are fine),\n"
		"                           and --disk once per saved disk (the image path may\n"
		"                           change; an image of another size is refused);\n"
		"                           a diff snapshot needs its parents where they were\n"
		"      --restore-memory M   map: map the snapshot's memory file privately and\n"
		"                           read pages on first touch (default; quick at any\n"
		"                           size; the file must not change or shrink while\n"
		"                           the VM runs); copy: copy it into shared guest RAM\n"
		"                           first (for devices that map guest memory\n"
		"                           themselves, and for files that may change)\n"
		"      --restore-parents DIR  a diff snapshot's chain of parents may lie\n"
		"                           anywhere under DIR (default: the directory that\n"
		"                           holds the restored snapshot's; a parent elsewhere\n"
		"                           is refused, as a crafted diff could pull in\n"
		"                           another VM's memory)\n"
		"      --incoming ADDR      wait for one live migration on ADDR (tcp:HOST:PORT,\n"
		"                           tcp:[V6ADDR]:PORT or unix:PATH) from 'tern migrate';\n"
		"                           the machine's shape comes from the source; give\n"
		"                           one --net per network device of the source's VM.\n"
		"                           The guest starts once the source handed it over.\n"
		"                           Connections refused (see below) do not end the wait\n"
		"      --tls-dir DIR        --incoming tcp: takes only a source that proves\n"
		"                           itself with mutual TLS 1.3: DIR holds ca-cert.pem,\n"
		"                           server-cert.pem and server-key.pem (docs/migration.md)\n"
		"      --incoming-timeout S give up when no source was admitted in S seconds\n"
		"                           (default: wait until stopped)\n"
		"      --expect-vm ID       admit only the VM with this id (a UUID; GET /vm)\n"
		"      --max-memory SIZE    refuse a VM with more RAM (default: the host's\n"
		"                           available memory)\n"
		"      --max-cpus N         refuse a VM with more vCPUs (default: 64)\n"
		"      --vm-id ID           the VM's id, a UUID (default: random; a restore or\n"
		"                           a migration keeps the VM's own)\n"
		"      --seccomp MODE       on (default): every thread runs under a seccomp\n"
		"                           filter of its kind's system calls, and one outside\n"
		"                           it ends tern with a message naming the thread and\n"
		"                           the call; log: such calls go through and the kernel\n"
		"                           logs them (dmesg), for finding what a filter lacks;\n"
		"                           off: no filter (docs/security.md)\n"
		"      --landlock           Landlock: from start-up, tern may open only the\n"
		"                           paths its options name (kernel, disks, devices,\n"
		"                           sockets' directories, a restore's tree) and those\n"
		"                           given with --landlock-allow (docs/security.md)\n"
		"      --landlock-allow DIR  with --landlock: DIR and all beneath it may be\n"
		"                           read and written (where snapshots go)\n"
		"      --landlock-allow-read DIR  the same, read only (TLS credentials)\n"
		"      --user USER[:GROUP]  once the VM is built (devices, disks, sockets open),\n"
		"                           run as USER (name or uid; GROUP: default USER's)\n"
		"                           with no capabilities, no supplementary groups and\n"
		"                           no_new_privs; later snapshots, restore parents and\n"
		"                           migration sockets need paths USER may use\n"
		"      --dirty-ring N       track dirtied pages for migrations and diff snapshots\n"
		"                           in KVM's per-vCPU dirty rings of N entries (a power\n"
		"                           of two, 64..65536) instead of its dirty bitmap;\n"
		"                           refused where KVM has no dirty ring\n"
		"      --track-dirty        log which pages the guest writes, so that 'tern\n"
		"                           snapshot --diff' can save only those; costs a\n"
		"                           fault on the first write to a page after each\n"
		"                           snapshot. Not with --net yet: the vDPA device's\n"
		"                           writes bypass KVM's dirty log\n"
		"      --kvm-device PATH    KVM device node (default: /dev/kvm)\n"
		"      --api-sock PATH      serve the control API (HTTP/1.1 + JSON, docs/api.md)\n"
		"                           on a UNIX socket created at PATH (mode 0600) and\n"
		"                           removed on exit; a stale socket there is replaced,\n"
		"                           any other existing file is refused. Client:\n"
		"                           tern info|status|pause|resume|shutdown|snapshot\n"
		"  -h, --help               show this help\n"
		"\n"
		"Exit status: the status the guest gave the test device; 0 when the guest\n"
		"powers off or resets, on Ctrl-A x, or on an API shutdown request; 1 with a\n"
		"one-line message on any error.\n");
}

enum {
	OPT_BOOT_PROTOCOL = 256,
	OPT_TEST_DEVICE,
	OPT_KVM_DEVICE,
	OPT_NET,
	OPT_DISK,
	OPT_RESTORE,
	OPT_API_SOCK,
	OPT_RESTORE_MEMORY,
	OPT_RESTORE_PARENTS,
	OPT_TRACK_DIRTY,
	OPT_INCOMING,
	OPT_DIRTY_RING,
	OPT_TLS_DIR,
	OPT_INCOMING_TIMEOUT,
	OPT_EXPECT_VM,
	OPT_MAX_MEMORY,
	OPT_MAX_CPUS,
	OPT_VM_ID,
	OPT_SECCOMP,
	OPT_USER,
	OPT_LANDLOCK,
	OPT_LANDLOCK_ALLOW,
	OPT_LANDLOCK_ALLOW_READ,
};

static const struct option run_opts[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "cmdline", required_argument, NULL, 'c' },
	{ "cpus", required_argument, NULL, 'n' },
	{ "memory", required_argument, NULL, 'm' },
	{ "boot-protocol", required_argument, NULL, OPT_BOOT_PROTOCOL },
	{ "test-device", optional_argument, NULL, OPT_TEST_DEVICE },
	{ "kvm-device", required_argument, NULL, OPT_KVM_DEVICE },
	{ "net", required_argument, NULL, OPT_NET },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "restore-memory", required_argument, NULL, OPT_RESTORE_MEMORY },
	{ "restore-parents", required_argument, NULL, OPT_RESTORE_PARENTS },
	{ "track-dirty", no_argument, NULL, OPT_TRACK_DIRTY },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "dirty-ring", required_argument, NULL, OPT_DIRTY_RING },
	{ "tls-dir", required_argument, NULL, OPT_TLS_DIR },
	{ "incoming-timeout", required_argument, NULL, OPT_INCOMING_TIMEOUT },
	{ "expect-vm", required_argument, NULL, OPT_EXPECT_VM },
	{ "max-memory", required_argument, NULL, OPT_MAX_MEMORY },
	{ "max-cpus", required_argument, NULL, OPT_MAX_CPUS },
	{ "vm-id", required_argument, NULL, OPT_VM_ID },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "user", required_argument, NULL, OPT_USER },
	{ "landlock", no_argument, NULL, OPT_LANDLOCK },
	{ "landlock-allow", required_argument, NULL, OPT_LANDLOCK_ALLOW },
	{ "landlock-allow-read", required_argument, NULL, OPT_LANDLOCK_ALLOW_READ },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cli_parse_run(int argc, char **argv, struct run_options *o, struct err *e)
{
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->cfg.nr_cpus = 1;
	o->cfg.mem_size = DEFAULT_MEMORY;
	o->cfg.sandbox.mode = SANDBOX_ON;
	o->cfg.console_out_fd = 1;
	o->cfg.boot_protocol = BOOT_PROTOCOL_AUTO;

	optind = 0; /* full reset: tests call this more than once */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:i:c:n:m:h", run_opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o->cfg.kernel = optarg;
			break;
		case 'i':
			o->cfg.initrd = optarg;
			break;
		case 'c':
			o->cfg.cmdline = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, 1, VM_MAX_CPUS, &v) < 0)
				return err_set(e, -EINVAL, "--cpus: '%s' is not a number from 1 to %d", optarg,
					       VM_MAX_CPUS);
			o->cfg.nr_cpus = (unsigned)v;
			break;
		case 'm':
			if (parse_size(optarg, &v) < 0 || !v)
				return err_set(e, -EINVAL, "--memory: '%s' is not a size (e.g. 512M, 2G)", optarg);
			o->cfg.mem_size = v;
			break;
		case OPT_BOOT_PROTOCOL:
			if (!strcmp(optarg, "auto"))
				o->cfg.boot_protocol = BOOT_PROTOCOL_AUTO;
			else if (!strcmp(optarg, "linux"))
				o->cfg.boot_protocol = BOOT_PROTOCOL_LINUX;
			else if (!strcmp(optarg, "pvh"))
				o->cfg.boot_protocol = BOOT_PROTOCOL_PVH;
			else
				return err_set(e, -EINVAL, "--boot-protocol: '%s' is not auto, linux or pvh", optarg);
			break;
		case OPT_TEST_DEVICE:
			o->cfg.test_device = true;
			o->testdev_path = optarg;
			break;
		case OPT_KVM_DEVICE:
			o->cfg.kvm_path = optarg;
			break;
		case OPT_RESTORE:
			o->restore = optarg;
			break;
		case OPT_RESTORE_MEMORY:
			if (strcmp(optarg, "map") && strcmp(optarg, "copy"))
				return err_set(e, -EINVAL, "--restore-memory: '%s' is not map or copy", optarg);
			o->cfg.mem_copy = !strcmp(optarg, "copy");
			o->restore_memory = true;
			break;
		case OPT_RESTORE_PARENTS:
			o->restore_parents = optarg;
			break;
		case OPT_TRACK_DIRTY:
			o->cfg.track_dirty = true;
			break;
		case OPT_INCOMING:
			o->incoming = optarg;
			break;
		case OPT_DIRTY_RING:
			if (parse_u64(optarg, 64, 65536, &v) < 0 || (v & (v - 1)))
				return err_set(e, -EINVAL, "--dirty-ring: '%s' is not a power of two from 64 to 65536", optarg);
			o->cfg.dirty_ring = (unsigned)v;
			break;
		case OPT_TLS_DIR:
			if (strlen(optarg) >= MIG_TLS_DIR_MAX)
				return err_set(e, -EINVAL, "--tls-dir: '%s' is too long", optarg);
			o->in.tls_dir = optarg;
			break;
		case OPT_INCOMING_TIMEOUT:
			if (parse_u64(optarg, 1, 86400, &v) < 0)
				return err_set(e, -EINVAL, "--incoming-timeout: '%s' is not 1..86400 seconds", optarg);
			o->in.wait_ms = (unsigned)v * 1000u;
			break;
		case OPT_EXPECT_VM:
			if (uuid_parse(optarg, o->in.vm_id) < 0)
				return err_set(e, -EINVAL, "--expect-vm: '%s' is not a UUID", optarg);
			o->in.expect_vm = true;
			break;
		case OPT_MAX_MEMORY:
			if (parse_size(optarg, &o->in.max_memory) < 0 || !o->in.max_memory)
				return err_set(e, -EINVAL, "--max-memory: '%s' is not a size (e.g. 8G)", optarg);
			break;
		case OPT_MAX_CPUS:
			if (parse_u64(optarg, 1, VM_MAX_CPUS, &v) < 0)
				return err_set(e, -EINVAL, "--max-cpus: '%s' is not 1..%d", optarg, VM_MAX_CPUS);
			o->in.max_cpus = (unsigned)v;
			break;
		case OPT_SECCOMP:
			if (sandbox_mode_parse(optarg, &o->cfg.sandbox.mode) < 0)
				return err_set(e, -EINVAL, "--seccomp: '%s' is not on, log or off", optarg);
			break;
		case OPT_LANDLOCK:
			o->landlock = true;
			break;
		case OPT_LANDLOCK_ALLOW:
		case OPT_LANDLOCK_ALLOW_READ:
			if (o->nallow >= sizeof(o->allow) / sizeof(o->allow[0]))
				return err_set(e, -EINVAL, "--landlock-allow: at most %zu directories",
					       sizeof(o->allow) / sizeof(o->allow[0]));
			o->allow_ro[o->nallow] = c == OPT_LANDLOCK_ALLOW_READ;
			o->allow[o->nallow++] = optarg;
			break;
		case OPT_USER:
			if (privdrop_parse(optarg, &o->cfg.drop, e) < 0)
				return -EINVAL;
			break;
		case OPT_VM_ID:
			if (uuid_parse(optarg, o->cfg.vm_id) < 0)
				return err_set(e, -EINVAL, "--vm-id: '%s' is not a UUID", optarg);
			o->vm_id_given = true;
			break;
		case OPT_DISK:
			if (o->cfg.nr_disks == VM_MAX_DISKS)
				return err_set(e, -EINVAL, "--disk: at most %d disks", VM_MAX_DISKS);
			if (disk_config_parse(optarg, &o->disks[o->cfg.nr_disks], e) < 0)
				return -EINVAL;
			o->cfg.disk_cfgs = o->disks;
			o->cfg.nr_disks++;
			break;
		case OPT_NET: {
			if (o->cfg.nr_nets == VM_MAX_NETS)
				return err_set(e, -EINVAL, "--net: at most %d devices", VM_MAX_NETS);
			if (net_config_parse(optarg, &o->nets[o->cfg.nr_nets], e) < 0)
				return -EINVAL;
			o->cfg.net_cfgs = o->nets;
			o->cfg.nr_nets++;
			break;
		}
		case OPT_API_SOCK:
			o->api_sock = optarg;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			return err_set(e, -EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return err_set(e, -EINVAL, "unknown option '%s' (see 'tern run --help')", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return err_set(e, -EINVAL, "unexpected argument '%s' (see 'tern run --help')", argv[optind]);
	if (o->nallow && !o->landlock)
		return err_set(e, -EINVAL, "--landlock-allow goes with --landlock");
	if (o->restore && o->incoming)
		return err_set(e, -EINVAL, "--restore and --incoming exclude each other");
	if (o->restore || o->incoming) {
		if (o->cfg.kernel || o->cfg.initrd || o->cfg.cmdline || o->cfg.nr_cpus != 1 ||
		    o->cfg.mem_size != DEFAULT_MEMORY || o->cfg.boot_protocol != BOOT_PROTOCOL_AUTO)
			return err_set(e, -EINVAL, "%s takes the machine from the %s: drop --kernel, "
						   "--initrd, --cmdline, --cpus, --memory and --boot-protocol",
				       o->restore ? "--restore" : "--incoming", o->restore ? "snapshot" : "source");
		if (o->incoming && (o->restore_memory || o->restore_parents))
			return err_set(e, -EINVAL, "--restore-%s goes with --restore",
				       o->restore_memory ? "memory" : "parents");
		if (o->incoming && mig_addr_check(o->incoming, e) < 0)
			return -EINVAL;
		if (o->incoming && o->in.tls_dir && strncmp(o->incoming, "tcp:", 4))
			return err_set(e, -EINVAL, "--tls-dir is for --incoming tcp: (a unix: socket is local, guarded by "
						   "its file's permissions)");
		if (o->incoming && o->vm_id_given)
			return err_set(e, -EINVAL, "--vm-id: an incoming VM keeps the source's id (--expect-vm checks it)");
		if (o->restore && (o->in.tls_dir || o->in.wait_ms || o->in.expect_vm || o->in.max_memory || o->in.max_cpus))
			return err_set(e, -EINVAL, "--tls-dir, --incoming-timeout, --expect-vm, --max-memory and --max-cpus go "
						   "with --incoming");
		o->in.addr = o->incoming;
		o->in.timeout_ms = MIG_DEFAULT_TIMEOUT_MS;
		return 0;
	}
	if (o->in.tls_dir || o->in.wait_ms || o->in.expect_vm || o->in.max_memory || o->in.max_cpus)
		return err_set(e, -EINVAL, "--tls-dir, --incoming-timeout, --expect-vm, --max-memory and --max-cpus go "
					   "with --incoming");
	if (o->restore_memory)
		return err_set(e, -EINVAL, "--restore-memory goes with --restore");
	if (o->restore_parents)
		return err_set(e, -EINVAL, "--restore-parents goes with --restore");
	if (!o->cfg.kernel)
		return err_set(e, -EINVAL, "--kernel is required (see 'tern run --help')");
	return 0;
}
