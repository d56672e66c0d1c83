package authz

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"
)

// Request objects (request=, OpenID Connect Core §6.1) as the CAMARA ICM
// profile constrains them. fosite verifies the signature against the
// client's registered keys and exp/nbf, then merges the claims into the
// request; checkRequestObject then adds the profile's rules on the same
// (now verified) token: iss is the client, aud is this issuer, iat, exp and
// jti present, at most maxRequestObjectLifetime between iat and exp, the jti
// never seen before, and every parameter also sent in plain equal to the
// object's value.

const maxRequestObjectLifetime = 300 * time.Second

type requestObjectClaims struct {
	Issuer   string           `json:"iss"`
	Audience jwt.Audience     `json:"aud"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	Expiry   *jwt.NumericDate `json:"exp"`
	ID       string           `json:"jti"`
}

// jtiRecorder records used jti values (the store's client-assertion table).
type jtiRecorder interface {
	ClientAssertionJWTValid(ctx context.Context, jti string) error
	SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error
}

func checkRequestObject(ctx context.Context, raw string, plain url.Values, clientID, issuer string, jtis jtiRecorder) error {
	invalid := func(format string, args ...any) error {
		return fosite.ErrInvalidRequestObject.WithHintf(format, args...)
	}
	parsed, err := jwt.ParseSigned(raw, assertionAlgorithms)
	if err != nil {
		return invalid("The request object is not a signed JWT.")
	}
	var claims requestObjectClaims
	var all map[string]any
	if err := parsed.UnsafeClaimsWithoutVerification(&claims, &all); err != nil {
		return invalid("The request object's claims cannot be read.")
	}
	switch {
	case claims.Issuer != clientID:
		return invalid("The request object's iss must be the client_id.")
	case !claims.Audience.Contains(issuer):
		return invalid("The request object's aud must be the issuer %s.", issuer)
	case claims.IssuedAt == nil || claims.Expiry == nil:
		return invalid("The request object must carry iat and exp.")
	case claims.ID == "":
		return invalid("The request object must carry a jti.")
	case !cleanText(claims.ID):
		return invalid("The request object's jti holds a control character.")
	}
	if lifetime := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); lifetime <= 0 || lifetime > maxRequestObjectLifetime {
		return invalid("The request object's exp must be after its iat and at most %d seconds later.", int(maxRequestObjectLifetime.Seconds()))
	}
	for name, values := range plain {
		if name == "request" || len(values) == 0 {
			continue
		}
		claim, present := all[name]
		if !present {
			continue
		}
		if !sameParameter(name, values[0], claim) {
			return invalid("The parameter %q differs between the request and the request object.", name)
		}
	}
	key := "request_object:" + clientID + ":" + claims.ID
	if err := jtis.ClientAssertionJWTValid(ctx, key); errors.Is(err, fosite.ErrJTIKnown) {
		return invalid("The request object's jti was already used.")
	} else if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if err := jtis.SetClientAssertionJWT(ctx, key, claims.Expiry.Time()); err != nil {
		if errors.Is(err, fosite.ErrJTIKnown) {
			return invalid("The request object's jti was already used.")
		}
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}

// sameParameter compares a plain parameter with the request object's claim:
// strings exactly, except scope, compared as a set of values.
func sameParameter(name, plain string, claim any) bool {
	s, ok := claim.(string)
	if !ok {
		return plain == fmt.Sprint(claim)
	}
	if name == "scope" {
		a, b := strings.Fields(plain), strings.Fields(s)
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(slices.Compact(a), slices.Compact(b))
	}
	return plain == s
}
