package main

import (
	"flag"
	"io"
	"testing"
)

// Access tokens are single-use unless the deployment opts out (CAMARA Number
// Verification 2.1.1), by flag or by environment.
func TestSingleUseTokensByDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", nil, nil, true},
		{"flag opt-out", []string{"--single-use-tokens=false"}, nil, false},
		{"environment opt-out", nil, map[string]string{"NUMVERIFY_SINGLE_USE_TOKENS": "false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve resource", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c := newServeCommand("serve resource", nil, &resourceFlags{}, nil)
			c.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if err := applyEnv(fs, func(k string) string { return tc.env[k] }); err != nil {
				t.Fatal(err)
			}
			if c.resource.singleUse != tc.want {
				t.Errorf("single-use tokens: %v, want %v", c.resource.singleUse, tc.want)
			}
		})
	}
}
