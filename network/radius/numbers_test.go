package radius

import (
	"fmt"
	"testing"

	"github.com/numverify/numverify/internal/phone"
)

// TestNumberMemo: the memo answers what phone.Normalize answers, valid or
// not, the first time and every time after; it holds at most its capacity.
func TestNumberMemo(t *testing.T) {
	m := newNumberMemo(8)
	inputs := []string{"33612345678", "33612345678", "0612345678", "1", "999123456789", "447911123456", "33612345678"}
	for round := range 2 {
		for _, digits := range inputs {
			want, err := phone.Normalize("+" + digits)
			got, valid := m.normalize(digits)
			if valid != (err == nil) || (valid && got != want) {
				t.Errorf("round %d: normalize(%q) = %q, %v; phone.Normalize: %q, %v", round, digits, got, valid, want, err)
			}
		}
	}
	for i := range 100 {
		m.normalize(fmt.Sprintf("336%08d", i))
	}
	if n := m.numbers.len(); n > 8 {
		t.Errorf("%d numbers remembered; capacity 8", n)
	}
}
