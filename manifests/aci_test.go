package manifests

import "testing"

func TestBuildOptionsUnshift(t *testing.T) {
	t.Parallel()
	const shift, count = 1 << 28, 1 << 16
	tests := []struct {
		name string
		o    BuildOptions
		in   int
		want int
	}{
		{name: "no shift", o: BuildOptions{}, in: shift + 5, want: shift + 5},
		{name: "pod root", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift, want: 0},
		{name: "pod user", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift + 1000, want: 1000},
		{name: "last of range", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift + count - 1, want: count - 1},
		{name: "above range", o: BuildOptions{IDShift: shift, IDCount: count}, in: shift + count, want: shift + count},
		{name: "already pod ID", o: BuildOptions{IDShift: shift, IDCount: count}, in: 1000, want: 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.o.unshift(tc.in); got != tc.want {
				t.Errorf("unshift(%d) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}
