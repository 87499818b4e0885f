// Package rktgroup is rkt 1.30's group model for non-root users
// (Documentation/packaging.md, dist/init/systemd/tmpfiles.d/rkt.conf): when
// the host has a group named "rkt", the parts of the data directory that
// hold pod and image *information* (pods/, its state directories and pod
// directories; cas/, cas/images and cas/manifest) belong to that group with
// the setgid bit and mode 2750, so that its members can run `rkt list`,
// `rkt status`, `rkt cat-manifest`, `rkt image list` and
// `rkt image cat-manifest`. Everything that holds image trees, blobs, pod
// rootfs or secrets stays 0700 root: a member never reaches a setuid binary
// or a device node of the store (docs/security.md). Without the group the
// data directory is root-only, as before.
package rktgroup
