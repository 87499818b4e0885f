#!/bin/sh
# Installs what rkt-ng's build, tests and demo need on Debian 12, as root.
# Packages already present are not touched, so this is quick on a warm machine.
set -eu
pkgs="busybox-static gnupg iptables iproute2 runc crun bzip2 xz-utils ca-certificates"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: need root to install:$missing" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || {
	echo "install-deps: Go 1.26 is required (https://go.dev/dl); it is not in Debian 12" >&2
	exit 1
}
go mod download
