// Package testutil is the harness of the functional tests in tests/: it finds
// the binaries under test, builds the tests/inspect program and the stub
// stage1, builds and signs ACIs, and runs bin/rkt with fresh data and config
// directories that it garbage-collects and checks for leaked mounts when the
// test ends.
//
// Environment (as rkt's functional tests): RKT is the rkt binary under test
// (default <repo>/bin/rkt), RKT_STAGE1 the stage1 image (default
// <repo>/bin/stage1-ns.aci), INSPECT_BINARY a prebuilt tests/inspect.
//
// The package is Linux-only and meant for tests: its helpers take a
// testing.TB and end the test on errors.
package testutil
