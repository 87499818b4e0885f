// Package images fetches, verifies, imports and collects images: local ACIs,
// appc meta discovery, https, docker:// registries and OCI layouts, with
// signature checks against the trust store. It also removes images, garbage
// collects the store (trees no pod records, images no pod uses), and writes
// stored images out (export, extract, render).
//
// stage0 uses it to resolve the images of a pod before preparing it, and
// cmd/rkt for `rkt fetch`, `rkt image ...` and the key discovery of
// `rkt trust`. The store itself is package stage0/store. The package is
// Linux-only, as the store is.
package images
