package s3

import (
	"context"
	"errors"
	"strings"
	"testing"

	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/pipeline/state"
)

// inFlight answers the first PutObject with 409 ConditionalRequestConflict,
// after running before (which plays the concurrent write in flight).
type inFlight struct {
	API
	before func(ctx context.Context)
	done   bool
}

func (f *inFlight) PutObject(ctx context.Context, in *s3sdk.PutObjectInput, optFns ...func(*s3sdk.Options)) (*s3sdk.PutObjectOutput, error) {
	if f.done {
		return f.API.PutObject(ctx, in, optFns...)
	}
	f.done = true
	if f.before != nil {
		f.before(ctx)
	}
	return nil, &smithy.GenericAPIError{Code: "ConditionalRequestConflict", Message: "injected"}
}

func TestConditionalRequestConflict(t *testing.T) {
	srv := testtool.Versitygw(t)
	base := openTest(t, srv, srv.Endpoint, "s3://c409", Options{})
	makeBucket(t, base)
	other := func(doc string) func(context.Context) {
		return func(ctx context.Context) {
			_, v, _ := base.Load(ctx, "r")
			if _, err := base.Save(ctx, "r", []byte(doc), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		before func(*testing.T) func(context.Context)
		want   error  // nil: our write succeeds
		stored string // what the object holds afterwards
	}{
		// The in-flight write failed or never landed: retry and succeed.
		{name: "nothing landed", stored: "ours"},
		// The in-flight write was another runner's and it landed: conflict,
		// and theirs stays.
		{name: "other landed", before: func(*testing.T) func(context.Context) { return other("theirs") },
			want: state.ErrConflict, stored: "theirs"},
		// The in-flight write was our own first attempt: success.
		{name: "ours landed", before: func(*testing.T) func(context.Context) { return other("ours") }, stored: "ours"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(tc.name, " ", "-")
			base = New(base.api, "c409", prefix)
			v, err := base.Create(t.Context(), "r", []byte("start"))
			if err != nil {
				t.Fatal(err)
			}
			f := &inFlight{API: base.api}
			if tc.before != nil {
				f.before = tc.before(t)
			}
			_, err = New(f, "c409", prefix).Save(t.Context(), "r", []byte("ours"), v)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Save after a 409: got %v, want %v", err, tc.want)
			}
			if doc, _, _ := base.Load(t.Context(), "r"); string(doc) != tc.stored {
				t.Fatalf("stored %q, want %q", doc, tc.stored)
			}
		})
	}
}
