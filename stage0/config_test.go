package stage0

import "testing"

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"64K", 64 << 10, true},
		{"1MiB", 1 << 20, true},
		{"16GiB", 16 << 30, true},
		{"2T", 2 << 40, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"1.5G", 0, false},
		{"12XB", 0, false},
		{"iB", 0, false},
		{"9999999999T", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}
