package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/pg"
)

// kind selects which fosite record a row of oauth2_requests is.
type kind string

const (
	kindCode    kind = "code"
	kindPKCE    kind = "pkce"
	kindOIDC    kind = "oidc"
	kindAccess  kind = "access"
	kindRefresh kind = "refresh"
)

// tokenType is the session expiry that becomes the row's expires_at.
func (k kind) tokenType() fosite.TokenType {
	switch k {
	case kindAccess:
		return fosite.AccessToken
	case kindRefresh:
		return fosite.RefreshToken
	default:
		return fosite.AuthorizeCode
	}
}

// sensitiveFormFields are never stored with a request: credentials, PKCE
// verifiers and the tokens being exchanged.
var sensitiveFormFields = []string{
	"client_secret", "client_assertion", "code_verifier", "password",
	"code", "refresh_token", "token", "assertion", "subject_token", "actor_token",
}

// hashSignature is what the signature column holds: SHA-256 of the fosite
// signature (or, for OpenID Connect sessions, of the code fosite passes).
func hashSignature(signature string) []byte {
	sum := sha256.Sum256([]byte(signature))
	return sum[:]
}

// accessTokenIdentifier is implemented by sessions that carry the jti of the
// JWT access token they are issued with.
type accessTokenIdentifier interface{ AccessTokenID() string }

// requestRow is a fosite request as stored.
type requestRow struct {
	requestID        string
	requestedAt      time.Time
	clientID         string
	subject          string
	scopes           []string
	grantedScopes    []string
	audiences        []string
	grantedAudiences []string
	form             []byte
	session          []byte
	expiresAt        *time.Time
	jti              *string
}

func newRequestRow(k kind, r fosite.Requester) (*requestRow, error) {
	if r.GetClient() == nil {
		return nil, errors.New("request has no client")
	}
	form := url.Values{}
	for key, values := range r.GetRequestForm() {
		if !isSensitiveField(key) {
			form[key] = values
		}
	}
	formJSON, err := json.Marshal(form)
	if err != nil {
		return nil, fmt.Errorf("encode form: %w", err)
	}
	row := &requestRow{
		requestID:        r.GetID(),
		requestedAt:      r.GetRequestedAt(),
		clientID:         r.GetClient().GetID(),
		scopes:           nonNil(r.GetRequestedScopes()),
		grantedScopes:    nonNil(r.GetGrantedScopes()),
		audiences:        nonNil(r.GetRequestedAudience()),
		grantedAudiences: nonNil(r.GetGrantedAudience()),
		form:             formJSON,
	}
	if row.requestedAt.IsZero() {
		row.requestedAt = time.Now().UTC()
	}
	if session := r.GetSession(); session != nil {
		row.subject = session.GetSubject()
		if exp := session.GetExpiresAt(k.tokenType()); !exp.IsZero() {
			row.expiresAt = &exp
		}
		if k == kindAccess {
			if ider, ok := session.(accessTokenIdentifier); ok {
				if jti := ider.AccessTokenID(); jti != "" {
					row.jti = &jti
				}
			}
		}
	}
	if row.session, err = json.Marshal(r.GetSession()); err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	return row, nil
}

func isSensitiveField(key string) bool {
	for _, f := range sensitiveFormFields {
		if strings.EqualFold(key, f) {
			return true
		}
	}
	return false
}

func nonNil(a fosite.Arguments) []string {
	if a == nil {
		return []string{}
	}
	return a
}

// createRequest stores r as a record of kind k under signature (short-lived:
// inside a unit of work, written with the unit; alone, asynchronously).
func (s *Store) createRequest(ctx context.Context, k kind, signature string, r fosite.Requester, accessSignature []byte) error {
	row, err := newRequestRow(k, r)
	if err != nil {
		return fmt.Errorf("store %s: %w", k, err)
	}
	key := rowKey{k, string(hashSignature(signature))}
	if u := unitFrom(ctx); u != nil {
		u.insert(key, row, accessSignature)
		return nil
	}
	sql, args := insertStatement([]insertRow{{key, row, accessSignature}}, false, 0, false)
	if err := s.execShortLived(ctx, sql, args...); err != nil {
		return fmt.Errorf("store %s: %w", k, pg.MapError(err))
	}
	return nil
}

