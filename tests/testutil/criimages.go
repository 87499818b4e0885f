package testutil

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// CRI test images: the images cri-tools v1.37.0's critest pulls
// (pkg/validate/consts.go, pkg/framework/util.go and the images/ build
// script of cri-tools), built here from the host's static busybox and
// pushed to a local Registry under the same paths, for rkt-cri's
// registryMirrors to send their registries to.
const (
	// CRIDefaultImage and CRIWebServerImage are critest's default and
	// web-server images (--test-images-file).
	CRIDefaultImage   = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	CRIWebServerImage = "registry.k8s.io/e2e-test-images/nginx:1.14-2"
	// CRIHttpdImage is the web server of the "Multiple Containers" specs:
	// its log must name httpd.
	CRIHttpdImage = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"
	// CRINoNewPrivsImage prints "Effective uid: N" from a setuid-root
	// program (tests/cmd/nnp).
	CRINoNewPrivsImage = "registry.k8s.io/e2e-test-images/nonewprivs:1.3"
	// CRIPauseImage is registry.k8s.io/pause; critest also pulls it as
	// k8s.gcr.io/pause:3.9 and wants the same image.
	CRIPauseImage = "registry.k8s.io/pause:3.9"

	criToolsRegistry = "gcr.io/k8s-staging-cri-tools/"
)

// CRIImage is one image pushed by PushCRIImages.
type CRIImage struct {
	// Names are the references critest uses for it.
	Names []string
	// User is its config's User.
	User string
	// Image is what was pushed.
	Image v1.Image
}

// CRIImages is the result of PushCRIImages.
type CRIImages struct {
	// Images are the images, by their first name.
	Images map[string]CRIImage
	// Mirrors is the registryMirrors of an rkt-cri config that sends
	// every registry the names use to the local registry.
	Mirrors map[string][]string
}

