#!/bin/sh
# /init of L1: Debian's kernel under QEMU TCG (-cpu max emulates AMD SVM with
# nested paging), so kvm_amd loads and /dev/kvm is hardware-style KVM. This
# script loads KVM (and tun, for tern's TAP networking), defines the run
# helpers below, sources the plan that tests/linux/lane.py (or
# tests/bench/linux-boot) wrote to /lane/plan.sh, dumps L1's own dmesg and
# powers off. Everything it says is a
# "@@L1 KEY VALUE" line on the serial console; what the VMM prints (L2's
# console and tern's messages) appears between "@@L1 run-begin NAME" and
# "@@L1 run-end NAME rc=N".
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
dmesg -n 1

up() { cut -d' ' -f1 /proc/uptime; }

echo "@@L1 init uptime=$(up)"
for m in irqbypass kvm kvm-amd tun vhost_iotlb vdpa vduse vhost vhost_vdpa llc stp garp mrp 8021q; do
	insmod /lib/modules/$m.ko || echo "@@L1 insmod-failed $m"
done
if [ -c /dev/kvm ]; then
	echo "@@L1 kvm present"
else
	echo "@@L1 kvm missing"
fi

# Defaults; the plan may change them.
LANE_CPUS=2
LANE_MEM=512M
LANE_TIMEOUT=120
L2_KERNEL=/l2/vmlinuz
L2_INITRD=/l2/initrd.gz

# The tern command line every run shares (word-split on purpose).
tern_argv() {
	echo "tern run --initrd $L2_INITRD --cpus $LANE_CPUS --memory $LANE_MEM"
}

# run_l2 NAME KERNEL CMDLINE [TERN OPTIONS...]: boots L2 under tern with no
# console input and waits for tern to exit. TERN_DEBUG makes tern say why
# the VM ended.
run_l2() {
	name=$1 kernel=$2 cmdline=$3
	shift 3
	echo "@@L1 run-begin $name uptime=$(up)"
	TERN_DEBUG=1 timeout -k 10 "$LANE_TIMEOUT" $(tern_argv) --kernel "$kernel" --cmdline "$cmdline" "$@" \
		</dev/null 2>&1
	rc=$?
	echo
	echo "@@L1 run-end $name rc=$rc uptime=$(up)"
}

# wait_for TEXT FILE SECONDS: polls FILE until it contains TEXT.
wait_for() {
	n=$(($3 * 5))
	while [ $n -gt 0 ]; do
		grep -qF -- "$1" "$2" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}

# console_tern COMMAND...: starts COMMAND (a tern) in the background with
# its stdin the FIFO /tmp/con.in, held open as fd 3 for typing, and its
# output in /tmp/con.out; $pid is its process.
console_tern() {
	rm -f /tmp/con.in
	mkfifo /tmp/con.in
	: >/tmp/con.out
	TERN_DEBUG=1 timeout -k 10 "$LANE_TIMEOUT" "$@" </tmp/con.in >/tmp/con.out 2>&1 &
	pid=$!
	exec 3>/tmp/con.in
}

# type_expect COMMAND EXPECT SECONDS: types COMMAND into console_tern's
# guest, reports whether EXPECT shows in its output in time, then types
# "poweroff -f".
type_expect() {
	printf '%s\n' "$1" >&3
	if wait_for "$2" /tmp/con.out "$3"; then
		echo "@@L1 typed-output-seen"
	else
		echo "@@L1 typed-output-missing"
	fi
	printf 'poweroff -f\n' >&3
}

# run_console NAME CMDLINE COMMAND EXPECT: boots L2 into an interactive
# shell, types COMMAND into tern's stdin once the prompt shows, waits for
# EXPECT in tern's output, then types "poweroff -f".
run_console() {
	echo "@@L1 run-begin $1 uptime=$(up)"
	console_tern $(tern_argv) --kernel "$L2_KERNEL" --cmdline "$2"
	if wait_for "lane-sh# " /tmp/con.out "$LANE_TIMEOUT"; then
		echo "@@L1 typing"
		type_expect "$3" "$4" 30
	else
		echo "@@L1 prompt-missing"
		kill "$pid"
	fi
	wait "$pid"
	rc=$?
	exec 3>&-
	cat /tmp/con.out
	echo
	echo "@@L1 run-end $1 rc=$rc uptime=$(up)"
}

