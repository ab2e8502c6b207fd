// Package awsfaketest lets tests outside steps/aws use the AWS wire fake of
// steps/aws/internal/awsfake, which Go's internal rule hides from them:
// cmd/gpipe's end-to-end test runs specs/unet-brain.yaml with its
// provision-stack and teardown steps pointed at the fake through
// AWS_ENDPOINT_URL. Only tests import this package.
package awsfaketest

import (
	"strings"
	"testing"

	"github.com/gpipe/gpipe/steps/aws/cfn"
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

// AddUbuntuImage makes id the region's current Canonical Ubuntu 22.04 image,
// as EC2 (owner 099720109477, Canonical's account) and the SSM public
// parameter provision-stack reads by default publish it.
func AddUbuntuImage(s *Server, id string) {
	s.EC2.AddImage(Image{ID: id, Owner: "099720109477", Created: "2025-06-01T00:00:00.000Z",
		Name: "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20250601", RootDevice: "/dev/sda1"})
	s.SSM.SetParameter(strings.TrimPrefix(cfn.DefaultAMI, "resolve:ssm:"), id)
}
