package cri

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestByIDPrefix(t *testing.T) {
	ids := []string{"abc123", "abc456", "abd789", "abc"}
	self := func(s string) string { return s }
	for _, tc := range []struct {
		want, got string
		code      codes.Code
	}{
		{"abc", "abc", codes.OK}, // exact beats being a prefix of two others
		{"abc4", "abc456", codes.OK},
		{"abd", "abd789", codes.OK},
		{"abc1", "abc123", codes.OK},
		{"ab", "", codes.InvalidArgument},
		{"x", "", codes.NotFound},
		{"", "", codes.InvalidArgument},
	} {
		got, err := byIDPrefix(ids, self, tc.want, "container")
		if status.Code(err) != tc.code || got != tc.got {
			t.Errorf("byIDPrefix(%q) = %q, %v; want %q, %v", tc.want, got, err, tc.got, tc.code)
		}
	}
}
