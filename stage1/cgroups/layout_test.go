package cgroups

import (
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hybridMountinfo is the cgroup part of this project's test machine.
const hybridMountinfo = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestLayoutFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mountinfo string
		want      *Layout
		wantErr   string
	}{
		{
			name:      "hybrid",
			mountinfo: hybridMountinfo,
			want: &Layout{Mode: Legacy, Hierarchies: []Hierarchy{
				{Mountpoint: "/sys/fs/cgroup/cpu", Root: "/", Controllers: []string{"cpu"}},
				{Mountpoint: "/sys/fs/cgroup/cpuacct", Root: "/", Controllers: []string{"cpuacct"}},
				{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", Controllers: []string{"memory"}},
				{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", Controllers: []string{"name=systemd"}},
			}},
		},
		{
			name: "unified",
			mountinfo: `25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`,
			want: &Layout{Mode: Unified, Hierarchies: []Hierarchy{{Mountpoint: "/sys/fs/cgroup", Root: "/"}}},
		},
		{
			name: "joined controllers, escaped path, options",
			mountinfo: `30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu,clone_children,release_agent=/x
31 25 0:27 / /mnt/my\040cgroups rw - cgroup cgroup rw,memory,noprefix
`,
			want: &Layout{Mode: Legacy, Hierarchies: []Hierarchy{
				{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", Controllers: []string{"cpu", "cpuacct"}},
				{Mountpoint: "/mnt/my cgroups", Root: "/", Controllers: []string{"memory"}},
			}},
		},
		{
			name: "duplicate mount keeps widest root",
			mountinfo: `30 25 0:26 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory
31 25 0:26 / /tmp/mem rw - cgroup cgroup rw,memory
32 25 0:26 /other /tmp/mem2 rw - cgroup cgroup rw,memory
`,
			want: &Layout{Mode: Legacy, Hierarchies: []Hierarchy{
				{Mountpoint: "/tmp/mem", Root: "/", Controllers: []string{"memory"}},
			}},
		},
		{
			name: "named hierarchy only is not v1",
			mountinfo: `40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /tmp/v2 rw - cgroup2 cgroup2 rw
`,
			want: &Layout{Mode: Unified, Hierarchies: []Hierarchy{{Mountpoint: "/tmp/v2", Root: "/"}}},
		},
		{
			name:      "none",
			mountinfo: "22 1 253:1 / / rw - ext4 /dev/vda rw\n",
			wantErr:   "no cgroup hierarchy mounted",
		},
		{
			name:      "garbage",
			mountinfo: "22 1 253:1 / / rw ext4 /dev/vda rw\n",
			wantErr:   `line 1: malformed mountinfo line`,
		},
		{
			// mount -t tmpfs "" /x anywhere on the host (an empty source).
			name: "empty source field",
			mountinfo: `44 26 0:39 / /tmp/x rw,relatime - tmpfs  rw
41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
`,
			want: &Layout{Mode: Unified, Hierarchies: []Hierarchy{{Mountpoint: "/sys/fs/cgroup", Root: "/"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAndLayout(tc.mountinfo)
			checkErr(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("layout mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func parseAndLayout(s string) (*Layout, error) {
	ms, err := parseMountinfo(strings.NewReader(s))
	if err != nil {
		return nil, err
	}
	return layoutFrom(ms)
}

func TestParseProcCgroups(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    procCgroups
		wantErr string
	}{
		{
			name: "hybrid",
			in:   "9:name=systemd:/\n4:memory:/process_api/074d\n2:cpuacct,cpu:/a\n0::/\n",
			want: procCgroups{"name=systemd": "/", "memory": "/process_api/074d", "cpu,cpuacct": "/a", "": "/"},
		},
		{name: "unified", in: "0::/system.slice/rkt.service\n", want: procCgroups{"": "/system.slice/rkt.service"}},
		{name: "path with colon", in: "0::/a:b\n", want: procCgroups{"": "/a:b"}},
		{name: "short line", in: "0:/\n", wantErr: "want ID:CONTROLLERS:PATH"},
		{name: "relative", in: "0::a\n", wantErr: "not absolute"},
		{name: "bad id", in: "x::/\n", wantErr: "bad hierarchy ID"},
		{name: "v1 without controllers", in: "3::/\n", wantErr: "without controllers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProcCgroups([]byte(tc.in))
			checkErr(t, err, tc.wantErr)
			if tc.wantErr == "" {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("parseProcCgroups mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestDirOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		h       Hierarchy
		rel     string
		want    string
		wantErr string
	}{
		{name: "whole", h: Hierarchy{Mountpoint: "/sys/fs/cgroup/memory", Root: "/"}, rel: "/a/rkt-x", want: "/sys/fs/cgroup/memory/a/rkt-x"},
		{name: "sub root", h: Hierarchy{Mountpoint: "/c", Root: "/docker/1"}, rel: "/docker/1/rkt-x", want: "/c/rkt-x"},
		{name: "sub root itself", h: Hierarchy{Mountpoint: "/c", Root: "/docker/1"}, rel: "/docker/1", want: "/c"},
		{name: "outside", h: Hierarchy{Mountpoint: "/c", Root: "/docker/1"}, rel: "/docker/10/rkt-x", wantErr: "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.h.dirOf(tc.rel)
			checkErr(t, err, tc.wantErr)
			if got != tc.want {
				t.Errorf("dirOf(%q) = %q, want %q", tc.rel, got, tc.want)
			}
		})
	}
}

func TestPathRoundTrip(t *testing.T) {
	t.Parallel()
	cpu := Hierarchy{Mountpoint: "/x/cpu", Root: "/", Controllers: []string{"cpu", "cpuacct"}}
	mem := Hierarchy{Mountpoint: "/x/memory", Root: "/", Controllers: []string{"memory"}}
	tests := []struct {
		name string
		dirs []cgDir
		want string
	}{
		{name: "uniform", dirs: []cgDir{{h: cpu, rel: "/a/rkt-1"}, {h: mem, rel: "/a/rkt-1"}}, want: "/a/rkt-1"},
		{name: "per hierarchy", dirs: []cgDir{{h: mem, rel: "/m/rkt-1"}, {h: cpu, rel: "/rkt-1"}}, want: "cpu,cpuacct:/rkt-1\nmemory:/m/rkt-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &Pod{mode: Legacy, dirs: tc.dirs}
			got := p.Path()
			if got != tc.want {
				t.Fatalf("Path() = %q, want %q", got, tc.want)
			}
			rels, err := parseSubcgroup(got + "\n")
			if err != nil {
				t.Fatalf("parseSubcgroup(%q): %v", got, err)
			}
			for _, d := range tc.dirs {
				r, ok := rels[d.h.key()]
				if !ok {
					r = rels["*"]
				}
				if r != d.rel {
					t.Errorf("hierarchy %s: parsed %q, want %q", d.h.key(), r, d.rel)
				}
			}
		})
	}
}

func TestParseSubcgroupRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "/", "/a/b", "/a/../rkt-x", "rkt-x", "memory:/", "memory:/a/../rkt-x", ":/rkt-x", "/a/rkt-", "/a//rkt-x"} {
		if _, err := parseSubcgroup(in); err == nil {
			t.Errorf("parseSubcgroup(%q) succeeded, want an error", in)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add("25 21 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
	f.Add("30 25 0:26 /a\\040b /x\\134y rw - cgroup cgroup rw,cpu,cpuacct,name=foo\n")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 {
			return
		}
		l, err := parseAndLayout(s)
		if err != nil {
			return
		}
		if len(l.Hierarchies) == 0 {
			t.Fatalf("layout %+v without hierarchies", l)
		}
	})
}

func FuzzParseProcCgroups(f *testing.F) {
	f.Add("9:name=systemd:/\n4:memory:/process_api/074d\n0::/\n")
	f.Add("0::/a:b\n")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 {
			return
		}
		pc, err := parseProcCgroups([]byte(s))
		if err != nil {
			return
		}
		for k, v := range pc {
			if !strings.HasPrefix(v, "/") {
				t.Fatalf("hierarchy %q: relative path %q accepted", k, v)
			}
		}
	})
}

// FuzzParseSubcgroup checks that nothing read from a pod's "subcgroup" file
// can name a cgroup other than a pod cgroup (gc kills what is in it).
func FuzzParseSubcgroup(f *testing.F) {
	f.Add("/a/rkt-1")
	f.Add("cpu,cpuacct:/rkt-1\nmemory:/m/rkt-1")
	f.Add("memory:/")
	f.Add("/../rkt-x")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		rels, err := parseSubcgroup(s)
		if err != nil {
			return
		}
		for k, rel := range rels {
			if err := checkPodRel(rel); err != nil || rel == "/" || strings.Contains(rel+"/", "/../") || !strings.HasPrefix(path.Base(rel), podPrefix) {
				t.Fatalf("hierarchy %q: accepted bad path %q", k, rel)
			}
		}
	})
}
