// Package template holds gpipe's built-in CloudFormation template: one
// accelerator training host (dl1.24xlarge by default) reachable only through
// SSM, with an encrypted, sized root volume, IMDSv2, least-privilege S3 access
// and a max-lifetime guard. `gpipe template` prints it; provision-stack uses it
// unless a spec names its own template.
//
// The template is YAML in long form ("Fn::Sub:", not "!Sub") so that any YAML
// parser reads it, and so that the test can validate it against the AWS
// resource-provider schemas without a CloudFormation-specific loader.
package template

import _ "embed"

//go:embed template.yaml
var body []byte

// The idle watchdog the template's UserData installs (a copy of this file is
// embedded there; a test keeps the two the same).
//
//go:embed watchdog.sh
var watchdog []byte

// Watchdog returns the idle watchdog script.
func Watchdog() []byte { return append([]byte(nil), watchdog...) }

// Template returns the built-in template's source.
func Template() []byte {
	return append([]byte(nil), body...)
}

// Parameter names of the built-in template; provision-stack fills these from
// the step's with values.
const (
	ParamRunID              = "RunId"
	ParamStepID             = "StepId"
	ParamInstanceType       = "InstanceType"
	ParamImageID            = "ImageId"
	ParamRootDeviceName     = "RootDeviceName"
	ParamRootVolumeGiB      = "RootVolumeGiB"
	ParamSubnetID           = "SubnetId"
	ParamVpcID              = "VpcId"
	ParamAvailabilityZone   = "AvailabilityZone"
	ParamDataBucket         = "DataBucket"
	ParamResultsBucket      = "ResultsBucket"
	ParamResultsKmsKey      = "ResultsKmsKeyArn"
	ParamSsmLogGroup        = "SsmLogGroup"
	ParamMaxLifetimeMinutes = "MaxLifetimeMinutes"
	ParamIdleTimeoutMinutes = "IdleTimeoutMinutes"
	ParamMarketType         = "MarketType"
	ParamSpotMaxPrice       = "SpotMaxPrice"
)

// DefaultSsmLogGroup is the CloudWatch Logs group the built-in template lets
// the instance write SSM command output to.
const DefaultSsmLogGroup = "/gpipe/ssm"
