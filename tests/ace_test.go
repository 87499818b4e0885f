package tests

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// TestACEValidator runs the appc spec's own executor conformance suite
// (ace-validator v0.8.11, main and sidekick) in one pod, on the network
// modes that matter for the metadata service.
func TestACEValidator(t *testing.T) {
	testutil.RequireRoot(t)
	main, sidekick := testutil.ACEImages(t)
	for _, net := range []string{"default", "host", "none", "default-restricted"} {
		t.Run(net, func(t *testing.T) {
			c := testutil.NewCtx(t)
			r := c.Run(t, "--insecure-options=image", "run", "--net="+net, "--mds-register", "--volume", "database,kind=empty", main, sidekick)
			for _, want := range []string{"prestart OK", "main OK", "sidekick OK", "poststop OK"} {
				if !strings.Contains(r.Stdout+r.Stderr, want) {
					t.Errorf("%q missing", want)
				}
			}
			wantExit(t, r, 0)
		})
	}
}

// TestSocketActivation checks that a port marked socketActivated is opened
// by stage1 and handed to the app as fd 3 with LISTEN_FDS/LISTEN_PID.
func TestSocketActivation(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/activated", testutil.WithManifest(func(im *schema.ImageManifest) {
		im.App.Ports = append(im.App.Ports, types.Port{Name: "http", Protocol: "tcp", Port: 18089, SocketActivated: true})
	}))
	p := c.Start(t, "--insecure-options=image", "run", "--net=host", aci, "--", "--serve-http=listen-fds")
	p.WaitOutput(t, "SERVING=", 30*time.Second)
	resp, err := http.Get("http://127.0.0.1:18089/")
	if err != nil {
		t.Fatalf("get from the socket-activated app: %v\n%s", err, p.Stderr())
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "hello from rkt-") {
		t.Errorf("answer %q", b)
	}
	if !strings.Contains(p.Stdout(), "LISTEN_FDNAMES=http") {
		t.Errorf("LISTEN_FDNAMES not set:\n%s", p.Stdout())
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(t, 20*time.Second)
}
