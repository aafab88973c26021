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
