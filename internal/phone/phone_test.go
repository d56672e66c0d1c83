package phone

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+33612345678", "+33612345678"},
		{"tel:+33612345678", "+33612345678"},
		{"+33 6 12 34 56 78", "+33612345678"},
		{"+1 (650) 253-0000", "+16502530000"},
		{" +447911123456 ", "+447911123456"},
	} {
		got, err := Normalize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0612345678", "+", "+0612345678", "+33abc", "+3361234567890123456", "33612345678", "+1"} {
		if got, err := Normalize(bad); !errors.Is(err, errInvalid) {
			t.Errorf("Normalize(%q) = %q, %v; want errInvalid", bad, got, err)
		}
	}
}

func TestMask(t *testing.T) {
	if got := Mask("+33612345678"); got != "+33•••••••78" {
		t.Errorf("Mask = %q", got)
	}
}
