package radius

import (
	"strings"
	"sync"

	"github.com/numverify/numverify/internal/phone"
)

// numbers memoizes phone.Normalize of Calling-Station-Id digits. Parsing a
// number with libphonenumber takes tens of microseconds of regular
// expressions, and a gateway sends each subscriber's number again with
// every Interim-Update: at 15,000 requests/s the parse was a third of the
// server's CPU. Normalize is a pure function, so a remembered answer
// (valid or not) is the answer. Bounded by generations.
var numbers = newNumberMemo(1 << 18) // about 20 MB when full

type numberMemo struct {
	mu      sync.Mutex
	numbers generations[string, normalizedNumber]
}

type normalizedNumber struct {
	e164  string
	valid bool
}

func newNumberMemo(capacity int) *numberMemo {
	return &numberMemo{numbers: newGenerations[string, normalizedNumber](capacity)}
}

// normalize returns the E.164 form of "+" + digits, and whether it is a
// valid number.
func (m *numberMemo) normalize(digits string) (string, bool) {
	m.mu.Lock()
	n, ok := m.numbers.get(digits)
	m.mu.Unlock()
	if ok {
		return n.e164, n.valid
	}
	e164, err := phone.Normalize("+" + digits)
	n = normalizedNumber{e164: e164, valid: err == nil}
	m.mu.Lock()
	m.numbers.put(strings.Clone(digits), n)
	m.mu.Unlock()
	return n.e164, n.valid
}
