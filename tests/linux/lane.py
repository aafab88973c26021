#!/usr/bin/env python3
"""The nested Linux lane: proves that tern boots Debian's stock 6.12 kernel.

Some machines' /dev/kvm cannot run a stock Linux (see docs/linux-lane.md),
so the lane boots Debian's kernel as L1 under QEMU's software emulation,
whose emulated AMD-V gives L1 a real KVM; L1's /init runs build/tern to boot
the same kernel as L2 several times (one L1 boot, several L2 boots):

  checks   the bzImage as Debian ships it, with a virtio-net device
           (--net on tern's software vDPA device, its socket looped back to
           itself); L2 reports its command line, CPUs, memory, initramfs
           marker, clocksource, PCI devices and dmesg, then runs `poweroff -f`
  reboot   the bzImage; L2 runs `reboot -f`
  console  the bzImage; L2 starts a shell, L1 types a command into tern's
           stdin and waits for its output, then types `poweroff -f`
  elf      the ELF vmlinux inside that bzImage, through the 64-bit Linux
           boot protocol (--boot-protocol linux); as `checks`
  pvh      the same vmlinux through its PVH note (--boot-protocol pvh)
  snap     the bzImage with a virtio-net device on a TAP and an API socket;
           L2 configures eth0 and starts a shell; L1 snapshots it with
           `tern snapshot`, shuts that tern down, restores the snapshot in a
           new tern (a new TAP), checks that L2 announced itself (a
           gratuitous ARP reached L1 unasked), pings it,
           and types a command that must answer and ping L1 from L2
  migrate  as snap, but L2 pings L1 five times a second while `tern migrate`
           moves it to a second tern (another TAP, which L1 then gives the
           first one's address and MAC); L2 must announce itself, its ping
           must go on, and a typed command must answer in the moved shell
  net      the bzImage with a virtio-net device on a TAP in L1 (--net
           vdpa-sim,tap=,mac= with a random MAC); L2 loads Debian's
           virtio_net driver, reports the interface it got, pings L1 and
           moves NET_BYTES over TCP each way (busybox nc); both ends print
           SHA-256 hashes for the harness to compare

Every check is one TAP line on stdout ("ok - linux/NAME" or
"not ok - linux/NAME # why"); if the lane cannot run at all (an ingredient
is missing, L1 does not boot), every check is reported "not ok" with the
reason. Artifacts go to BUILD/linux-lane/: serial.log (L1's whole console),
l2-dmesg.txt, l1-dmesg.txt and run-NAME.log per L2 boot.

usage: tests/linux/lane.py [--build DIR]
"""
import argparse
import json
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lanelib  # noqa: E402
from lanelib import LaneError, log, sh_quote  # noqa: E402

CPUS = 2
MEM_MIB = 512
RUN_TIMEOUT = 90  # seconds per L2 boot, enforced inside L1 (a boot takes ~8)
CMDLINE_BASE = "console=ttyS0 quiet panic=-1"

CHECKS = ["l1-kvm", "boot", "cmdline", "nproc", "memtotal", "initramfs", "clocksource", "pci",
          "dmesg-clean", "poweroff", "reboot", "console", "elf-boot", "pvh-boot",
          "net-bind", "net-mac", "net-ping", "net-tcp", "snapshot", "restore-shell", "restore-ping",
          "restore-announce", "migrate", "migrate-shell", "migrate-ping", "migrate-announce",
          "vduse-dev", "vduse-fd-leak", "vduse-errors", "vduse-bind", "vduse-mac", "vduse-ping", "vduse-tcp",
          "vmig", "vmig-switch", "vmig-shell", "vmig-ping", "xchg-sim", "xchg-vduse", "xchg-switch",
          "ctrl", "ctrl-set", "ctrl-state", "ctrl-use", "ctrl-device", "ctrl-replay",
          "rootfs-boot", "rootfs-copy", "rootfs-shared", "rootfs-files", "rootfs-fsck"]
# Which run each check belongs to (for --only); the rest belong to their own.
CHECK_RUN = {c: c if c.startswith("xchg") else c.split("-")[0] for c in CHECKS}
NET_SOCK = "/tmp/lane-net.sock"  # in L1
NET_OPTS = ["--net", f"vdpa-sim,socket={NET_SOCK},peer={NET_SOCK}"]
VIRTIO_NET_PCI = ("0x1af4", "0x1041")  # virtio 1.x network device (virtio spec 4.1.2)
# The net run: a TAP in L1 that tern creates, link-local IPv4 on both ends
# (nothing leaves L1: QEMU runs with -net none).
NET_TAP = "lane0"
NET_L1_ADDR = "169.254.1.1"
NET_L2_ADDR = "169.254.2.2"
NET_PREFIX = 16
NET_BYTES = 32 << 20  # per direction (64 MiB until 2026-12-02: the suite must fit 20 min)
NET_PORT_UP, NET_PORT_DOWN = 5000, 5001  # L2 -> L1, L1 -> L2
NET_TIMEOUT = 300  # seconds for the whole net run, enforced inside L1
# The snapshot run: its own TAP and addresses, a fixed MAC on L1's side.
SNAP_TAP = "lane1"
SNAP_L1_ADDR = "169.254.3.1"
SNAP_L2_ADDR = "169.254.4.4"
SNAP_TAP_MAC = "02:00:5e:00:53:01"
# The migration run: two TAPs, one address and MAC on L1's side.
MIG_TAPS = ("lane2", "lane3")
MIG_L1_ADDR = "169.254.5.1"
MIG_L2_ADDR = "169.254.6.6"
MIG_TAP_MAC = "02:00:5e:00:53:02"
# The vhost-vdpa run: tern's software device exported through VDUSE.
VDUSE_TAP = "lane4"
VDUSE_L1_ADDR = "169.254.7.1"
VDUSE_L2_ADDR = "169.254.8.8"
# The control-queue state run (issue 9).
CTRL_TAPS = ("lane7", "lane8")
CTRL_L1_ADDR = "169.254.11.1"
CTRL_L2_ADDR = "169.254.12.12"
CTRL_L1_VADDR = "169.254.13.1"  # on VLAN 42
CTRL_L2_VADDR = "169.254.14.14"
CTRL_MCAST = "01:00:5e:01:02:03"
# The test guests' frame exchange in L1, in-process device vs VDUSE.
XCHG_COUNT = 20000
XCHG_SWITCH_COUNT = 60000  # long enough to outlast both switches
XCHG_SWITCH_LOSS = 16      # frames B may miss across the two switches' resets
# The migration over vhost-vdpa (VDUSE) run.
VMIG_TAPS = ("lane5", "lane6")
VMIG_L1_ADDR = "169.254.9.1"
VMIG_L2_ADDR = "169.254.10.10"
# The other loaders' runs: name -> (L1 path of the kernel, extra tern options).
ALT_RUNS = {"elf": ("/l2/vmlinux", ["--boot-protocol", "linux"]),
            "pvh": ("/l2/vmlinux", ["--boot-protocol", "pvh"])}

