#!/bin/sh
# build-plugins.sh OUTDIR: builds the CNI reference plugins that rkt-ng's
# namespace stage1 ships, as static binaries, from the version of
# github.com/containernetworking/plugins required in go.mod.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

# Build inside the module so that go.mod pins the plugin version.
cd "$(dirname "$0")/.."

p=github.com/containernetworking/plugins/plugins
CGO_ENABLED=0 exec "${GO:-go}" build -trimpath -ldflags='-s -w' -o "$out" \
	"$p/main/ptp" \
	"$p/main/bridge" \
	"$p/main/macvlan" \
	"$p/main/ipvlan" \
	"$p/main/loopback" \
	"$p/ipam/host-local" \
	"$p/meta/portmap" \
	"$p/meta/tuning" \
	"$p/meta/firewall"
