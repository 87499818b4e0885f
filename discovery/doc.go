// Package discovery finds and downloads images by name: appc meta discovery
// (ac-discovery and ac-discovery-pubkeys templates) and HTTP(S) fetching with
// auth, caching (ETag, Cache-Control max-age) and resumable downloads.
//
// Discover and DiscoverKeys implement spec/discovery.md of appc v0.8.11: they
// fetch https://<name>?ac-discovery=1, walk up the path prefixes, and fill
// the templates ({name}, {version} default "latest", {os} and {arch} default
// to the running system in appc names, other labels, {ext}). Templates with
// an unfilled variable are skipped.
//
// All HTTP goes through a client built from Options: TLS roots or
// verification, credentials per host from rkt's auth.d files (LoadAuth, sent
// only to their own domains and only over https unless InsecureHTTP), at most
// MaxRedirects redirects, no https to http downgrade unless InsecureHTTP, and
// per-phase timeouts; a whole transfer is bounded by the caller's context.
//
// Fetcher.Fetch downloads into a caller-owned file, using a per-URL Record
// (kept by a Cache such as FileCache) to skip requests inside max-age, to
// revalidate with If-None-Match, and to resume a partial file with Range and
// If-Range. The package writes nothing to stdout or stderr; progress is
// reported through Options.Progress and debug messages through
// Options.Logger.
package discovery
