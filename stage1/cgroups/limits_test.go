package cgroups

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"
	"github.com/google/go-cmp/cmp"
)

func TestParseMemory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr string
	}{
		{name: "giga", in: "1G", want: 1_000_000_000},
		{name: "gibi", in: "1Gi", want: 1 << 30},
		{name: "mebi", in: "64Mi", want: 64 << 20},
		{name: "kilo", in: "1k", want: 1000},
		{name: "kibi", in: "1Ki", want: 1024},
		{name: "plain", in: "12345", want: 12345},
		{name: "exponent", in: "1e9", want: 1_000_000_000},
		{name: "fraction", in: "1.5Gi", want: 3 << 29},
		{name: "max", in: "9223372036854775807", want: 1<<63 - 1},
		{name: "bad suffix", in: "1X", wantErr: `invalid memory amount "1X"`},
		{name: "upper K", in: "1K", wantErr: `invalid memory amount "1K"`},
		{name: "empty", in: "", wantErr: `invalid memory amount ""`},
		{name: "zero", in: "0", wantErr: "must be positive"},
		{name: "negative", in: "-1Mi", wantErr: "must be positive"},
		{name: "fractional byte", in: "0.5", wantErr: "not a whole number of bytes"},
		{name: "milli bytes", in: "500m", wantErr: "not a whole number of bytes"},
		{name: "overflow", in: "9223372036854775808", wantErr: "too large"},
		{name: "exa overflow", in: "10E", wantErr: "too large"},
		{name: "huge exponent", in: "1e300", wantErr: "exponent beyond"},
		{name: "too long", in: strings.Repeat("1", 65), wantErr: "longer than 64 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMemory(tc.in)
			checkErr(t, err, tc.wantErr)
			if got != tc.want {
				t.Errorf("ParseMemory(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr string
	}{
		{name: "milli", in: "500m", want: 500},
		{name: "cores", in: "2", want: 2000},
		{name: "fraction", in: "0.25", want: 250},
		{name: "one milli", in: "1m", want: 1},
		{name: "kilo cores", in: "1k", want: 1_000_000},
		{name: "bad suffix", in: "1X", wantErr: `invalid CPU amount "1X"`},
		{name: "zero", in: "0", wantErr: "must be positive"},
		{name: "negative", in: "-2", wantErr: "must be positive"},
		{name: "sub milli", in: "0.1m", wantErr: "finer than 1m"},
		{name: "overflow", in: "10E", wantErr: "too large"},
		{name: "letters", in: "two", wantErr: `invalid CPU amount "two"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCPU(tc.in)
			checkErr(t, err, tc.wantErr)
			if got != tc.want {
				t.Errorf("ParseCPU(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("got no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestSharesToWeight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		shares uint64
		want   uint64
	}{
		{name: "min", shares: 2, want: 1},
		{name: "below min clamps", shares: 0, want: 1},
		{name: "default 1024", shares: 1024, want: 39},
		{name: "512", shares: 512, want: 20},
		{name: "max", shares: 262144, want: 10000},
		{name: "above max clamps", shares: 1 << 40, want: 10000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := SharesToWeight(tc.shares); got != tc.want {
				t.Errorf("SharesToWeight(%d) = %d, want %d", tc.shares, got, tc.want)
			}
		})
	}
}

func TestMilliToQuota(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		milli int64
		want  int64
	}{
		{name: "quarter", milli: 250, want: 25000},
		{name: "two cores", milli: 2000, want: 200000},
		{name: "kernel minimum", milli: 1, want: 1000},
		{name: "unlimited", milli: -1, want: -1},
		{name: "saturates", milli: 1 << 62, want: 1<<63 - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MilliToQuota(tc.milli); got != tc.want {
				t.Errorf("MilliToQuota(%d) = %d, want %d", tc.milli, got, tc.want)
			}
		})
	}
}

func TestFromIsolators(t *testing.T) {
	t.Parallel()
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name    string
		json    string
		want    Limits
		wantErr string
	}{
		{
			name: "all three",
			json: `[{"name":"resource/memory","value":{"request":"32Mi","limit":"64Mi"}},
				{"name":"resource/cpu","value":{"request":"100m","limit":"250m"}},
				{"name":"os/linux/cpu-shares","value":512},
				{"name":"os/linux/no-new-privileges","value":true}]`,
			want: Limits{MemoryBytes: i64(64 << 20), CPUMilli: i64(250), CPUShares: u64(512)},
		},
		{
			name: "request only",
			json: `[{"name":"resource/memory","value":{"request":"32Mi"}}]`,
			want: Limits{},
		},
		{
			name: "most restrictive wins",
			json: `[{"name":"resource/cpu","value":{"limit":"2"}},{"name":"resource/cpu","value":{"limit":"500m"}}]`,
			want: Limits{CPUMilli: i64(500)},
		},
		{
			name:    "fractional memory",
			json:    `[{"name":"resource/memory","value":{"limit":"100m"}}]`,
			wantErr: "isolator resource/memory: limit 100m: not a whole number of bytes",
		},
		{
			name:    "zero cpu",
			json:    `[{"name":"resource/cpu","value":{"limit":"0"}}]`,
			wantErr: "isolator resource/cpu: limit 0: must be positive",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var isos types.Isolators
			if err := json.Unmarshal([]byte(tc.json), &isos); err != nil {
				t.Fatalf("decode isolators: %v", err)
			}
			got, err := FromIsolators(isos)
			checkErr(t, err, tc.wantErr)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("FromIsolators mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"1G", "1Gi", "64Mi", "0.5", "1e9", "10E", "-1", "1X", "", ".", "1e-3", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 256 {
			return
		}
		v, err := ParseMemory(s)
		if err != nil {
			if !strings.Contains(err.Error(), "memory amount") {
				t.Fatalf("error %q does not name the value", err)
			}
			return
		}
		if v <= 0 {
			t.Fatalf("ParseMemory(%q) = %d without error", s, v)
		}
	})
}

func FuzzParseCPU(f *testing.F) {
	for _, s := range []string{"500m", "2", "0.25", "1m", "0.1m", "1X", "", "1e3", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 256 {
			return
		}
		v, err := ParseCPU(s)
		if err == nil && v <= 0 {
			t.Fatalf("ParseCPU(%q) = %d without error", s, v)
		}
	})
}
