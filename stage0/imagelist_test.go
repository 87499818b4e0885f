package stage0

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {9, "9 B"}, {10, "10 B"}, {1023, "1023 B"}, {1536, "1.5 KiB"},
		{10 << 10, "10 KiB"}, {14 << 20, "14 MiB"}, {3 << 30, "3.0 GiB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestRelativeTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{0, "now"}, {time.Second, "1 second ago"}, {45 * time.Second, "45 seconds ago"},
		{90 * time.Second, "1 minute ago"}, {5 * time.Minute, "5 minutes ago"}, {3 * time.Hour, "3 hours ago"},
		{30 * time.Hour, "1 day ago"}, {3 * 24 * time.Hour, "3 days ago"}, {10 * 24 * time.Hour, "1 week ago"},
		{-5 * time.Minute, "5 minutes from now"},
	} {
		if got := relativeTime(now, now.Add(-tc.ago)); got != tc.want {
			t.Errorf("relativeTime(-%v) = %q, want %q", tc.ago, got, tc.want)
		}
	}
}

func TestImageListTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := "sha512-0123456789abcdef0123456789abcdef"
	e := []ImageListEntry{{ID: id, Name: "example.com/app:1.0", ImportTime: now.Add(-2 * time.Hour).UnixNano(), LastUsedTime: now.Add(-time.Minute).UnixNano(), Size: 14 << 20}}
	got, err := ImageListTable(e, ImageListOptions{}, false, now)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"},
		{"sha512-0123456789ab", "example.com/app:1.0", "14 MiB", "2 hours ago", "1 minute ago"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ImageListTable mismatch (-want +got):\n%s", diff)
	}
	got, err = ImageListTable(e, ImageListOptions{Fields: "name,id,size", Full: true}, true, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"example.com/app:1.0", id, "14680064"}}, got); diff != "" {
		t.Errorf("ImageListTable --full mismatch (-want +got):\n%s", diff)
	}
	if _, err := ImageListTable(e, ImageListOptions{Fields: "id,bogus"}, false, now); err == nil {
		t.Error("ImageListTable accepted an unknown field")
	}
}
