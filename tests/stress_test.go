package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestStoreStress runs, all at once and for a bounded time: short pods on
// the default network, fetches of the same ACI and OCI image, `rkt gc`,
// `rkt image gc --grace-period=24h` (trees and layers) and `rkt list`. No
// command may fail; at the end gc leaves no pod, mount, network state or
// cgroup, and `rkt image verify` finds the store intact (issue 17).
func TestStoreStress(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/stress")
	reg := testutil.NewRegistry(t)
	reg.Push(t, "test/stress:1", ociImg(t, v1.Config{Entrypoint: []string{"/inspect"}}, inspectLayer(t),
		ociLayer(t, false, tarEnt{name: "stress", body: "s"})))
	ociRef := reg.Ref("test/stress:1")
	rounds := 4
	if testing.Short() {
		rounds = 2
	}

	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	// failures and counts are guarded by mu.
	var mu sync.Mutex
	var failures []string
	counts := map[string]int{}
	record := func(name string, err error, stderr string) {
		mu.Lock()
		defer mu.Unlock()
		counts[name]++
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v: %s", name, err, stderr))
		}
	}
	loop := func(name string, args ...string) {
		wg.Go(func() {
			for ctx.Err() == nil {
				cmd := c.Cmd(args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				record(name, cmd.Run(), stderr.String())
			}
		})
	}
	loop("gc", "gc", "--grace-period=0s")
	loop("image gc", "image", "gc", "--grace-period=24h")
	loop("list", "list", "--no-legend")
	// Two fetchers of each image, racing each other and the runs.
	for range 2 {
		loop("fetch ACI", "--insecure-options=image", "fetch", aci)
		loop("fetch OCI", "--insecure-options=image", "fetch", ociRef)
	}

	dir := t.TempDir()
	for round := range rounds {
		var rg sync.WaitGroup
		for i, ref := range []string{aci, ociRef} {
			rg.Go(func() {
				uuidFile := filepath.Join(dir, fmt.Sprintf("uuid-%d-%d", round, i))
				cmd := c.Cmd("--insecure-options=image", "run", "--net=default", "--uuid-file-save="+uuidFile, ref, "--", fmt.Sprintf("--print-msg=pod-%d-%d", round, i))
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				if err == nil && !strings.Contains(stdout.String(), fmt.Sprintf("pod-%d-%d", round, i)) {
					err = fmt.Errorf("output lacks the pod's message: %q", stdout.String())
				}
				record("run", err, stderr.String())
			})
		}
		rg.Wait()
	}
	// Let every loop run at least once more.
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("commands run: %v", counts)
	for _, f := range failures {
		t.Errorf("failed: %s", f)
	}

	// Most pods were collected by the gc loop already: their UUIDs come
	// from --uuid-file-save.
	uuids, hostIfs := podNetRecords(t, c)
	saved, _ := filepath.Glob(filepath.Join(dir, "uuid-*"))
	for _, f := range saved {
		if b, err := os.ReadFile(f); err == nil && !slices.Contains(uuids, strings.TrimSpace(string(b))) {
			uuids = append(uuids, strings.TrimSpace(string(b)))
		}
	}
	if len(uuids) != 2*rounds {
		t.Errorf("%d pod UUIDs saved, want %d", len(uuids), 2*rounds)
	}
	c.MustRun(t, "gc", "--grace-period=0s")
	c.MustRun(t, "image", "gc", "--grace-period=24h")
	if left := podDirs(t, c); len(left) != 0 {
		t.Errorf("gc left pods %v", left)
	}
	checkNoMountUnder(t, c.DataDir)
	checkNoNetLeft(t, c, uuids, hostIfs)
	checkNoCgroupLeft(t, uuids)
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 0 {
		t.Errorf("image gc left trees %v", trees)
	}
	c.MustRun(t, "image", "verify")
}
