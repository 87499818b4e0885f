package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// ipConf is a user network of its own (bridge and subnet no other test uses).
const ipConf = `{
  "cniVersion": "1.0.0",
  "name": "iplan",
  "plugins": [
    {"type": "bridge", "bridge": "rkttiplan0", "isGateway": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.12.0/24"}]]}}
  ]
}`

// TestNetIPArgTaken reproduces rkt 1.30's per-network CNI_ARGS
// (Documentation/networking/overview.md, "Passing CNI_ARGS": `--net=NAME:IP=ADDR`
// asks host-local for that address): the pod gets it, and a second pod asking
// for the same address while the first runs is refused by the IPAM plugin,
// which rkt reported as a failed network setup, exit 254. Here the error is
// one line naming the network and the address, and the refused pod leaves
// nothing of its network behind.
func TestNetIPArgTaken(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "ip")
	delLinkAfter(t, "rkttiplan0")
	c := testutil.NewCtx(t)
	writeNetConf(t, c, "10-iplan.conflist", ipConf)
	aci := inspectACI(t, "rkt-ng.test/iparg")

	uuidFile := filepath.Join(t.TempDir(), "uuid")
	first := c.Start(t, "--insecure-options=image", "run", "--net=iplan:IP=10.231.12.50", "--pod-name=first", "--uuid-file-save="+uuidFile, aci,
		"--", "--print-ifaces", "--print-msg=up", "--sleep=1h")
	first.WaitOutput(t, "up", 60*time.Second)
	if !strings.Contains(first.Stdout(), "10.231.12.50/24") {
		t.Errorf("--net=iplan:IP=10.231.12.50: the pod has\n%s", first.Stdout())
	}
	if st := c.MustRun(t, "status", "first"); !strings.Contains(st.Stdout, "iplan:ip4=10.231.12.50") {
		t.Errorf("rkt status does not show iplan:ip4=10.231.12.50\n%s", st)
	}

	r := runInsecure(t, c, "--net=iplan:IP=10.231.12.50", aci, "--", "--print-msg=APP RAN")
	wantExit(t, r, 254)
	uuid, err := os.ReadFile(uuidFile)
	if err != nil {
		t.Fatal(err)
	}
	oneLineError(t, r, "iplan", "10.231.12.50", "already taken by pod "+strings.TrimSpace(string(uuid)))
	t.Logf("error: %s", strings.TrimSpace(r.Stderr))
	if strings.Contains(r.Stdout, "APP RAN") {
		t.Errorf("the app ran without its network\n%s", r)
	}

	// Another address of the same network is still free.
	r = runInsecure(t, c, "--net=iplan:IP=10.231.12.51", aci, "--", "--print-ifaces")
	wantExit(t, r, 0)
	if !strings.Contains(r.Stdout, "10.231.12.51/24") {
		t.Errorf("--net=iplan:IP=10.231.12.51: the pod has\n%s", r)
	}

	first.Signal(syscall.SIGTERM)
	first.Wait(t, 30*time.Second)
	uuids, hostIfs := podNetRecords(t, c)
	// The bridge is the network's, not a pod's: it stays, as with rkt.
	hostIfs = slices.DeleteFunc(hostIfs, func(s string) bool { return s == "rkttiplan0" })
	checkNoNetLeft(t, c, uuids, hostIfs)
}