# Signs of a kernel that did not boot cleanly.
DMESG_BAD = re.compile(r"WARNING:|Call Trace|BUG:|Oops|Kernel panic|ACPI (BIOS )?Error")


class Plan:
    """What L1 will do, and what the checks compare against."""

    def __init__(self, rng, only=None):
        self.only = only  # run names, or None: all
        self.nonce = "%016x" % rng.getrandbits(64)
        a, b = rng.randrange(1000, 9999), rng.randrange(1000, 9999)
        self.console_cmd = f"echo tern-console-$(({a}+{b}))"
        self.console_expect = f"tern-console-{a + b}"
        # A locally administered unicast MAC (first octet: bit 1 set, bit 0 clear).
        octets = [rng.getrandbits(8) for _ in range(6)]
        octets[0] = (octets[0] & 0xfc) | 0x02
        self.mac = ":".join("%02x" % o for o in octets)
        c, d = rng.randrange(1000, 9999), rng.randrange(1000, 9999)
        self.snap_cmd = (f"echo restored-$(({c}+{d})); ping -c 3 -w 20 {SNAP_L1_ADDR} >/dev/null && "
                         f"echo pinged-$(({c}+{d}))")
        self.snap_expect = f"pinged-{c + d}"
        octets[5] ^= 0x55
        self.snap_mac = ":".join("%02x" % o for o in octets)
        octets[4] ^= 0x33
        self.mig_mac = ":".join("%02x" % o for o in octets)
        octets[3] ^= 0x0f
        self.vduse_mac = ":".join("%02x" % o for o in octets)
        e, f = rng.randrange(1000, 9999), rng.randrange(1000, 9999)
        self.mig_cmd = (f"wait; tail -2 /tmp/ping.out; ping -c 3 -W 5 {MIG_L1_ADDR} >/dev/null && "
                        f"echo migrated-$(({e}+{f}))")
        self.mig_expect = f"migrated-{e + f}"
        self.vmig_cmd = (f"wait; tail -2 /tmp/ping.out; ping -c 3 -W 5 {VMIG_L1_ADDR} >/dev/null && "
                         f"echo vmigrated-$(({e}+{f}))")
        self.vmig_expect = f"vmigrated-{e + f}"
        octets[2] ^= 0x21
        self.ctrl_mac = ":".join("%02x" % o for o in octets)
        octets[1] ^= 0x42
        self.ctrl_newmac = ":".join("%02x" % o for o in octets)
        self.ctrl_cmd = (f"wait; ip.full -o link show eth0 | grep -o 'PROMISC\\|link/ether [0-9a-f:]*'; "
                         f"ethtool -l eth0 | tail -4 | tr -s ' \\t' ' '; "
                         f"echo maddr=$(ip.full maddr show dev eth0 | grep -c {CTRL_MCAST}); "
                         # RSS: the echo replies (IPv4 in VLAN 42) land on
                         # queue 1: its interrupts (all CPUs' columns) grow.
                         # (6.12 has no per-queue packets in ethtool -S.)
                         f"q1() {{ awk '/input\\.1$/ {{n = 0; for (i = 2; i <= NF; i++) "
                         f"if ($i ~ /^[0-9]+$/) n += $i; print n}}' /proc/interrupts; }}; "
                         f"a=$(q1); "
                         f"ping -c 3 -W 5 {CTRL_L1_VADDR} >/dev/null && echo ctrl-ok-$(({e}+{f})); "
                         # replies of six sizes: without RSS the device's
                         # fallback flow hash (which covers the IP length)
                         # would put each on queue 0 or 1 at random
                         f"for s in 100 200 300 400 500 600; do ping -c 1 -W 5 -s $s {CTRL_L1_VADDR} >/dev/null; done; "
                         f"echo rssq1=$(($(q1) - a))")
        self.ctrl_expect = f"ctrl-ok-{e + f}"
        # the rootfs run: files read back from the disk itself (the page
        # cache dropped), in the shell the migrations moved
        g, h = rng.randrange(1000, 9999), rng.randrange(1000, 9999)
        sha = "sha256sum </data/{} | cut -c1-64"
        self.rootfs_cmd1 = (f"sync; echo 3 >/proc/sys/vm/drop_caches; m=@@L2; "
                            f"echo \"$m rootfs-after1 a=$({sha.format('a')})\"; "
                            f"head -c 4194304 /dev/urandom >/data/b; sync; "
                            f"echo \"$m rootfs-file-b $({sha.format('b')})\"; "
                            # a discard: blocks freed, then trimmed
                            f"head -c 8388608 /dev/urandom >/data/c; sync; rm /data/c; sync; "
                            f"echo \"$m rootfs-trim $(fstrim -v / 2>&1)\"; echo rootfs-one-$(({g}+{h}))")
        self.rootfs_expect1 = f"rootfs-one-{g + h}"
        self.rootfs_cmd2 = (f"sync; echo 3 >/proc/sys/vm/drop_caches; m=@@L2; "
                            f"echo \"$m rootfs-after2 a=$({sha.format('a')}) b=$({sha.format('b')})\"; "
                            f"mount -o remount,ro / && echo rootfs-two-$(({h}+{g}+1))")
        self.rootfs_expect2 = f"rootfs-two-{g + h + 1}"

    def cmdline(self, run):
        # The L2 /init runs the checks for elf and pvh too.
        mode = "checks" if run in ALT_RUNS else run
        line = f"{CMDLINE_BASE} lane.run={mode} lane.nonce={self.nonce} lane.name={run}"
        if run == "net":
            line += (f" lane.ip={NET_L2_ADDR}/{NET_PREFIX} lane.peer={NET_L1_ADDR} lane.bytes={NET_BYTES}"
                     f" lane.port-up={NET_PORT_UP} lane.port-down={NET_PORT_DOWN}")
        if run == "vduse":  # the net run's L2 script
            line = (f"{CMDLINE_BASE} lane.run=net lane.nonce={self.nonce} lane.name=vduse"
                    f" lane.ip={VDUSE_L2_ADDR}/{NET_PREFIX} lane.peer={VDUSE_L1_ADDR} lane.bytes={NET_BYTES}"
                    f" lane.port-up={NET_PORT_UP} lane.port-down={NET_PORT_DOWN}")
        if run == "snap":
            line += f" lane.ip={SNAP_L2_ADDR}/{NET_PREFIX} lane.peer={SNAP_L1_ADDR}"
        if run == "migrate":  # the same L2 script as snap
            line = (f"{CMDLINE_BASE} lane.run=snap lane.nonce={self.nonce} lane.name=migrate"
                    f" lane.ip={MIG_L2_ADDR}/{NET_PREFIX} lane.peer={MIG_L1_ADDR}")
        if run == "ctrl":
            line = (f"{CMDLINE_BASE} lane.run=ctrl lane.nonce={self.nonce} lane.name=ctrl"
                    f" lane.ip={CTRL_L2_ADDR}/{NET_PREFIX} lane.peer={CTRL_L1_ADDR}"
                    f" lane.vip={CTRL_L2_VADDR}/{NET_PREFIX} lane.vpeer={CTRL_L1_VADDR} lane.newmac={self.ctrl_newmac}")
        if run == "rootfs":
            line = f"{CMDLINE_BASE} root=/dev/vda lane.run=rootfs lane.nonce={self.nonce} lane.name=rootfs"
        if run == "vmig":
            line = (f"{CMDLINE_BASE} lane.run=snap lane.nonce={self.nonce} lane.name=vmig"
                    f" lane.ip={VMIG_L2_ADDR}/{NET_PREFIX} lane.peer={VMIG_L1_ADDR}")
        return line

    def net_opts(self):
        return ["--net", f"vdpa-sim,tap={NET_TAP},mac={self.mac}"]

    def script(self):
        lines = self.all_lines()
        if self.only:
            keep = lambda l: not l.startswith("run_") or l.split()[1] in self.only  # noqa: E731
            lines = [l for l in lines if keep(l)]
        return "\n".join(lines)

    def all_lines(self):
        return ([
            "# written by tests/linux/lane.py; sourced by /init (l1-init.sh)",
            f"LANE_CPUS={CPUS}",
            f"LANE_MEM={MEM_MIB}M",
            f"LANE_TIMEOUT={RUN_TIMEOUT}",
            f"run_l2 checks /l2/vmlinuz {sh_quote(self.cmdline('checks'))} "
            + " ".join(sh_quote(o) for o in NET_OPTS),
            f"run_l2 reboot /l2/vmlinuz {sh_quote(self.cmdline('reboot'))}",
            f"run_console console {sh_quote(self.cmdline('console'))} "
            f"{sh_quote(self.console_cmd)} {sh_quote(self.console_expect)}",
        ] + [f"run_l2 {name} {kernel} {sh_quote(self.cmdline(name))} {' '.join(opts)}"
             for name, (kernel, opts) in ALT_RUNS.items()] + [
            f"run_snap snap {sh_quote(self.cmdline('snap'))} {SNAP_TAP} {SNAP_L1_ADDR}/{NET_PREFIX} "
            f"{SNAP_TAP_MAC} {SNAP_L2_ADDR} {sh_quote(self.snap_cmd)} {sh_quote(self.snap_expect)} "
            f"--net vdpa-sim,tap={SNAP_TAP},mac={self.snap_mac}",
            f"run_migrate migrate {sh_quote(self.cmdline('migrate'))} {MIG_TAPS[0]} {MIG_TAPS[1]} "
            f"{MIG_L1_ADDR}/{NET_PREFIX} {MIG_TAP_MAC} {MIG_L2_ADDR} {self.mig_mac} {MIG_L1_ADDR} "
            f"{sh_quote(self.mig_cmd)} {sh_quote(self.mig_expect)}",
            f"LANE_TIMEOUT={NET_TIMEOUT}",
            f"run_net net {sh_quote(self.cmdline('net'))} {NET_TAP} {NET_L1_ADDR}/{NET_PREFIX} "
            f"{NET_PORT_UP} {NET_PORT_DOWN} {NET_BYTES} " + " ".join(sh_quote(o) for o in self.net_opts()),
            f"run_vduse vduse {sh_quote(self.cmdline('vduse'))} {VDUSE_TAP} {VDUSE_L1_ADDR}/{NET_PREFIX} "
            f"{NET_PORT_UP} {NET_PORT_DOWN} {NET_BYTES} {self.vduse_mac}",
            f"LANE_TIMEOUT={RUN_TIMEOUT}",
            f"run_migrate_ctrl ctrl {sh_quote(self.cmdline('ctrl'))} {CTRL_TAPS[0]} {CTRL_TAPS[1]} "
            f"{CTRL_L1_ADDR}/{NET_PREFIX} {MIG_TAP_MAC} {CTRL_L2_ADDR} {self.ctrl_mac} {CTRL_L1_ADDR} "
            f"{sh_quote(self.ctrl_cmd)} {sh_quote(self.ctrl_expect)} {CTRL_L1_VADDR}/{NET_PREFIX}",
            f"run_xchg xchg-sim {XCHG_COUNT} sim",
            f"run_xchg xchg-vduse {XCHG_COUNT} vduse",
            f"run_xchg xchg-switch {XCHG_SWITCH_COUNT} switch",
            f"run_migrate_vduse vmig {sh_quote(self.cmdline('vmig'))} {VMIG_TAPS[0]} {VMIG_TAPS[1]} "
            f"{VMIG_L1_ADDR}/{NET_PREFIX} {MIG_TAP_MAC} {VMIG_L2_ADDR} {self.vduse_mac} {VMIG_L1_ADDR} "
            f"{sh_quote(self.vmig_cmd)} {sh_quote(self.vmig_expect)}",
            f"run_rootfs rootfs {sh_quote(self.cmdline('rootfs'))} {sh_quote(self.rootfs_cmd1)} "
            f"{sh_quote(self.rootfs_expect1)} {sh_quote(self.rootfs_cmd2)} {sh_quote(self.rootfs_expect2)}",
            ""])


