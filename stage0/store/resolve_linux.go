package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/appc/spec/schema/types"
)

// Resolve finds the image ref names:
//   - a full image ID "sha512-<128 hex>";
//   - an ID prefix "sha512-<at least MinPrefix hex digits>" matching exactly
//     one image (else ErrNotFound or ErrAmbiguous);
//   - an image name with an optional ":version" and appc labels,
//     "example.com/app:1.0,os=linux,arch=amd64": the most recently imported
//     image with that name and (at least) those labels.
func (s *Store) Resolve(ref string) (Image, error) {
	if h, ok := strings.CutPrefix(ref, idPrefix); ok {
		return s.resolvePrefix(ref, strings.ToLower(h))
	}
	name, labels, err := ParseRef(ref)
	if err != nil {
		return Image{}, err
	}
	img, err := s.findByName(name, labels)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %w", ref, err)
	}
	return img, nil
}

// errNoImageIDs is ErrNotFound for an image ID or prefix, worded as rkt
// 1.30 answered it.
var errNoImageIDs error = &notFoundError{"no image IDs found"}

// notFoundError is an ErrNotFound with its own wording.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

func (s *Store) resolvePrefix(ref, h string) (Image, error) {
	switch {
	case !isHex(h) || len(h) > hexLen:
		return Image{}, fmt.Errorf("image ID %q: invalid: want sha512- and hex digits", ref)
	case len(h) == hexLen:
		return s.Get(idPrefix + h)
	case len(h) < MinPrefix:
		// rkt 1.30's answer, for a prefix under "sha512-aa".
		return Image{}, fmt.Errorf("image ID prefix %q: image ID too short: want at least %d hex digits", ref, MinPrefix)
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, "images"))
	if err != nil {
		return Image{}, fmt.Errorf("resolve %q: %w", ref, err)
	}
	var match []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && validID(id) && strings.HasPrefix(id, idPrefix+h) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return Image{}, fmt.Errorf("image ID prefix %q: %w", ref, errNoImageIDs)
	case 1:
		return s.Get(match[0])
	}
	return Image{}, fmt.Errorf("image ID prefix %q: %w: matches %s", ref, ErrAmbiguous, strings.Join(match, ", "))
}

// ParseRef splits an image reference "name[:version][,label=value...]" into
// the name and its labels; ":version" becomes the "version" label.
func ParseRef(ref string) (types.ACIdentifier, types.Labels, error) {
	parts := strings.Split(ref, ",")
	n, version, hasVersion := strings.Cut(parts[0], ":")
	name, err := types.NewACIdentifier(n)
	if err != nil {
		return "", nil, fmt.Errorf("image reference %q: name: %w", ref, err)
	}
	m := map[types.ACIdentifier]string{}
	if hasVersion {
		if version == "" {
			return "", nil, fmt.Errorf("image reference %q: empty version", ref)
		}
		m["version"] = version
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return "", nil, fmt.Errorf("image reference %q: label %q: want name=value", ref, p)
		}
		lk, err := types.NewACIdentifier(k)
		if err != nil {
			return "", nil, fmt.Errorf("image reference %q: label %q: %w", ref, k, err)
		}
		if _, dup := m[*lk]; dup {
			return "", nil, fmt.Errorf("image reference %q: label %q given twice", ref, k)
		}
		m[*lk] = v
	}
	// Not types.LabelsFromMap: a query need not be a valid os/arch pair.
	labels := make(types.Labels, 0, len(m))
	for k, v := range m {
		labels = append(labels, types.Label{Name: k, Value: v})
	}
	slices.SortFunc(labels, func(a, b types.Label) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return *name, labels, nil
}

// findByName returns the most recently imported image named name that has
// every label in labels.
func (s *Store) findByName(name types.ACIdentifier, labels types.Labels) (Image, error) {
	imgs, err := s.List()
	if err != nil {
		return Image{}, err
	}
	for i := len(imgs) - 1; i >= 0; i-- { // newest first
		if imgs[i].Name == name.String() && hasLabels(imgs[i].Labels, labels) {
			return imgs[i], nil
		}
	}
	return Image{}, ErrNotFound
}

func hasLabels(have, want types.Labels) bool {
	for _, l := range want {
		if v, ok := have.Get(l.Name.String()); !ok || v != l.Value {
			return false
		}
	}
	return true
}
