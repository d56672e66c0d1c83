package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
)

// thingCommand is a command for the tests of the command line.
type thingCommand struct {
	name, url       string
	list            stringList
	gotName, gotURL string
}

func (c *thingCommand) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "thing-name", "default", "a name")
	fs.StringVar(&c.url, "database-url", "x", "db")
	fs.Var(&c.list, "scope", "repeatable")
}

func (c *thingCommand) Run(context.Context, []string) error {
	c.gotName, c.gotURL = c.name, c.url
	return nil
}

func TestFlagsFromEnvironment(t *testing.T) {
	thing := &thingCommand{}
	cmds := []command{{name: "thing do", summary: "test", cmd: thing}}
	env := map[string]string{"NUMVERIFY_THING_NAME": "from-env", "DATABASE_URL": "postgres://env", "NUMVERIFY_SCOPE": "a,b"}
	var out, errOut bytes.Buffer
	if code := execute(context.Background(), cmds, []string{"thing", "do"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if thing.gotName != "from-env" || thing.gotURL != "postgres://env" || thing.list.String() != "a,b" {
		t.Fatalf("from env: name %q url %q list %q", thing.gotName, thing.gotURL, thing.list.String())
	}
	// A flag on the command line wins over the environment.
	*thing = thingCommand{}
	if code := execute(context.Background(), cmds, []string{"thing", "do", "--thing-name", "flag"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 || thing.gotName != "flag" {
		t.Fatalf("flag over env: exit %d name %q", code, thing.gotName)
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