class Results:
    def __init__(self):
        self.r = {}

    def ok(self, name, cond, why):
        self.r[name] = (bool(cond), "" if cond else why)

    def fail_all(self, why):
        for c in CHECKS:
            self.r.setdefault(c, (False, why))

    only = None

    def checks(self):
        return [c for c in CHECKS if not self.only or CHECK_RUN[c] in self.only
                or (c in ("l1-kvm",))]

    def report(self):
        for c in self.checks():
            ok, why = self.r.get(c, (False, "not evaluated"))
            why = " ".join(why.split())
            print(f"ok - linux/{c}" if ok else f"not ok - linux/{c} # {why}", flush=True)
        return all(self.r.get(c, (False,))[0] for c in self.checks())


def vm_reason(run):
    """tern's own account of why the VM ended (it runs with TERN_DEBUG=1):
    the last one, as a run may hold an earlier tern's output."""
    for line in reversed(run.lines):
        m = re.search(r"tern: (?:debug|error): (.*)", line)
        if m:
            return m.group(1).strip()
    return "no exit message from tern"


def run_summary(run):
    if run is None:
        return "this L2 run never started (see serial.log)"
    if run.rc is None:
        return "this L2 run never finished (see serial.log)"
    return f"tern exit status {run.rc}: {vm_reason(run)}"


