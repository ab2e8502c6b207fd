package cfn

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// StackInfo is a stack gpipe created.
type StackInfo struct {
	Name    string
	ID      string
	RunID   string // the gpipe:run-id tag
	Step    string // the gpipe:step tag
	Status  string
	Created time.Time
}

// ListGpipeStacks returns the region's live stacks that carry a gpipe:run-id
// tag (DescribeStacks without a name omits deleted stacks). `gpipe gc`
// decides from the run state which of them are strays.
func ListGpipeStacks(ctx context.Context, api CloudFormation) ([]StackInfo, error) {
	var out []StackInfo
	var token *string
	for {
		res, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("list stacks: %w", err)
		}
		for i := range res.Stacks {
			st := &res.Stacks[i]
			run := tag(st, "gpipe:run-id")
			if run == "" {
				continue
			}
			out = append(out, StackInfo{Name: aws.ToString(st.StackName), ID: aws.ToString(st.StackId), RunID: run,
				Step: tag(st, "gpipe:step"), Status: string(st.StackStatus), Created: aws.ToTime(st.CreationTime)})
		}
		if res.NextToken == nil {
			return out, nil
		}
		token = res.NextToken
	}
}
