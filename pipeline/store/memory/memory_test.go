package memory

import (
	"context"
	"errors"
	"testing"

	"github.com/gpipe/gpipe/pipeline/state"
)

// The full behaviour is checked by storetest (store_test.go); this covers what
// is particular to the fake: versions are not reused after Delete.
func TestVersionsNotReusedAfterDelete(t *testing.T) {
	ctx := context.Background()
	s := New(t.Name())
	v1, err := s.Create(ctx, "r", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "r", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "r", []byte("c"), v1); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("Save with the version of the deleted run: got %v, want ErrConflict", err)
	}
}
