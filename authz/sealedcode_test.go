package authz

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
)

// A sealed code opens only under the key it was sealed with, and not at all
// once any character of it changed.
func TestSealedCodeOpensOnlyUnaltered(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	codes := newSealedCodes(key, nil)
	records := []byte(`[{"k":"code","i":"request-1"}]`)
	code, err := codes.seal(records)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(code, sealedCodePrefix) {
		t.Fatalf("code %q lacks its prefix", code)
	}
	got, err := codes.open(code)
	if err != nil || !bytes.Equal(got, records) {
		t.Fatalf("open = %q, %v; want the records", got, err)
	}
	if other, _ := codes.seal(records); other == code {
		t.Error("two seals of the same records gave the same code")
	}
	if _, err := newSealedCodes(bytes.Repeat([]byte{2}, 32), nil).open(code); err == nil {
		t.Error("a code opened under another secrets key")
	}
	for i := len(sealedCodePrefix); i < len(code); i++ {
		c := code[i]
		flipped := byte('A')
		if c == 'A' {
			flipped = 'B'
		}
		if _, err := codes.open(code[:i] + string(flipped) + code[i+1:]); err == nil {
			t.Fatalf("a code altered at %d opened", i)
		}
	}
	// Its single use is recorded under the code as sent: no other spelling
	// of the same bytes may open.
	for _, variant := range []string{code[:10] + "\n" + code[10:], code + "\r\n", code + "="} {
		if _, err := codes.open(variant); err == nil {
			t.Errorf("a variant spelling of the code opened: %q", variant[:12])
		}
	}
	for _, bad := range []string{"", "nv1.", "pending.abc", "nv1.!!!!", sealedCodePrefix + strings.Repeat("A", maxSealedCode+1)} {
		if _, err := codes.open(bad); err == nil {
			t.Errorf("open(%.20q) succeeded", bad)
		}
	}
}

// ValidateAuthorizeCode refuses an expired code and anything not sealed.
func TestSealedCodeExpiry(t *testing.T) {
	codes := newSealedCodes(bytes.Repeat([]byte{1}, 32), nil)
	ctx := context.Background()
	req := fosite.NewRequest()
	req.Session = newSession()
	req.Session.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
	if err := codes.ValidateAuthorizeCode(ctx, req, sealedCodePrefix+"x"); err != nil {
		t.Errorf("a live code: %v", err)
	}
	if err := codes.ValidateAuthorizeCode(ctx, req, "pending.x"); err == nil {
		t.Error("a placeholder was accepted as a code")
	}
	req.Session.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(-time.Second))
	if err := codes.ValidateAuthorizeCode(ctx, req, sealedCodePrefix+"x"); err == nil {
		t.Error("an expired code was accepted")
	}
}