# TCP counters that tell a clean transfer from a lossy one.
tcp_stats() {
	cat /proc/net/snmp /proc/net/netstat | awk '
		$1 == "Tcp:" || $1 == "TcpExt:" {
			if (!(($1) in hdr)) { hdr[$1] = 1; for (i = 2; i <= NF; i++) name[$1, i] = $i; next }
			for (i = 2; i <= NF; i++)
				if (name[$1, i] ~ /^(InSegs|OutSegs|RetransSegs|TCPTimeouts|TCPLostRetransmit|TCPSackRecovery|TCPFastRetrans|TCPBacklogDrop|TCPRcvQDrop|TCPOFOQueue)$/)
					printf "%s=%s ", name[$1, i], $i
		}'
}

# run_net NAME CMDLINE TAP ADDR PORT_UP PORT_DOWN BYTES [TERN OPTIONS...]:
# boots L2 with a virtio-net device on TAP (the options say so; tern
# creates the TAP). L1 gives TAP the address ADDR once it appears, and
# serves two TCP ports for L2 (see l2-init.sh, run net), both with busybox
# nc: PORT_UP receives what L2 uploads into a file, PORT_DOWN sends BYTES
# random bytes. Both hashes come out as @@L1 lines for the harness.
# tern's output goes to the console as it comes (a run that hangs still
# shows how far it got), so L1's own marks wait until tern has exited.
run_net() {
	name=$1 cmdline=$2 tap=$3 addr=$4 port_up=$5 port_down=$6 bytes=$7
	shift 7
	echo "@@L1 run-begin $name uptime=$(up)"
	rm -f /tmp/net-up /tmp/net-down /tmp/hold /tmp/nc-*.err
	head -c "$bytes" /dev/urandom >/tmp/net-down
	echo "@@L1 tcp-down-sent $(stat -c %s /tmp/net-down) $(sha256sum </tmp/net-down | cut -d' ' -f1)"
	# The listener receiving L2's upload reads a FIFO nobody writes (fd 4
	# holds it open): its stdin never ends, so it never half-closes the
	# connection and quits only when L2 has sent everything and closed.
	mkfifo /tmp/hold
	exec 4<>/tmp/hold
	timeout -k 10 "$LANE_TIMEOUT" nc -l -p "$port_up" </tmp/hold >/tmp/net-up 2>/tmp/nc-up.err &
	up_pid=$!
	timeout -k 10 "$LANE_TIMEOUT" nc -l -p "$port_down" </tmp/net-down >/dev/null 2>/tmp/nc-down.err &
	down_pid=$!
	TERN_DEBUG=1 timeout -k 10 "$LANE_TIMEOUT" $(tern_argv) --kernel "$L2_KERNEL" --cmdline "$cmdline" "$@" \
		</dev/null 2>&1 &
	pid=$!
	n=100
	while [ ! -e "/proc/sys/net/ipv4/conf/$tap" ] && [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		n=$((n - 1))
	done
	if [ -e "/proc/sys/net/ipv4/conf/$tap" ] && ip addr add "$addr" dev "$tap"; then
		tap_state="tap-up $tap uptime=$(up) $(cat "/sys/class/net/$tap/operstate") $(cat "/sys/class/net/$tap/flags")"
	else
		tap_state="tap-missing $tap"
	fi
	wait "$pid"
	rc=$?
	# Once L2 is gone the listeners have no reason to stay.
	kill "$up_pid" "$down_pid" 2>/dev/null
	wait "$up_pid" "$down_pid" 2>/dev/null
	exec 4>&-
	echo
	echo "@@L1 $tap_state"
	echo "@@L1 tcp-up-received $(stat -c %s /tmp/net-up) $(sha256sum </tmp/net-up | cut -d' ' -f1)"
	echo "@@L1 net-diag tcp $(tcp_stats)"
	echo "@@L1 net-diag softnet $(cut -d' ' -f1-3 /proc/net/softnet_stat)"
	sed 's/^/@@L1 nc-error /' /tmp/nc-up.err /tmp/nc-down.err
	rm -f /tmp/net-up /tmp/net-down /tmp/hold /tmp/nc-*.err
	echo "@@L1 run-end $name rc=$rc uptime=$(up)"
}

# tap_up TAP ADDR MAC PID: waits for tern (PID) to create TAP, then gives it
# a fixed MAC (the same for every tern, so L2's ARP entry for L1 stays
# right across a restore) and ADDR; arp_accept lets a gratuitous ARP from
# L2 create a neighbour entry, which is how L1 sees an announcement.
tap_up() {
	n=100
	# the interface shows in sysfs a moment before its IPv4 settings do
	# (a lane run once lost the race: no MAC, address or arp_accept)
	while [ ! -e "/proc/sys/net/ipv4/conf/$1" ] && [ $n -gt 0 ] && kill -0 "$4" 2>/dev/null; do
		sleep 0.1
		n=$((n - 1))
	done
	[ -e "/proc/sys/net/ipv4/conf/$1" ] && echo 1 >"/proc/sys/net/ipv4/conf/$1/arp_accept" &&
		ip link set "$1" address "$3" && ip addr add "$2" dev "$1" && ip link set "$1" up &&
		echo "@@L1 tap-up $1 uptime=$(up)" || echo "@@L1 tap-missing $1"
}

# neigh_of TAP PEER: waits up to 5 s for L1's neighbour entry for PEER on
# TAP (which only an announcement from L2 creates: L1 sent it nothing) and
# prints it, or nothing.
neigh_of() {
	n=50
	# an INCOMPLETE entry (L1 resolving L2 to answer its pings) is not yet
	# an answer: wait for one with L2's link address
	while ! ip neigh show dev "$1" | grep "^$2 " | grep -q lladdr && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	ip neigh show dev "$1" | grep "^$2 " | tr -s ' '
}

# run_snap NAME CMDLINE TAP ADDR MAC PEER COMMAND EXPECT [TERN OPTIONS...]:
# boots L2 (lane.run=snap) with a control API socket, waits for its shell,
# snapshots it with 'tern snapshot' and shuts that tern down; then restores
# the snapshot in a new tern (the same --net options: a new TAP of the same
# name), reports whether L2 announced itself to L1 (a neighbour entry for
# PEER appearing with no traffic from L1), pings PEER from L1, types
# COMMAND into the restored shell and waits for EXPECT.
run_snap() {
	name=$1 cmdline=$2 tap=$3 addr=$4 mac=$5 peer=$6 cmd=$7 expect=$8
	shift 8
	echo "@@L1 run-begin $name uptime=$(up)"
	rm -rf /tmp/snap /tmp/api.sock
	console_tern $(tern_argv) --kernel "$L2_KERNEL" --cmdline "$cmdline" --api-sock /tmp/api.sock "$@"
	tap_up "$tap" "$addr" "$mac" "$pid"
	if wait_for "lane-sh# " /tmp/con.out "$LANE_TIMEOUT"; then
		timeout -k 10 "$LANE_TIMEOUT" tern snapshot --api-sock /tmp/api.sock --path /tmp/snap >/tmp/snap.out 2>&1
		echo "@@L1 snapshot-rc $? $(tr -d '\n' </tmp/snap.out)"
		timeout -k 10 30 tern shutdown --api-sock /tmp/api.sock >/dev/null 2>&1
	else
		echo "@@L1 prompt-missing"
		kill "$pid"
	fi
	wait "$pid"
	echo "@@L1 first-rc $?"
	exec 3>&-
	sed 's/^/@@L1 first-console /' /tmp/con.out
	echo "@@L1 snapshot-files $(ls /tmp/snap 2>&1 | tr '\n' ' ')"

	t0=$(up)
	console_tern tern run --restore /tmp/snap "$@"
	tap_up "$tap" "$addr" "$mac" "$pid"
	echo "@@L1 restore-neigh $(neigh_of "$tap" "$peer") restored-at=$t0 now=$(up)"
	ping -c 3 -w 20 "$peer" >/tmp/ping.out 2>&1
	echo "@@L1 restore-ping-rc $?"
	type_expect "$cmd" "$expect" 60
	wait "$pid"
	rc=$?
	exec 3>&-
	cat /tmp/con.out
	echo
	rm -rf /tmp/snap
	echo "@@L1 run-end $name rc=$rc uptime=$(up)"
}

# run_migrate NAME CMDLINE SRCTAP DSTTAP ADDR MAC PEER L2MAC L1IP CMD EXPECT:
# boots L2 (lane.run=snap) on SRCTAP with a control API socket; once its
# shell is up, L2 starts pinging L1 in the background (five a second); a
# destination tern waits on a UNIX socket with its own TAP (DSTTAP), and
# 'tern migrate' moves L2 there while it pings. When the source has exited
# L1 gives DSTTAP the source TAP's address and MAC, reports whether L2
# announced itself (a neighbour entry for PEER appearing unasked), and types
# CMD into the migrated shell, which must answer EXPECT.
run_migrate() {
	name=$1 cmdline=$2 stap=$3 dtap=$4 addr=$5 mac=$6 peer=$7 l2mac=$8 l1ip=$9 cmd=${10} expect=${11}
	echo "@@L1 run-begin $name uptime=$(up)"
	rm -rf /tmp/src.sock /tmp/dst.sock /tmp/mig.sock /tmp/dcon.in /tmp/mig.json
	console_tern $(tern_argv) --kernel "$L2_KERNEL" --cmdline "$cmdline" --api-sock /tmp/src.sock \
		--net "${SRC_NET:-vdpa-sim,tap=$stap,mac=$l2mac}"
	src=$pid
	tap_up "$stap" "$addr" "$mac" "$src"
	[ -n "$AFTER_SRC_TAP" ] && eval "$AFTER_SRC_TAP"
	if ! wait_for "lane-sh# " /tmp/con.out "$LANE_TIMEOUT"; then
		echo "@@L1 prompt-missing"
		kill "$src"
	fi
	printf 'ping -i 0.2 -c 150 -W 1 %s >/tmp/ping.out 2>&1 &\n' "$l1ip" >&3
	mkfifo /tmp/dcon.in
	TERN_DEBUG=1 timeout -k 10 "$LANE_TIMEOUT" tern run --incoming unix:/tmp/mig.sock --api-sock /tmp/dst.sock \
		--net "${DST_NET:-vdpa-sim,tap=$dtap,mac=$l2mac}" </tmp/dcon.in >/tmp/dcon.out 2>&1 &
	dst=$!
	exec 4>/tmp/dcon.in
	n=100
	while [ ! -S /tmp/mig.sock ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	sleep 3 # pings before the move
	t0=$(up)
	timeout -k 10 "$LANE_TIMEOUT" tern migrate --api-sock /tmp/src.sock --to unix:/tmp/mig.sock >/tmp/mig.json 2>/tmp/mig.err
	echo "@@L1 migrate-rc $? $(tr -d '\n ' </tmp/mig.json) $(tail -1 /tmp/mig.err) start=$t0 end=$(up)"
	wait "$src"
	echo "@@L1 source-rc $?"
	[ -n "$AFTER_SOURCE" ] && eval "$AFTER_SOURCE"
	exec 3>&-
	sed 's/^/@@L1 source-console /' /tmp/con.out
	tap_up "$dtap" "$addr" "$mac" "$dst"
	[ -n "$AFTER_DST_TAP" ] && eval "$AFTER_DST_TAP"
	echo "@@L1 migrate-neigh $(neigh_of "$dtap" "$peer") now=$(up)"
	# the same typing as type_expect, on the destination's console
	printf '%s\n' "$cmd" >&4
	if wait_for "$expect" /tmp/dcon.out 90; then
		echo "@@L1 typed-output-seen"
	else
		echo "@@L1 typed-output-missing"
	fi
	printf 'poweroff -f\n' >&4
	wait "$dst"
	rc=$?
	exec 4>&-
	cat /tmp/dcon.out
	echo
	echo "@@L1 run-end $name rc=$rc uptime=$(up)"
}

# vduse_up NAME MAC WIRE...: tern vduse-net exports tern's software device
# on the wire WIRE (--tap T, or --socket A --peer B) through VDUSE (its
# output in /tmp/vduse-NAME.out), vdpa binds it to
# vhost_vdpa; $vdev is the /dev/vhost-vdpa-N it got (or empty), $vpid the
# daemon. (Not called in $(...): the daemon must stay this shell's child.)
vduse_up() {
	vdev=
	: >"/tmp/vduse-$1.out"
	vname=$1 vmac=$2
	shift 2
	tern vduse-net --name "$vname" --mac "$vmac" "$@" >"/tmp/vduse-$vname.out" 2>&1 &
	vpid=$!
	# the daemon's errors (a seccomp message, say) reach the serial log as
	# they happen, not only at vduse_down, which a stalled run never reaches
	tail -f "/tmp/vduse-$vname.out" 2>/dev/null | awk '/error/ { print "@@L1 vduse-live " $0; fflush() }' &
	if ! wait_for "vduse-net $vname ready" "/tmp/vduse-$vname.out" 20; then
		sed 's/^/@@L1 vduse-out /' "/tmp/vduse-$vname.out"
		return 1
	fi
	timeout -k 10 30 vdpa dev add name "$vname" mgmtdev vduse 2>&1 | sed 's/^/@@L1 vduse-out /'
	n=50
	while ! ls "/sys/bus/vdpa/devices/$vname/" 2>/dev/null | grep -q vhost-vdpa && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	vdev="/dev/$(ls "/sys/bus/vdpa/devices/$vname/" 2>/dev/null | grep vhost-vdpa)"
}

# vduse_down NAME: unbinds the device and stops its daemon ($vpid).
vduse_down() {
	timeout -k 10 30 vdpa dev del "$1"
	kill "$vpid"
	# a daemon that ignores SIGTERM for 20 s is killed (its rc says so)
	n=100
	while kill -0 "$vpid" 2>/dev/null && [ $n -gt 0 ]; do sleep 0.2; n=$((n - 1)); done
	kill -0 "$vpid" 2>/dev/null && kill -9 "$vpid"
	wait "$vpid"
	echo "@@L1 vduse-exit $1 rc=$? $(tail -1 "/tmp/vduse-$1.out")"
}

# run_vduse NAME CMDLINE TAP ADDR PORT_UP PORT_DOWN BYTES MAC: the net run
# (run_net) with L2's device on the kernel's vhost-vdpa: tern vduse-net
# serves a VDUSE device on TAP, bound to vhost_vdpa, and tern run drives
# /dev/vhost-vdpa-N. Before it, what a user gets wrong: a missing device,
# one held open by someone else, a queue count the device lacks (each
# must fail with a clear message), and 1000 open-configure-close cycles
# (tern vdpa-probe) that must leak no file descriptor.
run_vduse() {
	name=$1 cmdline=$2 tap=$3 addr=$4 port_up=$5 port_down=$6 bytes=$7 mac=$8
	vduse_up "vduse-$name" "$mac" --tap "$tap"
	dev=$vdev
	echo "@@L1 vduse-dev $dev"
	[ -c "$dev" ] || return
	echo "@@L1 vduse-probe $(timeout -k 10 30 tern vdpa-probe --dev "$dev" 2>&1 | tr '\n' ' ')"
	t0=$(up)
	echo "@@L1 vduse-cycles $(timeout -k 10 "$LANE_TIMEOUT" tern vdpa-probe --dev "$dev" --cycles 1000 2>&1 | tail -1) start=$t0 end=$(up)"
	echo "@@L1 vduse-err-missing $(timeout -k 10 30 tern run --kernel "$L2_KERNEL" --net vhost-vdpa,dev=/dev/vhost-vdpa-77 2>&1 | tail -1)"
	exec 5<>"$dev"
	# (5>&-: busybox timeout's watcher, which outlives tern by up to a
	# second, must not hold the device open for the next run)
	echo "@@L1 vduse-err-busy $(timeout -k 10 30 tern run --kernel "$L2_KERNEL" --net "vhost-vdpa,dev=$dev" 5>&- 2>&1 | tail -1)"
	exec 5>&-
	echo "@@L1 vduse-err-queues $(timeout -k 10 30 tern run --kernel "$L2_KERNEL" --net "vhost-vdpa,dev=$dev,queues=2" 2>&1 | tail -1)"
	run_net "$name" "$cmdline" "$tap" "$addr" "$port_up" "$port_down" "$bytes" --net "vhost-vdpa,dev=$dev"
	vduse_down "vduse-$name"
}

# run_migrate_vduse NAME ...: run_migrate (same arguments) with both terns
# on the kernel's vhost-vdpa: one VDUSE device per tern, each on its own
# TAP (the source's is taken down once the source has exited, so that L1
# has one route to L2). VDUSE has no SUSPEND, RESUME or ASIDs: the switch
# into shadow virtqueues is strategy 3 (reset, restart; its IOTLB stays).
# incoming_tern FIFO OUT API MIG DISK: a destination for a migration on
# unix:MIG with --disk path=DISK, its console input the FIFO and output
# OUT; returns once it listens ($pid).
incoming_tern() {
	rm -f "$1" "$4"
	mkfifo "$1"
	: >"$2"
	TERN_DEBUG=1 timeout -k 10 "$LANE_TIMEOUT" tern run --incoming "unix:$4" --api-sock "$3" \
		--disk "path=$5,$ROOTFS_DISK" <"$1" >"$2" 2>&1 &
	pid=$!
	n=100
	while [ ! -S "$4" ] && [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
}

# run_rootfs NAME CMDLINE CMD1 EXPECT1 CMD2 EXPECT2: L2 boots from an ext4
# image on --disk (root=/dev/vda) and writes a file. L1 migrates it with
# --copy-disks to a tern whose image does not exist yet, types CMD1 (read
# back from the disk, a second file written), migrates it again on shared
# storage (the same image) to a third tern, types CMD2 (both read back,
# root remounted read-only), powers it off and runs e2fsck on the image.
ROOTFS_DISK=serial=lane-root,queues=2,discard=on
run_rootfs() {
	name=$1 cmdline=$2 cmd1=$3 expect1=$4 cmd2=$5 expect2=$6
	echo "@@L1 run-begin $name uptime=$(up)"
	rm -f /tmp/root-src.img /tmp/root-copy.img /tmp/src.sock /tmp/d1.sock /tmp/d2.sock
	cat /l2/rootfs.img >/tmp/root-src.img
	console_tern $(tern_argv) --kernel "$L2_KERNEL" --cmdline "$cmdline" --api-sock /tmp/src.sock \
		--disk "path=/tmp/root-src.img,$ROOTFS_DISK"
	src=$pid
	if ! wait_for "lane-sh# " /tmp/con.out "$LANE_TIMEOUT"; then
		echo "@@L1 prompt-missing"
		kill "$src"
	fi
	incoming_tern /tmp/d1con.in /tmp/d1con.out /tmp/d1.sock /tmp/m1.sock /tmp/root-copy.img
	d1=$pid
	exec 4>/tmp/d1con.in
	t0=$(up)
	timeout -k 10 "$LANE_TIMEOUT" tern migrate --api-sock /tmp/src.sock --to unix:/tmp/m1.sock --copy-disks \
		>/tmp/mig.json 2>/tmp/mig.err
	echo "@@L1 rootfs-copy-rc $? $(tr -d '\n ' </tmp/mig.json) $(tail -1 /tmp/mig.err) start=$t0 end=$(up)"
	wait "$src"
	echo "@@L1 rootfs-source-rc $?"
	exec 3>&-
	cat /tmp/con.out
	echo
	echo "@@L1 rootfs-image $(stat -c '%s %a' /tmp/root-copy.img 2>&1)"
	printf '%s\n' "$cmd1" >&4
	if wait_for "$expect1" /tmp/d1con.out 90; then
		echo "@@L1 typed-output-seen-1"
	fi
	incoming_tern /tmp/d2con.in /tmp/d2con.out /tmp/d2.sock /tmp/m2.sock /tmp/root-copy.img
	d2=$pid
	exec 5>/tmp/d2con.in
	t0=$(up)
	timeout -k 10 "$LANE_TIMEOUT" tern migrate --api-sock /tmp/d1.sock --to unix:/tmp/m2.sock \
		>/tmp/mig.json 2>/tmp/mig.err
	echo "@@L1 rootfs-shared-rc $? $(tr -d '\n ' </tmp/mig.json) $(tail -1 /tmp/mig.err) start=$t0 end=$(up)"
	wait "$d1"
	echo "@@L1 rootfs-first-rc $?"
	exec 4>&-
	cat /tmp/d1con.out
	echo
	printf '%s\n' "$cmd2" >&5
	if wait_for "$expect2" /tmp/d2con.out 90; then
		echo "@@L1 typed-output-seen-2"
	fi
	printf 'poweroff -f\n' >&5
	wait "$d2"
	rc=$?
	exec 5>&-
	cat /tmp/d2con.out
	echo
	e2fsck -fn /tmp/root-copy.img >/tmp/fsck.out 2>&1
	echo "@@L1 rootfs-fsck-rc $?"
	sed 's/^/@@L1 fsck /' /tmp/fsck.out
	rm -f /tmp/root-src.img /tmp/root-copy.img
	echo "@@L1 run-end $name rc=$rc uptime=$(up)"
}

run_migrate_vduse() {
	vduse_up vm-src "$8" --tap "$3"
	sdev=$vdev spid=$vpid
	vduse_up vm-dst "$8" --tap "$4"
	ddev=$vdev dpid=$vpid
	echo "@@L1 vmig-devs $sdev $ddev"
	SRC_NET="vhost-vdpa,dev=$sdev" DST_NET="vhost-vdpa,dev=$ddev" AFTER_SOURCE="vpid=$spid; vduse_down vm-src" \
		run_migrate "$@"
	vpid=$dpid
	vduse_down vm-dst
}

# run_xchg NAME COUNT KIND: two test guests (firmware/, at /l1/testguest.elf)
# joined by a socket pair, as tests/kvm's two-VM tests do: A echoes, B
# exchanges COUNT numbered, checksummed frames with it. KIND sim: each on
# tern's in-process device (--net vdpa-sim); KIND vduse: each on the
# kernel's vhost-vdpa, the devices served by tern vduse-net; KIND switch:
# as vduse, and while B runs, A's device switches into shadow virtqueues
# and back (xchg_switch). L1's uptime around B's run gives the frame rate.
run_xchg() {
	name=$1 count=$2 kind=$3
	echo "@@L1 run-begin $name uptime=$(up)"
	rm -f /tmp/xa.sock /tmp/xb.sock /tmp/xa.rep /tmp/xb.rep /tmp/xa.api /tmp/xc.mig
	maca=02:00:5e:00:53:aa macb=02:00:5e:00:53:bb
	aopts= aenv=
	if [ "$kind" != sim ]; then
		vduse_up xa "$maca" --socket /tmp/xa.sock --peer /tmp/xb.sock
		xpa=$vpid neta="vhost-vdpa,dev=$vdev"
		vduse_up xb "$macb" --socket /tmp/xb.sock --peer /tmp/xa.sock
		xpb=$vpid netb="vhost-vdpa,dev=$vdev"
	else
		neta="vdpa-sim,socket=/tmp/xa.sock,peer=/tmp/xb.sock,mac=$maca"
		netb="vdpa-sim,socket=/tmp/xb.sock,peer=/tmp/xa.sock,mac=$macb"
	fi
	if [ "$kind" = switch ]; then
		# the migration's destination, on a third device (its wire unused)
		vduse_up xc "$maca" --socket /tmp/xc.sock --peer /tmp/xc-peer.sock
		xpc=$vpid netc="vhost-vdpa,dev=$vdev"
		timeout -k 10 "$LANE_TIMEOUT" tern run --incoming unix:/tmp/xc.mig --net "$netc" </dev/null \
			>/tmp/xc.out 2>&1 &
		cpid=$!
		aopts="--api-sock /tmp/xa.api" aenv="TERN_TEST_FAULTS=migrate-stall=active"
	fi
	echo "@@L1 xchg-nets $neta $netb"
	mkfifo /tmp/xa.in 2>/dev/null
	env $aenv timeout -k 10 "$LANE_TIMEOUT" tern run --kernel /l1/testguest.elf --memory 64M --cmdline test=net-echo \
		--net "$neta" --test-device=/tmp/xa.rep $aopts </tmp/xa.in >/tmp/xa.out 2>&1 &
	apid=$!
	exec 6>/tmp/xa.in
	wait_for "net echo ready" /tmp/xa.rep 30 || echo "@@L1 xchg-echo-missing $(tail -3 /tmp/xa.out | tr '\n' ' ')"
	t0=$(up)
	timeout -k 10 "$LANE_TIMEOUT" tern run --kernel /l1/testguest.elf --memory 64M --net "$netb" \
		--cmdline "test=net-xchg count=$count peer=$maca timeout=$((LANE_TIMEOUT - 20))" \
		--test-device=/tmp/xb.rep </dev/null >/tmp/xb.out 2>&1 &
	bpid=$!
	[ "$kind" = switch ] && xchg_switch
	wait "$bpid"
	rc=$?
	t1=$(up)
	echo "@@L1 xchg-result rc=$rc start=$t0 end=$t1 $(grep -o 'net tx=.*' /tmp/xb.rep)"
	echo "@@L1 xchg-detail $(grep -o 'net detail.*' /tmp/xb.rep) $(grep -o 'error .*' /tmp/xb.rep | tr '\n' ' ')"
	[ $rc = 0 ] || sed 's/^/@@L1 xchg-b-out /' /tmp/xb.out | tail -5
	if [ "$kind" = switch ]; then
		echo "@@L1 xchg-switch-after $(tern info --api-sock /tmp/xa.api 2>&1 | tr -d '\n ' | grep -o '"net":.*')"
		wait "$cpid"
		echo "@@L1 xchg-switch-dst rc=$? $(tail -1 /tmp/xc.out)"
		vpid=$xpc
		vduse_down xc
	fi
	printf q >&6
	exec 6>&-
	wait "$apid"
	echo "@@L1 xchg-echo $(grep -o 'net echo count=.*' /tmp/xa.rep)"
	if [ "$kind" != sim ]; then
		vpid=$xpa
		vduse_down xa
		vpid=$xpb
		vduse_down xb
	fi
	echo "@@L1 run-end $name rc=$rc uptime=$(up)"
}

# xchg_switch: while B exchanges with A, A starts a migration to the
# destination on xc, held in its first pass (TERN_TEST_FAULTS=migrate-stall=active
# holds it 3 s, then --bandwidth 64K): A's VDUSE device switches into
# shadow virtqueues under B's traffic; then the migration is cancelled and
# the device switches back to passthrough while B's traffic goes on. Each
# switch changes the kernel's IOTLB (the shadow rings come and go), which
# VDUSE announces over the whole address space to the daemon of a device
# that is receiving.
xchg_switch() {
	sleep 2
	tern migrate --api-sock /tmp/xa.api --to unix:/tmp/xc.mig --bandwidth 64K --no-wait >/tmp/xs.out 2>&1
	echo "@@L1 xchg-switch-start rc=$? $(tr -d '\n' </tmp/xs.out)"
	n=100
	until tern migration --api-sock /tmp/xa.api 2>/dev/null | tr -d '\n ' | grep -q '"state":"active"' ||
		[ $n -le 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	echo "@@L1 xchg-switch-in $(tern info --api-sock /tmp/xa.api 2>&1 | tr -d '\n ' | grep -o '"net":.*')"
	sleep 1
	echo "@@L1 xchg-switch-cancel $(tern migrate-cancel --api-sock /tmp/xa.api 2>&1 | tr -d '\n ')"
}

# vlan_up TAP ADDR: VLAN 42 on TAP (TAP.42) with ADDR.
vlan_up() {
	ip link add link "$1" name "$1.42" type vlan id 42 && ip addr add "$2" dev "$1.42" &&
		ip link set "$1.42" up && echo "@@L1 vlan-up $1.42" || echo "@@L1 vlan-missing $1.42"
}

# run_migrate_ctrl NAME ... VADDR: run_migrate (the same first eleven
# arguments) for L2's ctrl run: two queue pairs on each device, and VLAN 42
# with VADDR on L1's side of each TAP. L2 has set its MAC, VLAN 42, a
# multicast address, promiscuous mode and two queues through its control
# queue before the move; the destination must have them replayed. L1
# reports the destination's GET /vm (its device's own state) as dst-ctrl.
run_migrate_ctrl() {
	vaddr=${12}
	SRC_NET="vdpa-sim,tap=$3,mac=$8,queues=2" DST_NET="vdpa-sim,tap=$4,mac=$8,queues=2" \
		AFTER_SRC_TAP="vlan_up $3 $vaddr" \
		AFTER_DST_TAP="vlan_up $4 $vaddr; echo \"@@L1 dst-ctrl \$(timeout -k 10 30 tern info --api-sock /tmp/dst.sock | tr -d '\n ')\"" \
		run_migrate "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" "${11}"
}

# bench_vmm NAME VMM CMDLINE: boots L2 with VMM (tern, qemu-microvm or
# qemu-pc, plus the plan's LANE_QEMU_EXTRA options) and reports, as
# "@@L1 l2-init-at T", L1's uptime when L2's "@@L2 init" line came out of
# the VMM, next to "@@L1 vmm-start T".
bench_vmm() {
	case "$2" in
	tern)
		set -- "$1" "$3" $(tern_argv) --kernel "$L2_KERNEL" --cmdline "$3"
		;;
	qemu-*)
		set -- "$1" "$3" qemu-system-x86_64 -machine "${2#qemu-}" -enable-kvm -cpu host \
			-smp "$LANE_CPUS" -m "$LANE_MEM" -nodefaults -no-user-config -display none \
			-serial stdio -no-reboot -L /usr/share/qemu -L /usr/share/seabios \
			-kernel "$L2_KERNEL" -initrd "$L2_INITRD" -append "$3" $LANE_QEMU_EXTRA
		;;
	esac
	name=$1
	shift 2
	echo "@@L1 run-begin $name uptime=$(up)"
	echo "@@L1 vmm-start $(up)"
	{
		timeout -k 10 "$LANE_TIMEOUT" "$@" </dev/null 2>&1
		echo $? >/tmp/bench.rc
	} | awk '
		/@@L2 init/ && !seen {
			getline t < "/proc/uptime"; close("/proc/uptime")
			split(t, a, " "); seen = 1
			print "@@L1 l2-init-at " a[1]
		}
		{ print; fflush() }'
	echo
	echo "@@L1 run-end $name rc=$(cat /tmp/bench.rc) uptime=$(up)"
}

if [ -f /lane/plan.sh ]; then
	. /lane/plan.sh
else
	echo "@@L1 plan-missing"
fi

echo "@@L1 dmesg-begin"
dmesg
echo "@@L1 dmesg-end"
echo "@@L1 done uptime=$(up)"
poweroff -f
