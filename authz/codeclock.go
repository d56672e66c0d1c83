package authz

import (
	"context"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// clockedCodes is fosite's HMAC authorization-code strategy with the code's
// expiry judged first by the server's clock (Deps.Now), so that tests move
// the clock past a code's lifetime instead of sleeping through it. fosite
// stamps the expiry when it issues the code, and its own check here, after
// ours, compares with time.Now: neither can take a clock, so with the real
// clock both agree and with a moved one ours answers first.
type clockedCodes struct {
	oauth2.AuthorizeCodeStrategy
	now func() time.Time
}

var _ oauth2.AuthorizeCodeStrategy = clockedCodes{}

// ValidateAuthorizeCode refuses a code whose expiry has passed, else asks
// fosite's strategy (expiry by time.Now, then the HMAC).
func (c clockedCodes) ValidateAuthorizeCode(ctx context.Context, r fosite.Requester, code string) error {
	if exp := r.GetSession().GetExpiresAt(fosite.AuthorizeCode); !exp.IsZero() && exp.Before(c.now()) {
		return fosite.ErrTokenExpired.WithHintf("Authorize code expired at '%s'.", exp.UTC())
	}
	return c.AuthorizeCodeStrategy.ValidateAuthorizeCode(ctx, r, code)
}