def dmesg_problems(run, lane, name):
    """Saves the run's L2 dmesg as l2-dmesg[-NAME].txt; returns what is
    wrong with it (an empty list for a clean boot with every CPU up)."""
    dmesg = run.section("dmesg-begin", "dmesg-end")
    if dmesg is None:
        return ["L2's dmesg dump is incomplete (see serial.log)"]
    fname = "l2-dmesg.txt" if name == "checks" else f"l2-dmesg-{name}.txt"
    with open(os.path.join(lane, fname), "w") as f:
        f.write("\n".join(dmesg) + "\n")
    bad = [l.strip() for l in dmesg if DMESG_BAD.search(l)]
    if bad:
        return [f"{len(bad)} bad dmesg lines, first: {bad[0]!r}"]
    if not any(re.search(rf"smp: Brought up \d+ nodes?, {CPUS} CPUs", l) for l in dmesg):
        return [f"dmesg lacks 'Brought up ... {CPUS} CPUs'"]
    return []


def alt_run_problems(run, name, plan, kernel, lane):
    """Everything the bzImage checks prove, for one of the other loaders."""
    if run is None or run.mark("init") is None:
        return ["L2 never reached /init: " + run_summary(run)]
    want = {"uname": kernel["release"], "cmdline": plan.cmdline(name), "nproc": str(CPUS),
            "cpus-online": f"0-{CPUS - 1}", "marker": plan.nonce, "clocksource": "kvm-clock"}
    probs = [f"{k} {run.mark(k)!r} (want {v!r})" for k, v in want.items() if run.mark(k) != v]
    kb = run.mark("memtotal-kb") or ""
    if not (kb.isdigit() and 0.8 * (MEM_MIB << 20) <= int(kb) * 1024 <= MEM_MIB << 20):
        probs.append(f"MemTotal {kb!r} kB")
    probs += dmesg_problems(run, lane, name)
    if not (run.rc == 0 and run.mark("poweroff") is not None and "ACPI S5" in vm_reason(run)):
        probs.append("poweroff: " + run_summary(run))
    return probs


def evaluate(res, plan, kernel, runs, l1marks, lane):
    l1 = dict(l1marks)
    res.ok("l1-kvm", l1.get("kvm") == "present",
           f"L1 has no /dev/kvm (kvm marks: {l1.get('kvm')!r}, "
           f"insmod failures: {[v for k, v in l1marks if k == 'insmod-failed']})")

    ck = runs.get("checks")
    if ck is None or ck.mark("init") is None:
        why = "L2 never reached /init under tern: " + run_summary(ck)
        for c in ["boot", "cmdline", "nproc", "memtotal", "initramfs", "clocksource", "pci", "dmesg-clean"]:
            res.ok(c, False, why)
    else:
        uname = ck.mark("uname")
        res.ok("boot", uname == kernel["release"],
               f"L2 runs kernel {uname!r}, expected {kernel['release']!r}")
        got = ck.mark("cmdline")
        res.ok("cmdline", got == plan.cmdline("checks"),
               f"L2's /proc/cmdline is {got!r}, tern was given {plan.cmdline('checks')!r}")
        nproc, online = ck.mark("nproc"), ck.mark("cpus-online")
        res.ok("nproc", nproc == str(CPUS) and online == f"0-{CPUS - 1}",
               f"nproc {nproc!r}, cpus online {online!r}; tern was given --cpus {CPUS}")
        kb = ck.mark("memtotal-kb") or ""
        mem = int(kb) * 1024 if kb.isdigit() else None
        limit = MEM_MIB << 20
        res.ok("memtotal", mem is not None and 0.8 * limit <= mem <= limit,
               f"MemTotal {kb!r} kB is not within 80-100% of --memory {MEM_MIB}M")
        marker = ck.mark("marker")
        res.ok("initramfs", marker == plan.nonce,
               f"initramfs marker {marker!r}, the initramfs given holds {plan.nonce!r}")
        cs = ck.mark("clocksource")
        res.ok("clocksource", cs == "kvm-clock", f"clocksource is {cs!r}, not 'kvm-clock'")
        pci = [v.split() for lv, k, v in ck.marks if lv == "L2" and k == "pci" and v]
        bridge = any(d[0] == "0000:00:00.0" and d[3].startswith("0x0600") for d in pci if len(d) == 4)
        net = any(tuple(d[1:3]) == VIRTIO_NET_PCI and d[3].startswith("0x0200") for d in pci if len(d) == 4)
        res.ok("pci", bridge and net,
               f"L2's PCI devices {[' '.join(d) for d in pci]}: want a host bridge at 0000:00:00.0 "
               f"and the virtio-net device tern was given")
        probs = dmesg_problems(ck, lane, "checks")
        res.ok("dmesg-clean", not probs, "; ".join(probs))

    po_why = run_summary(ck)
    res.ok("poweroff", ck is not None and ck.rc == 0 and ck.mark("poweroff") is not None
           and ck.mark("still-running") is None and "ACPI S5" in vm_reason(ck),
           f"after `poweroff -f` in L2: {po_why}")

    rb = runs.get("reboot")
    res.ok("reboot", rb is not None and rb.rc == 0 and rb.mark("reboot") is not None
           and rb.mark("still-running") is None and "reset" in vm_reason(rb),
           f"after `reboot -f` in L2: {run_summary(rb)}")

    con = runs.get("console")
    if con is None or con.rc is None:
        res.ok("console", False, run_summary(con))
    else:
        typed = con.mark("typing", "L1") is not None
        echoed = any(plan.console_cmd in l for l in con.lines)
        answered = any(l.strip() == plan.console_expect for l in con.lines)
        res.ok("console", typed and echoed and answered and con.rc == 0 and "ACPI S5" in vm_reason(con),
               f"typed={typed} echoed={echoed} output-line={answered} ({run_summary(con)})")

    for name in ALT_RUNS:
        probs = alt_run_problems(runs.get(name), name, plan, kernel, lane)
        res.ok(f"{name}-boot", not probs, "; ".join(probs))

    evaluate_net(res, plan, runs.get("net"), lane)
    # every run's L1 marks too: the daemons of the vmig and xchg runs
    everywhere = l1marks + [(k, v) for r in runs.values() for lv, k, v in r.marks if lv == "L1"]
    evaluate_vduse(res, plan, runs.get("vduse"), l1marks, lane, everywhere)
    evaluate_vmig(res, plan, runs.get("vmig"))
    evaluate_xchg(res, runs, lane)
    evaluate_ctrl(res, plan, runs.get("ctrl"))
    evaluate_snap(res, plan, runs.get("snap"))
    evaluate_migrate(res, plan, runs.get("migrate"))
    evaluate_rootfs(res, plan, runs.get("rootfs"))


