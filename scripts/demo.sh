#!/bin/sh
# tern's demo: boots a microVM (the project's test guest, 2 vCPUs, 256 MiB)
# and shows its console and what it reports about the machine it found.
# Later stages add networking through the software vDPA device and a live
# migration (see README.md for what exists today).
set -eu
BUILD=${1:-build}
TERN=$BUILD/tern
GUEST=$BUILD/firmware/testguest.elf

echo "== tern demo: booting a microVM with 2 vCPUs and 256 MiB"
echo "   $TERN run --kernel $GUEST --cpus 2 --memory 256M --cmdline 'test=boot-info demo=1' --test-device"
echo "== guest console:"
start=$(date +%s%N)
status=0
"$TERN" run --kernel "$GUEST" --cpus 2 --memory 256M --cmdline "test=boot-info demo=1" \
	--test-device="$BUILD/demo-reports.txt" </dev/null || status=$?
end=$(date +%s%N)
cpus=$(sed -n 's/^testdev: cpus=//p' "$BUILD/demo-reports.txt")
ram=$(sed -n 's/^testdev: mem_total=//p' "$BUILD/demo-reports.txt")
echo "== through tern's test device the guest reported $cpus CPUs and $((ram / 1048576)) MiB of RAM"
echo "== the microVM booted, ran and exited with status $status in $(( (end - start) / 1000000 )) ms"
exit "$status"
