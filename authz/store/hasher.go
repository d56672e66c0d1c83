package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ory/fosite"
)

// SecretHasher hashes client secrets with HMAC-SHA-256 under a server key.
//
// Why not bcrypt (fosite's default) or PBKDF2 (Hydra's): those exist to make
// guessing a low-entropy password expensive. numverify makes every client
// secret itself, 256 random bits, so there is nothing to guess: a stolen table
// of HMACs is no shortcut to a secret, and without the server key not even a
// test of one. A keyed fast hash is then as safe and costs microseconds, where
// bcrypt at cost 12 spends about a quarter of a second of CPU on every token
// request and would make the token endpoint the bottleneck (DESIGN, "Client
// authentication").
type SecretHasher struct {
	key []byte
}

var _ fosite.Hasher = (*SecretHasher)(nil)

// MinHasherKeyLength is the shortest key NewSecretHasher accepts.
const MinHasherKeyLength = 32

// NewSecretHasher returns a hasher keyed by key (at least 32 bytes; derive it
// with keystore.DeriveKey(secretsKey, keystore.LabelClientSecretHMAC)).
func NewSecretHasher(key []byte) (*SecretHasher, error) {
	if len(key) < MinHasherKeyLength {
		return nil, fmt.Errorf("client secret HMAC key: %d bytes, want at least %d", len(key), MinHasherKeyLength)
	}
	return &SecretHasher{key: append([]byte(nil), key...)}, nil
}

// ErrSecretMismatch is returned by Compare when the secret does not match.
var ErrSecretMismatch = errors.New("client secret does not match")

// Hash returns HMAC-SHA-256(key, data).
func (h *SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	mac := hmac.New(sha256.New, h.key)
	mac.Write(data)
	return mac.Sum(nil), nil
}

// Compare returns nil when hash is the HMAC of data, in constant time.
func (h *SecretHasher) Compare(ctx context.Context, hash, data []byte) error {
	sum, _ := h.Hash(ctx, data)
	if len(hash) == 0 || !hmac.Equal(hash, sum) {
		return ErrSecretMismatch
	}
	return nil
}
