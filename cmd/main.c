/* SPDX-License-Identifier: MIT */
/* cmd/main.c - tern's entry point: subcommand dispatch and `tern run`. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "migrate/snapshot.h"
#include "migrate/transport.h"
#include "vdpa/vduse.h"
#include "vdpa/vhost_vdpa.h"
#include "cmd/api.h"
#include "cmd/api_vm.h"
#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/confine.h"
#include "cmd/console.h"
#include "vmm/event.h"
#include "migrate/machine.h"
#include "vmm/vm.h"

struct run_loop {
	struct vm *vm;
	struct event_loop *el;
	struct event_source exit_src;   /* vm->exit_fd */
	struct event_source signal_src; /* SIGINT, SIGTERM, SIGHUP */
};

static bool on_vm_exit(struct event_source *src, unsigned revents)
{
	struct run_loop *rl = container_of(src, struct run_loop, exit_src);

	(void)revents;
	rl->el->stop = true;
	return false;
}

static bool on_signal(struct event_source *src, unsigned revents)
{
	struct run_loop *rl = container_of(src, struct run_loop, signal_src);
	struct signalfd_siginfo si;

	(void)revents;
	if (read(src->fd, &si, sizeof(si)) != sizeof(si))
		return true;
	vm_fail(rl->vm, "stopped by signal %u (%s)", si.ssi_signo, strsignal((int)si.ssi_signo));
	return true;
}

/* An incoming migration that failed: why, and tern's exit status. A
 * signal is an error (status 1, as for a running VM); PUT /vm/shutdown is
 * an orderly exit (status 0). */
static int incoming_stopped(int sfd, int cancel_fd, const struct err *e)
{
	struct signalfd_siginfo si;
	uint64_t v;

	if (read(cancel_fd, &v, sizeof(v)) == sizeof(v)) {
		pr_info("api: shutdown requested before the migration completed");
		return 0;
	}
	/* the signalfd blocks: read it only if poll says a signal is there */
	struct pollfd p = { .fd = sfd, .events = POLLIN };
	if (poll(&p, 1, 0) == 1 && read(sfd, &si, sizeof(si)) == sizeof(si))
		fprintf(stderr, "tern: error: incoming migration: stopped by signal %u (%s)\n", si.ssi_signo,
			strsignal((int)si.ssi_signo));
	else
		fprintf(stderr, "tern: error: incoming migration: %s\n", e->msg);
	return 1;
}

