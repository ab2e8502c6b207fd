package awsfake

import "fmt"

// The spot service-linked role (EC2 User Guide, "Service-linked role for
// Spot Instances"): EC2 launches and manages spot instances through the
// account's AWSServiceRoleForEC2Spot role, and creates it, with the
// credentials of whoever launches the first spot instance, when it does not
// exist yet. Those credentials need iam:CreateServiceLinkedRole on the
// role, for iam:AWSServiceName spot.amazonaws.com; without it the launch
// fails with AuthFailure.ServiceLinkedRoleCreationNotPermitted (EC2 API
// Reference, "Error codes for the Amazon EC2 API": "The provided credentials
// do not have permission to create the service-linked role for EC2 Spot
// Instances"). CloudFormation launches an instance with the caller's
// credentials, so a stack's spot instance needs the permission too.
const (
	spotService = "spot.amazonaws.com"
	// SpotRoleARN is the spot service-linked role of the fake's account.
	SpotRoleARN = "arn:aws:iam::" + Account + ":role/aws-service-role/" + spotService + "/AWSServiceRoleForEC2Spot"
)

// spotRoleFailure creates the spot service-linked role, as EC2 does on the
// account's first spot launch, and returns the launch's failure when the
// caller may not; "" when the role exists or was made.
func (s *Server) spotRoleFailure(n int) string {
	s.EC2.mu.Lock()
	exists := s.EC2.spotRole
	s.EC2.mu.Unlock()
	if exists {
		return ""
	}
	if s.permit("iam:CreateServiceLinkedRole", nil, Resource{ARN: SpotRoleARN, Context: map[string]string{"iam:AWSServiceName": spotService}}) != "" {
		return "The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances." +
			fmt.Sprintf(" (Service: AmazonEC2; Status Code: 403; Error Code: AuthFailure.ServiceLinkedRoleCreationNotPermitted; Request ID: %08x-0000-4000-8000-00000000ec2f; Proxy: null)", n)
	}
	s.EC2.mu.Lock()
	s.EC2.spotRole = true
	s.EC2.mu.Unlock()
	return ""
}

// SpotRoleExists says whether the account has the spot service-linked role.
func (e *EC2) SpotRoleExists() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.spotRole
}
