package resource

import (
	"testing"
	"time"
)

// TestAcceptsJSON: which Accept headers admit the application/json answer
// (else 406).
func TestAcceptsJSON(t *testing.T) {
	for _, tc := range []struct {
		accept string
		want   bool
	}{
		{"", true},
		{"application/json", true},
		{"Application/JSON", true},
		{"application/*", true},
		{"*/*", true},
		{"text/html, */*;q=0.1", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"application/json; charset=utf-8", true},
		{"application/json;q=0.001", true},
		{" application/json ; q=1 ", true},
		{"application/json;q=0.5 ;v=1", true},
		{"application/json;q=0q=0.5", true}, // malformed parameters: the range without them
		{"text/html", false},
		{"application/xml", false},
		{"application/json;q=0", false},
		{"application/json; q=0.000", false},
		{"application/json;Q=0", false},
		{"application/json;q=0, text/plain", false},
		{"*/*;q=0", false},
		{"application/json/x", false},
		{"json", false},
	} {
		if got := acceptsJSON(tc.accept); got != tc.want {
			t.Errorf("acceptsJSON(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}

// TestIsJSONContentType: which request Content-Types are JSON (else 415).
func TestIsJSONContentType(t *testing.T) {
	for _, tc := range []struct {
		contentType string
		want        bool
	}{
		{"application/json", true},
		{"Application/JSON; charset=UTF-8", true},
		{`application/json; charset="utf-8"`, true},
		{"application/json;charset=utf-8", true},
		{"application/json ; charset=utf-8", true},
		{"application/json; charset=latin1", false},
		{"text/plain", false},
		{"application/jsonx", false},
		{"application/json, text/plain", false},
		{"application/*", false},
		// Malformed parameters are refused (mime.ParseMediaType); the
		// hand-written parser before it took some of them.
		{"application/json; charset", false},
		{"application/json; =utf-8", false},
		{"application/json; q=1q=2", false},
		{"application/json; charset=utf-8; charset=latin1", false},
	} {
		if got := isJSONContentType(tc.contentType); got != tc.want {
			t.Errorf("isJSONContentType(%q) = %v, want %v", tc.contentType, got, tc.want)
		}
	}
}

// TestVerifyNumberShape: phoneNumber is checked against the spec's pattern
// (^\+[1-9][0-9]{4,14}$), not against phonenumbers' numbering plans, which
// refuse some numbers of that shape.
func TestVerifyNumberShape(t *testing.T) {
	for _, tc := range []struct {
		number string
		ok     bool
	}{
		{"+33612345678", true},
		{"+12345", true},           // not a possible NANP number, but the spec's shape
		{"+99912345678", true},     // no assigned country code, but the spec's shape
		{"+123456789012345", true}, // 15 digits
		{"+1234", false},
		{"+1234567890123456", false},
		{"+0612345678", false},
		{"33612345678", false},
		{"+33 612345678", false},
	} {
		_, e := decodeVerifyRequest([]byte(`{"phoneNumber":"`+tc.number+`"}`), dialectCAMARA)
		if (e == nil) != tc.ok {
			t.Errorf("phoneNumber %q: refused %v, want accepted %v", tc.number, e, tc.ok)
		}
	}
}

// TestRetryDelays: the retry loops' waits grow from the first to the cap,
// each within ±50% of the doubling schedule, and differ between loops
// (jitter) rather than all retrying in step.
func TestRetryDelays(t *testing.T) {
	const first, max = 100 * time.Millisecond, 1600 * time.Millisecond
	firsts := map[time.Duration]bool{}
	for range 20 {
		retry := retryDelays(first, max)
		want := first
		for i := range 8 {
			got := retry.NextBackOff()
			if got < want/2 || got > want+want/2 {
				t.Fatalf("delay %d = %v, want within ±50%% of %v", i, got, want)
			}
			if i == 0 {
				firsts[got] = true
			}
			want = min(2*want, max)
		}
		retry.Reset()
		if got := retry.NextBackOff(); got > first+first/2 {
			t.Errorf("after Reset: %v, want about %v", got, first)
		}
	}
	if len(firsts) < 2 {
		t.Errorf("20 loops all waited %v first: no jitter", firsts)
	}
}
