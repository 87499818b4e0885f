// Package discovery finds and downloads images by name: appc meta discovery
// (ac-discovery and ac-discovery-pubkeys templates) and HTTP(S) fetching with
// auth, caching (ETag, Cache-Control max-age) and resumable downloads.
package discovery
