package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/rkt-ng/rkt/pods"
)

var (
	rktCRIBin = flag.String("rkt-cri", envOr("RKT_CRI", "bin/rkt-cri"), "rkt-cri binary (cri group)")
	crictlBin = flag.String("crictl", envOr("CRICTL", "build/cri-tools/crictl"), "crictl binary (cri group; make cri-tools)")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// benchCRI: a busybox container to running through rkt-cri, as the kubelet
// does it (crictl runp, create, start: a sandbox on the default CNI network,
// then its app), next to the same done with rkt itself in the same run
// (rkt app sandbox --net=default until the pod is ready, rkt app add, rkt
// app start). The image is pulled once from a local registry before
// either is timed.
func benchCRI(b *bench) error {
	criBin, err := filepath.Abs(*rktCRIBin)
	if err != nil {
		return err
	}
	crictl, err := filepath.Abs(*crictlBin)
	if err != nil {
		return err
	}
	for _, p := range []string{criBin, crictl} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (make all cri-tools)", err)
		}
	}
	dir := filepath.Join(b.work, "cri")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	// The image: busybox running sleep, on a registry on 127.0.0.1.
	rootfs := filepath.Join(b.work, "cri-rootfs")
	if err := busyboxRootfs(rootfs); err != nil {
		return err
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/bench/busybox:1"
	if err := pushRootfs(ref, rootfs, []string{"/bin/sleep", "3600"}); err != nil {
		return err
	}

	// rkt-cri over a data dir of its own.
	sock := filepath.Join(dir, "cri.sock")
	logf, err := os.Create(filepath.Join(dir, "rkt-cri.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	criData := filepath.Join(dir, "data")
	cmd := exec.Command(criBin, "--listen="+sock, "--dir="+criData, "--rkt="+*rktBin, "--config="+filepath.Join(dir, "none.json"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	crictlRun := func(args ...string) (string, error) {
		argv := append([]string{crictl, "--runtime-endpoint=unix://" + sock, "--image-endpoint=unix://" + sock, "--timeout=2m"}, args...)
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = append(os.Environ(), "HOME="+dir)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			return "", fmt.Errorf("crictl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	defer func() {
		if ids, err := crictlRun("pods", "-q"); err == nil {
			for _, id := range strings.Fields(ids) {
				crictlRun("stopp", id)
				crictlRun("rmp", id)
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		exec.Command(*rktBin, "--dir="+criData, "gc", "--grace-period=0s").Run()
	}()
	up := false
	for range 100 {
		if _, err := crictlRun("version"); err == nil {
			up = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !up {
		return errors.New("rkt-cri does not answer (see its log in the bench's work dir)")
	}
	if _, err := crictlRun("pull", ref); err != nil {
		return err
	}
	ctrCfg := filepath.Join(dir, "ctr.json")
	if err := writeJSONFile(ctrCfg, map[string]any{
		"metadata": map[string]any{"name": "sleep"},
		"image":    map[string]any{"image": ref},
		"log_path": "sleep.log",
		"linux":    map[string]any{},
	}); err != nil {
		return err
	}

	// rkt's own data dir gets the same image.
	if _, err := b.rktOut("--insecure-options=image,http", "fetch", "docker://"+ref); err != nil {
		return err
	}
	cl, err := newCRIClient(sock)
	if err != nil {
		return err
	}
	defer cl.Close()
	n := min(*runs, 10)
	var criDs, grpcDs, rktDs []time.Duration
	for i := -1; i < n; i++ {
		// Through rkt-cri.
		podCfg := filepath.Join(dir, fmt.Sprintf("pod-%d.json", i+1))
		if err := writeJSONFile(podCfg, map[string]any{
			"metadata":      map[string]any{"name": fmt.Sprintf("bench-%d", i+1), "namespace": "bench", "uid": fmt.Sprintf("bench-uid-%d", i+1)},
			"log_directory": filepath.Join(dir, "logs", fmt.Sprint(i+1)),
			"linux":         map[string]any{},
		}); err != nil {
			return err
		}
		start := time.Now()
		podID, err := crictlRun("runp", podCfg)
		if err != nil {
			return err
		}
		ctrID, err := crictlRun("create", podID, ctrCfg, podCfg)
		if err != nil {
			return err
		}
		if _, err := crictlRun("start", ctrID); err != nil {
			return err
		}
		d := time.Since(start)
		if st, err := crictlRun("inspect", "-o", "go-template", "--template", "{{.status.state}}", ctrID); err != nil || st != "CONTAINER_RUNNING" {
			return fmt.Errorf("container after start: %q %v", st, err)
		}
		if i >= 0 {
			criDs = append(criDs, d)
		}
		if _, err := crictlRun("stopp", podID); err != nil {
			return err
		}
		if _, err := crictlRun("rmp", podID); err != nil {
			return err
		}

		// The same three calls over gRPC, without crictl's process starts.
		d, err = grpcRunCreateStart(cl, ref, filepath.Join(dir, "logs", fmt.Sprint("g", i+1)), fmt.Sprintf("bench-g-%d", i+1))
		if err != nil {
			return err
		}
		if i >= 0 {
			grpcDs = append(grpcDs, d)
		}

		// Through rkt.
		d, err = rktSandboxAddStart(b, ref, filepath.Join(dir, fmt.Sprintf("uuid-%d", i+1)))
		if err != nil {
			return err
		}
		if i >= 0 {
			rktDs = append(rktDs, d)
		}
	}
	floor := "rkt app sandbox + add + start (busybox, default net)"
	record("cri", floor, floor, median(rktDs), "")
	record("cri", "crictl runp + create + start (busybox, default net)", floor, median(criDs), "")
	record("cri", "RunPodSandbox + CreateContainer + StartContainer (gRPC)", floor, median(grpcDs), "")
	return nil
}

// rktSandboxAddStart times rkt app sandbox (detached, until its pod is
// ready), rkt app add and rkt app start of image ref, then stops the pod.
func rktSandboxAddStart(b *bench, ref, uuidFile string) (time.Duration, error) {
	data := filepath.Join(b.work, "data")
	pd, err := pods.OpenDir(data)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	argv := b.rkt("app", "sandbox", "--net=default", "--uuid-file-save="+uuidFile)
	sb := exec.Command(argv[0], argv[1:]...)
	sb.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sb.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- sb.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uuid := ""
	for {
		if uuid == "" {
			if b, err := os.ReadFile(uuidFile); err == nil {
				uuid = strings.TrimSpace(string(b))
			}
		}
		if uuid != "" {
			if p, err := pd.Get(uuid); err == nil {
				ready := p.State() == pods.Running && p.IsReady()
				p.Close()
				if ready {
					break
				}
			}
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("rkt app sandbox exited: %v", err)
		case <-ctx.Done():
			return 0, errors.New("rkt app sandbox: not ready after a minute")
		case <-time.After(20 * time.Millisecond):
		}
	}
	app, err := b.rktOut("--insecure-options=image", "app", "add", "--pull-policy=never", uuid, "docker://"+ref)
	if err != nil {
		return 0, err
	}
	if _, err := b.rktOut("app", "start", "--app="+app, uuid); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if _, err := b.rktOut("stop", uuid); err != nil {
		return 0, err
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		return 0, errors.New("rkt app sandbox: still running a minute after rkt stop")
	}
	return d, nil
}

// pushRootfs pushes rootfs as a one-layer image with entrypoint ep.
func pushRootfs(ref, rootfs string, ep []string) error {
	out, err := exec.Command("tar", "-C", rootfs, "-c", ".").Output()
	if err != nil {
		return fmt.Errorf("tar %s: %w", rootfs, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Entrypoint: ep, Env: []string{"PATH=/bin"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

type criClient struct {
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
}

func newCRIClient(sock string) (*criClient, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &criClient{conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn)}, nil
}

func (c *criClient) Close() { c.conn.Close() }

// grpcRunCreateStart times RunPodSandbox, CreateContainer and
// StartContainer of image ref as the kubelet sends them, then removes the
// sandbox (not timed).
func grpcRunCreateStart(c *criClient, ref, logDir, name string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pc := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: name + "-uid"},
		LogDirectory: logDir,
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	start := time.Now()
	rp, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pc})
	if err != nil {
		return 0, fmt.Errorf("RunPodSandbox: %w", err)
	}
	defer func() {
		c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: rp.PodSandboxId})
		c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: rp.PodSandboxId})
	}()
	cc, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: rp.PodSandboxId, SandboxConfig: pc,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"}, Image: &runtimeapi.ImageSpec{Image: ref},
			LogPath: "sleep.log", Linux: &runtimeapi.LinuxContainerConfig{}}})
	if err != nil {
		return 0, fmt.Errorf("CreateContainer: %w", err)
	}
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
		return 0, fmt.Errorf("StartContainer: %w", err)
	}
	return time.Since(start), nil
}
