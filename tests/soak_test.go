package tests

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestSoak runs RKT_SOAK_PODS pods (`make soak`: 1,000) one after the other
// on the default network, then gc, and checks that nothing leaked (pods,
// mounts, netns, links, leases, iptables rules, cgroups, trees) and that the
// time and the memory per pod (rkt's max RSS, stage1 and pod init
// included) stayed flat from the first tenth to the last (issue 17).
func TestSoak(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RKT_SOAK_PODS"))
	if n <= 0 {
		t.Skip("a long run; run: make soak (or RKT_SOAK_PODS=N go test -run TestSoak ./tests/)")
	}
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "ip")
	testutil.RequireCommand(t, "iptables")
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/soak")
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", aci).Stdout)
	var uuids, hostIfs []string
	durations := make([]time.Duration, 0, n)
	rss := make([]int64, 0, n)
	for i := range n {
		start := time.Now()
		res := runInsecure(t, c, "--net=default", id, "--", "--print-msg=soak")
		wantExit(t, res, 0)
		durations = append(durations, time.Since(start))
		rss = append(rss, res.MaxRSS)
		// Collect as we go, as a host running pods for long would.
		if i%50 == 49 || i == n-1 {
			u, h := podNetRecords(t, c)
			uuids, hostIfs = append(uuids, u...), append(hostIfs, h...)
			c.MustRun(t, "gc", "--grace-period=0s")
		}
	}
	c.MustRun(t, "image", "gc", "--grace-period=24h")
	if left := podDirs(t, c); len(left) != 0 {
		t.Errorf("gc left %d pods", len(left))
	}
	checkNoMountUnder(t, c.DataDir)
	checkNoNetLeft(t, c, uuids, hostIfs)
	checkNoCgroupLeft(t, uuids)
	if trees := globAll(t, c, "cas/tree/*"); len(trees) != 0 {
		t.Errorf("trees left: %v", trees)
	}
	if n >= 20 {
		tenth := n / 10
		first, last := mean(durations[:tenth]), mean(durations[n-tenth:])
		t.Logf("%d pods: mean time per pod %v over the first %d, %v over the last %d", n, first, tenth, last, tenth)
		// Flat, with room for the noise of a shared 2-core machine.
		if last > 2*first+200*time.Millisecond {
			t.Errorf("time per pod grew from %v to %v", first, last)
		}
		firstRSS, lastRSS := meanInt(rss[:tenth]), meanInt(rss[n-tenth:])
		t.Logf("%d pods: mean max RSS per pod %d KiB over the first %d, %d KiB over the last %d", n, firstRSS, tenth, lastRSS, tenth)
		// A leak in rkt or the stage1 grows this with every pod; the
		// slack is for the Go runtime's and the page cache's noise.
		if firstRSS <= 0 {
			t.Errorf("no max RSS measured")
		} else if lastRSS > firstRSS*5/4+4096 {
			t.Errorf("max RSS per pod grew from %d KiB to %d KiB", firstRSS, lastRSS)
		}
	}
}

func meanInt(xs []int64) int64 {
	var sum int64
	for _, x := range xs {
		sum += x
	}
	return sum / int64(len(xs))
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}
