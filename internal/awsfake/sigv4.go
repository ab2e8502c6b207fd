package awsfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// maxSkew is how far a request's X-Amz-Date may be from the service's
// clock: "The request reached the service more than 15 minutes after the
// date stamp on the request ..., or the date stamp on the request is more
// than 15 minutes in the future" (AWS API references, Common Errors,
// RequestExpired; IAM User Guide, "Signature Version 4 signing process").
const maxSkew = 15 * time.Minute

// protocol says how a service words an authentication failure.
type protocol int

const (
	protoQuery protocol = iota // CloudFormation (awsQuery)
	protoEC2                   // EC2's own query protocol
	protoJSON                  // SSM, CloudWatch Logs (awsJson1_1)
)

// authFailure is a request the service refuses before looking at it.
type authFailure struct {
	status    int
	code, msg string
}

// authorize checks a request's SigV4 signature and date and, when they fail,
// answers as the service does and reports the violation. The codes per
// protocol: CloudFormation answers SignatureDoesNotMatch (403) for a bad
// signature and for "Signature expired" (Common Errors of the CloudFormation
// API Reference; the message is the service's); EC2 answers AuthFailure
// (401) and RequestExpired (400) (EC2 API Reference, "Error codes"); JSON
// services answer InvalidSignatureException (400) to both (SSM and
// CloudWatch Logs API references, Common Errors). The response's Date
// header carries the service's clock, from which the SDK corrects its skew.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, body []byte, service string, p protocol) bool {
	bad, stale := s.checkSignature(r, body, service)
	if bad == "" && stale == "" {
		return true
	}
	var f authFailure
	switch {
	case p == protoEC2 && bad != "":
		f = authFailure{http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"}
	case p == protoEC2:
		f = authFailure{http.StatusBadRequest, "RequestExpired", "Request has expired."}
	case p == protoJSON && bad != "":
		f = authFailure{http.StatusBadRequest, "InvalidSignatureException", signatureMismatch}
	case p == protoJSON:
		f = authFailure{http.StatusBadRequest, "InvalidSignatureException", stale}
	case bad != "":
		f = authFailure{http.StatusForbidden, "SignatureDoesNotMatch", signatureMismatch}
	default:
		f = authFailure{http.StatusForbidden, "SignatureDoesNotMatch", stale}
	}
	s.violation("%s request refused with %s: %s", service, f.code, bad+stale)
	rid := s.requestID()
	switch p {
	case protoEC2:
		ec2Error(w, rid, f.status, f.code, f.msg)
	case protoJSON:
		jsonError(w, f.status, f.code, f.msg)
	default:
		writeCFNError(w, rid, &cfnError{f.status, "Sender", f.code, f.msg})
	}
	return false
}

const signatureMismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// checkSignature verifies a request's SigV4 signature from the spec, not
// with the SDK's signer, so that a request the SDK changed after signing (or
// signed for the wrong service or region) is caught as AWS would catch it.
// It returns why the signature is bad, or why the request is stale ("" and
// "" when neither).
func (s *Server) checkSignature(r *http.Request, body []byte, service string) (bad, stale string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Sprintf("request without a SigV4 Authorization header: %q", auth), ""
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[0] != s.key[0] || scope[2] != Region || scope[3] != service || scope[4] != "aws4_request" {
		return fmt.Sprintf("signed with credential scope %q", fields["Credential"]), ""
	}
	date := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(date, scope[1]) {
		return fmt.Sprintf("X-Amz-Date %q does not match scope date %s", date, scope[1]), ""
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	var canon strings.Builder
	for _, h := range signed {
		var v string
		if h == "host" {
			v = r.Host
		} else {
			vals := r.Header.Values(h)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(h + ":" + v + "\n")
	}
	q := r.URL.Query()
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var query []string
	for _, k := range keys {
		for _, v := range q[k] {
			query = append(query, escape(k)+"="+escape(v))
		}
	}
	sum := sha256.Sum256(body)
	creq := strings.Join([]string{r.Method, r.URL.EscapedPath(), strings.Join(query, "&"), canon.String(),
		fields["SignedHeaders"], hex.EncodeToString(sum[:])}, "\n")
	creqSum := sha256.Sum256([]byte(creq))
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", date, strings.Join(scope[1:], "/"), hex.EncodeToString(creqSum[:])}, "\n")
	key := []byte("AWS4" + s.key[1])
	for _, part := range scope[1:] {
		key = mac(key, part)
	}
	if want := hex.EncodeToString(mac(key, toSign)); !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return fmt.Sprintf("signature mismatch (canonical request:\n%s)", creq), ""
	}
	at, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return fmt.Sprintf("X-Amz-Date %q is not a basic ISO 8601 time", date), ""
	}
	now := s.requestNow().UTC()
	const layout = "20060102T150405Z"
	switch {
	case at.Before(now.Add(-maxSkew)):
		return "", fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 15 min.)", date, now.Add(-maxSkew).Format(layout), now.Format(layout))
	case at.After(now.Add(maxSkew)):
		return "", fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 15 min.)", date, now.Add(maxSkew).Format(layout), now.Format(layout))
	}
	return "", ""
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// escape is SigV4's URI encoding: everything but unreserved characters.
func escape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}
