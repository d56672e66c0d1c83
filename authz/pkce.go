package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/pkce"
)

// pkceS256 is PKCE (RFC 7636) as this server requires it: for every client,
// S256 only, the challenge the shape of a SHA-256 digest, the verifier
// compared in constant time, and the challenge single-use. It replaces
// fosite's pkce.Handler, which also knows "plain", makes PKCE optional per
// configuration, and compares with ==.
//
// It must run after the authorization-code handler on both endpoints: at
// /authorize it needs the code that handler issued, and at /token the code
// handler must see a replayed code first, so that the replay revokes what the
// code issued instead of failing here on the PKCE record already consumed.
type pkceS256 struct {
	codes   oauth2.AuthorizeCodeStrategy
	storage pkce.PKCERequestStorage
}

var (
	_ fosite.AuthorizeEndpointHandler = (*pkceS256)(nil)
	_ fosite.TokenEndpointHandler     = (*pkceS256)(nil)
)

const (
	challengeLength   = 43 // base64url of 32 bytes, unpadded
	minVerifierLength = 43
	maxVerifierLength = 128
)

func (h *pkceS256) HandleAuthorizeEndpointRequest(ctx context.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) error {
	if !ar.GetResponseTypes().Has("code") {
		return nil
	}
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "":
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge and code_challenge_method=S256.")
	case method != "S256":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	case len(challenge) != challengeLength || !isBase64URL(challenge):
		return fosite.ErrInvalidRequest.WithHint("code_challenge must be the base64url SHA-256 of the code verifier (43 characters).")
	}
	code := resp.GetCode()
	if code == "" {
		return fosite.ErrServerError.WithDebug("the PKCE handler must run after the authorization code handler")
	}
	signature := h.codes.AuthorizeCodeSignature(ctx, code)
	if err := h.storage.CreatePKCERequestSession(ctx, signature, ar.Sanitize([]string{"code_challenge", "code_challenge_method"})); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}

func (h *pkceS256) HandleTokenEndpointRequest(ctx context.Context, request fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, request) {
		return fosite.ErrUnknownRequest
	}
	form := request.GetRequestForm()
	verifier := form.Get("code_verifier")
	signature := h.codes.AuthorizeCodeSignature(ctx, form.Get("code"))
	stored, err := h.storage.GetPKCERequestSession(ctx, signature, request.GetSession())
	if errors.Is(err, fosite.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("No PKCE challenge is recorded for this code.")
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	// Single use: a wrong verifier burns the challenge.
	if err := h.storage.DeletePKCERequestSession(ctx, signature); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	challenge := stored.GetRequestForm().Get("code_challenge")
	if stored.GetRequestForm().Get("code_challenge_method") != "S256" || len(challenge) != challengeLength {
		return fosite.ErrInvalidGrant.WithHint("The recorded PKCE challenge is not S256.")
	}
	switch {
	case verifier == "":
		return fosite.ErrInvalidGrant.WithHint("code_verifier is required.")
	case len(verifier) < minVerifierLength || len(verifier) > maxVerifierLength || !isUnreserved(verifier):
		return fosite.ErrInvalidGrant.WithHint("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~].")
	}
	sum := sha256.Sum256([]byte(verifier))
	computed := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) != 1 {
		return fosite.ErrInvalidGrant.WithHint("The code_verifier does not match the code_challenge.")
	}
	return nil
}

func (h *pkceS256) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return nil
}

func (h *pkceS256) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (h *pkceS256) CanHandleTokenEndpointRequest(_ context.Context, request fosite.AccessRequester) bool {
	return request.GetGrantTypes().ExactOne("authorization_code")
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isUnreserved: RFC 7636 §4.1 code-verifier characters.
func isUnreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}
