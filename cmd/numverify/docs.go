package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// writeConfigReference writes the Markdown reference of every command's flags
// and environment variables; the README embeds it and a test keeps them equal.
func writeConfigReference(w io.Writer, commands []command) {
	sorted := append([]command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.cmd.register(fs)
		fmt.Fprintf(w, "#### `numverify %s`\n%s\n\n", c.name, c.summary)
		var rows []string
		fs.VisitAll(func(f *flag.Flag) {
			def := f.DefValue
			if def == "" || def == "[]" {
				def = " "
			} else {
				def = "`" + def + "`"
			}
			usage := strings.ReplaceAll(f.Usage, "|", "\\|")
			rows = append(rows, fmt.Sprintf("| `--%s` | `%s` | %s | %s |", f.Name, envName(f.Name), def, usage))
		})
		if len(rows) == 0 {
			fmt.Fprint(w, "No flags.\n\n")
			continue
		}
		fmt.Fprint(w, "| flag | environment | default | meaning |\n| --- | --- | --- | --- |\n")
		fmt.Fprintln(w, strings.Join(rows, "\n"))
		fmt.Fprintln(w)
	}
}