def evaluate_ctrl(res, plan, run):
    """Issue 9 in the lane: L2 set MAC, VLAN 42, a multicast address,
    promiscuous mode, two queues and an RSS table of all 1s through its
    control queue; after the migration it still has them (as Linux sees its
    device) and uses them (a ping over VLAN 42 from the new MAC, whose
    replies the destination's device steers to queue 1), and the
    destination replayed the state to its device before the data queues
    ran."""
    names = ["ctrl", "ctrl-set", "ctrl-state", "ctrl-use", "ctrl-device", "ctrl-replay"]
    if run is None or run.rc is None:
        for c in names:
            res.ok(c, False, run_summary(run))
        return
    mig = run.mark("migrate-rc", "L1") or ""
    res.ok("ctrl", mig.startswith("0 ") and '"state":"completed"' in mig, f"tern migrate: {mig[:300]!r}")
    # L2's marks come through the source's console (a shell run)
    marks = dict(m.groups() for l in run.lines for m in [re.search(r"@@L2 ctrl-(\S+) (\S+)", l)] if m)
    sets = {k: marks.get(k) for k in ("mac", "queues", "rss", "vlan", "maddr", "promisc", "vping-before")}
    res.ok("ctrl-set", all(v == "0" for v in sets.values()) and run.mark("vlan-up", "L1") is not None
           and run.mark("tap-missing", "L1") is None,
           f"L2's settings (exit status each): {sets}; L1's VLAN: {run.mark('vlan-up', 'L1')!r}; "
           f"L1's TAP set-up failed for: {run.mark('tap-missing', 'L1')!r}")
    text = "\n".join(run.lines)
    # each fact is checked in the output, not in the echo of the command
    has = {"mac": f"link/ether {plan.ctrl_newmac}" in text,
           "promisc": any(l.strip() == "PROMISC" for l in run.lines),
           "queues": bool(re.search(r"Combined: 2\b", text)),
           "maddr": "maddr=1" in text,
           # at least the nine echo replies on queue 1 (ARP is not
           # hashed: Linux's unclassified queue is 0)
           "rss": any(re.fullmatch(r"rssq1=(9|\d\d+)", l.strip()) for l in run.lines)}
    res.ok("ctrl-state", all(has.values()), f"after the migration, L2 has: {has}")
    answered = any(l.strip() == plan.ctrl_expect for l in run.lines)
    res.ok("ctrl-use", answered and run.rc == 0, f"ping over VLAN 42 from the new MAC answered={answered}; "
           + run_summary(run))
    # the destination device's own state, from its GET /vm
    dev = {}
    js = run.mark("dst-ctrl", "L1")
    try:
        dev = json.loads(js)["net"][0]["device_ctrl"] or {}
    except (TypeError, ValueError, KeyError, IndexError):
        pass
    rss = dev.get("rss") or {}
    want = {"pairs": dev.get("pairs") == 2, "promisc": "promisc" in (dev.get("rx") or []),
            "vlans": (dev.get("vlans") or 0) >= 1, "multicast": (dev.get("multicast") or 0) >= 1,
            "mac": dev.get("mac") == plan.ctrl_newmac,
            "rss": rss.get("mode") == "steer" and set(rss.get("table") or [0]) == {1}}
    res.ok("ctrl-device", all(want.values()), f"the destination device's own state: {want} ({str(js)[:200]!r})")
    rep = [l for l in run.lines if "control state replayed" in l]
    m = re.search(r"replayed: (\d+) commands", rep[0]) if rep else None
    res.ok("ctrl-replay", m is not None and int(m.group(1)) >= 4, f"the destination's replay: {rep[:1]!r}")
    if rep:
        print(f"# ctrl: {rep[0].strip()[-80:]}")


def net_of(mark):
    """The first net device's fields from a `"net":[{...}],...` mark."""
    m = re.search(r'"net":\[\{(.*?)\}', mark or "")
    f = {}
    for kv in re.findall(r'"(\w+)":("[^"]*"|-?\d+)', m.group(1) if m else ""):
        f[kv[0]] = kv[1].strip('"')
    return f


def evaluate_switch(res, run):
    """xchg-switch: A's VDUSE device went into shadow virtqueues and back
    (a cancelled migration) while B's frames flowed: B's exchange as
    xchg's, the switch seen in each direction, no rollback or recovery,
    and the device in passthrough afterwards."""
    if run is None:
        return False, "no run"
    start = run.mark("xchg-switch-start", "L1") or ""
    sw_in = net_of(run.mark("xchg-switch-in", "L1"))
    cancel = run.mark("xchg-switch-cancel", "L1") or ""
    after = net_of(run.mark("xchg-switch-after", "L1"))
    probs = []
    if not start.startswith("rc=0"):
        probs.append(f"migrate --no-wait: {start!r}")
    if sw_in.get("mode") != "svq":
        probs.append(f"during the migration the device was {sw_in!r}, not in svq")
    if '"cancelled"' not in cancel:
        probs.append(f"migrate-cancel: {cancel!r}")
    if after.get("mode") != "passthrough" or int(after.get("switches", 0)) < 2 or \
            after.get("rollbacks") != "0" or after.get("recoveries") != "0":
        probs.append(f"after the cancel: {after!r}")
    if sw_in.get("strategy"):
        print(f"# xchg-switch: into SVQ by strategy {sw_in.get('strategy')}, blackout {sw_in.get('blackout_us')} us; "
              f"after: {after.get('switches')} switches, blackout {after.get('blackout_us')} us")
    return not probs, "; ".join(probs)


def evaluate_xchg(res, runs, lane):
    """B's exchange with A's echo: every frame intact (none damaged,
    duplicated or reordered), nearly all back; the rate is printed and
    written to xchg-rates.txt (nested emulation: compare the two lines).
    xchg-switch adds its switches (evaluate_switch)."""
    rates = []
    for kind in ("sim", "vduse", "switch"):
        run = runs.get(f"xchg-{kind}")
        line = (run.mark("xchg-result", "L1") if run else None) or ""
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        count = XCHG_SWITCH_COUNT if kind == "switch" else XCHG_COUNT
        ok = f.get("rc") == "0" and f.get("rx_bad") == "0" and f.get("rx_dup") == "0" and \
            int(f.get("rx_ok", 0)) + int(f.get("rx_gap", 0)) == count and \
            int(f.get("rx_ok", 0)) >= count * 9 // 10
        if kind == "switch":
            # B fails on any gap; the switch's resets (strategy 3) may drop
            # the frame the device held each time: a few lost frames are
            # allowed, and nothing else (no damage, duplicate, device
            # error or timeout)
            detail = (run.mark("xchg-detail", "L1") if run else None) or ""
            ok = f.get("rc") in ("0", "1") and f.get("rx_bad") == "0" and f.get("rx_dup") == "0" and \
                int(f.get("rx_ok", 0)) + int(f.get("rx_gap", 0)) == count and \
                int(f.get("rx_gap", count)) <= XCHG_SWITCH_LOSS and "dev_errors=0" in detail and \
                not re.search(r"(^| )error ", detail)
        why = f"B's exchange: {line!r}; " + run_summary(run) if run else "no run"
        if kind == "switch":
            sw_ok, sw_why = evaluate_switch(res, run)
            ok, why = ok and sw_ok, f"{sw_why}; {why}"
        res.ok(f"xchg-{kind}", ok, why)
        if kind == "switch":
            continue
        try:
            secs = float(f["end"]) - float(f["start"])
            rates.append(f"xchg {kind:5}: {XCHG_COUNT} frames each way in {secs:.2f} s, "
                         f"{int(f.get('rx_ok', 0)) / secs:.0f} frames/s round trips (nested emulation)")
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    with open(os.path.join(lane, "xchg-rates.txt"), "w") as fh:
        fh.write("".join(r + "\n" for r in rates))
    for r in rates:
        print("# " + r)


