#!/bin/sh
# The main job end to end, the way images ship: build an ACI, sign it with a
# freshly generated key (real gpg), publish image, signature and key into a
# static directory with an appc discovery page served over HTTPS, discover
# and trust the key for the image's prefix, fetch the image by name (the
# signature is checked before the image is downloaded), run it in a pod and
# show the systemd unit that would run it as a service. Everything lives in a
# temporary directory and on 127.0.0.1.
set -eu
ROOT=$(pwd)
RKT=${RKT:-$ROOT/bin/rkt}
W=$(mktemp -d /tmp/rkt-demo.XXXXXX)
SERVER_PID=
cleanup() {
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
rkt() { "$RKT" --dir="$W/data" --local-config="$W/etc" --system-config="$W/lib" "$@"; }
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Building localhost/hello:1.0 from busybox-static"
mkdir -p "$W/hello/rootfs/bin" "$W/hello/rootfs/etc"
cp /bin/busybox "$W/hello/rootfs/bin/busybox"
for a in sh echo cat id uname hostname; do ln -s busybox "$W/hello/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/hello/rootfs/etc/passwd"
echo 'root:x:0:' > "$W/hello/rootfs/etc/group"
cat > "$W/hello/manifest" <<'MANIFEST'
{
  "acKind": "ImageManifest", "acVersion": "0.8.11", "name": "localhost/hello",
  "labels": [{"name": "version", "value": "1.0"}, {"name": "os", "value": "linux"}, {"name": "arch", "value": "amd64"}],
  "app": {
    "exec": ["/bin/sh", "-c", "echo \"Hello from pod $(hostname), app $AC_APP_NAME, running as $(id)\""],
    "user": "0", "group": "0"
  }
}
MANIFEST
PUB="$W/public"
mkdir -p "$PUB/images/localhost"
ACI="$PUB/images/localhost/hello-1.0-linux-amd64.aci"
rkt image build --mtime=0 "$W/hello" "$ACI"
ls -l "$ACI"

step "Generating a signing key with gpg and signing the image"
export GNUPGHOME="$W/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'rkt-ng demo <demo@example.com>' ed25519 sign never 2>/dev/null
gpg --batch --quiet --armor --export > "$PUB/pubkeys.gpg"
gpg --batch --quiet --armor --detach-sign "$ACI"

step "Publishing: a static directory with an ac-discovery page, served over HTTPS"
cat > "$PUB/hello" <<'PAGE'
<html><head>
<meta name="ac-discovery" content="localhost/hello https://localhost/images/{name}-{version}-{os}-{arch}.{ext}">
<meta name="ac-discovery-pubkeys" content="localhost/hello https://localhost/pubkeys.gpg">
</head></html>
PAGE
find "$PUB" -type f | sed "s|$PUB/|  |"
go build -o "$W/static-https" ./tests/cmd/static-https
"$W/static-https" -dir "$PUB" -ca "$W/etc/ca.d/demo.pem" > "$W/server.log" 2>&1 &
SERVER_PID=$!
i=0
until grep -q serving "$W/server.log" 2>/dev/null; do
	i=$((i+1)); [ $i -gt 100 ] && { cat "$W/server.log"; exit 1; }
	sleep 0.05
done
cat "$W/server.log"

step "Fetching before trusting any key is refused"
if rkt fetch localhost/hello:1.0 2>"$W/err"; then echo "unexpected: fetch succeeded"; exit 1; fi
cat "$W/err"

step "Discovering the key for prefix localhost/hello and trusting it"
rkt trust --prefix=localhost/hello --skip-fingerprint-review

step "Fetching by name: discovery, signature checked before the image is downloaded"
rkt fetch localhost/hello:1.0
rkt image list

step "Running it in a namespace pod"
rkt run localhost/hello:1.0

step "The pod, and its output kept after exit"
rkt list
rkt logs "$(rkt list --full --no-legend | awk 'NR==1{print $1}')"

step "As a systemd service (dist/systemd/hello.service)"
sed -n '/^\[Service\]/,/^\[Install\]/p' "$ROOT/dist/systemd/hello.service" | grep -v '^#'

step "Garbage collection"
rkt gc --grace-period=0s
echo
echo "demo finished"
