#!/bin/sh
# /init of the L2 guest: Debian's kernel booted by tern (or, for the
# benchmark, by QEMU) inside L1. It reports raw facts as "@@L2 KEY VALUE"
# lines on its console; tests/linux/lane.py decides what passes, against
# what it asked tern for. The run to do is lane.run= on the kernel command
# line (a dotted parameter, so the kernel leaves it out of init's argv).
echo "@@L2 init"
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Kernel messages on the console could land inside a report line; they all
# stay in the ring buffer, which the checks run dumps.
dmesg -n 1

up() { cut -d' ' -f1 /proc/uptime; }

# For the log: eth0's state, counters and the virtio interrupt counts.
net_diag() {
	d=/sys/class/net/eth0
	echo "@@L2 net-diag carrier=$(cat $d/carrier 2>&1) operstate=$(cat $d/operstate)" \
		"rx=$(cat $d/statistics/rx_packets) tx=$(cat $d/statistics/tx_packets)" \
		"rx_dropped=$(cat $d/statistics/rx_dropped) tx_dropped=$(cat $d/statistics/tx_dropped)"
	grep virtio /proc/interrupts | tr -s ' ' | sed 's/^/@@L2 net-diag irq/'
	echo "@@L2 net-diag tcp $(tcp_stats)"
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

run=$(sed -n 's/.*lane\.run=\([^ ]*\).*/\1/p' /proc/cmdline)
case "$run" in
checks)
	echo "@@L2 cmdline $(cat /proc/cmdline)"
	echo "@@L2 uname $(uname -r)"
	echo "@@L2 nproc $(nproc)"
	echo "@@L2 cpus-online $(cat /sys/devices/system/cpu/online)"
	echo "@@L2 memtotal-kb $(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo)"
	echo "@@L2 marker $(cat /lane-marker 2>&1)"
	echo "@@L2 clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	for d in /sys/bus/pci/devices/*; do
		[ -e "$d/vendor" ] || continue
		echo "@@L2 pci ${d##*/} $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"
	done
	echo "@@L2 dmesg-begin"
	dmesg
	echo "@@L2 dmesg-end"
	echo "@@L2 poweroff"
	poweroff -f
	;;
