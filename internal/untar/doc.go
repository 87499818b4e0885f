// Package untar extracts tar archives from untrusted sources (ACI root
// filesystems and OCI layers) into a directory. It is Linux-only.
//
// Guarantees, whatever the archive contains:
//   - nothing is created, changed or removed outside the target directory:
//     entry names that are absolute or contain a ".." component are errors,
//     every filesystem operation is relative to a directory fd resolved with
//     openat2(2) RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, and symlinks already in
//     the tree are never followed (an entry whose parent path goes through a
//     symlink is an error; a symlink in the way of a new entry is replaced);
//   - hard links point inside the tree;
//   - device nodes, ownership, setuid/setgid bits and extended attributes
//     other than user.* are applied only with Options.KeepOwners.
//
// Overwrite semantics follow the OCI layer rules: a directory over a
// directory keeps its contents and takes the new attributes; anything else
// unlinks the old path (recursively for a directory) and recreates it. With
// Options.OCI, whiteout entries (".wh.<name>" and "<dir>/.wh..wh..opq") remove
// content of lower layers and never appear in the result.
//
// Extract leaves a partially extracted tree behind on error; callers extract
// into a temporary directory and rename it into place.
package untar
