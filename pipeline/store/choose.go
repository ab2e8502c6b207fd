package store

// EnvVar names the environment variable that chooses the state store when
// --state does not.
const EnvVar = "GPIPE_STATE"

// ChooseURL is the state store URL a command uses: the first that is set of
// the --state flag, $GPIPE_STATE (env), the spec's state: (spec, "" for a
// command without a spec) and DefaultURL. It is the one precedence every
// command follows.
func ChooseURL(flag, env, spec string) string {
	for _, u := range []string{flag, env, spec} {
		if u != "" {
			return u
		}
	}
	return DefaultURL
}
