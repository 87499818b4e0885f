package tests

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/rkt-ng/rkt/tests/testutil"
)

// rkt 1.30's `rkt image list`: columns ID (sha512- and 12 hex digits),
// NAME (with :version), SIZE (binary units, "46 MiB"), IMPORT TIME and
// LAST USED (relative, "3 seconds ago"); --full gives whole IDs, byte
// counts and absolute times; --format=json gives api/v1 ImageListEntry
// objects (id, name, import_time, last_used_time, size).
func TestImageListColumns(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/listed", testutil.WithLabel("version", "2.1"))
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", "--full", aci).Stdout)
	lines := strings.Split(strings.TrimSpace(c.MustRun(t, "image", "list").Stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("image list printed %d lines, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "ID NAME SIZE IMPORT TIME LAST USED" {
		t.Errorf("image list legend %q", got)
	}
	row := regexp.MustCompile(`^(sha512-[0-9a-f]{12})\s+rkt-ng\.test/listed:2\.1\s+[0-9.]+ (B|KiB|MiB)\s+(now|\d+ seconds? ago)\s+(now|\d+ seconds? ago)$`)
	m := row.FindStringSubmatch(strings.TrimSpace(lines[1]))
	if m == nil {
		t.Fatalf("image list row %q does not match rkt's form", lines[1])
	}
	if m[1] != id[:19] {
		t.Errorf("short ID %s, want %s", m[1], id[:19])
	}
	full := c.MustRun(t, "image", "list", "--full", "--no-legend").Stdout
	if !regexp.MustCompile(`^` + id + `\s+rkt-ng\.test/listed:2\.1\s+\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).MatchString(full) {
		t.Errorf("image list --full row %q", full)
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(c.MustRun(t, "image", "list", "--format=json").Stdout), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0]["id"] != id || entries[0]["name"] != "rkt-ng.test/listed:2.1" ||
		entries[0]["import_time"] == nil || entries[0]["last_used_time"] == nil || entries[0]["size"] == nil {
		t.Errorf("image list --format=json = %v", entries)
	}
	r := c.Run(t, "image", "list", "--sort=bogus")
	wantExit(t, r, 2)
	oneLineError(t, r, "bogus")
}

// rkt 1.30 fetched (found in the store) an image by its full ID or any ID
// prefix from "sha512-" and 2 hex digits on, answered an unknown ID with
// "no image IDs found" and a too short one with "image ID too short", exit
// 254; image commands took the same IDs.
func TestFetchByImageID(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", "--full", inspectACI(t, "rkt-ng.test/byid")).Stdout)
	for _, ref := range []string{id, id[:7+32], id[:7+12], id[:7+4]} {
		if got := strings.TrimSpace(c.MustRun(t, "fetch", "--full", ref).Stdout); got != id {
			t.Errorf("fetch %s printed %q, want %s", ref, got, id)
		}
	}
	if got := strings.TrimSpace(c.MustRun(t, "fetch", "--full=false", id[:7+4]).Stdout); got != id[:7+32] {
		t.Errorf("fetch --full=false printed %q, want %s", got, id[:7+32])
	}
	c.MustRun(t, "image", "cat-manifest", id[:7+4])
	unknown := "sha512-" + strings.Repeat("0", 20)
	if strings.HasPrefix(id, unknown) {
		unknown = "sha512-" + strings.Repeat("1", 20)
	}
	for _, args := range [][]string{{"fetch", unknown}, {"image", "cat-manifest", unknown}, {"image", "rm", unknown}} {
		r := c.Run(t, args...)
		wantExit(t, r, 254)
		oneLineError(t, r, unknown, "no image IDs found")
	}
	r := c.Run(t, "fetch", "sha512-a")
	wantExit(t, r, 254)
	oneLineError(t, r, "image ID too short")
}

// rkt 1.30's `rkt list --full`: whole UUIDs, an IMAGE ID column (sha512-
// and 12 hex digits) after IMAGE NAME, absolute times; without --full,
// 8-character UUIDs and relative times.
func TestListFullColumns(t *testing.T) {
	testutil.RequireRoot(t)
	c := testutil.NewCtx(t)
	aci := inspectACI(t, "rkt-ng.test/listfull")
	id := strings.TrimSpace(c.MustRun(t, "--insecure-options=image", "fetch", "--full", aci).Stdout)
	uuid := strings.TrimSpace(c.MustRun(t, "prepare", "--quiet", id).Stdout)
	lines := strings.Split(strings.TrimSpace(c.MustRun(t, "list", "--full").Stdout), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "UUID APP IMAGE NAME IMAGE ID STATE CREATED STARTED NETWORKS STAGE1" {
		t.Errorf("list --full legend %q", got)
	}
	if len(lines) != 2 || !regexp.MustCompile(`^`+uuid+`\s+listfull\s+rkt-ng\.test/listfull\s+`+id[:19]+`\s+prepared\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).MatchString(lines[1]) {
		t.Errorf("list --full:\n%s", strings.Join(lines, "\n"))
	}
	short := strings.TrimSpace(c.MustRun(t, "list", "--no-legend").Stdout)
	if !regexp.MustCompile(`^` + uuid[:8] + `\s+listfull\s+rkt-ng\.test/listfull\s+prepared\s+(now|\d+ seconds? ago)$`).MatchString(short) {
		t.Errorf("list: %q", short)
	}
	c.MustRun(t, "rm", uuid)
}