net)
	# tern gave this run a virtio-net device on a TAP in L1 (lane.py's
	# NET_* settings come on the command line). Load the driver, report
	# what it bound to, then ping L1 and move data both ways over TCP.
	# L1 (l1-init.sh run_net) listens on both ports before tern starts.
	arg() { sed -n "s/.*lane\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
	ip=$(arg ip) peer=$(arg peer) bytes=$(arg bytes)
	port_up=$(arg port-up) port_down=$(arg port-down)
	for m in failover net_failover virtio_net; do
		insmod /lib/modules/$m.ko || echo "@@L2 insmod-failed $m"
	done
	# The probe runs inside insmod; allow a moment for the netdev anyway.
	n=50
	while [ ! -e /sys/class/net/eth0 ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	echo "@@L2 net-ifaces $(ls /sys/class/net | tr '\n' ' ')"
	# eth0 -> virtio device (its driver: virtio_net) -> the PCI function.
	vdev=$(readlink -f /sys/class/net/eth0/device)
	pdev=${vdev%/*}
	echo "@@L2 net-driver $(basename "$(readlink "$vdev/driver")")"
	echo "@@L2 net-pci ${pdev##*/} $(cat "$pdev/vendor") $(cat "$pdev/device")"
	echo "@@L2 net-mac $(cat /sys/class/net/eth0/address)"
	ip link set lo up
	ip addr add "$ip" dev eth0
	ip link set eth0 up
	n=50
	while [ "$(cat /sys/class/net/eth0/operstate)" != up ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	echo "@@L2 net-operstate $(cat /sys/class/net/eth0/operstate)"
	ping -c 5 -w 30 "$peer" >/tmp/ping.out 2>&1
	echo "@@L2 ping-rc $?"
	sed 's/^/@@L2 ping-out /' /tmp/ping.out
	net_diag
	# Upload: a file of random bytes, hashed here, sent to L1's listener,
	# which hashes what arrived. nc exits once L1 has closed its end, i.e.
	# after the last byte arrived; the clock is /proc/uptime (10 ms).
	head -c "$bytes" /dev/urandom >/tmp/up
	echo "@@L2 tcp-up-sent $(stat -c %s /tmp/up) $(sha256sum </tmp/up | cut -d' ' -f1)"
	t0=$(up)
	nc "$peer" "$port_up" </tmp/up >/dev/null
	rc=$?
	echo "@@L2 tcp-up-done rc=$rc start=$t0 end=$(up)"
	rm -f /tmp/up
	net_diag
	# Download: L1 sends its file; this nc's stdin is a FIFO no one writes
	# (held open by fd 4) so that it never half-closes the connection: an
	# EOF from it would make L1's busybox nc quit before it sent everything.
	mkfifo /tmp/hold
	exec 4<>/tmp/hold
	t0=$(up)
	nc "$peer" "$port_down" </tmp/hold >/tmp/down
	rc=$?
	t1=$(up)
	exec 4>&-
	echo "@@L2 tcp-down-done rc=$rc start=$t0 end=$t1"
	echo "@@L2 tcp-down-received $(stat -c %s /tmp/down) $(sha256sum </tmp/down | cut -d' ' -f1)"
	rm -f /tmp/down
	net_diag
	echo "@@L2 dmesg-begin"
	dmesg
	echo "@@L2 dmesg-end"
	echo "@@L2 poweroff"
	poweroff -f
	;;
snap)
	# A shell with a configured eth0, to be snapshotted by L1 once the
	# prompt shows and restored in a new tern; L1 then types a command that
	# must still run and still reach L1 over the network.
	arg() { sed -n "s/.*lane\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
	for m in failover net_failover virtio_net; do
		insmod /lib/modules/$m.ko || echo "@@L2 insmod-failed $m"
	done
	n=50
	while [ ! -e /sys/class/net/eth0 ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	ip link set lo up
	ip addr add "$(arg ip)" dev eth0
	ip link set eth0 up
	ping -c 1 -w 20 "$(arg peer)" >/dev/null 2>&1
	echo "@@L2 snap-ping-before $?"
	export PS1='lane-sh# '
	echo "@@L2 shell-ready"
	exec setsid cttyhack sh
	;;
ctrl)
	# Issue 9: state set through the control queue - MAC, VLAN 42, a
	# multicast address, promiscuous mode, two queue pairs, an RSS table
	# that sends every hashed flow to queue 1 - then a shell to be
	# migrated; L1 checks after the move that it all still holds.
	arg() { sed -n "s/.*lane\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
	for m in failover net_failover virtio_net llc stp garp mrp 8021q; do
		insmod /lib/modules/$m.ko || echo "@@L2 insmod-failed $m"
	done
	n=50
	while [ ! -e /sys/class/net/eth0 ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	ip link set lo up
	ip link set eth0 address "$(arg newmac)"
	echo "@@L2 ctrl-mac $?"
	ethtool -L eth0 combined 2
	echo "@@L2 ctrl-queues $?"
	ethtool -X eth0 weight 0 1
	echo "@@L2 ctrl-rss $?"
	ip link set eth0 up
	ip addr add "$(arg ip)" dev eth0
	ip link add link eth0 name eth0.42 type vlan id 42 && ip addr add "$(arg vip)" dev eth0.42 &&
		ip link set eth0.42 up
	echo "@@L2 ctrl-vlan $?"
	ip.full maddr add 01:00:5e:01:02:03 dev eth0
	echo "@@L2 ctrl-maddr $?"
	ip link set eth0 promisc on
	echo "@@L2 ctrl-promisc $?"
	ping -c 1 -w 20 "$(arg vpeer)" >/dev/null 2>&1
	echo "@@L2 ctrl-vping-before $?"
	export PS1='lane-sh# '
	echo "@@L2 shell-ready"
	exec setsid cttyhack sh
	;;
rootfs)
	# What an initramfs does for a disk root (Debian's initramfs-tools
	# too): load the disk's driver, mount root= and switch to it. Its
	# /sbin/init (tests/linux/rootfs-init.sh) goes on from there.
	root=$(sed -n 's/.*root=\([^ ]*\).*/\1/p' /proc/cmdline)
	insmod /lib/modules/virtio_blk.ko || echo "@@L2 insmod-failed virtio_blk"
	n=50
	while [ ! -b "$root" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
	mkdir -p /newroot
	if mount -t ext4 "$root" /newroot; then
		echo "@@L2 rootfs-mounted $root"
		umount /proc /sys
		mount --move /dev /newroot/dev
		exec switch_root /newroot /sbin/init
	fi
	echo "@@L2 rootfs-mount-failed $root"
	;;
reboot)
	echo "@@L2 reboot"
	reboot -f
	;;
console)
	# An interactive shell on the console with a controlling tty; L1 types
	# into tern's stdin once the prompt shows.
	export PS1='lane-sh# '
	echo "@@L2 shell-ready"
	exec setsid cttyhack sh
	;;
bench)
	echo "@@L2 nproc $(nproc)"
	echo "@@L2 uptime $(cut -d' ' -f1 /proc/uptime)"
	echo "@@L2 poweroff"
	poweroff -f
	;;
*)
	echo "@@L2 unknown-run '$run'"
	;;
esac
# Only reached if the request above did not end the VM.
echo "@@L2 still-running"
exec sleep 1000000
