package mds

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt-ng/rkt/internal/netns"
	"github.com/rkt-ng/rkt/tests/testutil"
)

// newNetNS makes a named network namespace with loopback up and removes it
// when the test ends; it returns the namespace's name and path.
func newNetNS(t *testing.T) (string, string) {
	t.Helper()
	testutil.RequireRoot(t)
	ip := testutil.RequireCommand(t, "ip")
	name := fmt.Sprintf("rktng-mds-test-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(t.Context(), ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	run("-n", name, "link", "set", "lo", "up")
	return name, filepath.Join("/run/netns", name)
}

// nsIno returns the inode of a network namespace file.
func nsIno(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return st.Ino
}

// checkThreadsHome fails if any thread of this process is not in the
// namespace whose inode is home.
func checkThreadsHome(t *testing.T, home uint64) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join("/proc/self/task", task.Name(), "ns/net"), &st); err != nil {
			continue // the thread exited
		}
		if st.Ino != home {
			t.Errorf("thread %s is in network namespace %d, want %d", task.Name(), st.Ino, home)
		}
	}
}

// dialInNetNS connects to addr from inside the namespace at nsPath; the
// connection is usable from any thread afterwards.
func dialInNetNS(nsPath, addr string) (net.Conn, error) {
	var c net.Conn
	err := netns.Do(nsPath, func() error {
		// net.Dial with no deadline starts no goroutine.
		var err error
		c, err = net.Dial("tcp", addr)
		return err
	})
	if err != nil && c != nil {
		c.Close()
		return nil, err
	}
	return c, err
}

// getOver sends GET path over c and returns the status and body.
func getOver(t *testing.T, c net.Conn, path string) (int, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := http.NewRequest("GET", "http://mds"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestListenInNetNS(t *testing.T) {
	name, nsPath := newNetNS(t)
	home := nsIno(t, "/proc/self/ns/net")

	l, err := ListenInNetNS(nsPath, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenInNetNS: %v", err)
	}
	checkThreadsHome(t, home)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, newHandler(t, testPod(uuidA, `[]`), tokenA, testKey), nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	u := URL(l, tokenA)
	uuidPath := "/" + tokenA + "/acMetadata/v1/pod/uuid"

	t.Run("inside", func(t *testing.T) {
		for range 5 {
			c, err := dialInNetNS(nsPath, l.Addr().String())
			if err != nil {
				t.Fatalf("dial %s in %s: %v", l.Addr(), name, err)
			}
			code, body := getOver(t, c, uuidPath)
			c.Close()
			if code != 200 || body != uuidA {
				t.Errorf("GET pod/uuid in the pod namespace: %d %q, want 200 %q", code, body, uuidA)
			}
		}
		checkThreadsHome(t, home)
	})

	t.Run("host cannot reach it", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
		if err == nil {
			// Something else of the host may use the port; it must not be us.
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			req, _ := http.NewRequest("GET", "http://mds"+uuidPath, nil)
			if req.Write(c) == nil {
				if resp, err := http.ReadResponse(bufio.NewReader(c), req); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if strings.Contains(string(b), uuidA) {
						t.Fatalf("the host namespace reached the metadata service at %s", l.Addr())
					}
				}
			}
		}
	})

	t.Run("another process in the namespace", func(t *testing.T) {
		wget, err := exec.LookPath("wget")
		if err != nil {
			t.Skipf("requires wget in PATH (%v); run: apt-get install wget", err)
		}
		ip := testutil.RequireCommand(t, "ip")
		out, err := exec.CommandContext(t.Context(), ip, "netns", "exec", name,
			wget, "-q", "-T", "5", "-O", "-", u+"/acMetadata/v1/pod/uuid").CombinedOutput()
		if err != nil || string(out) != uuidA {
			t.Errorf("ip netns exec %s wget: %v, %q; want %q", name, err, out, uuidA)
		}
	})
}

func TestListenInNetNSProcPath(t *testing.T) {
	_, nsPath := newNetNS(t)
	// /proc/PID/ns/net of a process inside works like the bind mount.
	cmd := exec.CommandContext(t.Context(), "ip", "netns", "exec", filepath.Base(nsPath), "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	procNS := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	want := nsIno(t, nsPath)
	deadline := time.Now().Add(5 * time.Second)
	for nsIno(t, procNS) != want { // ip switches namespace before exec
		if time.Now().After(deadline) {
			t.Fatal("sleep did not enter the namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l, err := ListenInNetNS(procNS, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := dialInNetNS(nsPath, l.Addr().String())
	if err != nil {
		t.Fatalf("dial the listener made through %s: %v", procNS, err)
	}
	c.Close()
}
