#!/bin/sh
# Installs every Debian package tern's build, demo, tests and benchmarks need.
# Idempotent and fast when everything is present: it asks dpkg first and only
# runs apt-get (as root) for what is missing.
#
# usage: scripts/setup.sh
set -eu

PKGS="
build-essential
pkg-config
linux-libc-dev
libfdt-dev
liburing-dev
libcmocka-dev
libjson-c-dev
libisal-dev
libmicrohttpd-dev
libcurl4-openssl-dev
python3
clang
libclang-rt-14-dev
qemu-system-x86
busybox-static
e2fsprogs
gnutls-bin
libgnutls28-dev
libseccomp-dev
libcap-ng-dev
iproute2
ethtool
cpio
xz-utils
zstd
gzip
device-tree-compiler
strace
curl
"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "setup: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "setup: done"
