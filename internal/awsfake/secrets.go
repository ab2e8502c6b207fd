package awsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Secrets holds SSM Parameter Store parameters (served by the SSM endpoint's
// GetParameter) and Secrets Manager secrets (GetSecretValue), what a secret
// param's from: reads. The wire shapes follow the API references: SSM
// GetParameter (request Name, WithDecryption; response Parameter{Name, Type,
// Value, Version, ARN}; ParameterNotFound for a missing name) and Secrets
// Manager GetSecretValue (request SecretId; response ARN, Name, VersionId,
// SecretString or SecretBinary, VersionStages; ResourceNotFoundException).
type Secrets struct {
	s       *Server
	mu      sync.Mutex
	params  map[string]parameter
	secrets map[string]string
}

type parameter struct {
	value  string
	secure bool // SecureString: returned in clear only WithDecryption
}

// PutParameter stores an SSM parameter; secure makes it a SecureString.
func (v *Secrets) PutParameter(name, value string, secure bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.params[name] = parameter{value: value, secure: secure}
}

// PutSecret stores a Secrets Manager secret with a string value.
func (v *Secrets) PutSecret(name, value string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.secrets[name] = value
}

// parameterARN is arn:aws:ssm:REGION:ACCOUNT:parameter/NAME, the leading
// slash of a hierarchical name not doubled; AWS's public parameters
// (/aws/service/...) have no account in their ARN.
func parameterARN(name string) string {
	if strings.HasPrefix(name, "/aws/service/") {
		return fmt.Sprintf("arn:aws:ssm:%s::parameter%s", Region, name)
	}
	return fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/%s", Region, Account, strings.TrimPrefix(name, "/"))
}

// getParameter answers SSM GetParameter. Name may be the parameter's ARN.
func (v *Secrets) getParameter(in map[string]any) (any, int, string, string) {
	name, _ := in["Name"].(string)
	if name == "" {
		v.s.violation("SSM GetParameter without Name")
		return nil, http.StatusBadRequest, "ValidationException", "1 validation error detected: Value null at 'name'"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for n, p := range v.params {
		if n != name && parameterARN(n) != name {
			continue
		}
		typ, val := "String", p.value
		if p.secure {
			typ = "SecureString"
			if dec, _ := in["WithDecryption"].(bool); !dec {
				val = "AQICAHh-encrypted-" + fmt.Sprint(len(p.value)) // KMS ciphertext, base64 in the real service
			}
		}
		return map[string]any{"Parameter": map[string]any{
			"Name": n, "Type": typ, "Value": val, "Version": 1, "ARN": parameterARN(n), "DataType": "text",
		}}, 0, "", ""
	}
	return nil, http.StatusBadRequest, "ParameterNotFound", ""
}

// serve answers the Secrets Manager JSON 1.1 protocol
// (X-Amz-Target: secretsmanager.<Operation>).
func (v *Secrets) serve(w http.ResponseWriter, op string, body []byte) {
	w.Header().Set("X-Amzn-RequestId", v.s.requestID())
	if v.s.count("SecretsManager." + op) {
		jsonError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		v.s.violation("Secrets Manager %s: body %q is not JSON: %v", op, body, err)
		jsonError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	if op != "GetSecretValue" {
		v.s.violation("Secrets Manager operation %q is not served", op)
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	id, _ := in["SecretId"].(string)
	if id == "" {
		v.s.violation("GetSecretValue without SecretId")
		jsonError(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for name, val := range v.secrets {
		arn := fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", Region, Account, name)
		if id != name && id != arn {
			continue
		}
		writeJSON(w, map[string]any{"ARN": arn, "Name": name, "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE",
			"SecretString": val, "VersionStages": []string{"AWSCURRENT"}, "CreatedDate": 1.523477145713e9})
		return
	}
	jsonError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}
