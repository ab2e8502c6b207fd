package cfn

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// DefaultAMI is Canonical's Ubuntu 22.04 LTS (amd64, gp3 root): the SSM public
// parameter Canonical keeps pointing at the current image of each region, so
// it works in any account with no Marketplace subscription. The Habana driver
// of the container's release goes on it in the spec's prepare-host step. The
// "resolve:ssm:" form is EC2's own for an AMI held in a parameter.
//
// Not the "Deep Learning AMI Habana ... (Ubuntu 20.04)" images gpipe used to
// search for: their drivers are 1.13 or older, and a container runs only on a
// driver of its own release (the 1.21.0 container needs Ubuntu 22.04 or 24.04
// with the 1.21 driver).
const DefaultAMI = "resolve:ssm:/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp3/ami-id"

// DefaultAMIOwner owns the images a name pattern in with.ami matches unless
// with.ami_owner says otherwise ("aws-marketplace" for Habana's base AMI).
const DefaultAMIOwner = "amazon"

// ssmPrefix marks an AMI given as an SSM parameter name.
const ssmPrefix = "resolve:ssm:"

// image is a resolved AMI.
type image struct {
	id, root, name string
	via            string // how it was found, for the log: " (SSM parameter /aws/...)"
}

// resolveAMI turns with.ami — an AMI id, "resolve:ssm:<parameter>" or a name
// pattern of owner's images — into an image id and its root device name (the
// template sizes that device).
func resolveAMI(ctx context.Context, cl *Clients, ami, owner string) (image, error) {
	if ami == "" {
		ami = DefaultAMI
	}
	if owner == "" {
		owner = DefaultAMIOwner
	}
	var via string
	if name, ok := strings.CutPrefix(ami, ssmPrefix); ok {
		if cl.SSM == nil {
			return image{}, fmt.Errorf("AMI %s: no SSM client", ami)
		}
		out, err := cl.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		if err != nil {
			return image{}, fmt.Errorf("read AMI id from SSM parameter %s: %w", name, err)
		}
		if out.Parameter == nil || !strings.HasPrefix(aws.ToString(out.Parameter.Value), "ami-") {
			return image{}, fmt.Errorf("SSM parameter %s holds no AMI id", name)
		}
		ami, via = aws.ToString(out.Parameter.Value), " (SSM parameter "+name+")"
	}
	in := &ec2.DescribeImagesInput{}
	byID := strings.HasPrefix(ami, "ami-") && !strings.ContainsAny(ami, "*? ")
	if byID {
		in.ImageIds = []string{ami}
	} else {
		in.Owners = []string{owner}
		in.Filters = []ec2types.Filter{
			{Name: aws.String("name"), Values: []string{ami}},
			{Name: aws.String("state"), Values: []string{"available"}},
		}
	}
	out, err := cl.EC2.DescribeImages(ctx, in)
	if err != nil {
		return image{}, fmt.Errorf("describe images %q: %w", ami, err)
	}
	if len(out.Images) == 0 {
		if byID {
			return image{}, fmt.Errorf("AMI %s%s does not exist in this region (or is not shared with this account)", ami, via)
		}
		return image{}, fmt.Errorf("no available AMI owned by %s matches %q in this region: set with.ami to an AMI id or another name pattern (with.ami_owner names the owner)", owner, ami)
	}
	imgs := out.Images
	sort.Slice(imgs, func(i, j int) bool { return aws.ToString(imgs[i].CreationDate) > aws.ToString(imgs[j].CreationDate) })
	img := image{id: aws.ToString(imgs[0].ImageId), root: aws.ToString(imgs[0].RootDeviceName), name: aws.ToString(imgs[0].Name), via: via}
	if img.root == "" {
		img.root = "/dev/sda1"
	}
	return img, nil
}
