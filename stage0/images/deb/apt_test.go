package deb

import (
	"testing"

	"github.com/appc/spec/schema"
)

const policySample = `libc6:
  Installed: (none)
  Candidate: 2.36-9+deb12u14
  Version table:
     2.36-9+deb12u14 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
     2.36-9+deb12u7 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
ca-certificates:
  Installed: (none)
  Candidate: 20250419~deb12u2
  Version table:
     20250419~deb12u2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
     20230311+deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
libfoo:i386:
  Installed: 1.0
  Candidate: 1.1
  Version table:
     1.1 500
        500 http://deb.debian.org/debian bookworm/main i386 Packages
        500 http://deb.debian.org/debian-security bookworm-security/main i386 Packages
 *** 1.0 100
        100 /var/lib/dpkg/status
gone:
  Installed: (none)
  Candidate: (none)
  Version table:
`

func TestParsePolicy(t *testing.T) {
	got := parsePolicy(policySample, "amd64")
	want := map[string]Candidate{
		"libc6:amd64":           {Version: "2.36-9+deb12u14"},
		"ca-certificates:all":   {Version: "20250419~deb12u2", Security: true},
		"ca-certificates:amd64": {Version: "20250419~deb12u2", Security: true},
		"libfoo:i386":           {Version: "1.1", Security: true},
		"gone:amd64":            {},
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("%s: got %+v, want %+v", k, g, w)
		}
	}
}

func TestInstLine(t *testing.T) {
	for l, want := range map[string]Package{
		"Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])":                                {"libc6", "2.36-9+deb12u14", "amd64"},
		"Inst libgcc-s1 (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64]) []":                       {"libgcc-s1", "12.2.0-14+deb12u1", "amd64"},
		"Inst libgcrypt20 (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/sec [amd64])": {"libgcrypt20", "1.10.1-3+deb12u1", "amd64"},
		"Inst ca-certificates (20250419~deb12u2 Debian-Security:12/oldstable-security [all])":        {"ca-certificates", "20250419~deb12u2", "all"},
		"Inst libfoo:i386 [0.9] (1:1.0 local [i386])":                                                {"libfoo", "1:1.0", "i386"},
	} {
		m := instRe.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("%q: no match", l)
			continue
		}
		if got := (Package{m[1], m[2], m[3]}); got != want {
			t.Errorf("%q: got %+v, want %+v", l, got, want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	pkgs := []Package{{"zlib1g", "1:1.2.13.dfsg-1", "amd64"}, {"ca-certificates", "20230311", "all"}}
	im := schema.BlankImageManifest()
	im.Annotations.Set(RecordAnnotation, EncodeRecord(pkgs))
	got, err := Recorded(im)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != pkgs[1] || got[1] != pkgs[0] {
		t.Errorf("got %+v", got)
	}
	im.Annotations.Set(RecordAnnotation, "zlib1g=1.0")
	if _, err := Recorded(im); err == nil {
		t.Error("entry without arch accepted")
	}
	if _, err := Recorded(schema.BlankImageManifest()); err != ErrNoRecord {
		t.Errorf("no annotation: %v", err)
	}
}

func TestCheckSpec(t *testing.T) {
	for _, s := range []string{"busybox-static", "libc6:amd64", "libc6=2.36-9", "g++-12:amd64=12.2.0-14"} {
		if err := CheckSpec(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "-oDebug::x=1", "Busybox", "a b", "x=", "x=1 2", "../x"} {
		if err := CheckSpec(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