def evaluate_vmig(res, plan, run):
    """The migration over vhost-vdpa (VDUSE): the same checks as the
    in-process device's, but for the announcement (VDUSE has no control
    queue, so no GUEST_ANNOUNCE), and the switch must have been strategy 3."""
    evaluate_migrate(res, plan, run, prefix="vmig", expect=plan.vmig_expect, announce=False)
    if run is None:
        return
    sw = [l for l in run.lines if "shadow virtqueues on" in l]
    res.ok("vmig-switch", any("(strategy 3)" in l for l in sw),
           f"the source's switch into SVQ: {sw[:2]!r}")
    if sw:
        print(f"# vmig: {sw[0].strip()[-120:]}")


def evaluate_migrate(res, plan, run, prefix="migrate", expect=None, announce=True):
    expect = expect or plan.mig_expect
    names = [prefix, f"{prefix}-shell", f"{prefix}-ping"] + ([f"{prefix}-announce"] if announce else [])
    if run is None or run.rc is None:
        for c in names:
            res.ok(c, False, run_summary(run))
        return
    mig = run.mark("migrate-rc", "L1") or ""
    m = re.search(r'"downtime_ms":(\d+)', mig)
    t = re.search(r'"total_ms":(\d+)', mig)
    res.ok(prefix, mig.startswith("0 ") and '"state":"completed"' in mig and run.mark("source-rc", "L1") == "0",
           f"tern migrate: {mig[:300]!r}; source exit {run.mark('source-rc', 'L1')!r}")
    if m and t:
        print(f"# {prefix} (nested): total {t.group(1)} ms, downtime {m.group(1)} ms")
    typed = run.mark("typed-output-seen", "L1") is not None
    answered = any(l.strip() == expect for l in run.lines)
    res.ok(f"{prefix}-shell", typed and answered and run.rc == 0 and "ACPI S5" in vm_reason(run),
           f"migrated shell: output seen={typed} line={answered}; {run_summary(run)}")
    stats = [l for l in run.lines if "packets transmitted" in l]
    sm = re.search(r"(\d+) packets transmitted, (\d+) packets received", stats[-1]) if stats else None
    if sm:
        sent, got = int(sm.group(1)), int(sm.group(2))
        print(f"# {prefix} (nested): L2 pinged L1 {sent} times at 5/s across the move, {sent - got} lost")
    res.ok(f"{prefix}-ping", sm is not None and int(sm.group(2)) > 0 and answered,
           f"L2's ping across the migration: {stats[-1] if stats else 'no summary'}; ping after it answered={answered}")
    if not announce:
        return
    neigh = run.mark("migrate-neigh", "L1") or ""
    res.ok("migrate-announce", neigh.startswith(MIG_L2_ADDR + " ") and f"lladdr {plan.mig_mac}" in neigh,
           f"L1's neighbour entry for L2 after the migration: {neigh!r}")


HASH_RE = re.compile(r"^[0-9a-f]{64}$")


def evaluate_rootfs(res, plan, run):
    """Linux booted from an ext4 image on --disk, migrated with
    --copy-disks and then on shared storage: its files read back intact."""
    names = ["rootfs-boot", "rootfs-copy", "rootfs-shared", "rootfs-files", "rootfs-fsck"]
    if run is None or run.rc is None:
        for c in names:
            res.ok(c, False, run_summary(run))
        return
    root, marker, serial = run.mark("rootfs-root") or "", run.mark("rootfs-marker"), run.mark("rootfs-serial")
    queues = run.mark("rootfs-queues") or ""
    res.ok("rootfs-boot", run.mark("rootfs-mounted") == "/dev/vda" and root.startswith("/dev/vda ext4")
           and marker == plan.nonce and serial == "lane-root" and re.match(r"2 discard-max=[1-9]", queues),
           f"mounted {run.mark('rootfs-mounted')!r}, / is {root!r}, marker {marker!r}, serial {serial!r}, "
           f"queues and discard {queues!r}; {run_summary(run)}")
    copy, shared = run.mark("rootfs-copy-rc", "L1") or "", run.mark("rootfs-shared-rc", "L1") or ""
    image = run.mark("rootfs-image", "L1") or ""
    res.ok("rootfs-copy", copy.startswith("0 ") and '"state":"completed"' in copy and '"copy_disks":true' in copy
           and '"disk_remaining_bytes":0' in copy and run.mark("rootfs-source-rc", "L1") == "0"
           and image == f"{lanelib.ROOTFS_MIB << 20} 600",
           f"tern migrate --copy-disks: {copy[:400]!r}; source exit {run.mark('rootfs-source-rc', 'L1')!r}; "
           f"created image (size, mode): {image!r}")
    res.ok("rootfs-shared", shared.startswith("0 ") and '"state":"completed"' in shared
           and '"copy_disks":false' in shared and run.mark("rootfs-first-rc", "L1") == "0",
           f"tern migrate on shared storage: {shared[:300]!r}; first destination exit "
           f"{run.mark('rootfs-first-rc', 'L1')!r}")
    a = run.mark("rootfs-file-a") or ""
    b = run.mark("rootfs-file-b") or ""
    after1 = run.mark("rootfs-after1") or ""
    after2 = run.mark("rootfs-after2") or ""
    trim = run.mark("rootfs-trim") or ""
    trimmed = re.search(r"^/: (\d+) bytes trimmed", trim)
    typed = run.mark("typed-output-seen-1", "L1") is not None and run.mark("typed-output-seen-2", "L1") is not None
    res.ok("rootfs-files", HASH_RE.match(a) and HASH_RE.match(b) and after1 == f"a={a}"
           and after2 == f"a={a} b={b}" and trimmed and int(trimmed.group(1)) >= 8 << 20 and typed
           and run.rc == 0 and "ACPI S5" in vm_reason(run),
           f"file a {a!r}, b {b!r}; after the copy {after1!r}; after shared storage {after2!r}; fstrim {trim!r}; "
           f"typed output seen {typed}; {run_summary(run)}")
    fsck = [v for lv, k, v in run.marks if lv == "L1" and k == "fsck"]
    res.ok("rootfs-fsck", run.mark("rootfs-fsck-rc", "L1") == "0",
           f"e2fsck -fn of the migrated image: exit {run.mark('rootfs-fsck-rc', 'L1')!r}: {' | '.join(fsck)[-300:]}")
    for mark, what in (("rootfs-copy-rc", "--copy-disks"), ("rootfs-shared-rc", "shared storage")):
        m = re.search(r'"downtime_ms":(\d+)', run.mark(mark, "L1") or "")
        t = re.search(r'"total_ms":(\d+)', run.mark(mark, "L1") or "")
        if m and t:
            print(f"# rootfs (nested): migration with {what}: total {t.group(1)} ms, downtime {m.group(1)} ms")


