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

func TestPodListTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	created, started := now.Add(-3*time.Minute), now.Add(-2*time.Minute)
	id := "sha512-0123456789abcdef0123456789abcdef"
	list := []PodStatus{
		{UUID: "12345678-aaaa-bbbb-cccc-dddddddddddd", State: "exited", Created: &created, Started: &started,
			Apps:       []AppStatus{{Name: "a", Image: "example.com/a:1", ImageID: id}, {Name: "b", Image: "example.com/b", ImageID: id}},
			Stage1Info: map[string]string{"accelerator": "tcg", "b": "1"}},
		{UUID: "abcdefab-aaaa-bbbb-cccc-dddddddddddd", State: "prepared", Created: &created},
	}
	want := [][]string{
		{"UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED", "NETWORKS"},
		{"12345678", "a", "example.com/a:1", "exited", "3 minutes ago", "2 minutes ago", ""},
		{"", "b", "example.com/b", "", "", "", ""},
		{"abcdefab", "-", "-", "prepared", "3 minutes ago", "", ""},
	}
	if diff := cmp.Diff(want, PodListTable(list, false, false, now)); diff != "" {
		t.Errorf("PodListTable mismatch (-want +got):\n%s", diff)
	}
	full := PodListTable(list, true, false, now)
	if diff := cmp.Diff([]string{"UUID", "APP", "IMAGE NAME", "IMAGE ID", "STATE", "CREATED", "STARTED", "NETWORKS", "STAGE1"}, full[0]); diff != "" {
		t.Errorf("PodListTable --full header mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"12345678-aaaa-bbbb-cccc-dddddddddddd", "a", "example.com/a:1", "sha512-0123456789ab", "exited",
		created.Format(listTimeLayout), started.Format(listTimeLayout), "", "accelerator=tcg,b=1"}, full[1]); diff != "" {
		t.Errorf("PodListTable --full row mismatch (-want +got):\n%s", diff)
	}
	if got := full[2][len(full[2])-1]; got != "" {
		t.Errorf("PodListTable --full: STAGE1 %q on the pod's second row", got)
	}
}
