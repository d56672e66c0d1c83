package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SecretsKeyLength is the size of NUMVERIFY_SECRETS_KEY: 256 bits.
const SecretsKeyLength = 32

// Labels of the keys derived from the secrets key; one secret configures
// everything, each use gets its own key.
const (
	// LabelClientSecretHMAC keys the HMAC of OAuth2 client secrets
	// (authz/store.SecretHasher); the provider and `numverify client create`
	// must derive the same.
	LabelClientSecretHMAC = "client-secret-hmac"
	// labelPrivateKeyEncryption keys the AES-256-GCM encryption at rest of
	// the private JWKs sealed for the authorization server (signing keys),
	// derived from NUMVERIFY_SECRETS_KEY.
	labelPrivateKeyEncryption = "private-jwk-aes-256-gcm"
	// labelResourcePrivateKeyEncryption keys the encryption at rest of the
	// private JWKs sealed for the resource server (its decryption key and the
	// direct key), derived from NUMVERIFY_RESOURCE_SECRETS_KEY.
	labelResourcePrivateKeyEncryption = "resource-private-jwk-aes-256-gcm"
	// labelResourceSecretsKey derives the default resource secrets key from
	// the secrets key (DeriveResourceSecretsKey).
	labelResourceSecretsKey = "resource-secrets-key"
)

// DeriveResourceSecretsKey is the resource secrets key the authorization
// server uses when none is configured: one-way from the secrets key, so a
// resource server given it learns nothing of the secrets key. `numverify keys
// resource-secrets-key` prints it for resource servers run apart.
func DeriveResourceSecretsKey(secretsKey []byte) []byte {
	return DeriveKey(secretsKey, labelResourceSecretsKey)
}

// SecretsKeyHelp tells an operator how to make a secrets key.
const SecretsKeyHelp = "32 random bytes, base64 or hex; make one with `openssl rand -base64 32`"

// errWrongSecretsKey means stored private keys cannot be decrypted with the
// configured secrets key: it is not the one they were written with.
var errWrongSecretsKey = errors.New("stored keys cannot be decrypted with this secrets key (NUMVERIFY_SECRETS_KEY differs from the one they were created with)")

// errWrongResourceSecretsKey is errWrongSecretsKey for the keys sealed for
// the resource server (errors.Is matches both).
var errWrongResourceSecretsKey = fmt.Errorf("%w: resource server keys (NUMVERIFY_RESOURCE_SECRETS_KEY differs from the one they were sealed with)", errWrongSecretsKey)

// ParseSecretsKey decodes a secrets key given as base64 (standard or URL
// alphabet, with or without padding) or hex, and checks it is 32 bytes.
func ParseSecretsKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("secrets key is empty: want %s", SecretsKeyHelp)
	}
	decoders := []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	}
	for _, decode := range decoders {
		if b, err := decode(s); err == nil && len(b) == SecretsKeyLength {
			return b, nil
		}
	}
	return nil, fmt.Errorf("secrets key is not %d bytes in base64 or hex: want %s", SecretsKeyLength, SecretsKeyHelp)
}

// DeriveKey derives a 32-byte key for one use (label) from the secrets key
// with HKDF-SHA-256, so that keys for different uses are independent.
func DeriveKey(secretsKey []byte, label string) []byte {
	key, err := hkdf.Key(sha256.New, secretsKey, nil, "numverify/"+label, 32)
	if err != nil {
		panic(fmt.Sprintf("hkdf: %v", err)) // only for lengths > 255*32 bytes
	}
	return key
}

// sealer encrypts private JWKs at rest for one role: AES-256-GCM, a random
// nonce stored in front of the ciphertext, the kid as additional data (a
// row's key cannot be moved to another kid).
type sealer struct {
	aead     cipher.AEAD
	wrongKey error // what open says when the key is not the one that sealed
}

func newSealer(secretsKey []byte, label string, wrongKey error) (*sealer, error) {
	if len(secretsKey) != SecretsKeyLength {
		return nil, fmt.Errorf("secrets key is %d bytes, want %d (%s)", len(secretsKey), SecretsKeyLength, SecretsKeyHelp)
	}
	block, err := aes.NewCipher(DeriveKey(secretsKey, label))
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return &sealer{aead: aead, wrongKey: wrongKey}, nil
}

func (s *sealer) seal(kid string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(kid)), nil
}

func (s *sealer) open(kid string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("key %s: stored private key is truncated", kid)
	}
	plaintext, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", kid, s.wrongKey)
	}
	return plaintext, nil
}
