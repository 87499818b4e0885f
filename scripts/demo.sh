#!/bin/sh
# The main job end to end: build a small ACI, sign it with a freshly
# generated key (real gpg), trust the key for the image's prefix only, fetch
# the image (the signature is verified before it enters the store), run it in
# a pod, and garbage-collect the pod. Everything lives in a temporary dir.
set -eu
RKT=${RKT:-$(pwd)/bin/rkt}
W=$(mktemp -d /tmp/rkt-demo.XXXXXX)
trap 'rm -rf "$W"' EXIT
rkt() { "$RKT" --dir="$W/data" --local-config="$W/etc" --system-config="$W/lib" "$@"; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Building example.com/hello:1.0 from busybox-static"
mkdir -p "$W/hello/rootfs/bin" "$W/hello/rootfs/etc"
cp /bin/busybox "$W/hello/rootfs/bin/busybox"
for a in sh echo cat id uname hostname; do ln -s busybox "$W/hello/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/hello/rootfs/etc/passwd"
echo 'root:x:0:' > "$W/hello/rootfs/etc/group"
cat > "$W/hello/manifest" <<'MANIFEST'
{
  "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/hello",
  "labels": [{"name": "version", "value": "1.0"}, {"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}],
  "app": {
    "exec": ["/bin/sh", "-c", "echo \"Hello from pod $(hostname), app $AC_APP_NAME, running as $(id)\""],
    "user": "0", "group": "0"
  }
}
MANIFEST
rkt image build "$W/hello" "$W/hello.aci"
ls -l "$W/hello.aci"

step "Generating a signing key with gpg and signing the image"
export GNUPGHOME="$W/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'rkt-ng demo <demo@example.com>' ed25519 sign never 2>/dev/null
gpg --batch --quiet --armor --export > "$W/demo.pub.asc"
gpg --batch --quiet --armor --detach-sign "$W/hello.aci"

step "Fetching before trusting the key is refused"
if rkt fetch "$W/hello.aci" 2>"$W/err"; then echo "unexpected: fetch succeeded"; exit 1; fi
cat "$W/err"

step "Trusting the key for prefix example.com/hello"
rkt trust --prefix=example.com/hello --skip-fingerprint-review "$W/demo.pub.asc"

step "Fetching: the signature is checked before the image enters the store"
rkt fetch "$W/hello.aci"
rkt image list

step "Running the image by name in a namespace pod"
rkt run example.com/hello:1.0

step "The pod and its exit status"
rkt list
step "Garbage collection"
rkt gc --grace-period=0s
echo
echo "demo finished"
