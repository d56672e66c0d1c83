package phone

import (
	"regexp"
	"testing"
)

// TestMatchesPattern: the byte loop agrees with the schema's pattern, on
// each edge of its length, first digit and characters.
func TestMatchesPattern(t *testing.T) {
	schema := regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)
	for _, s := range []string{
		"", "+", "+1", "+1234", "+12345", "+123456789012345", "+1234567890123456",
		"+0612345678", "33612345678", "+33 612345678", "+33612345678", "+3361234567a",
		"++33612345678", "+33612345678\n", "+９12345", "+99912345678",
	} {
		if got, want := MatchesPattern(s), schema.MatchString(s); got != want {
			t.Errorf("MatchesPattern(%q) = %v, the schema's pattern says %v", s, got, want)
		}
	}
}
