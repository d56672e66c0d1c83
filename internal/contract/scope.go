package contract

import (
	"strings"
)

// Permission is what a scope allows on the resource server.
type Permission uint8

const (
	// permissionNone: the scope is valid but grants no API access by itself
	// (openid, a bare purpose).
	permissionNone Permission = iota
	// PermissionVerify: POST …/verify.
	PermissionVerify
	// PermissionShare: GET …/device-phone-number.
	PermissionShare
)

func (p Permission) String() string {
	switch p {
	case PermissionVerify:
		return "verify"
	case PermissionShare:
		return "share"
	default:
		return "none"
	}
}

// Purpose is the data-privacy-vocabulary purpose CAMARA ICM attaches to Number
// Verification scopes.
const Purpose = "dpv:FraudPreventionAndDetection"

// Scope values for Number Verification in each edition.
const (
	ScopeOpenID       = "openid"
	ScopeVerify       = "number-verification:verify"                   // v1+
	ScopeShare        = "number-verification:device-phone-number:read" // v1+
	ScopeVerifyV0     = "number-verification-verify-read"              // v0 (Orange)
	ScopeShareV0      = "number-verification-share-read"               // v0 (Orange)
	scopePurposeDelim = "#"
)

var apiScopes = map[string]Permission{
	ScopeVerify:   PermissionVerify,
	ScopeShare:    PermissionShare,
	ScopeVerifyV0: PermissionVerify,
	ScopeShareV0:  PermissionShare,
}

// MaxScopeLength bounds one scope value and MaxScopes the number of values a
// request may carry; anything longer is refused rather than parsed.
const (
	MaxScopeLength = 128
	MaxScopes      = 16
)

// ScopePermission returns the permission one scope value grants and whether
// the value is one this server accepts: the API scopes of v0 and v1+,
// "openid", the purpose on its own (current ICM), and the older
// "dpv:FraudPreventionAndDetection#<api scope>" form.
func ScopePermission(scope string) (Permission, bool) {
	if len(scope) == 0 || len(scope) > MaxScopeLength {
		return permissionNone, false
	}
	if p, ok := apiScopes[scope]; ok {
		return p, true
	}
	switch scope {
	case ScopeOpenID, Purpose:
		return permissionNone, true
	}
	if purpose, api, found := strings.Cut(scope, scopePurposeDelim); found && purpose == Purpose {
		if p, ok := apiScopes[api]; ok {
			return p, true
		}
	}
	return permissionNone, false
}

// Permissions is the set of permissions a list of scope values grants.
type Permissions struct {
	Verify bool
	Share  bool
}

// Has reports whether p includes permission.
func (p Permissions) Has(permission Permission) bool {
	switch permission {
	case PermissionVerify:
		return p.Verify
	case PermissionShare:
		return p.Share
	}
	return false
}

// ParseScope splits a space-delimited scope string (RFC 6749 §3.3), checks
// every value and returns the values and the permissions they grant. Unknown
// values are returned in unknown (the caller decides: authz refuses them with
// invalid_scope, the resource server ignores them).
func ParseScope(scope string) (values []string, perms Permissions, unknown []string) {
	for _, v := range strings.Fields(scope) {
		if len(values)+len(unknown) >= MaxScopes {
			unknown = append(unknown, v)
			continue
		}
		p, ok := ScopePermission(v)
		if !ok {
			unknown = append(unknown, v)
			continue
		}
		values = append(values, v)
		switch p {
		case PermissionVerify:
			perms.Verify = true
		case PermissionShare:
			perms.Share = true
		}
	}
	return values, perms, unknown
}

// IsNumberVerificationScope reports whether the value grants API access
// (refresh tokens are never issued for these).
func IsNumberVerificationScope(scope string) bool {
	p, ok := ScopePermission(scope)
	return ok && p != permissionNone
}
