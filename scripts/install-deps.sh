#!/bin/sh
# Installs what rkt-ng's build, tests and demo need on Debian 12, as root.
# Packages already present are not touched, so this is quick on a warm machine.
set -eu
pkgs="busybox-static gnupg iptables iproute2 runc crun bzip2 xz-utils ca-certificates kmod"
# The cgroup v2 functional test (tests/vm_cgroupv2_test.go) boots a kernel
# under qemu: qemu itself, and a kernel image when /boot has none (a
# container or a micro-VM often boots a kernel that is not in /boot). The KVM
# stage1 needs qemu too; its guest kernel is downloaded at build time
# (scripts/fetch-kernel.sh, which needs apt-get, dpkg-deb and kmod's depmod).
vmpkgs="qemu-system-x86"
ls /boot/vmlinuz-* >/dev/null 2>&1 || vmpkgs="$vmpkgs linux-image-cloud-amd64"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
vmmissing=""
for p in $vmpkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || vmmissing="$vmmissing $p"
done
if [ -n "$missing$vmmissing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: need root to install:$missing$vmmissing" >&2
		exit 1
	fi
	apt-get update -qq
	[ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	# Without recommends: qemu would pull a desktop's worth of GUI libraries.
	[ -z "$vmmissing" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $vmmissing >/dev/null
fi
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || {
	echo "install-deps: Go 1.26 is required (https://go.dev/dl); it is not in Debian 12" >&2
	exit 1
}
go mod download
