package authz

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
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

// A code's length does not depend on what it carries: a service provider
// that puts a guess of the subscriber's number in its state learns nothing
// from the code's length (compressed codes did tell: a right guess made the
// code shorter).
func TestSealedCodeLengthIgnoresContent(t *testing.T) {
	codes := newSealedCodes(bytes.Repeat([]byte{1}, 32), nil)
	records := func(state string) []byte {
		return []byte(`[{"k":"code","f":{"state":["` + state + `"]},"ss":{"phone_number":"+33612345678"}}]`)
	}
	right, err := codes.seal(records("+33612345678"))
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := codes.seal(records("+33698765432"))
	if err != nil {
		t.Fatal(err)
	}
	if len(right) != len(wrong) {
		t.Errorf("a right guess gave a code of %d characters, a wrong one %d", len(right), len(wrong))
	}
}

// A code of the format before (nv1, deflated) still opens, so that codes
// sealed by the version before an upgrade are redeemed; it opens only with
// its own prefix.
func TestSealedCodeOpensDeflated(t *testing.T) {
	codes := newSealedCodes(bytes.Repeat([]byte{1}, 32), nil)
	records := []byte(`[{"k":"code","i":"request-1"}]`)
	var deflated bytes.Buffer
	w, err := flate.NewWriter(&deflated, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(records); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	salt := bytes.Repeat([]byte{7}, saltSize)
	aead, err := codes.aead(salt)
	if err != nil {
		t.Fatal(err)
	}
	body := base64.RawURLEncoding.EncodeToString(aead.Seal(salt, make([]byte, aead.NonceSize()), deflated.Bytes(), []byte(deflatedPrefix)))
	got, err := codes.open(deflatedPrefix + body)
	if err != nil || !bytes.Equal(got, records) {
		t.Fatalf("open(nv1 code) = %q, %v; want the records", got, err)
	}
	if _, err := codes.open(sealedCodePrefix + body); err == nil {
		t.Error("an nv1 code opened under the nv2 prefix")
	}
}

// ValidateAuthorizeCode refuses an expired code and anything not sealed.
func TestSealedCodeExpiry(t *testing.T) {
	codes := newSealedCodes(bytes.Repeat([]byte{1}, 32), nil)
	ctx := context.Background()
	req := fosite.NewRequest()
	req.Session = newSession()
	req.Session.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
	for _, prefix := range []string{sealedCodePrefix, deflatedPrefix} {
		if err := codes.ValidateAuthorizeCode(ctx, req, prefix+"x"); err != nil {
			t.Errorf("a live code (%s): %v", prefix, err)
		}
	}
	if err := codes.ValidateAuthorizeCode(ctx, req, "pending.x"); err == nil {
		t.Error("a placeholder was accepted as a code")
	}
	req.Session.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(-time.Second))
	if err := codes.ValidateAuthorizeCode(ctx, req, sealedCodePrefix+"x"); err == nil {
		t.Error("an expired code was accepted")
	}
}
