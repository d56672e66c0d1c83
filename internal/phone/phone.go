// Package phone parses and normalises phone numbers (MSISDNs) with
// github.com/nyaruka/phonenumbers. The stored and compared form is E.164 with
// its leading '+'.
package phone

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// errInvalid is returned for anything that is not a valid international number.
var errInvalid = errors.New("not a valid E.164 phone number")

// e164 is the pattern of CAMARA's PhoneNumber schema.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{4,14}$`)

// MatchesPattern reports whether s has CAMARA's E.164 shape (^\+[1-9][0-9]{4,14}$).
func MatchesPattern(s string) bool { return e164.MatchString(s) }

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
