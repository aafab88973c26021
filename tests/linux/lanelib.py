"""The nested Linux lane's plumbing, shared by tests/linux/lane.py and
tests/bench/linux-boot (docs/linux-lane.md explains the lane).

Everything comes from Debian's archive: the tools through scripts/setup.sh,
the kernel through `apt-get download`, cached under BUILD/linux-lane/ so a
second run fetches nothing. A missing ingredient raises LaneError with a
message that says what to install or run; callers report it as a failure,
never as a skip.
"""
import gzip
import lzma
import os
import re
import struct
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Debian 12 carries the 6.12 kernel as linux-image-6.12.N+deb12-cloud-amd64
# (bookworm-security). The cloud flavour is small and has kvm_amd.
KERNEL_PKG_RE = re.compile(r"^linux-image-(6\.12\.(\d+)\+deb12-cloud-amd64)$")
TERN_DLOPEN = ["libcurl.so.4", "libmicrohttpd.so.12"]
TOOLS = ["qemu-system-x86_64", "cpio", "gzip", "xz", "zstd", "apt-get", "apt-cache", "dpkg-deb", "ldd", "mke2fs"]
BUSYBOX = "/bin/busybox"
# Load order (modinfo -F depends). tun gives L1 /dev/net/tun for tern's
# --net vdpa-sim,tap=; vduse and vhost_vdpa give /dev/vhost-vdpa-N for tern's
# software device exported by tern vduse-net (never virtio_vdpa: it would
# claim the device); L2's network driver needs the other two first.
L1_MODULES = ["irqbypass", "kvm", "kvm-amd", "tun", "vhost_iotlb", "vdpa", "vduse", "vhost", "vhost_vdpa",
              "llc", "stp", "garp", "mrp", "8021q"]
# iproute2's vdpa tool binds a VDUSE device to vhost_vdpa (vdpa dev add).
VDPA_TOOL = "/usr/sbin/vdpa"
L2_MODULES = ["failover", "net_failover", "virtio_net", "llc", "stp", "garp", "mrp", "8021q", "virtio_blk"]
# The rootfs run: an ext4 image (mke2fs -d) that L2 boots from, checked by
# e2fsprogs' e2fsck in L1 once the last tern is done with it.
ROOTFS_MIB = 48
E2FSCK = "/sbin/e2fsck"
# ethtool (Debian's) sets L2's queue count in the ctrl run, iproute2's ip
# (as ip.full) its multicast addresses: busybox's ip has no maddr.
ETHTOOL = "/usr/sbin/ethtool"
IPROUTE2 = "/bin/ip"


class LaneError(Exception):
    """An ingredient is missing or a build step failed."""


def log(msg):
    """Progress goes to stderr: stdout is reserved for TAP."""
    print(f"# lane: {msg}", file=sys.stderr, flush=True)


def run(argv, **kw):
    try:
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, **kw)
    except FileNotFoundError:
        raise LaneError(f"{argv[0]} is not installed (run scripts/setup.sh)")
    except subprocess.CalledProcessError as ex:
        raise LaneError(f"{' '.join(map(shlex.quote, argv))} failed (exit {ex.returncode}): "
                        f"{(ex.stderr or ex.stdout or '').strip()[-500:]}")


def lane_dir(build):
    d = os.path.join(build, "linux-lane")
    os.makedirs(d, exist_ok=True)
    return d


