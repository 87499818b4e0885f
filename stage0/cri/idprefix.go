package cri

import (
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// byIDPrefix picks from all the one whose ID is want, else the only one
// whose ID starts with want (crictl and the kubelet's users pass short
// IDs). kind names what is looked for in the NotFound and ambiguity errors.
func byIDPrefix[T any](all []T, idOf func(T) string, want, kind string) (T, error) {
	var zero T
	if want == "" {
		return zero, status.Errorf(codes.InvalidArgument, "%s id is required", kind)
	}
	var found []T
	for _, x := range all {
		id := idOf(x)
		if id == want {
			return x, nil
		}
		if strings.HasPrefix(id, want) {
			found = append(found, x)
		}
	}
	switch len(found) {
	case 0:
		return zero, status.Errorf(codes.NotFound, "%s %q not found", kind, want)
	case 1:
		return found[0], nil
	}
	return zero, status.Errorf(codes.InvalidArgument, "%s id %q is ambiguous", kind, want)
}