def evaluate_snap(res, plan, run):
    if run is None or run.rc is None:
        for c in ["snapshot", "restore-shell", "restore-ping",
          "restore-announce", "migrate", "migrate-shell", "migrate-ping", "migrate-announce"]:
            res.ok(c, False, run_summary(run))
        return
    snap = run.mark("snapshot-rc", "L1") or ""
    files = (run.mark("snapshot-files", "L1") or "").split()
    before = run.mark("snap-ping-before")
    res.ok("snapshot", snap.startswith("0 ") and '"type": "full"' in snap and "state" in files
           and any(f.startswith("memory.") for f in files) and run.mark("first-rc", "L1") == "0",
           f"tern snapshot: {snap!r}; files {files}; first tern rc {run.mark('first-rc', 'L1')!r}; "
           f"L2's ping before the snapshot rc {before!r}")
    typed = run.mark("typed-output-seen", "L1") is not None
    answered = any(l.strip() == plan.snap_expect for l in run.lines)
    res.ok("restore-shell", typed and answered and run.rc == 0 and "ACPI S5" in vm_reason(run),
           f"restored shell: output seen={typed} line={answered}; {run_summary(run)}")
    # The guest announced itself (S_ANNOUNCE -> gratuitous ARP): L1, which
    # accepts gratuitous ARP on that TAP, learnt L2's address before it
    # sent L2 anything.
    neigh = run.mark("restore-neigh", "L1") or ""
    res.ok("restore-announce", neigh.startswith(SNAP_L2_ADDR + " ") and f"lladdr {plan.snap_mac}" in neigh,
           f"L1's neighbour entry for L2 after the restore: {neigh!r}")
    res.ok("restore-ping", run.mark("restore-ping-rc", "L1") == "0" and answered,
           f"L1 -> restored L2 ping rc {run.mark('restore-ping-rc', 'L1')!r}; L2 -> L1 ping answered={answered}")


def _hash_mark(run, key, level="L2"):
    """(size, sha256) from a "KEY SIZE HASH" mark, or None."""
    v = (run.mark(key, level) or "").split()
    if len(v) == 2 and v[0].isdigit() and re.fullmatch(r"[0-9a-f]{64}", v[1]):
        return int(v[0]), v[1]
    return None


def _transfer(run, what, sent, received):
    """Checks one TCP direction; returns (problems, seconds or None)."""
    done = {k: v for k, v in (f.split("=", 1) for f in (run.mark(f"tcp-{what}-done") or "").split() if "=" in f)}
    probs, secs = [], None
    if not done:
        return [f"{what}: L2 never finished its nc"], None
    if done.get("rc") != "0":
        probs.append(f"{what}: L2's nc exited {done.get('rc')}")
    try:
        secs = float(done["end"]) - float(done["start"])
    except (KeyError, ValueError):
        probs.append(f"{what}: no timing in {done}")
    if sent is None or received is None:
        probs.append(f"{what}: hash missing (sent {sent}, received {received})")
    elif sent[0] != NET_BYTES:
        probs.append(f"{what}: sender had {sent[0]} bytes, not {NET_BYTES}")
    elif received != sent:
        probs.append(f"{what}: received {received[0]} bytes sha256 {received[1][:16]}..., "
                     f"sent {sent[0]} sha256 {sent[1][:16]}...")
    return probs, secs


def evaluate_vduse(res, plan, run, l1marks, lane, all_l1marks):
    """The vhost-vdpa run: the device, the fd-leak cycles, the error
    messages (from L1's marks), then the net run's checks on it."""
    m = dict(l1marks)
    dev = m.get("vduse-dev", "")
    res.ok("vduse-dev", dev.startswith("/dev/vhost-vdpa-"),
           f"no /dev/vhost-vdpa-N from tern vduse-net + vdpa dev add: {dev!r} "
           f"{[v for k, v in l1marks if k == 'vduse-out']}")
    cyc = m.get("vduse-cycles", "")
    res.ok("vduse-fd-leak", re.search(r"cycles 1000: open file descriptors (\d+) before, \1 after", cyc),
           f"tern vdpa-probe --cycles 1000: {cyc!r}")
    probs = []
    for key, want in [("vduse-err-missing", "does not exist"), ("vduse-err-busy", "is in use"),
                      ("vduse-err-queues", "queue pair")]:
        got = m.get(key, "")
        if want not in got:
            probs.append(f"{key}: {got!r} (expected {want!r})")
    # and no daemon, in any run, reported an error or exited other than 0
    # (a seccomp kill, say: l1-init.sh forwards their errors as they come)
    probs += [f"a daemon said: {v}" for k, v in all_l1marks if k == "vduse-live"]
    probs += [f"exit: {v}" for k, v in all_l1marks if k == "vduse-exit" and not re.search(r" rc=0( |$)", v or "")]
    res.ok("vduse-errors", not probs, "; ".join(probs))
    if run is not None:
        print(f"# vduse: {m.get('vduse-probe', '')}; {cyc}")
    evaluate_net(res, plan, run, lane, prefix="vduse", mac=plan.vduse_mac)


