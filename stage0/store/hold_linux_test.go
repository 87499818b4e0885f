package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHoldKeepsTreeAndImage(t *testing.T) {
	s := openStore(t)
	img := mustImport(t, s, buildACI(t, imageSpec{name: "example.com/held", files: map[string]string{"f": "x"}}))
	tree, hold, err := s.Acquire(t.Context(), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	unused := func() (bool, error) { return false, nil }
	if removed, err := s.RemoveTreeUnused(t.Context(), tree.ID, unused); removed || err != nil {
		t.Errorf("RemoveTreeUnused of a held tree = %v, %v; want false, nil", removed, err)
	}
	// Removing the image waits for the hold: give it a short deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := s.RemoveUnused(ctx, img.ID, unused); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RemoveUnused of a held image = %v, want a deadline error", err)
	}
	hold.Release()
	hold.Release() // twice is fine

	used := func() (bool, error) { return true, nil }
	if removed, err := s.RemoveTreeUnused(t.Context(), tree.ID, used); removed || err != nil {
		t.Errorf("RemoveTreeUnused of a recorded tree = %v, %v; want false, nil", removed, err)
	}
	if err := s.RemoveUnused(t.Context(), img.ID, used); !errors.Is(err, ErrInUse) {
		t.Errorf("RemoveUnused of a recorded image = %v, want ErrInUse", err)
	}
	if removed, err := s.RemoveTreeUnused(t.Context(), tree.ID, unused); !removed || err != nil {
		t.Errorf("RemoveTreeUnused of an unused tree = %v, %v; want true, nil", removed, err)
	}
	if trees, _ := s.Trees(); len(trees) != 0 {
		t.Errorf("Trees after removal = %v", trees)
	}
	// Acquire renders a removed tree again.
	again, hold, err := s.Acquire(t.Context(), img.ID)
	if err != nil || again.ID != tree.ID {
		t.Fatalf("Acquire after removal = %v, %v", again, err)
	}
	hold.Release()
	if err := s.RemoveUnused(t.Context(), img.ID, unused); err != nil {
		t.Errorf("RemoveUnused of an unused image: %v", err)
	}
}
