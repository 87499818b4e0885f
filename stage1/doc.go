// Package stage1 defines the stage1 ABI shared by stage0 and every stage1
// flavor: the entrypoint annotations, the interface version, the arguments of
// each entrypoint, and how an app's exit status travels back to rkt.
package stage1
