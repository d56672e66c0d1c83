package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// command is one entry of the command table (main.go): its words ("network
// attach"), a one-line summary, and the struct that holds its flags and runs it.
type command struct {
	name    string
	summary string
	cmd     runner
}

// runner is one subcommand: a struct whose fields are its flags.
type runner interface {
	// register defines the command's flags on fs, bound to its fields.
	register(fs *flag.FlagSet)
	// Run does the work once the flags are parsed; args are what follows them.
	Run(ctx context.Context, args []string) error
}

// errUsage makes main print the command's usage and exit 2.
var errUsage = errors.New("usage")

// envName is the environment variable a flag is also read from.
func envName(flagName string) string {
	if v, ok := envOverrides[flagName]; ok {
		return v
	}
	return "NUMVERIFY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envOverrides are flags whose variable is a convention older than numverify.
var envOverrides = map[string]string{
	"database-url": "DATABASE_URL",
}

// applyEnv sets every flag not given on the command line from its
// environment variable, when that is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var problems []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(problems...)
}

// findCommand picks the command whose words are the longest prefix of args.
func findCommand(commands []command, args []string) (*command, []string) {
	var best *command
	bestLen := 0
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(words) <= len(args) && len(words) > bestLen && equalWords(words, args[:len(words)]) {
			best, bestLen = &commands[i], len(words)
		}
	}
	if best == nil {
		return nil, args
	}
	return best, args[bestLen:]
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// newFlagSet builds the flag set of a command with its usage text, which
// lists each flag with its environment variable.
func newFlagSet(cmd *command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("numverify "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: numverify %s [flags]\n\n%s\n", cmd.name, cmd.summary)
		printFlags(fs.Output(), fs)
	}
	return fs
}

func printFlags(out io.Writer, fs *flag.FlagSet) {
	has := false
	fs.VisitAll(func(*flag.Flag) { has = true })
	if !has {
		return
	}
	fmt.Fprintln(out, "\nFlags (each also read from the environment variable shown):")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(out, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
	})
}

func printCommands(out io.Writer, commands []command) {
	fmt.Fprintln(out, "numverify: the CAMARA Number Verification API for mobile operators.")
	fmt.Fprintln(out, "\nUsage: numverify <command> [flags]   (numverify <command> --help for its flags)")
	fmt.Fprintln(out, "\nCommands:")
	sorted := append([]command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(out, "  %-22s %s\n", c.name, c.summary)
	}
}

// execute runs the command args name with the environment getenv; it returns
// the process exit code.
func execute(ctx context.Context, commands []command, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		printCommands(stdout, commands)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := findCommand(commands, args)
	if cmd == nil {
		fmt.Fprintf(stderr, "numverify: unknown command %q\n\n", strings.Join(args, " "))
		printCommands(stderr, commands)
		return 2
	}
	fs := newFlagSet(cmd, stderr)
	cmd.cmd.register(fs)
	usage := fs.Usage
	fs.Usage = func() {} // printed below, once, to the right stream
	err := fs.Parse(rest)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	} else if err != nil {
		fs.Usage()
		return 2
	}
	if err := applyEnv(fs, getenv); err != nil {
		fmt.Fprintf(stderr, "numverify %s: %v\n", cmd.name, err)
		return 2
	}
	if err := cmd.cmd.Run(ctx, fs.Args()); err != nil {
		if errors.Is(err, errUsage) {
			fs.Usage()
			return 2
		}
		fmt.Fprintf(stderr, "numverify %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// stringList is a repeatable flag (--scope a --scope b); from the environment
// it takes a comma- or space-separated list.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		*s = append(*s, part)
	}
	return nil
}
