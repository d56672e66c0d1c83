// Package phone parses and normalises phone numbers (MSISDNs) with
// github.com/nyaruka/phonenumbers. The stored and compared form is E.164 with
// its leading '+'.
package phone

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// errInvalid is returned for anything that is not a valid international number.
var errInvalid = errors.New("not a valid E.164 phone number")

// MatchesPattern reports whether s has CAMARA's E.164 shape, the pattern of
// its PhoneNumber schema (^\+[1-9][0-9]{4,14}$). The resource server checks
// it on every request (the token's number, the body's), so it is spelled
// out byte by byte rather than run through regexp.
func MatchesPattern(s string) bool {
	if len(s) < 6 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Normalize parses an international number (with '+', or "tel:+…") and returns
// its E.164 form. Formatting characters (spaces, dashes, dots, parentheses) are
// accepted; national numbers without a country code are refused.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "tel:"))
	if !strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("%w: must start with + and the country code", errInvalid)
	}
	num, err := phonenumbers.Parse(s, "ZZ")
	if err != nil {
		return "", fmt.Errorf("%w: %v", errInvalid, err)
	}
	if !phonenumbers.IsPossibleNumber(num) {
		return "", fmt.Errorf("%w: not a possible number", errInvalid)
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	if !MatchesPattern(out) {
		return "", errInvalid
	}
	return out, nil
}

// Mask hides all but the country code and the last two digits, for the rare
// place a number must be shown to a human (the demo transcript). Logs never
// carry numbers at all.
func Mask(e164Number string) string {
	if len(e164Number) < 6 {
		return "+***"
	}
	return e164Number[:3] + strings.Repeat("•", len(e164Number)-5) + e164Number[len(e164Number)-2:]
}
