#!/bin/sh
# /sbin/init of the lane's ext4 root filesystem (the rootfs run,
# tests/linux/lane.py): Linux under tern booted from it on --disk
# (root=/dev/vda, mounted by the L2 initramfs). Reports what it is mounted
# on, writes a file of random bytes and its SHA-256, then starts a shell
# that L1 migrates twice (--copy-disks, then shared storage) and types
# into; "@@L2 KEY VALUE" lines as in l2-init.sh.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
dmesg -n 1
echo "@@L2 rootfs-init"
echo "@@L2 rootfs-root $(awk '$2 == "/" { print $1, $3 }' /proc/mounts | tail -1)"
echo "@@L2 rootfs-marker $(cat /lane-marker 2>&1)"
echo "@@L2 rootfs-serial $(cat /sys/block/vda/serial 2>&1)"
echo "@@L2 rootfs-queues $(ls /sys/block/vda/mq | wc -l) discard-max=$(cat /sys/block/vda/queue/discard_max_bytes)"
mount -o remount,rw / || echo "@@L2 rootfs-remount-failed"
mkdir -p /data
head -c 4194304 /dev/urandom >/data/a
sync
echo "@@L2 rootfs-file-a $(sha256sum </data/a | cut -c1-64)"
export PS1='lane-sh# '
echo "@@L2 shell-ready"
exec setsid cttyhack sh
