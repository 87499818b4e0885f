// Package deb builds ACIs from Debian packages with the host's apt and
// checks such images for newer package versions.
//
// apt resolves and downloads with the host's sources, lists and keys
// (apt verifies every package against its archive's signed Release) but a
// private, empty dpkg status, so the host's installed packages are neither
// consulted nor changed. Each package's data.tar is unpacked through
// internal/untar; no maintainer script (preinst, postinst, triggers) runs,
// neither the package's nor the host's. The resolved set is recorded in
// the manifest (RecordAnnotation) and in the rootfs (StatusPath).
package deb
