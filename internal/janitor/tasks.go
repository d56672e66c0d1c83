package janitor

import "time"

// MaxClockSkew is the largest leeway on exp a resource server accepts
// (resource.Config.Validate); the margin on revocations and used jtis when
// the resource server's own setting is not known to this process.
const MaxClockSkew = 5 * time.Minute

// Lifetimes are the settings from which the expiry margins follow.
type Lifetimes struct {
	// AccessToken is the authorization server's access token lifetime
	// (--access-token-lifetime).
	AccessToken time.Duration
	// ClockSkew is the resource server's leeway on exp
	// (--resource-clock-skew): a token is accepted that long after it
	// expired, so what refuses it must stay that long too.
	ClockSkew time.Duration
}

// Tasks is what expires and when, table by table: the only place that knows.
// Each row carries its own expiry, made from the configured lifetime of its
// kind when it was written (codes, PKCE and OpenID Connect records: the code
// lifetime; access and refresh tokens: theirs; client-assertion jtis: the
// assertion's exp, at most its iat + 300 s; revocations and used jtis: the
// token's expiry; revoked clients: their longest token's); the margins here
// are what must outlive that expiry:
//
//   - an authorization code, redeemed or not, is kept for one access token
//     lifetime past its expiry, and as long as a refresh token of its login
//     lives: a replayed code must still find the code to be refused as used
//     (not unknown) and revoke every token it issued (RFC 6749 §4.1.2);
//   - an access token, a revocation and a used jti are kept for the resource
//     server's clock skew past the token's expiry, since it accepts the
//     token that long;
//   - PKCE and OpenID Connect records, refresh tokens and client-assertion
//     jtis go at their expiry: nothing accepts them afterwards;
//   - a retired key goes once retired: the key store no longer loads it.
func Tasks(l Lifetimes) []Task {
	// Closed network sessions are not here: they leave the hot table for
	// the history's daily partitions, dropped whole
	// (network.Store.MaintainHistory).
	return []Task{
		{Name: "PKCE requests", Table: "oauth2_requests", Expiry: "expires_at", Where: "kind = 'pkce'"},
		{Name: "OpenID Connect sessions", Table: "oauth2_requests", Expiry: "expires_at", Where: "kind = 'oidc'"},
		{Name: "access tokens", Table: "oauth2_requests", Expiry: "expires_at", Where: "kind = 'access'", Retention: l.ClockSkew},
		{Name: "refresh tokens", Table: "oauth2_requests", Expiry: "expires_at", Where: "kind = 'refresh'"},
		// After the refresh tokens, which a code waits for.
		{Name: "authorization codes", Table: "oauth2_requests", Expiry: "expires_at", Retention: l.AccessToken,
			Where: `kind = 'code' AND NOT EXISTS (SELECT 1 FROM oauth2_requests refresh
				WHERE refresh.request_id = oauth2_requests.request_id AND refresh.kind = 'refresh')`},
		{Name: "client assertion jtis", Table: "oauth2_client_assertion_jtis", Expiry: "expires_at"},
		{Name: "token revocations", Table: "revoked_tokens", Expiry: "expires_at", Retention: l.ClockSkew},
		{Name: "client revocations", Table: "revoked_clients", Expiry: "expires_at", Retention: l.ClockSkew},
		{Name: "used access tokens", Table: "used_access_tokens", Expiry: "expires_at", Retention: l.ClockSkew},
		{Name: "retired keys", Table: "keys", Expiry: "retire_at"},
		// Nothing redeems an operator token, or polls a CIBA request, past
		// its expiry.
		{Name: "operator tokens", Table: "operator_tokens", Expiry: "expires_at"},
		{Name: "CIBA requests", Table: "ciba_requests", Expiry: "expires_at"},
	}
}
