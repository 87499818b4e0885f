// Package stage0 implements the pod lifecycle as the rkt command runs it:
// it prepares the pod directory (manifest, rendered trees, overlay mounts)
// and execs the stage1 run entrypoint, which keeps rkt's PID for the pod's
// whole life; it reports pod status, enters, stops, exports and garbage
// collects pods. Images come from package stage0/images, which fetches,
// verifies and imports them; stage0 only decides which ones a pod needs.
package stage0
