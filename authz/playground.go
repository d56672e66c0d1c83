package authz

import (
	"context"
	"net/http"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/contract"
)

// The playground (Config.Playground, off by default): SP developers without
// a SIM log in by login_hint=tel:+… at /authorize, without the network. Its
// tokens carry amr ["playground"], not network authentication, so the
// resource server answers them 403
// NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK unless it is
// told to accept them (--resource-allow-non-network-auth). With the
// playground off, a login_hint never chooses who logs in.

// login says who logs in, and how: in the playground the number of a
// tel: login_hint, otherwise whoever the network says holds the request's
// address (identify).
func (s *Server) login(ctx context.Context, r *http.Request, ar fosite.AuthorizeRequester) (msisdn, amr string, err error) {
	if s.cfg.Playground {
		if hint, err := parseLoginHint(ar.GetRequestForm().Get("login_hint")); err == nil && hint.kind == hintPhone {
			return hint.phone, contract.AMRPlayground, nil
		}
	}
	msisdn, err = s.identify(ctx, r, ar)
	return msisdn, contract.AMRNetwork, err
}

// checkAuthorizePurposes refuses more than one purpose at /authorize (CAMARA
// ICM: exactly one). A request without any is still served: Orange's v0
// clients and older SDKs send none.
func checkAuthorizePurposes(scopes []string) error {
	if n := len(purposesOf(scopes)); n > 1 {
		return fosite.ErrInvalidScope.WithHintf("The scope must hold exactly one purpose, not %d.", n)
	}
	return nil
}
