// Package manifests reads, validates and builds appc image and pod manifests
// (appc spec v0.8.11) and the ACI archive format. Decoding tolerates isolators
// that the appc library does not know, and reports them so the runtime can tell
// the user which isolators it did not apply.
package manifests
