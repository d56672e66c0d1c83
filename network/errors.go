package network

import "errors"

// The store's sentinel errors; the admin API maps each to one HTTP status.
var (
	// ErrInvalid wraps every refusal of malformed input (MSISDN, address,
	// port range, attribute): nothing was stored. → 400
	ErrInvalid = errors.New("invalid input")
	// ErrSessionNotFound: no session has this id. → 404
	ErrSessionNotFound = errors.New("network: no such session")
	// ErrAlreadyDetached: the session exists but its period is already closed. → 409
	ErrAlreadyDetached = errors.New("network: session already detached")
	// ErrAddressInUse: another session holds the address (and ports) now.
	// The holder is deliberately not disclosed. → 409
	ErrAddressInUse = errors.New("network: address in use")
	// ErrPoolExhausted: every address (or port block) of the pool is held. → 409
	ErrPoolExhausted = errors.New("network: address pool exhausted")
	// ErrPoolNotConfigured: allocation was asked from a pool this server has
	// no configuration for. → 400
	ErrPoolNotConfigured = errors.New("network: address pool not configured")
	// ErrPortRequired: the address is shared behind CGNAT, so only a port
	// tells its holders apart. → 400
	ErrPortRequired = errors.New("network: address is shared behind CGNAT; a port is required")
)