def check_tools():
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        raise LaneError(f"missing tools: {' '.join(missing)} (run scripts/setup.sh)")
    if not os.path.exists(BUSYBOX):
        raise LaneError(f"{BUSYBOX} is missing (install busybox-static: scripts/setup.sh)")
    # A dynamic busybox would need its libraries in both initramfs images.
    p = subprocess.run(["ldd", BUSYBOX], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode == 0 and "not a dynamic executable" not in p.stdout:
        raise LaneError(f"{BUSYBOX} is dynamically linked; the lane needs busybox-static")


def _kernel_candidates():
    p = run(["apt-cache", "search", "--names-only", r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$"])
    found = []
    for line in p.stdout.splitlines():
        m = KERNEL_PKG_RE.match(line.split(" ", 1)[0])
        if m:
            found.append((int(m.group(2)), line.split(" ", 1)[0], m.group(1)))
    return sorted(found)


def fetch_kernel(build):
    """Returns {'vmlinuz', 'release', 'root', 'package'} for the newest
    linux-image-6.12.*+deb12-cloud-amd64 apt knows, downloading and
    unpacking it only when BUILD/linux-lane/kernel/ lacks it."""
    kdir = os.path.join(lane_dir(build), "kernel")
    os.makedirs(kdir, exist_ok=True)
    cands = _kernel_candidates()
    if not cands:
        cached = sorted(d for d in os.listdir(kdir) if os.path.isdir(os.path.join(kdir, d)))
        if cached:
            return _kernel_info(kdir, cached[-1])
        if os.geteuid() == 0:
            log("apt knows no 6.12 cloud kernel: running apt-get update once")
            run(["apt-get", "update", "-qq"])
            cands = _kernel_candidates()
    if not cands:
        raise LaneError("apt knows no linux-image-6.12.*+deb12-cloud-amd64 package "
                        "(bookworm-security must be in sources.list; run apt-get update)")
    _, pkg, release = cands[-1]
    root = os.path.join(kdir, release)
    if not os.path.exists(os.path.join(root, "boot", f"vmlinuz-{release}")):
        debs = [f for f in os.listdir(kdir) if f.startswith(pkg + "_") and f.endswith(".deb")]
        if not debs:
            log(f"apt-get download {pkg}")
            run(["apt-get", "download", pkg], cwd=kdir)
            debs = [f for f in os.listdir(kdir) if f.startswith(pkg + "_") and f.endswith(".deb")]
            if not debs:
                raise LaneError(f"apt-get download {pkg} left no .deb in {kdir}")
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run(["dpkg-deb", "-x", os.path.join(kdir, sorted(debs)[-1]), tmp])
        shutil.rmtree(root, ignore_errors=True)
        os.rename(tmp, root)
    return _kernel_info(kdir, release)


def _kernel_info(kdir, release):
    root = os.path.join(kdir, release)
    vmlinuz = os.path.join(root, "boot", f"vmlinuz-{release}")
    if not os.path.exists(vmlinuz):
        raise LaneError(f"{vmlinuz} is missing: delete {root} and run again")
    return {"vmlinuz": vmlinuz, "release": release, "root": root,
            "package": f"linux-image-{release}"}


def extract_vmlinux(kernel):
    """The ELF vmlinux inside the bzImage (Documentation/arch/x86/boot.rst:
    payload_offset/payload_length locate the compressed kernel, whose last
    4 bytes are its uncompressed size). Debian's 6.12 uses zstd. Cached
    next to the unpacked package; returns its path."""
    out = os.path.join(kernel["root"], "vmlinux")
    if os.path.exists(out):
        return out
    with open(kernel["vmlinuz"], "rb") as f:
        img = f.read()
    if len(img) < 0x250 or img[0x202:0x206] != b"HdrS":
        raise LaneError(f"{kernel['vmlinuz']} is not a bzImage")
    setup = ((img[0x1f1] or 4) + 1) * 512
    off, length = struct.unpack_from("<II", img, 0x248)
    payload = img[setup + off:setup + off + length]
    if len(payload) != length or length < 8:
        raise LaneError(f"{kernel['vmlinuz']}: payload runs past the file")
    size = struct.unpack_from("<I", payload, length - 4)[0]
    data = payload[:-4]
    if data[:4] == b"\x28\xb5\x2f\xfd":
        elf = subprocess.run(["zstd", "-d", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, check=False).stdout
    elif data[:2] == b"\x1f\x8b":
        elf = gzip.decompress(data)
    elif data[:6] == b"\xfd7zXZ\x00":
        elf = lzma.decompress(data)
    else:
        raise LaneError(f"{kernel['vmlinuz']}: payload compression {data[:4].hex()} not supported")
    if len(elf) != size or elf[:4] != b"\x7fELF":
        raise LaneError(f"{kernel['vmlinuz']}: decompressed payload is not the {size}-byte ELF it claims")
    with open(out + ".tmp", "wb") as f:
        f.write(elf)
    os.rename(out + ".tmp", out)
    return out


def find_module(kernel, name):
    base = os.path.join(kernel["root"], "lib", "modules", kernel["release"])
    for dirpath, _, files in os.walk(base):
        for f in files:
            if f in (f"{name}.ko.xz", f"{name}.ko"):
                return os.path.join(dirpath, f)
    raise LaneError(f"module {name} is not in {kernel['package']}")


class Initramfs:
    """A staging tree packed as a gzip'd newc cpio archive (pack() removes
    the tree)."""

    def __init__(self, stage):
        shutil.rmtree(stage, ignore_errors=True)
        os.makedirs(stage)
        self.stage = stage
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "lib", "lib64"):
            os.makedirs(os.path.join(stage, d), exist_ok=True)

    def _dst(self, path):
        dst = os.path.join(self.stage, path.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        return dst

    def file(self, src, path, mode=None):
        dst = self._dst(path)
        shutil.copyfile(src, dst)  # follows symlinks
        shutil.copymode(src, dst)
        if mode is not None:
            os.chmod(dst, mode)

    def text(self, path, content, mode=0o644):
        dst = self._dst(path)
        with open(dst, "w") as f:
            f.write(content)
        os.chmod(dst, mode)

    def busybox(self):
        """busybox and a link per applet, at the paths busybox expects.
        No link named busybox: /init would loop through it (ELOOP)."""
        self.file(BUSYBOX, "/bin/busybox", 0o755)
        applets = run([BUSYBOX, "--list-full"]).stdout.split()
        for a in applets:
            if os.path.basename(a) == "busybox":
                continue
            dst = self._dst(a)
            if not os.path.lexists(dst):
                os.symlink("/bin/busybox", dst)

    def _needed(self, src):
        """Every library ldd lists for src."""
        out = run(["ldd", src]).stdout
        for lib in re.findall(r"(/[^\s]+)\s+\(0x", out):
            if not os.path.lexists(self._dst(lib)):
                self.file(lib, lib)
        if "not found" in out:
            raise LaneError(f"ldd {src}: a library is missing:\n{out}")

    def binary(self, src, path):
        """A dynamically linked program plus every library ldd lists."""
        self.file(src, path, 0o755)
        self._needed(src)

    def library(self, soname):
        """A shared library a program loads with dlopen() (ldd does not list
        it), plus every library it needs."""
        for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"):
            src = os.path.join(d, soname)
            if os.path.exists(src):
                break
        else:
            raise LaneError(f"{soname} is not installed (tern loads it on demand)")
        if not os.path.lexists(self._dst(src)):
            self.file(src, src)
        self._needed(src)

    def module(self, kernel, name):
        """A kernel module, decompressed: busybox insmod cannot read .xz."""
        src = find_module(kernel, name)
        dst = self._dst(f"/lib/modules/{name}.ko")
        if src.endswith(".xz"):
            with open(dst, "wb") as f:
                subprocess.run(["xz", "-dc", src], stdout=f, check=True)
        else:
            shutil.copyfile(src, dst)

    def pack(self, out):
        files = run(["find", "."], cwd=self.stage).stdout
        names = "\n".join(sorted(files.split("\n")[:-1])) + "\n"
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            cpio = subprocess.Popen(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=self.stage,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=f)
            cpio.stdout.close()
            _, err = cpio.communicate(names.encode())
            gz.wait()
        if cpio.returncode or gz.returncode:
            raise LaneError(f"cpio/gzip of {self.stage} failed: {err.decode(errors='replace')[-300:]}")
        os.rename(tmp, out)
        shutil.rmtree(self.stage)  # the archive is what counts; the tree is large
        return out


def build_l2_initramfs(build, marker, name="l2", kernel=None):
    """busybox, the L2 /init and a marker file holding `marker`; with
    `kernel`, also the L2_MODULES (virtio_net) from its package."""
    d = lane_dir(build)
    ir = Initramfs(os.path.join(d, f"{name}-root"))
    ir.busybox()
    if kernel:
        for m in L2_MODULES:
            ir.module(kernel, m)
        ir.binary(ETHTOOL, "/bin/ethtool")
        ir.binary(IPROUTE2, "/bin/ip.full")
    ir.file(os.path.join(HERE, "l2-init.sh"), "/init", 0o755)
    ir.text("/lane-marker", marker + "\n")
    return ir.pack(os.path.join(d, f"{name}.cpio.gz"))


def build_rootfs_image(build, marker, kernel):
    """The rootfs run's ext4 image: busybox, the L2 modules and tools, the
    marker and tests/linux/rootfs-init.sh as /sbin/init, made with mke2fs -d
    (no loop device, no mount)."""
    d = lane_dir(build)
    tree = Initramfs(os.path.join(d, "rootfs-root"))
    tree.busybox()
    for m in L2_MODULES:
        tree.module(kernel, m)
    tree.binary(ETHTOOL, "/bin/ethtool")
    tree.binary(IPROUTE2, "/bin/ip.full")
    # busybox() made /sbin/init a link to /bin/busybox: writing through it
    # would write the host's busybox
    os.unlink(tree._dst("/sbin/init"))
    tree.file(os.path.join(HERE, "rootfs-init.sh"), "/sbin/init", 0o755)
    tree.text("/lane-marker", marker + "\n")
    os.makedirs(tree._dst("/data"), exist_ok=True)
    out = os.path.join(d, "rootfs.img")
    if os.path.exists(out):
        os.unlink(out)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "lane-root", "-E", "root_owner=0:0", "-d", tree.stage, out,
         f"{ROOTFS_MIB}M"])
    shutil.rmtree(tree.stage)
    return out


def new_l1_initramfs(build, kernel, tern, l2_initrd, plan, name="l1", vmlinux=None, guest=None, rootfs=None):
    """The L1 tree: busybox, kvm and tun modules, tern and its libraries, the L2
    kernel (/l2/vmlinuz, and /l2/vmlinux if given) and initramfs, the /init
    and its plan. Returned unpacked so a caller can add more (the benchmark
    adds QEMU) before pack()."""
    d = lane_dir(build)
    ir = Initramfs(os.path.join(d, f"{name}-root"))
    ir.busybox()
    for m in L1_MODULES:
        ir.module(kernel, m)
    ir.binary(tern, "/bin/tern")
    # loaded on demand (cmd/dynlib.c): the client commands' HTTP client
    # (cmd/client.c) and the API server's (cmd/api_http.c)
    for lib in TERN_DLOPEN:
        ir.library(lib)
    ir.binary(VDPA_TOOL, "/bin/vdpa")
    if guest:  # tern's test guest, for runs that use it in L1
        ir.file(guest, "/l1/testguest.elf")
    ir.file(kernel["vmlinuz"], "/l2/vmlinuz")
    if vmlinux:
        ir.file(vmlinux, "/l2/vmlinux")
    ir.file(l2_initrd, "/l2/initrd.gz")
    if rootfs:  # the rootfs run's disk, and the checker L1 runs on it afterwards
        ir.file(rootfs, "/l2/rootfs.img")
        ir.binary(E2FSCK, "/bin/e2fsck")
    ir.file(os.path.join(HERE, "l1-init.sh"), "/init", 0o755)
    ir.text("/lane/plan.sh", plan)
    return ir


def sh_quote(s):
    return shlex.quote(s)


def run_l1(kernel, initrd, log_path, timeout, l1_cmdline="console=ttyS0 panic=-1 quiet"):
    """Boots L1 under QEMU TCG, its serial console written to log_path.
    Returns (exit status or None on timeout, wall seconds)."""
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "2G", "-smp", "1",
            "-nographic", "-no-reboot", "-net", "none",
            "-kernel", kernel["vmlinuz"], "-initrd", initrd, "-append", l1_cmdline]
    log(" ".join(shlex.quote(a) for a in argv))
    t0 = time.monotonic()
    with open(log_path, "wb") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
    return rc, time.monotonic() - t0


def read_log(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    return [l.rstrip("\r") for l in text.replace("\r\n", "\n").split("\n")]


MARK_RE = re.compile(r"@@(L1|L2) (\S+)(?: (.*))?$")


class Run:
    """One L2 boot inside L1, cut out of the serial log."""

    def __init__(self, name):
        self.name = name
        self.lines = []      # everything the VMM printed, L2's console included
        self.marks = []      # (level, key, value) in order
        self.rc = None       # VMM exit status; None if the run never ended
        self.begin = self.end = None  # L1 uptimes

    def mark(self, key, level="L2"):
        for lv, k, v in self.marks:
            if lv == level and k == key:
                return v if v is not None else ""
        return None

    def section(self, begin, end):
        """Lines between two L2 marks (exclusive), or None if incomplete."""
        out, inside = [], False
        for line in self.lines:
            m = MARK_RE.search(line)
            if m and m.group(1) == "L2" and m.group(2) == begin:
                inside = True
                continue
            if m and m.group(1) == "L2" and m.group(2) == end and inside:
                return out
            if inside:
                out.append(line)
        return None


def parse_runs(lines):
    """Splits the L1 serial log into Runs and the L1-level marks."""
    runs, l1, cur = {}, [], None
    for line in lines:
        m = MARK_RE.search(line)
        if m and m.group(1) == "L1":
            key, val = m.group(2), m.group(3) or ""
            if key == "run-begin":
                name = val.split()[0] if val else "?"
                cur = runs[name] = Run(name)
                cur.begin = _field(val, "uptime")
                continue
            if key == "run-end" and cur is not None:
                rc = _field(val, "rc")
                cur.rc = int(rc) if rc is not None else None
                cur.end = _field(val, "uptime")
                cur = None
                continue
            if cur is not None:
                cur.marks.append(("L1", key, val))
                cur.lines.append(line)
            else:
                l1.append((key, val))
            continue
        if cur is not None:
            cur.lines.append(line)
            if m:
                cur.marks.append(("L2", m.group(2), m.group(3)))
    return runs, l1


def _field(val, key):
    m = re.search(rf"\b{key}=(\S+)", val or "")
    return m.group(1) if m else None
