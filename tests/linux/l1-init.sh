#!/bin/sh
# /init of L1: Debian's kernel under QEMU TCG (-cpu max emulates AMD SVM with
# nested paging), so kvm_amd loads and /dev/kvm is hardware-style KVM. This
# script loads KVM, defines the run helpers below, sources the plan that
# tests/linux/lane.py (or tests/bench/linux-boot) wrote to /lane/plan.sh,
# dumps L1's own dmesg and powers off. Everything it says is a
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
for m in irqbypass kvm kvm-amd; do
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
	TERN_DEBUG=1 timeout "$LANE_TIMEOUT" $(tern_argv) --kernel "$kernel" --cmdline "$cmdline" "$@" \
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

# run_console NAME CMDLINE COMMAND EXPECT: boots L2 into an interactive
# shell, types COMMAND into tern's stdin once the prompt shows, waits for
# EXPECT in tern's output, then types "poweroff -f".
run_console() {
	echo "@@L1 run-begin $1 uptime=$(up)"
	rm -f /tmp/con.in /tmp/con.out
	mkfifo /tmp/con.in
	: >/tmp/con.out
	TERN_DEBUG=1 timeout "$LANE_TIMEOUT" $(tern_argv) --kernel "$L2_KERNEL" --cmdline "$2" \
		</tmp/con.in >/tmp/con.out 2>&1 &
	pid=$!
	exec 3>/tmp/con.in
	if wait_for "lane-sh# " /tmp/con.out "$LANE_TIMEOUT"; then
		echo "@@L1 typing"
		printf '%s\n' "$3" >&3
		if wait_for "$4" /tmp/con.out 30; then
			echo "@@L1 typed-output-seen"
		else
			echo "@@L1 typed-output-missing"
		fi
		printf 'poweroff -f\n' >&3
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
		timeout "$LANE_TIMEOUT" "$@" </dev/null 2>&1
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
