package aws

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// GitHub's OIDC issuer and the audience aws-actions/configure-aws-credentials
// asks for (GitHub docs, "Configuring OpenID Connect in Amazon Web Services").
const (
	githubOIDCHost   = "token.actions.githubusercontent.com"
	githubOIDCAud    = "sts.amazonaws.com"
	githubTrustUsage = "github:OWNER/REPO[:SUBJECT], e.g. github:octo/gpipe or github:octo/gpipe:ref:refs/heads/main"
)

// ErrBadTrust marks a malformed --trust argument or account id.
var ErrBadTrust = errors.New("bad trust argument")

// Compiled on first use, not at package init: every gpipe command would
// otherwise pay for them, and the bounded repeats of githubRepoRE make it
// the costliest regexp in the program to compile (70 µs, 1,800 allocations).
var (
	githubRepoRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
	})
	accountRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{12}$`) })
)

// TrustPolicy returns the trust policy (JSON) of the role a GitHub Actions
// workflow assumes with its OIDC token. who is "github:OWNER/REPO", which
// trusts every workflow of the repository (sub "repo:OWNER/REPO:*"), or
// "github:OWNER/REPO:SUBJECT" for one subject, e.g. "ref:refs/heads/main" or
// "environment:prod" (sub matched exactly). account is the AWS account whose
// OIDC provider for GitHub the role trusts. A bad argument is an error
// wrapping ErrBadTrust.
func TrustPolicy(who, account string) ([]byte, error) {
	rest, ok := strings.CutPrefix(who, "github:")
	if !ok {
		return nil, fmt.Errorf("trust %q: want %s: %w", who, githubTrustUsage, ErrBadTrust)
	}
	repo, subject, _ := strings.Cut(rest, ":")
	if !githubRepoRE().MatchString(repo) {
		return nil, fmt.Errorf("trust %q: %q is not OWNER/REPO: %w", who, repo, ErrBadTrust)
	}
	if !accountRE().MatchString(account) {
		return nil, fmt.Errorf("trust %q: the role's AWS account id (12 digits) is required, got %q: %w", who, account, ErrBadTrust)
	}
	cond := map[string]map[string]string{
		"StringEquals": {githubOIDCHost + ":aud": githubOIDCAud},
	}
	if subject == "" {
		cond["StringLike"] = map[string]string{githubOIDCHost + ":sub": "repo:" + repo + ":*"}
	} else {
		cond["StringEquals"][githubOIDCHost+":sub"] = "repo:" + repo + ":" + subject
	}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Sid":       "GitHubActions",
			"Effect":    "Allow",
			"Principal": map[string]string{"Federated": "arn:aws:iam::" + account + ":oidc-provider/" + githubOIDCHost},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": cond,
		}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
