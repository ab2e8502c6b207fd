package main

import (
	"strings"

	"github.com/gpipe/gpipe/internal/awsfake"
	"github.com/gpipe/gpipe/steps/aws/cfn"
)

// addUbuntuImage makes id the fake region's current Canonical Ubuntu 22.04
// image, as EC2 (owner 099720109477, Canonical's account) and the SSM public
// parameter provision-stack reads by default publish it.
func addUbuntuImage(s *awsfake.Server, id string) {
	s.EC2.AddImage(awsfake.Image{ID: id, Owner: "099720109477", Created: "2025-06-01T00:00:00.000Z",
		Name: "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20250601", RootDevice: "/dev/sda1"})
	s.SSM.SetParameter(strings.TrimPrefix(cfn.DefaultAMI, "resolve:ssm:"), id)
}