// criPasswd and criGroup are busybox's image's users and groups, with
// www-data (uid 33) that test-image-user-username runs as.
const (
	criPasswd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\n" +
		"sys:x:3:3:sys:/dev:/bin/false\nsync:x:4:100:sync:/bin:/bin/sync\nmail:x:8:8:mail:/var/spool/mail:/bin/false\n" +
		"www-data:x:33:33:www-data:/var/www:/bin/false\noperator:x:37:37:Operator:/var:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
	criGroup = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nmail:x:12:\n" +
		"www-data:x:33:\noperator:x:37:\nstaff:x:50:\nusers:x:100:\nnogroup:x:65534:\n"
	// criPgrep is pgrep PATTERN: the PIDs of the processes whose name
	// contains PATTERN, status 1 when there is none.
	criPgrep = `#!/bin/sh
found=1
for d in /proc/[0-9]*; do
	read -r comm 2>/dev/null <"$d/comm" || continue
	case "$comm" in *"$1"*) ;; *) continue ;; esac
	echo "${d#/proc/}"
	found=0
done
exit $found
`
	// criIpcs is ipcs [-m]: the System V shared memory segments, from
	// /proc/sysvipc/shm, in util-linux's columns (the key in decimal).
	criIpcs = `#!/bin/sh
echo
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch     status"
awk 'NR > 1 { printf "%-10s %-10s %-10s %-10s %-10s %-10s\n", $1, $2, $8, $3, $4, $7 }' /proc/sysvipc/shm
`
	criPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// criEntry is one file, directory or symlink of a layer.
type criEntry struct {
	name, link string
	mode       int64
	dir        bool
	data       []byte
}

// layerOf makes a gzip layer of entries, with fixed times and owners so
// that the same entries give the same digests.
func layerOf(t testing.TB, entries []criEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: aciModTime, Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// busyboxLayer is the base layer: the static busybox with a link per
// applet in /bin, /etc/passwd and /etc/group, and the usual directories.
func busyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	bb := staticBusybox(t)
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	applets := strings.Fields(string(out))
	slices.Sort(applets)
	var es []criEntry
	for _, d := range []string{"bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "usr/sbin", "var", "var/www", "sbin"} {
		es = append(es, criEntry{name: d, dir: true, mode: 0o755})
	}
	es = append(es, criEntry{name: "tmp", dir: true, mode: 0o1777})
	es = append(es, criEntry{name: "bin/busybox", mode: 0o755, data: data})
	for _, a := range applets {
		if a != "busybox" && !strings.Contains(a, "/") {
			es = append(es, criEntry{name: "bin/" + a, link: "busybox"})
		}
	}
	if !slices.Contains(applets, "ipcs") {
		// Nor ipcs, which the HostIpc specs run as "ipcs -m".
		es = append(es, criEntry{name: "bin/ipcs", mode: 0o755, data: []byte(criIpcs)})
	}
	if !slices.Contains(applets, "pgrep") {
		// Debian's static busybox has no pgrep; critest's exec specs run
		// "pgrep sleep || true" and want nothing on stderr.
		es = append(es, criEntry{name: "bin/pgrep", mode: 0o755, data: []byte(criPgrep)})
	}
	es = append(es,
		criEntry{name: "etc/passwd", mode: 0o644, data: []byte(criPasswd)},
		criEntry{name: "etc/group", mode: 0o644, data: []byte(criGroup)},
	)
	return layerOf(t, es)
}

// criImage is base plus an optional top layer, with config c.
func criImage(t testing.TB, base v1.Layer, top []criEntry, c v1.Config) v1.Image {
	t.Helper()
	layers := []v1.Layer{base}
	if len(top) > 0 {
		layers = append(layers, layerOf(t, top))
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: aciModTime}
	if c.Env == nil {
		c.Env = []string{criPath}
	}
	cf.Config = c
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// PushCRIImages builds critest's images and pushes each under every name
// (registry host left out: "gcr.io/a/b:1" is pushed as "a/b:1").
func PushCRIImages(t testing.TB, r *Registry) CRIImages {
	t.Helper()
	base := busyboxLayer(t)
	index := []criEntry{
		{name: "www", dir: true, mode: 0o755},
		{name: "www/index.html", mode: 0o644, data: []byte("<html><body>It works (rkt-ng CRI test image)</body></html>\n")},
	}
	sh := v1.Config{Cmd: []string{"sh"}}
	user := func(u string) v1.Config { return v1.Config{Cmd: []string{"sh"}, User: u} }
	// image-test's Dockerfile: busybox with a file named after the image.
	marked := func(name string) v1.Image {
		return criImage(t, base, []criEntry{{name: name, mode: 0o644}}, sh)
	}
	predefined := criImage(t, base, []criEntry{
		{name: "etc/passwd", mode: 0o644, data: []byte(criPasswd + "default-user:x:1000:1000::/home/default-user:/bin/sh\n")},
		{name: "etc/group", mode: 0o644, data: []byte(criGroup + "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")},
		{name: "home/default-user", dir: true, mode: 0o755},
	}, user("1000"))
	tags := marked("test-image-tags")
	tag := marked("test-image-tag")
	pause := criImage(t, base, nil, v1.Config{Entrypoint: []string{"/bin/sleep", "2147483647"}})
	list := []CRIImage{
		{Names: []string{CRIDefaultImage}, Image: criImage(t, base, nil, sh)},
		{Names: []string{CRIWebServerImage}, Image: criImage(t, base, index, v1.Config{
			Entrypoint:   []string{"httpd", "-f", "-p", "80", "-h", "/www"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
		})},
		{Names: []string{CRIHttpdImage}, Image: criImage(t, base, index, v1.Config{
			Entrypoint:   []string{"sh", "-c", "echo 'httpd: serving /www on port 80'; exec httpd -f -vv -p 80 -h /www"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
		})},
		{Names: []string{CRIPauseImage, "k8s.gcr.io/pause:3.9"}, Image: pause},
		{Names: []string{criToolsRegistry + "test-image-user-uid:latest"}, User: "1002", Image: criImage(t, base, nil, user("1002"))},
		{Names: []string{criToolsRegistry + "test-image-user-username:latest"}, User: "www-data", Image: criImage(t, base, nil, user("www-data"))},
		{Names: []string{criToolsRegistry + "test-image-user-uid-group:latest"}, User: "1003:1004", Image: criImage(t, base, nil, user("1003:1004"))},
		{Names: []string{criToolsRegistry + "test-image-user-username-group:latest"}, User: "www-data:1004", Image: criImage(t, base, nil, user("www-data:1004"))},
		{Names: []string{criToolsRegistry + "test-image-predefined-group:latest"}, User: "1000", Image: predefined},
		{Names: []string{criToolsRegistry + "test-image-latest:latest"}, Image: marked("test-image-latest")},
		{Names: []string{criToolsRegistry + "test-image-tag:test", criToolsRegistry + "test-image-tag:all"}, Image: tag},
		{Names: []string{criToolsRegistry + "test-image-tags:1", criToolsRegistry + "test-image-tags:2", criToolsRegistry + "test-image-tags:3"}, Image: tags},
	}
	// The host-network web server of the streaming specs listens on 12003.
	list = append(list, CRIImage{Names: []string{criToolsRegistry + "hostnet-nginx-" + runtime.GOARCH + ":latest"}, Image: criImage(t, base, index, v1.Config{
		Entrypoint:   []string{"httpd", "-f", "-p", "12003", "-h", "/www"},
		ExposedPorts: map[string]struct{}{"12003/tcp": {}},
	})})
	// nonewprivs: a setuid-root program printing its effective UID.
	nnp, err := os.ReadFile(buildNNP(t))
	if err != nil {
		t.Fatal(err)
	}
	list = append(list, CRIImage{Names: []string{CRINoNewPrivsImage}, Image: criImage(t, base, []criEntry{
		{name: "usr/local", dir: true, mode: 0o755},
		{name: "usr/local/bin", dir: true, mode: 0o755},
		{name: "usr/local/bin/nnp", mode: 0o4755, data: nnp},
	}, v1.Config{Cmd: []string{"/usr/local/bin/nnp"}})})
	for _, n := range []string{"1", "2", "3"} {
		list = append(list, CRIImage{Names: []string{criToolsRegistry + "test-image-" + n + ":latest"}, Image: marked("test-image-" + n)})
	}
	out := CRIImages{Images: map[string]CRIImage{}, Mirrors: map[string][]string{}}
	for _, im := range list {
		for _, n := range im.Names {
			host, path, ok := strings.Cut(n, "/")
			if !ok {
				t.Fatalf("CRI image %s: no registry", n)
			}
			r.Push(t, path, im.Image)
			out.Mirrors[host] = []string{"http://" + r.Host}
		}
		out.Images[im.Names[0]] = im
	}
	return out
}

var (
	nnpOnce sync.Once
	nnpPath string
	nnpErr  error
)

// buildNNP builds tests/cmd/nnp, static, once per test binary.
func buildNNP(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	nnpOnce.Do(func() { nnpPath, nnpErr = goBuild(root, "./tests/cmd/nnp", "cri-nnp") })
	if nnpErr != nil {
		t.Fatalf("build tests/cmd/nnp: %v", nnpErr)
	}
	return nnpPath
}

// CRITestImagesFile is critest's --test-images-file (YAML) naming
// CRIDefaultImage and CRIWebServerImage.
func CRITestImagesFile() string {
	return fmt.Sprintf("defaultTestContainerImage: %s\nwebServerTestImage: %s\n", CRIDefaultImage, CRIWebServerImage)
}
