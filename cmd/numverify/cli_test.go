package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

func TestFlagsFromEnvironment(t *testing.T) {
	var gotName, gotURL string
	var gotList stringList
	cmds := []command{{name: "thing do", summary: "test", setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
		name := fs.String("thing-name", "default", "a name")
		url := fs.String("database-url", "x", "db")
		fs.Var(&gotList, "scope", "repeatable")
		return func(context.Context, []string) error { gotName, gotURL = *name, *url; return nil }
	}}}
	env := map[string]string{"NUMVERIFY_THING_NAME": "from-env", "DATABASE_URL": "postgres://env", "NUMVERIFY_SCOPE": "a,b"}
	var out, errOut bytes.Buffer
	if code := execute(context.Background(), cmds, []string{"thing", "do"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if gotName != "from-env" || gotURL != "postgres://env" || gotList.String() != "a,b" {
		t.Fatalf("from env: name %q url %q list %q", gotName, gotURL, gotList.String())
	}
	// A flag on the command line wins over the environment.
	gotList = nil
	if code := execute(context.Background(), cmds, []string{"thing", "do", "--thing-name", "flag"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 || gotName != "flag" {
		t.Fatalf("flag over env: exit %d name %q", code, gotName)
	}
	// Unknown command and bad flag: exit 2 with usage.
	if code := execute(context.Background(), cmds, []string{"nope"}, &out, &errOut, func(string) string { return "" }); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	errOut.Reset()
	if code := execute(context.Background(), cmds, []string{"thing", "do", "--bogus"}, &out, &errOut, func(string) string { return "" }); code != 2 || !strings.Contains(errOut.String(), "Usage: numverify thing do") {
		t.Fatalf("bad flag exit %d: %s", code, errOut.String())
	}
	out.Reset()
	if code := execute(context.Background(), cmds, []string{"thing", "do", "--help"}, &out, &errOut, func(string) string { return "" }); code != 0 || !strings.Contains(out.String(), "NUMVERIFY_THING_NAME") {
		t.Fatalf("--help exit %d: %s", code, out.String())
	}
}
