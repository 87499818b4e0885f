// Command bench measures rkt-ng against floors measured in the same run and
// prints a table of medians and ratios (make bench). It is not a test: the
// numbers are informative and nothing here fails on a slow machine.
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt-ng/rkt/manifests"
)

var (
	rktBin = flag.String("rkt", "bin/rkt", "rkt binary")
	runs   = flag.Int("n", 20, "counted runs per row (median reported)")
	only   = flag.String("only", "", "comma-separated groups to run: start,fetch,list,net,stop,log,pods,remote,kvm,cri (default all)")
)

type row struct {
	group, name string
	median      time.Duration
	floor       string // name of the floor row this one is compared with
	note        string
}

var rows []row

func record(group, name, floor string, d time.Duration, note string) {
	rows = append(rows, row{group, name, d, floor, note})
	fmt.Fprintf(os.Stderr, "  %-55s %10s\n", name, d.Round(10*time.Microsecond))
}

// timeCmd runs argv n times after one warm-up and returns the median.
func timeCmd(n int, setup func(i int) []string) (time.Duration, error) {
	var ds []time.Duration
	for i := -1; i < n; i++ {
		argv := setup(i)
		cmd := exec.Command(argv[0], argv[1:]...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
		}
		if i >= 0 {
			ds = append(ds, time.Since(start))
		}
	}
	return median(ds), nil
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func want(group string) bool {
	if *only == "" {
		return true
	}
	for _, g := range strings.Split(*only, ",") {
		if g == group {
			return true
		}
	}
	return false
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: must run as root")
		os.Exit(1)
	}
	work, err := os.MkdirTemp("", "rkt-bench-")
	if err != nil {
		die(err)
	}
	defer os.RemoveAll(work)
	abs, err := filepath.Abs(*rktBin)
	if err != nil {
		die(err)
	}
	*rktBin = abs
	b := &bench{work: work}
	for _, g := range groups {
		if want(g.name) {
			fmt.Fprintf(os.Stderr, "== %s\n", g.name)
			if err := g.run(b); err != nil {
				fmt.Fprintf(os.Stderr, "bench %s: %v\n", g.name, err)
			}
		}
	}
	printTable()
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func printTable() {
	byName := map[string]time.Duration{}
	for _, r := range rows {
		byName[r.name] = r.median
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tMEASUREMENT\tMEDIAN\tVS FLOOR\tTARGET")
	for _, r := range rows {
		ratio := ""
		if f, ok := byName[r.floor]; ok && f > 0 && r.floor != r.name {
			ratio = fmt.Sprintf("%.2fx %s", float64(r.median)/float64(f), shortName(r.floor))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.group, r.name, fmtDur(r.median), ratio, r.note)
	}
	tw.Flush()
}

func shortName(s string) string {
	if i := strings.Index(s, " ("); i > 0 {
		return s[:i]
	}
	return s
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// bench holds what the groups share.
type bench struct {
	work string
}

// rkt returns an argv running rkt with the bench's dirs.
func (b *bench) rkt(args ...string) []string {
	return append([]string{*rktBin, "--dir=" + filepath.Join(b.work, "data"), "--local-config=" + filepath.Join(b.work, "etc"),
		"--system-config=" + filepath.Join(b.work, "lib")}, args...)
}

func (b *bench) rktOut(args ...string) (string, error) {
	argv := b.rkt(args...)
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return "", fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

// busyboxRootfs makes a static busybox rootfs with a few applets.
func busyboxRootfs(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp", "etc"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("static busybox (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		return err
	}
	for _, a := range []string{"sh", "true", "echo", "sleep", "cat", "yes", "head", "dd"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
	return nil
}

// writeACI writes rootfs as an ACI named name with exec, gzip-compressed
// when gz is set.
func writeACI(path, name string, exec []string, rootfs string, gz bool) error {
	im := schema.BlankImageManifest()
	n, err := types.NewACIdentifier(name)
	if err != nil {
		return err
	}
	im.Name = *n
	im.App = &types.App{Exec: exec, User: "0", Group: "0"}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	var w io.Writer = bw
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	t := time.Unix(0, 0)
	if err := manifests.WriteACI(w, im, rootfs, manifests.BuildOptions{ModTime: &t}); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ociBundle writes a runc/crun bundle running /bin/true from rootfs.
func ociBundle(dir, rootfs string) error {
	spec, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("runc spec: %v %s", err, spec)
	}
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	cfg["root"] = map[string]any{"path": rootfs, "readonly": true}
	proc := cfg["process"].(map[string]any)
	proc["args"] = []string{"/bin/true"}
	proc["terminal"] = false
	out, _ := json.Marshal(cfg)
	return os.WriteFile(p, out, 0o644)
}
