// Package pods owns the pod directory: its states (embryo, prepare, prepared,
// run, exited-garbage, garbage), the flock+rename transitions between them, the
// paths of the files inside it, listing and lookup by UUID, prefix or name, and
// garbage collection. A pod's state is the directory it is in and whether that
// directory is locked; nothing else is authoritative.
package pods
