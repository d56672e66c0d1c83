package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPrintJSONKeepsURLsReadable: every --json output (the device's report,
// clients, sessions) prints a URL's & < > as they are, and stays JSON.
func TestPrintJSONKeepsURLsReadable(t *testing.T) {
	const callback = "https://sp.example/cb?code=a&state=<b>"
	var b strings.Builder
	if err := printJSON(&b, map[string]string{"callback": callback}); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"callback\": \"" + callback + "\"\n}\n"; b.String() != want {
		t.Errorf("printJSON = %q, want %q", b.String(), want)
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(b.String()), &back); err != nil || back["callback"] != callback {
		t.Errorf("the output does not read back: %v %q", err, back)
	}
}
