package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestSecretParamErrorsHideValue: a wrong value of a secret param is never
// part of the error; a wrong value of another param still is.
func TestSecretParamErrorsHideValue(t *testing.T) {
	s := &Spec{Params: []Param{
		{Name: "pin", Type: "integer", Secret: true},
		{Name: "mode", Type: "string", Secret: true, Enum: []any{"a", "b"}},
		{Name: "rows", Type: "integer"},
	}}
	_, err := ResolveParams(s, map[string]string{"pin": "TopSecretPin", "mode": "TopSecretMode", "rows": "many"})
	if err == nil {
		t.Fatal("bad values accepted")
	}
	msg := err.Error()
	for _, secret := range []string{"TopSecretPin", "TopSecretMode"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error shows a secret: %s", msg)
		}
	}
	for _, want := range []string{`param "pin": the value (secret, not shown) is not an integer`,
		`param "mode": the value (secret, not shown) is not one of a, b`, `param "rows": "many" is not an integer`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestSecretFrom(t *testing.T) {
	s, err := testLoader().Parse("f.yaml", []byte(`version: 1
name: x
params:
  token: {secret: true, from: "ssm:/gpipe/token"}
  key: {secret: true, from: "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf"}
steps:
  - {id: a, type: shell, with: {run: "true"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Params[0].From != "ssm:/gpipe/token" || !strings.HasPrefix(s.Params[1].From, "secretsmanager:arn:") {
		t.Errorf("from = %q, %q", s.Params[0].From, s.Params[1].From)
	}
	for _, c := range []struct{ params, want string }{
		{`t: {from: "ssm:/x"}`, `f.yaml:4:13: param "t": from: is for secrets: add secret: true`},
		{`t: {secret: true, default: "d", from: "ssm:/x"}`, `f.yaml:4:30: param "t": a param read from ssm:/x has no default`},
		{`t: {secret: true, from: "vault:/x"}`, `f.yaml:4:27: param "t": "from" must be ssm:<parameter name or ARN> or secretsmanager:<secret id or ARN>, not "vault:/x"`},
	} {
		_, err := testLoader().Parse("f.yaml", []byte("version: 1\nname: x\nparams:\n  "+c.params+"\nsteps:\n  - {id: a, type: shell, with: {run: \"true\"}}\n"))
		var errs Errors
		if !errors.As(err, &errs) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.params, err, c.want)
		}
	}
}

// TestInjectionWarnings: each expression pasted into a shell step's run: is
// a warning at its own line and column, with the env: form to use instead;
// env: values, other fields and other step types are left alone.
func TestInjectionWarnings(t *testing.T) {
	s, err := testLoader().Parse("f.yaml", []byte(`version: 1
name: x
params:
  who: {default: world}
steps:
  - id: a
    type: shell
    env:
      WHO: ${{ params.who }}
    with:
      run: |
        echo "hello $WHO"
        echo "${{ params.who }}" > "${{ env.HOME }}/x"
  - id: b
    type: shell
    needs: [a]
    with: {run: 'echo ${{ steps.a.outputs.n }}'}
  - id: c
    type: fetch-msd
    with: {task: '01', dest: '/data/${{ params.who }}'}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`f.yaml:13:15: warning: step "a": ${{ params.who }} is pasted into the script of with.run, where quotes, $(...) or ; in its value run as code: pass it through env: (WHO: ${{ params.who }}) and use "$WHO"`,
		`f.yaml:13:37: warning: step "a": ${{ env.HOME }} is pasted into the script of with.run, where quotes, $(...) or ; in its value run as code: use "$HOME" (it is in the environment already)`,
		`f.yaml:17:23: warning: step "b": ${{ steps.a.outputs.n }} is pasted into the script of with.run, where quotes, $(...) or ; in its value run as code: pass it through env: (N: ${{ steps.a.outputs.n }}) and use "$N"`,
	}
	if len(s.Warnings) != len(want) {
		t.Fatalf("warnings:\n%v", s.Warnings)
	}
	for i, w := range s.Warnings {
		if got := strings.SplitN(w.Error(), "\n", 2)[0]; got != want[i] {
			t.Errorf("warning %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
}