// storedRequest is a row of oauth2_requests as read, with its client.
type storedRequest struct {
	requestID                              string
	requestedAt                            time.Time
	scopes, granted, audiences, grantedAud []string
	form, session                          []byte
	active                                 bool
	client                                 Client
	jwks                                   []byte
	ready                                  fosite.Client // a client already read (a sealed code's); else client
}

// requestColumns are the columns scanDest reads, with the client's.
var requestColumns = `r.request_id, r.requested_at, r.scopes, r.granted_scopes, r.audiences,
	r.granted_audiences, r.form, r.session, r.active, ` + clientColumnsOf("c")

func (r *storedRequest) scanDest() []any {
	return append([]any{&r.requestID, &r.requestedAt, &r.scopes, &r.granted, &r.audiences,
		&r.grantedAud, &r.form, &r.session, &r.active}, r.client.scanDest(&r.jwks)...)
}

// request decodes the row into a fosite request, its session into session
// (when not nil).
func (r *storedRequest) request(k kind, session fosite.Session) (*fosite.Request, error) {
	var fc fosite.Client = r.ready
	if fc == nil {
		client := r.client
		if err := client.finishScan(r.jwks); err != nil {
			return nil, err
		}
		fc = &client
	}
	req := &fosite.Request{
		ID:                r.requestID,
		RequestedAt:       r.requestedAt.UTC(),
		Client:            fc,
		RequestedScope:    slices.Clone(r.scopes),
		GrantedScope:      slices.Clone(r.granted),
		RequestedAudience: slices.Clone(r.audiences),
		GrantedAudience:   slices.Clone(r.grantedAud),
	}
	if err := json.Unmarshal(r.form, &req.Form); err != nil {
		return nil, fmt.Errorf("load %s: decode form: %w", k, err)
	}
	if req.Form == nil {
		req.Form = url.Values{}
	}
	if session != nil {
		if err := json.Unmarshal(r.session, session); err != nil {
			return nil, fmt.Errorf("load %s: decode session into %T: %w", k, session, err)
		}
	}
	req.Session = session
	return req, nil
}

// getRequest loads the record of kind k stored under signature, with its
// client, decoding the session into session (when not nil). With lock, and
// inside a transaction, the row stays locked until the transaction ends.
// A record the code exchange in ctx has read is not read again.
// It returns fosite.ErrNotFound when there is no such record.
func (s *Store) getRequest(ctx context.Context, k kind, signature string, session fosite.Session, lock bool) (*fosite.Request, bool, error) {
	key := rowKey{k, string(hashSignature(signature))}
	if row, loaded := unitFrom(ctx).get(key); loaded {
		if row == nil {
			return nil, false, fosite.ErrNotFound
		}
		req, err := row.request(k, session)
		return req, row.active, err
	}
	query := `SELECT ` + requestColumns + `
		FROM oauth2_requests r JOIN oauth2_clients c ON c.id = r.client_id
		WHERE r.kind = $1 AND r.signature = $2`
	if lock && txFrom(ctx) != nil {
		query += ` FOR UPDATE OF r`
	}
	var row storedRequest
	err := s.db(ctx).QueryRow(ctx, query, string(k), []byte(key.signature)).Scan(row.scanDest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, fosite.ErrNotFound
	}
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", k, pg.MapError(err))
	}
	req, err := row.request(k, session)
	return req, row.active, err
}

// deleteRequest removes the record of kind k stored under signature; removing
// one that is not there is not an error.
func (s *Store) deleteRequest(ctx context.Context, k kind, signature string) error {
	key := rowKey{k, string(hashSignature(signature))}
	if u := unitFrom(ctx); u != nil {
		u.remove(key)
		return nil
	}
	if err := s.execShortLived(ctx, sqlDeleteRequest, string(k), []byte(key.signature)); err != nil {
		return fmt.Errorf("delete %s: %w", k, pg.MapError(err))
	}
	return nil
}

// Expired records are deleted by internal/janitor (janitor.Tasks says when
// each kind expires), on a timer in `numverify serve`.
