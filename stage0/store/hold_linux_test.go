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

// TestHoldImage: an image held by HoldImage is not removed by RemoveUnused
// (ErrInUse at once, no waiting), while importing and touching it again
// still work; once released it is removed, and holding it then says so.
func TestHoldImage(t *testing.T) {
	s := openStore(t)
	aci := buildACI(t, imageSpec{name: "example.com/fetched", files: map[string]string{"f": "x"}})
	img := mustImport(t, s, aci)
	hold, err := s.HoldImage(t.Context(), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The holder may import or touch the image meanwhile.
	if again := mustImport(t, s, aci); again.ID != img.ID {
		t.Fatalf("import again: %s, want %s", again.ID, img.ID)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Touch(ctx, img.ID); err != nil {
		t.Fatalf("Touch of a held image: %v", err)
	}
	unused := func() (bool, error) { return false, nil }
	if err := s.RemoveUnused(ctx, img.ID, unused); !errors.Is(err, ErrInUse) {
		t.Errorf("RemoveUnused of a held image = %v, want ErrInUse", err)
	}
	if _, err := s.Get(img.ID); err != nil {
		t.Fatalf("held image gone: %v", err)
	}
	hold.Release()
	if err := s.RemoveUnused(ctx, img.ID, unused); err != nil {
		t.Fatalf("RemoveUnused after the release: %v", err)
	}
	if _, err := s.HoldImage(ctx, img.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("HoldImage of a removed image = %v, want ErrNotFound", err)
	}
}
