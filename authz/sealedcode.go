package authz

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/numverify/numverify/internal/keystore"
)

// sealedCodes is the authorization-code strategy: a code carries its own
// records (the authorization request and session, the PKCE challenge, the
// OpenID Connect nonce, the client, redirect URI and expiry), sealed with
// AES-256-GCM, so /authorize writes nothing and every replica can open any
// code. Each code has a key of its own, derived (HKDF-SHA-256)
// from a key derived from the secrets key and a random 128-bit salt the
// code carries: no bound on how many codes one secrets key seals, as random
// 96-bit nonces under one key would have (2^32). Only the
// code's single use is written, at /token (store.WithSealedCodeExchange).
//
// fosite issues a placeholder (GenerateAuthorizeCode) under which its
// handlers create the records; handleAuthorize collects them and hands out
// the sealed code instead. A code's signature, as the store sees it, is the
// code itself (the store keeps only its SHA-256).
//
// The records are not compressed (format nv2). A code's length must not
// depend on its content: it carries the subscriber's number beside what
// the service provider chose (state, nonce, login_hint), and the provider
// sees the code. Compressed (nv1, before), a guess of the number put in
// the state would have made the code shorter when right, as CRIME and
// BREACH read secrets from compressed HTTPS. It was also the largest part
// of the code's cost (deflating and inflating took 7 % of the server's CPU
// under a full login load). Codes of the nv1 format still open, so that
// those sealed by a replica of the version before an upgrade are redeemed.
type sealedCodes struct {
	key []byte
	now func() time.Time
}

var _ oauth2.AuthorizeCodeStrategy = (*sealedCodes)(nil)

const (
	labelCodeSeal    = "authz-code-seal"
	sealedCodePrefix = "nv2." // the format; a code without it (or nv1's) is not one of these
	deflatedPrefix   = "nv1." // the format before, compressed: opened, never sealed
	pendingPrefix    = "pending."
)

const saltSize = 16

func newSealedCodes(secretsKey []byte, now func() time.Time) *sealedCodes {
	if now == nil {
		now = time.Now
	}
	return &sealedCodes{key: keystore.DeriveKey(secretsKey, labelCodeSeal), now: now}
}

// aead is the cipher of the code with salt (used once: a zero nonce).
func (c *sealedCodes) aead(salt []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, c.key, salt, "numverify/authz-code", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// GenerateAuthorizeCode returns a placeholder, replaced by the sealed code
// once fosite's handlers have created its records.
func (c *sealedCodes) GenerateAuthorizeCode(context.Context, fosite.Requester) (string, string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	code := pendingPrefix + base64.RawURLEncoding.EncodeToString(b)
	return code, code, nil
}

func (c *sealedCodes) AuthorizeCodeSignature(_ context.Context, code string) string { return code }

// ValidateAuthorizeCode checks the expiry of the request the code carried
// (its integrity was checked when it was opened).
func (c *sealedCodes) ValidateAuthorizeCode(_ context.Context, r fosite.Requester, code string) error {
	if codeFormat(code) == "" {
		return fosite.ErrInvalidGrant.WithHint("The authorization code is malformed.")
	}
	// By the server's clock (Deps.Now: tests move it past a code's
	// lifetime) and by time.Now, with which fosite stamped the expiry.
	exp := r.GetSession().GetExpiresAt(fosite.AuthorizeCode)
	if exp.IsZero() || exp.Before(c.now()) || exp.Before(time.Now()) {
		return fosite.ErrTokenExpired.WithHint("The authorization code expired.")
	}
	return nil
}

// seal makes the code carrying records.
func (c *sealedCodes) seal(records []byte) (string, error) {
	salt := make([]byte, saltSize)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	aead, err := c.aead(salt)
	if err != nil {
		return "", err
	}
	sealed := aead.Seal(salt, make([]byte, aead.NonceSize()), records, []byte(sealedCodePrefix))
	return sealedCodePrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// codeFormat is the prefix of code's format (sealedCodePrefix or
// deflatedPrefix); "" for anything else.
func codeFormat(code string) string {
	for _, prefix := range []string{sealedCodePrefix, deflatedPrefix} {
		if strings.HasPrefix(code, prefix) {
			return prefix
		}
	}
	return ""
}

// maxSealedCode bounds what open reads (a code is about 2 KB).
const maxSealedCode = 16 << 10

var errNotSealed = errors.New("not a sealed code")

// open returns the records a code carries; errNotSealed for anything this
// server did not seal.
func (c *sealedCodes) open(code string) ([]byte, error) {
	prefix := codeFormat(code)
	body := strings.TrimPrefix(code, prefix)
	// One spelling per code: its single use is recorded under the code as
	// sent, so the decoder must not accept variants (it skips line breaks,
	// and without Strict ignores the last character's spare bits).
	if prefix == "" || len(body) > maxSealedCode || strings.ContainsAny(body, "\r\n") {
		return nil, errNotSealed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(raw) < saltSize+16 {
		return nil, errNotSealed
	}
	salt, ciphertext := raw[:saltSize], raw[saltSize:]
	aead, err := c.aead(salt)
	if err != nil {
		return nil, errNotSealed
	}
	plain, err := aead.Open(nil, make([]byte, aead.NonceSize()), ciphertext, []byte(prefix))
	if err != nil {
		return nil, errNotSealed
	}
	if prefix == sealedCodePrefix {
		return plain, nil
	}
	r := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(plain), nil); err != nil {
		return nil, errNotSealed
	}
	records, err := io.ReadAll(io.LimitReader(r, 4*maxSealedCode))
	if err != nil {
		return nil, errNotSealed
	}
	return records, nil
}

// flateReaders are reused: an nv1 code's reader is about 40 KB.
var flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
