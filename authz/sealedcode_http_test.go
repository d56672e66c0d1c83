package authz_test

import (
	"context"
	"testing"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
)

// A code that carries its records is refused at /token when altered (an
// altered code spends nothing: the genuine one still works), and it is short
// enough for any redirect: about 2 KB (uncompressed, see sealedCodes), where
// nginx and Apache take request lines of 8 KB by default and browsers URLs
// of megabytes.
func TestSealedCodeAlteredRefused(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	conf, code, verifier := srv.code(t, sp, srv.newDevice())
	if len(code) > 3072 {
		t.Errorf("the code is %d characters, want at most 3072", len(code))
	}
	t.Logf("code of %d characters", len(code))
	mid := len(code) / 2
	flipped := byte('A')
	if code[mid] == 'A' {
		flipped = 'B'
	}
	altered := code[:mid] + string(flipped) + code[mid+1:]
	ctx := context.Background()
	for _, bad := range []string{altered, code[:len("nv2.")] + code[len("nv2.")+1:], "not-a-code"} {
		_, err := conf.Exchange(ctx, bad, oauth2.VerifierOption(verifier))
		if e, _ := tokenError(t, err); e != "invalid_grant" {
			t.Errorf("altered code: %s, want invalid_grant", e)
		}
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("the genuine code after the altered ones: %v", err)
	}
}
