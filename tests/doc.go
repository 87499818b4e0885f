// Package tests holds the functional tests: they drive the built bin/rkt as a
// user would, as root, against real namespaces, overlayfs, cgroups and CNI
// plugins, each with fresh data and config directories.
package tests
