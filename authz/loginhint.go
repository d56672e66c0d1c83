package authz

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/numverify/numverify/internal/phone"
)

// CAMARA ICM login_hint forms: "tel:+33612345678", "+33612345678", and
// "ipport:203.0.113.7:40001" / "ipport:[2001:db8::1]:40001" (port optional).
// A hint is parsed so that a malformed one is refused, but it never chooses
// who logs in: the network does.

const maxLoginHintLength = 128

var errLoginHint = errors.New("login_hint is not tel:+<E.164>, +<E.164> or ipport:<address>[:<port>]")

type loginHintKind uint8

const (
	hintNone loginHintKind = iota
	hintPhone
	hintAddress
)

type loginHint struct {
	kind    loginHintKind
	phone   string         // E.164, for hintPhone
	address netip.AddrPort // port 0 when not given, for hintAddress
}

// parseLoginHint parses a login_hint value; "" is no hint.
func parseLoginHint(s string) (loginHint, error) {
	if s == "" {
		return loginHint{}, nil
	}
	if len(s) > maxLoginHintLength {
		return loginHint{}, errLoginHint
	}
	if rest, ok := strings.CutPrefix(s, "ipport:"); ok {
		ap, ok := parseNode(rest)
		if !ok {
			return loginHint{}, errLoginHint
		}
		return loginHint{kind: hintAddress, address: ap}, nil
	}
	number := strings.TrimPrefix(s, "tel:")
	if !phone.MatchesPattern(number) {
		return loginHint{}, errLoginHint
	}
	e164, err := phone.Normalize(number)
	if err != nil {
		return loginHint{}, errLoginHint
	}
	return loginHint{kind: hintPhone, phone: e164}, nil
}
