// Package stage0 implements what the rkt command does before a pod starts:
// it resolves and fetches images, prepares the pod directory (manifest, rendered
// trees, overlay mounts) and execs the stage1 run entrypoint, which keeps rkt's
// PID for the pod's whole life.
package stage0
