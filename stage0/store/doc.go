// Package store is rkt-ng's image store, rooted at $DATA/cas. It is
// Linux-only (flock(2), openat2(2) through internal/untar).
//
// Layout (see docs/design.md):
//
//	blob/sha512/<128 hex>   decompressed ACI tar; image ID = "sha512-<128 hex>"
//	images/<id>.json        index row (Image)
//	manifest/<id>           the image manifest as found in the ACI
//	tree/<treeID>/          rendered image plus dependencies: rootfs/, rendered, image, deps
//	locks/<key>             flock files, one per image ID and per tree ID
//	tmp/                    imports in progress
//
// Guarantees: the store is safe for concurrent use by many processes; all
// coordination is flock(2) on per-key files plus write-temp/fsync/rename, no
// in-memory lock protects disk state. An image is visible exactly when its
// index row exists: the blob and manifest are renamed into place first and
// the row is written last, so a failed import leaves nothing behind. A tree
// is visible exactly when tree/<treeID> exists: it is rendered in
// tree/.tmp-<treeID>, synced, and renamed. Lock order is images before trees
// and layers.
//
// A user of a tree gets it from Acquire with a Hold (shared flocks on the
// top image and the tree, or on an OCI image and its layers) and keeps the
// hold until it has recorded the tree where gc looks (a pod's directory).
// Tree, layer and image removal take the exclusive lock, which skips or
// waits for every hold, and only then re-read the records: so a tree in use
// is always either held or recorded, and never removed.
//
// Between a fetch and the render, a user holds the image itself with
// HoldImage (a shared flock on locks/use-<id>, not the image's own lock, so
// that the holder can still import or Touch it); RemoveUnused tries that
// lock and reports ErrInUse rather than waiting.
package store
