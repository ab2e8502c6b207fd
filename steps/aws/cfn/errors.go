package cfn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// ErrStackNotFound: the stack does not exist (or was deleted).
var ErrStackNotFound = errors.New("stack not found")

// Failure kinds a *StackFailedError unwraps to, so callers can branch with
// errors.Is.
var (
	// ErrQuotaExceeded: the account's vCPU quota for the instance family is too low.
	ErrQuotaExceeded = errors.New("instance vCPU quota exceeded")
	// ErrInsufficientCapacity: the zone has no capacity for the instance type now.
	ErrInsufficientCapacity = errors.New("insufficient instance capacity")
	// ErrSpotUnavailable: no spot instance of the type in the zone at the
	// maximum price.
	ErrSpotUnavailable = errors.New("spot instance unavailable")
)

// StackInProgressError: an operation cannot start because the stack is busy.
type StackInProgressError struct {
	Stack  string
	Status string
}

func (e *StackInProgressError) Error() string {
	return fmt.Sprintf("stack %s is %s; wait for it to finish (or run `gpipe teardown` to delete it) and retry", e.Stack, e.Status)
}

// StackFailedError: a stack operation ended in failure. Resource and Reason
// come from the first failing stack event, which names the root cause; later
// failures are usually "Resource creation cancelled".
type StackFailedError struct {
	Stack        string
	Status       string
	Resource     string // logical id
	ResourceType string
	Reason       string
	Kind         error // ErrQuotaExceeded, ErrInsufficientCapacity, ErrSpotUnavailable or nil
}

func (e *StackFailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stack %s %s", e.Stack, e.Status)
	if e.Resource != "" {
		fmt.Fprintf(&b, ": %s (%s) failed: %s", e.Resource, e.ResourceType, e.Reason)
	} else if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	switch e.Kind {
	case ErrQuotaExceeded:
		b.WriteString(" — the account's vCPU quota for this instance family is too low: request an increase of " +
			"\"Running On-Demand DL instances\" (dl1) in Service Quotas → Amazon EC2 to at least the instance's vCPUs " +
			"(96 for dl1.24xlarge; for spot, \"All DL Spot Instance Requests\"), then resume the run")
	case ErrInsufficientCapacity:
		b.WriteString(" — AWS has no capacity for this instance type in that zone right now: set availability_zone " +
			"to another zone that offers it (aws ec2 describe-instance-type-offerings --location-type availability-zone " +
			"--filters Name=instance-type,Values=<type>) or retry later")
	case ErrSpotUnavailable:
		b.WriteString(" — no spot instance of this type in that zone at the maximum price now: list more " +
			"availability_zones or instance_types, raise max_price, set fallback: on-demand, or retry later")
	}
	return b.String()
}

func (e *StackFailedError) Unwrap() error { return e.Kind }

// classify maps a failure reason from a stack event to a failure kind. The
// codes are EC2's (EC2 API Reference, "Error codes for the Amazon EC2 API":
// VcpuLimitExceeded, InstanceLimitExceeded, MaxSpotInstanceCountExceeded,
// InsufficientInstanceCapacity, SpotMaxPriceTooLow, UnfulfillableCapacity;
// and the spot request status capacity-not-available, EC2 User Guide "Spot
// request status"), which CloudFormation quotes in the instance's
// CREATE_FAILED event.
func classify(reason string) error {
	switch {
	case strings.Contains(reason, "You have requested more vCPU capacity"),
		strings.Contains(reason, "VcpuLimitExceeded"),
		strings.Contains(reason, "InstanceLimitExceeded"),
		strings.Contains(reason, "MaxSpotInstanceCountExceeded"):
		return ErrQuotaExceeded
	case strings.Contains(reason, "SpotMaxPriceTooLow"),
		strings.Contains(reason, "UnfulfillableCapacity"),
		strings.Contains(reason, "capacity-not-available"),
		strings.Contains(reason, "There is no Spot capacity available"):
		return ErrSpotUnavailable
	case strings.Contains(reason, "InsufficientInstanceCapacity"),
		strings.Contains(reason, "insufficient capacity"),
		strings.Contains(reason, "We currently do not have sufficient"),
		strings.Contains(reason, "Unsupported") && strings.Contains(reason, "Availability Zone"):
		return ErrInsufficientCapacity
	}
	return nil
}

// isNotFound reports whether err is CloudFormation's "Stack with id X does not
// exist", which arrives as a ValidationError.
func isNotFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" && strings.Contains(ae.ErrorMessage(), "does not exist")
}

// isThrottle reports errors worth another poll after the SDK's own retries
// gave up: a long wait must not fail because the account is busy.
func isThrottle(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException":
		return true
	}
	return false
}

// isInProgress reports CloudFormation refusing an operation on a busy stack:
// "Stack:arn is in UPDATE_IN_PROGRESS state and can not be updated." or, from
// DeleteStack, "Stack [arn] cannot be deleted while in status
// UPDATE_COMPLETE_CLEANUP_IN_PROGRESS".
func isInProgress(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	msg := ae.ErrorMessage()
	return ae.ErrorCode() == "OperationInProgressException" || ae.ErrorCode() == "ValidationError" &&
		(strings.Contains(msg, "_IN_PROGRESS state") || strings.Contains(msg, "while in status") && strings.HasSuffix(strings.TrimSpace(msg), "_IN_PROGRESS"))
}

// isAlreadyExists reports CreateStack finding a stack of that name.
func isAlreadyExists(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "AlreadyExistsException"
}
