#!/bin/sh
# Fetches the KVM stage1's guest kernel into DIR without installing it on the
# host: the concrete package behind Debian's linux-image-amd64 (the cloud
# kernel has no 9p, CONFIG_NET_9P unset), downloaded with apt-get download,
# unpacked with dpkg-deb -x, and its modules.dep made with depmod -b.
# Prints nothing on success; DIR/vmlinuz and DIR/modules then exist.
set -eu
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
resolve() {
	apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
	apt-get update -qq
	pkg=$(resolve)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve linux-image-amd64 with apt-cache" >&2; exit 1; }
rm -rf "$dir/tree" "$dir"/*.deb
# apt-get download writes into the current directory; as root it warns
# that the _apt user cannot write there, harmlessly.
(cd "$dir" && apt-get download -qq "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
deb=$(ls "$dir"/"$pkg"_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || { echo "fetch-kernel: apt-get download $pkg failed" >&2; exit 1; }
dpkg-deb -x "$deb" "$dir/tree"
rm -f "$deb"
version=${pkg#linux-image-}
depmod -b "$dir/tree" "$version"
ln -sf "tree/boot/vmlinuz-$version" "$dir/vmlinuz"
ln -sfn "tree/lib/modules/$version" "$dir/modules"