def evaluate_net(res, plan, run, lane, prefix="net", mac=None):
    mac_want = mac or plan.mac
    if run is None or run.mark("init") is None:
        why = "L2 never reached /init: " + run_summary(run)
        for c in ["bind", "mac", "ping", "tcp"]:
            res.ok(f"{prefix}-{c}", False, why)
        return
    fails = [v for lv, k, v in run.marks if k == "insmod-failed"]
    ifaces = (run.mark("net-ifaces") or "").split()
    drv, pci = run.mark("net-driver"), (run.mark("net-pci") or "").split()
    probs = []
    if fails:
        probs.append(f"insmod failed: {fails}")
    if "eth0" not in ifaces:
        probs.append(f"no eth0 (interfaces: {ifaces})")
    if drv != "virtio_net":
        probs.append(f"eth0's driver is {drv!r}")
    if tuple(pci[1:3]) != VIRTIO_NET_PCI:
        probs.append(f"eth0 sits on PCI {pci}, not tern's virtio-net device")
    # L2 dumps dmesg after all the traffic: the driver must not have
    # complained (a TX timeout is a WARNING with a trace). A run that never
    # got that far fails net-tcp instead.
    if run.section("dmesg-begin", "dmesg-end") is not None:
        probs += dmesg_problems(run, lane, prefix)
    res.ok(f"{prefix}-bind", not probs, "; ".join(probs))

    got = run.mark("net-mac")
    res.ok(f"{prefix}-mac", got == mac_want, f"eth0's MAC is {got!r}, the device was given mac={mac_want}")

    ping_rc = run.mark("ping-rc")
    summary = next((v for lv, k, v in run.marks if k == "ping-out" and v and "transmitted" in v), "")
    tap = run.mark("tap-up", "L1")
    res.ok(f"{prefix}-ping", ping_rc == "0" and re.search(r"\b5 packets transmitted, 5 packets received", summary)
           and tap is not None,
           f"ping rc {ping_rc!r}, {summary!r}; L1's TAP: "
           + (f"up ({tap})" if tap is not None else "missing"))

    probs, timing = [], []
    for what, sent, received in [
            ("up", _hash_mark(run, "tcp-up-sent"), _hash_mark(run, "tcp-up-received", "L1")),
            ("down", _hash_mark(run, "tcp-down-sent", "L1"), _hash_mark(run, "tcp-down-received"))]:
        p, secs = _transfer(run, what, sent, received)
        probs += p
        label = "L2->L1" if what == "up" else "L1->L2"
        if secs is not None and secs > 0:
            timing.append(f"{prefix}-tcp {label}: {NET_BYTES >> 20} MiB in {secs:.2f} s, "
                          f"{NET_BYTES / secs / (1 << 20):.2f} MiB/s ({NET_BYTES * 8 / secs / 1e6:.1f} Mbit/s)")
    # tests/run.py shows a suite's other output only when it fails: the
    # rates also go to a file of their own.
    with open(os.path.join(lane, f"{prefix}-rates.txt"), "w") as f:
        f.write("".join(t + "\n" for t in timing))
    for t in timing:
        print("# " + t)
    if not (run.rc == 0 and run.mark("poweroff") is not None and "ACPI S5" in vm_reason(run)):
        probs.append("the run did not end with poweroff: " + run_summary(run))
    res.ok(f"{prefix}-tcp", not probs, "; ".join(probs))


def save_runs(lane, runs, l1_lines):
    for name, run in runs.items():
        with open(os.path.join(lane, f"run-{name}.log"), "w") as f:
            f.write("\n".join(run.lines) + "\n")
    dm, inside = [], False
    for line in l1_lines:
        if "@@L1 dmesg-begin" in line:
            inside = True
        elif "@@L1 dmesg-end" in line:
            break
        elif inside:
            dm.append(line)
    with open(os.path.join(lane, "l1-dmesg.txt"), "w") as f:
        f.write("\n".join(dm) + "\n")


def lane_main(args, res, plan):
    """Runs the lane; records every check in res and reports; True if all passed."""
    build = os.path.abspath(args.build)
    t0 = time.monotonic()
    try:
        lane = lanelib.lane_dir(build)
        lanelib.check_tools()
        tern = os.path.join(build, "tern")
        if not os.access(tern, os.X_OK):
            raise LaneError(f"{tern} is missing: run make all")
        kernel = lanelib.fetch_kernel(build)
        log(f"kernel {kernel['package']}")
        vmlinux = lanelib.extract_vmlinux(kernel)
        l2 = lanelib.build_l2_initramfs(build, plan.nonce, kernel=kernel)
        rootfs = lanelib.build_rootfs_image(build, plan.nonce, kernel)
        guest = os.path.join(build, "firmware", "testguest.elf")
        l1 = lanelib.new_l1_initramfs(build, kernel, tern, l2, plan.script(), vmlinux=vmlinux,
                                      guest=guest, rootfs=rootfs).pack(
            os.path.join(lane, "l1.cpio.gz"))
        log(f"initramfs images built in {time.monotonic() - t0:.1f} s")
    except LaneError as ex:
        res.fail_all(f"lane set-up failed: {ex}")
        return res.report()

    serial = os.path.join(lane, "serial.log")
    timeout = 90 + (12 + len(ALT_RUNS)) * RUN_TIMEOUT + 2 * NET_TIMEOUT
    if args.deadline:
        # whoever runs the lane kills it at its own deadline: QEMU is
        # killed first, so that what L1 got through is still reported
        left = int(args.deadline - (time.monotonic() - t0) - 30)
        if left < timeout:
            log(f"QEMU gets {left} s of the lane's {args.deadline} s deadline")
            timeout = max(left, 60)
    rc, wall = lanelib.run_l1(kernel, l1, serial, timeout)
    lines = lanelib.read_log(serial)
    runs, l1marks = lanelib.parse_runs(lines)
    save_runs(lane, runs, lines)
    print(f"# L1 under QEMU TCG: exit {rc}, {wall:.1f} s wall; serial log {serial}")
    for name, run in runs.items():
        if run.begin and run.end:
            print(f"# L2 run {name}: {float(run.end) - float(run.begin):.1f} s of L1 time, "
                  f"{run_summary(run)}")
    if not any(k == "init" for k, _ in l1marks):
        res.fail_all(f"L1 never reached its /init (QEMU exit {rc}, {wall:.0f} s; see {serial})")
    else:
        evaluate(res, plan, kernel, runs, l1marks, lane)
    if rc is None:
        # where L1 was when it ran out of time
        print(f"# QEMU was killed after {timeout} s; the serial log ended with:")
        for line in lines[-40:]:
            print(f"#   {line[:300]}")
    ok = res.report()
    print(f"# lane total {time.monotonic() - t0:.1f} s")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(lanelib.ROOT, "build"))
    ap.add_argument("--seed", type=int, help="seed for the nonce and the console sum")
    ap.add_argument("--deadline", type=int, help="seconds the whole lane may take: QEMU is killed in time "
                                                 "for the lane to report what L1 got through")
    ap.add_argument("--only", help="comma-separated runs (e.g. vduse,net): the others are skipped and not "
                                   "reported (for working on one run; make check runs them all)")
    args = ap.parse_args()
    res = Results()
    only = set(args.only.split(",")) if args.only else None
    res.only = only
    try:
        ok = lane_main(args, res, Plan(random.Random(args.seed), only))
    except Exception as ex:  # a harness bug must still fail every check, loudly
        import traceback
        traceback.print_exc()
        res.fail_all(f"harness error: {type(ex).__name__}: {ex}")
        ok = res.report()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
