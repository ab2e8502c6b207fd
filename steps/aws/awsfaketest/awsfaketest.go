// Package awsfaketest lets tests outside steps/aws use the AWS wire fake of
// steps/aws/internal/awsfake, which Go's internal rule hides from them:
// cmd/gpipe's end-to-end test runs specs/unet-brain.yaml with its
// provision-stack and teardown steps pointed at the fake through
// AWS_ENDPOINT_URL. Only tests import this package.
package awsfaketest

import (
	"testing"

	"github.com/gpipe/gpipe/steps/aws/internal/awsfake"
)

// The fake's types, under their own names.
type (
	Server    = awsfake.Server
	Options   = awsfake.Options
	Image     = awsfake.Image
	Failure   = awsfake.Failure
	StackInfo = awsfake.StackInfo
)

// Region is the region the fake is; Account its account id.
const (
	Region  = awsfake.Region
	Account = awsfake.Account
)

// New starts a fake AWS endpoint that stops when the test ends (see
// awsfake.New).
func New(t testing.TB, opt Options) *Server { return awsfake.New(t, opt) }
