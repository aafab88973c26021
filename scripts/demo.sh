#!/bin/sh
# tern's demo: boots a microVM and shows it running, then boots two microVMs
# joined through tern's software vDPA device and shows frames flowing.
# (Live migration joins the demo when it exists: see README.md.)
set -eu
BUILD=${1:-build}
TERN=$BUILD/tern
GUEST=$BUILD/firmware/testguest.elf
TMP=$(mktemp -d /tmp/tern-demo.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "== 1. one microVM: 2 vCPUs, 256 MiB, the project's test guest"
echo "   $TERN run --kernel $GUEST --cpus 2 --memory 256M --cmdline 'test=boot-info demo=1'"
echo "== guest console:"
start=$(ms)
status=0
"$TERN" run --kernel "$GUEST" --cpus 2 --memory 256M --cmdline "test=boot-info demo=1" \
	--test-device="$TMP/reports.txt" </dev/null || status=$?
end=$(ms)
cpus=$(sed -n 's/^testdev: cpus=//p' "$TMP/reports.txt")
ram=$(sed -n 's/^testdev: mem_total=//p' "$TMP/reports.txt")
echo "== the guest reported $cpus CPUs and $((ram / 1048576)) MiB of RAM through tern's test device"
echo "== it booted, ran and exited with status $status in $((end - start)) ms"
[ "$status" -eq 0 ] || exit "$status"

N=20000
echo
echo "== 2. two microVMs, virtio-net on tern's software vDPA device, joined by a socket pair;"
echo "   each sends $N sequence-numbered, checksummed frames to the other and checks what it receives"
for vm in a b; do
	if [ $vm = a ]; then me=a; peer=b; mac=52:54:00:aa:00:01; pmac=52:54:00:bb:00:02;
	else me=b; peer=a; mac=52:54:00:bb:00:02; pmac=52:54:00:aa:00:01; fi
	echo "   $TERN run ... --net vdpa-sim,socket=$TMP/$me.sock,peer=$TMP/$peer.sock,mac=$mac"
	"$TERN" run --kernel "$GUEST" --memory 128M --test-device="$TMP/$vm.txt" \
		--net "vdpa-sim,socket=$TMP/$me.sock,peer=$TMP/$peer.sock,mac=$mac" \
		--cmdline "test=net-xchg count=$N peer=$pmac" </dev/null >"$TMP/$vm.console" 2>&1 &
	eval "pid_$vm=\$!"
done
start=$(ms)
rc=0
wait "$pid_a" || rc=$?
wait "$pid_b" || rc=$?
end=$(ms)
for vm in a b; do
	echo "   VM $vm: $(sed -n 's/^testdev: net tx=/sent /p' "$TMP/$vm.txt" | sed 's/ rx_ok=/, received intact /; s/ rx_bad=/, corrupt /; s/ rx_dup=/, duplicated /; s/ rx_gap=/, missing /; s/ queues=.*//')"
done
echo "== $((2 * N)) frames crossed between the VMs in $((end - start)) ms (both boots included)"
exit "$rc"
