package authz

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/authz/store"
)

// Pairwise subjects (OpenID Connect Core §8.1): the "sub" a client sees is
// HMAC-SHA-256(server key, sector ‖ 0 ‖ MSISDN), so it is stable for one
// sector, different across sectors, and reveals nothing of the number to
// anyone without the server key.

type subjects struct{ key []byte }

func (s subjects) pairwise(sector, msisdn string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("numverify-pairwise-v1\x00"))
	mac.Write([]byte(sector))
	mac.Write([]byte{0})
	mac.Write([]byte(msisdn))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sectorOf is the client's sector identifier when it registered one, else
// the host of the redirect URI of this request (OIDC Core §8.1).
func sectorOf(client fosite.Client, redirectURI *url.URL) string {
	if c, ok := client.(*store.Client); ok && c.SectorIdentifier != "" {
		return c.SectorIdentifier
	}
	if redirectURI == nil {
		return ""
	}
	if redirectURI.Host == "" {
		return redirectURI.Scheme + ":" // private-use scheme: the scheme is the sector
	}
	return redirectURI.Hostname()
}
