package authz

import (
	"context"
	"slices"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/numverify/numverify/authz/store"
)

// Redirect URIs are matched exactly (RFC 9700 §4.1.3): fosite also accepts a
// loopback URI on any port (RFC 8252 §7.3), which this server does not.
func registeredExactly(client fosite.Client, redirectURI string) bool {
	return client != nil && slices.Contains(client.GetRedirectURIs(), redirectURI)
}

// codeStorage is what the authorization-code handler needs from the store.
type codeStorage interface {
	oauth2.CoreStorage
	fositestorage.Transactional
}

// missingRedirectStorage lets a client registered with
// AllowMissingRedirectURI omit redirect_uri at the token endpoint although
// the authorization request carried one (some SDKs do; RFC 6749 §4.1.3 says
// they must send it). fosite compares the two inside its code handler, so
// for such a client, and only when the token request has no redirect_uri,
// the code's record is returned without it. PKCE still binds the code to the
// client instance that asked for it. Any redirect_uri that is sent is still
// compared.
type missingRedirectStorage struct{ codeStorage }

var _ codeStorage = missingRedirectStorage{}

func (s missingRedirectStorage) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	code, err := s.codeStorage.GetAuthorizeCodeSession(ctx, signature, session)
	if code == nil {
		return code, err
	}
	access, ok := ctx.Value(fosite.AccessRequestContextKey).(*fosite.AccessRequest)
	if !ok || access.GetRequestForm().Get("redirect_uri") != "" {
		return code, err
	}
	if client, ok := access.GetClient().(*store.Client); ok && client.AllowMissingRedirectURI && client.GetID() == code.GetClient().GetID() {
		code.GetRequestForm().Del("redirect_uri")
	}
	return code, err
}
