#!/bin/sh
# tern's demo: boots a microVM and shows it running, boots two microVMs
# joined through tern's software vDPA device and shows frames flowing, then
# live-migrates a microVM with a vDPA network device to a second tern and
# shows its downtime and that every page of its memory arrived.
set -eu
BUILD=${1:-build}
TERN=$BUILD/tern
GUEST=$BUILD/firmware/testguest.elf
TMP=$(mktemp -d /tmp/tern-demo.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

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
[ "$rc" -eq 0 ] || exit "$rc"

# wait_for TEXT FILE: up to 30 s
wait_for() {
	n=300
	while ! grep -q -- "$1" "$2" 2>/dev/null; do
		n=$((n - 1))
		[ $n -gt 0 ] || { echo "demo: '$1' never appeared in $2" >&2; exit 1; }
		sleep 0.1
	done
}

echo
echo "== 3. live migration: a microVM with virtio-net on the software vDPA device, running the"
echo "   page-stamp workload (every page of 64 MiB carries its index, a generation and a CRC;"
echo "   8 MiB are rewritten all the time), moves to a second tern over a UNIX socket"
echo "   source:      $TERN run ... --net vdpa-sim,... --api-sock $TMP/src.api"
echo "   destination: $TERN run --incoming unix:$TMP/mig.sock --net vdpa-sim,..."
"$TERN" run --kernel "$GUEST" --cpus 2 --memory 256M --api-sock "$TMP/src.api" --test-device="$TMP/src.txt" \
	--net "vdpa-sim,socket=$TMP/s1.sock,peer=$TMP/p.sock" --cmdline "test=stamp mb=64 hot=8" \
	</dev/null >/dev/null 2>"$TMP/src.err" &
src=$!
mkfifo "$TMP/dst.in"
"$TERN" run --incoming "unix:$TMP/mig.sock" --api-sock "$TMP/dst.api" --test-device="$TMP/dst.txt" \
	--net "vdpa-sim,socket=$TMP/s2.sock,peer=$TMP/p.sock" <"$TMP/dst.in" >/dev/null 2>"$TMP/dst.err" &
dst=$!
exec 3>"$TMP/dst.in"
wait_for "stamp pass=3" "$TMP/src.txt"
while [ ! -S "$TMP/mig.sock" ]; do sleep 0.05; done
echo "   $TERN migrate --api-sock $TMP/src.api --to unix:$TMP/mig.sock"
"$TERN" migrate --api-sock "$TMP/src.api" --to "unix:$TMP/mig.sock" >"$TMP/result.json"
rc=0
wait "$src" || rc=$?
field() { sed -n "s/^  \"$1\": \([0-9]*\).*/\1/p" "$TMP/result.json"; }
echo "== migrated in $(field total_ms) ms over $(sed -n 's/^  \"pass\": //p' "$TMP/result.json" | tr -d ,) passes;"
echo "   the guest was paused for $(field downtime_ms) ms; the source tern exited with status $rc"
if grep -q "shadow virtqueues on" "$TMP/src.err"; then
	echo "   its network device ran on shadow virtqueues from the migration's start:"
	sed -n 's/^tern: /   /p' "$TMP/src.err" | grep "shadow virtqueues on"
else
	echo "   (this guest never started its network device, so it had no data path to switch;"
	echo "   tests/kvm/test_svq.py migrates guests whose device runs on shadow virtqueues)"
fi
wait_for "stamp pass=$(($(sed -n 's/^testdev: stamp pass=//p' "$TMP/dst.txt" | head -1) + 2))" "$TMP/dst.txt"
printf q >&3
rc=0
wait "$dst" || rc=$?
echo "== on the destination the guest went on from pass $(sed -n 's/^testdev: stamp pass=//p' "$TMP/dst.txt" | head -1),"
echo "   checked every page over whole passes and ended: $(sed -n 's/^testdev: stamp \(ok.*\)/\1/p' "$TMP/dst.txt")"
if [ "$rc" != 0 ]; then
	echo "== the destination tern exited with status $rc:"
	tail -5 "$TMP/dst.err"
fi
exit "$rc"