static int cmd_run(int argc, char **argv)
{
	struct run_options o;
	struct confine confine; /* --landlock: its paths, named while the rules hold */
	struct err e = { { 0 } };
	struct event_loop el;
	struct console con;
	struct vm vm;
	struct run_loop rl = { .vm = &vm, .el = &el };
	struct api api = { .listen_fd = -1 };
	struct api_vm api_vm = { .vm = &vm, .cancel_fd = -1 };
	FILE *report = NULL;
	char *report_buf = NULL;
	struct snapshot snap;
	bool restoring = false, started = false;
	sigset_t sigs;
	struct mig_stream *incoming = NULL;
	int sfd = -1, status = 1, r;

	memset(&con, 0, sizeof(con));
	memset(&el, 0, sizeof(el));
	memset(&confine, 0, sizeof(confine));
	if (cli_parse_run(argc, argv, &o, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		return 1;
	}
	if (o.help) {
		cli_usage_run(stdout);
		return 0;
	}
	/* the one test interface (vmm/test_faults.h, docs/testing.md): the
	 * only place tern reads the environment for a test */
	const char *faults = getenv(TEST_FAULTS_ENV);
	if (faults && test_faults_parse(faults, &o.cfg.faults, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		return 1;
	}
	if (faults && *faults)
		pr_info("test faults armed: %s", faults);
	o.cfg.sandbox.violate = o.cfg.faults.seccomp_violate;
	o.cfg.sandbox.drop_ids = o.cfg.drop.enabled;
	o.cfg.sandbox.uid = o.cfg.drop.uid;
	o.cfg.sandbox.gid = o.cfg.drop.gid;
	if (o.testdev_path) {
		report = fopen(o.testdev_path, "we");
		if (!report) {
			fprintf(stderr, "tern: error: cannot open test-device output '%s': %s\n", o.testdev_path,
				strerror(errno));
			return 1;
		}
		/* a buffer of our own: else stdio sizes one on the first write,
		 * from a vCPU, with fstat and (a character device) isatty's
		 * TCGETS, which a vCPU's filter does not allow */
		report_buf = malloc(BUFSIZ);
		if (!report_buf || setvbuf(report, report_buf, _IOFBF, BUFSIZ) != 0) {
			fprintf(stderr, "tern: error: test-device output: out of memory\n");
			fclose(report);
			free(report_buf);
			return 1;
		}
		o.cfg.testdev_out = report;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Signals arrive through the event loop; vCPU threads block them all
	 * but the kick (vcpu_start). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "tern: error: signalfd: %s\n", strerror(errno));
		goto out_report;
	}
	/* The socket first: a bad --api-sock fails before any VM is built. */
	if (o.api_sock && api_open(&api, o.api_sock, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		goto out_report;
	}
	api.sandbox = &o.cfg.sandbox;

	if (privdrop_prepare(&o.cfg.drop, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		goto out_report;
	}
	/* From here tern reads what others wrote (snapshots, a migration
	 * stream, API requests) and later runs the guest: every thread is
	 * confined, those started later more narrowly (vmm/sandbox.h) */
	if (sandbox_enter(&o.cfg.sandbox, SANDBOX_MAIN, "tern", &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		goto out_report;
	}
	/* still the only thread: Landlock holds for it and all it starts */
	if (o.landlock)
		confine_preload(&o, &confine);
	if (o.landlock && ((r = confine_build(&o, &confine, &e)) < 0 || (r = landlock_restrict(&confine.rules, &e)) < 0)) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		goto out_report;
	}
	/* an id for a new VM (a restore or an incoming VM keeps its own) */
	if (!o.vm_id_given && (r = uuid_random(o.cfg.vm_id)) < 0) {
		fprintf(stderr, "tern: error: no randomness for the VM's id: %s\n", strerror(-r));
		goto out_report;
	}
	if (o.restore) {
		r = snapshot_read_within(o.restore, o.restore_parents, &snap, &e);
		if (r < 0) {
			fprintf(stderr, "tern: error: %s\n", e.msg);
			goto out_report;
		}
		restoring = true;
		o.cfg.nr_cpus = snap.nr_cpus;
		o.cfg.mem_size = snap.mem_size;
		o.cfg.mem_file = snap.mem_path;
		if (!o.vm_id_given && snap.has_vm_id) /* the same VM, resumed */
			memcpy(o.cfg.vm_id, snap.vm_id, sizeof(o.cfg.vm_id));
		o.cfg.test_device = o.cfg.test_device || snap.test_device;
	}
	if (o.incoming) {
		/* A signal or PUT /vm/shutdown ends the wait; the API answers
		 * meanwhile (state "incoming"), its hooks touching no VM. */
		struct mig_cancel cancel = { { sfd, api_vm.cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) } };
		if (api_vm.cancel_fd < 0) {
			fprintf(stderr, "tern: error: eventfd: %s\n", strerror(errno));
			goto out_report;
		}
		if (o.api_sock && api_serve(&api, &api_vm_ops, &api_vm, &e) < 0) {
			fprintf(stderr, "tern: error: %s\n", e.msg);
			goto out_report;
		}
		pr_info("waiting for a migration on %s", o.incoming);
		if (migrate_incoming(&o.in, &o.cfg, &vm, &cancel, &incoming, &e) < 0) {
			status = incoming_stopped(sfd, api_vm.cancel_fd, &e);
			goto out_report;
		}
	} else if (machine_create(&vm, &o.cfg, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		goto out_report;
	}
	if (restoring) {
		r = snapshot_load(&vm, &snap, &e);
		snapshot_free(&snap);
		restoring = false;
		if (r < 0) {
			fprintf(stderr, "tern: error: %s: %s\n", o.restore, e.msg);
			machine_destroy(&vm);
			status = 1;
			goto out_report;
		}
	}
	if (event_loop_init(&el, &e) < 0 || console_init(&con, &vm, 0, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		goto out_vm;
	}
	rl.exit_src = (struct event_source){ .fd = vm.exit_fd, .ready = on_vm_exit };
	rl.signal_src = (struct event_source){ .fd = sfd, .ready = on_signal };
	r = event_add(&el, &rl.exit_src);
	if (r == 0 && sfd >= 0)
		r = event_add(&el, &rl.signal_src);
	if (r == 0)
		r = event_add(&el, &con.src);
	if (r < 0) {
		fprintf(stderr, "tern: error: cannot set up the event loop\n");
		goto out_console;
	}
	if (incoming && mig_cancelled(&(struct mig_cancel){ { sfd, api_vm.cancel_fd } })) {
		/* a stop came before the guest started: it never runs here,
		 * and the source, told so, resumes it */
		status = incoming_stopped(sfd, api_vm.cancel_fd, &(struct err){ .msg = "stopped" });
		migrate_incoming_never_ran(incoming);
		incoming = NULL;
		goto out_console;
	}
	started = true;
	if (vm_start(&vm, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		goto out_console;
	}
	/* The hooks see the VM from here on (an incoming VM's API was
	 * already answering), so no request sees vCPU threads starting. */
	api_vm.start_ns = now_ns();
	atomic_store(&api_vm.ready, true);
	if (incoming) {
		/* A stop asked for while GET /vm still said "incoming" (a
		 * signal, or a shutdown that saw ready false; see
		 * api_vm_shutdown()) ends this copy before the source hears
		 * DONE: the source then stays paused, as when DONE is lost,
		 * rather than both copies ending. After this point a stop is
		 * a stop of the running VM. */
		struct mig_cancel cancel = { { sfd, api_vm.cancel_fd } };
		if (mig_cancelled(&cancel)) {
			migrate_incoming_close(incoming);
			int st = incoming_stopped(sfd, api_vm.cancel_fd, &(struct err){ .msg = "stopped" });
			vm_request_exit(&vm, st, "stopped before the source was told the migration completed");
		} else {
			/* the guest runs here now: the source may let go */
			migrate_incoming_done(incoming);
		}
		incoming = NULL;
	}
	if (o.api_sock && !o.incoming && api_serve(&api, &api_vm_ops, &api_vm, &e) < 0)
		vm_fail(&vm, "%s", e.msg);
	r = event_loop_run(&el);
	if (r < 0)
		vm_fail(&vm, "event loop: %s", strerror(-r));
	/* vm_stop() before api_stop(): it releases an API request waiting in
	 * vm_pause() for a vCPU that left its loop when the guest exited. The
	 * hooks use the VM, so the API stops before machine_destroy(). */
	vm_stop(&vm);
	api_stop(&api);
	console_exit(&con);
	pthread_mutex_lock(&vm.lock);
	status = vm.exit_status;
	if (vm.exit_error)
		fprintf(stderr, "tern: error: %s\n", vm.exit_reason);
	else
		pr_debug("%s", vm.exit_reason);
	pthread_mutex_unlock(&vm.lock);

out_console:
	console_exit(&con);
	event_loop_exit(&el);
out_vm:
	/* the guest never started here (vm_start() is past only on a
	 * failure of its own, whose vCPUs may have run: no answer then) */
	if (incoming && !started)
		migrate_incoming_never_ran(incoming);
	else if (incoming)
		migrate_incoming_close(incoming);
	api_stop(&api);
	machine_destroy(&vm);
out_report:
	api_stop(&api);
	confine_release(&confine);
	if (sfd >= 0)
		close(sfd);
	if (api_vm.cancel_fd >= 0)
		close(api_vm.cancel_fd);
	if (restoring)
		snapshot_free(&snap);
	if (report)
		fclose(report);
	free(report_buf);
	return status;
}

static void vduse_net_usage(FILE *f)
{
	fprintf(f,
		"Usage: tern vduse-net --name NAME (--socket PATH --peer PATH | --tap NAME)\n"
		"                      [--mac xx:xx:xx:xx:xx:xx] [--seccomp on|log|off]\n"
		"\n"
		"Exports tern's software vDPA net device (the one 'tern run --net vdpa-sim,...'\n"
		"uses) to the kernel through VDUSE, so that\n"
		"    vdpa dev add name NAME mgmtdev vduse\n"
		"gives a /dev/vhost-vdpa-N backed by it (for a VMM, e.g. 'tern run --net\n"
		"vhost-vdpa,dev=/dev/vhost-vdpa-N'). The device has one queue pair, no control\n"
		"virtqueue (VDUSE allows none), so no multiqueue and no receive filters, an MTU\n"
		"of 1500 and its link up. Needs the vduse module (virtio-net over VDUSE needs\n"
		"Linux >= 6.10; 'modprobe vduse') and CAP_NET_ADMIN.\n"
		"\n"
		"Prints \"vduse-net NAME ready\" on stdout once the device exists and its queues\n"
		"are set up (from then on 'vdpa dev add' works), then serves the kernel in the\n"
		"foreground until SIGINT or SIGTERM. It then removes the VDUSE device, waiting\n"
		"up to 2 s for 'vdpa dev del NAME'; if that has not happened it warns and the\n"
		"kernel keeps the device.\n"
		"\n"
		"Options:\n"
		"      --name NAME      the VDUSE device's name, which the vdpa device must\n"
		"                       take too (/dev/vduse/NAME); 1 to 255 bytes, no '/'\n"
		"      --socket PATH    the device's wire: a UNIX datagram socket bound at\n"
		"                       PATH, joined to the one at --peer PATH (give both)\n"
		"      --peer PATH      the peer socket of --socket\n"
		"      --tap NAME       the device's wire: TAP interface NAME (created if\n"
		"                       absent), instead of --socket and --peer\n"
		"      --mac MAC        the device's (unicast) MAC address, xx:xx:xx:xx:xx:xx\n"
		"                       (default: 02:74:6e followed by the low 24 bits of\n"
		"                       tern's process id: a locally administered address)\n"
		"      --seccomp MODE   on (default): once the device exists, the daemon runs\n"
		"                       under its seccomp filter (VDUSE and device calls);\n"
		"                       log: calls outside it are only logged; off: none\n"
		"  -h, --help           show this help\n"
		"\n"
		"Exit status: 0 after SIGINT or SIGTERM; 1 with a one-line message on any\n"
		"error.\n");
}

static int cmd_vduse_net(int argc, char **argv)
{
	enum { OPT_NAME = 256, OPT_SOCKET, OPT_PEER, OPT_TAP, OPT_MAC, OPT_SECCOMP };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "peer", required_argument, NULL, OPT_PEER },
		{ "tap", required_argument, NULL, OPT_TAP },
		{ "mac", required_argument, NULL, OPT_MAC },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vduse_net_options o;
	struct err e = { { 0 } };
	const char *bad = NULL;
	int c;

	memset(&o, 0, sizeof(o));
	o.sandbox.mode = SANDBOX_ON;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SECCOMP:
			if (sandbox_mode_parse(optarg, &o.sandbox.mode) < 0) {
				fprintf(stderr, "tern: error: --seccomp: '%s' is not on, log or off\n", optarg);
				return 1;
			}
			break;
		case OPT_NAME:
			o.name = optarg;
			break;
		case OPT_SOCKET:
			o.socket_path = optarg;
			break;
		case OPT_PEER:
			o.peer_path = optarg;
			break;
		case OPT_TAP:
			o.tap = optarg;
			break;
		case OPT_MAC:
			if (parse_mac(optarg, o.mac) < 0) {
				fprintf(stderr, "tern: error: --mac: '%s' is not a unicast xx:xx:xx:xx:xx:xx\n", optarg);
				return 1;
			}
			o.mac_set = true;
			break;
		case 'h':
			vduse_net_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "tern: error: option '%s' needs a value\n", argv[optind - 1]);
			return 1;
		default:
			fprintf(stderr, "tern: error: unknown option '%s' (see 'tern vduse-net --help')\n",
				argv[optind - 1]);
			return 1;
		}
	}
	if (optind < argc)
		bad = "unexpected argument";
	else if (!o.name)
		bad = "--name is required";
	else if (o.tap && (o.socket_path || o.peer_path))
		bad = "--tap excludes --socket and --peer";
	else if (!o.tap && (!o.socket_path || !o.peer_path))
		bad = "give the device a wire: --socket PATH --peer PATH, or --tap NAME";
	if (bad) {
		fprintf(stderr, "tern: error: %s%s%s%s (see 'tern vduse-net --help')\n", bad, optind < argc ? " '" : "",
			optind < argc ? argv[optind] : "", optind < argc ? "'" : "");
		return 1;
	}
	/* a script that read the ready line may close our stdout */
	signal(SIGPIPE, SIG_IGN);
	if (vduse_net_run(&o, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		return 1;
	}
	return 0;
}

static void vdpa_probe_usage(FILE *f)
{
	fprintf(f,
		"Usage: tern vdpa-probe --dev /dev/vhost-vdpa-N [--cycles N]\n"
		"\n"
		"Opens a kernel vhost-vdpa device and prints what it offers: device id,\n"
		"queues and their maximum size, virtio and backend features (SUSPEND,\n"
		"RESUME, ASIDs, IOTLB_PERSIST...), groups, address spaces, usable IOVA range,\n"
		"and whether it is a VDUSE device. With --cycles N it then opens, configures\n"
		"(features, one mapping, queue 0 with eventfds) and closes the device N times\n"
		"and fails if tern holds more file descriptors afterwards than before.\n"
		"The device must not be in use by a VMM (vhost-vdpa allows one opener).\n");
}

static int cmd_vdpa_probe(int argc, char **argv)
{
	const char *dev = NULL;
	uint64_t cycles = 0;
	struct err e = { { 0 } };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			vdpa_probe_usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "tern: error: '%s' needs a value (see 'tern vdpa-probe --help')\n", argv[i]);
			return 1;
		}
		if (!strcmp(argv[i], "--dev")) {
			dev = argv[++i];
		} else if (!strcmp(argv[i], "--cycles")) {
			if (parse_u64(argv[++i], 1, 1000000, &cycles) < 0) {
				fprintf(stderr, "tern: error: --cycles '%s' is not 1..1000000\n", argv[i]);
				return 1;
			}
		} else {
			fprintf(stderr, "tern: error: unknown option '%s' (see 'tern vdpa-probe --help')\n", argv[i]);
			return 1;
		}
	}
	if (!dev) {
		fprintf(stderr, "tern: error: --dev is required (see 'tern vdpa-probe --help')\n");
		return 1;
	}
	if (vhost_vdpa_probe(dev, (unsigned)cycles, stdout, &e) < 0) {
		fprintf(stderr, "tern: error: %s\n", e.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		cli_usage(stderr);
		return 1;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "vduse-net"))
		return cmd_vduse_net(argc - 1, argv + 1);
	if (!strcmp(cmd, "vdpa-probe"))
		return cmd_vdpa_probe(argc - 1, argv + 1);
	if (client_is_command(cmd))
		return client_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		cli_usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("tern %s\n", TERN_VERSION);
		return 0;
	}
	fprintf(stderr, "tern: error: unknown command '%s' (see 'tern --help')\n", cmd);
	return 1;
}
