package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/pg"
)

// A login is two units of work, not transactions of one statement per
// fosite call. Its authorization code carries its own records (the caller
// seals them into the code):
//
//   - CollectAuthorizeRecords (/authorize): the code, PKCE and OpenID
//     Connect records fosite creates are returned, encoded, and nothing is
//     written.
//   - WithSealedCodeExchange (/token): the records come back with the code
//     and the getters answer from them; what fosite writes (the code's
//     redemption and the token records) goes at the end as one statement,
//     committed durably: a row for the used code, and the tokens only if
//     that row is new. Of concurrent exchanges of one code exactly one
//     issues tokens; every other one, and any later use of the code, finds
//     the row, revokes those tokens (RFC 6749 §4.1.2) and is invalid_grant.
//
// This file is the only one that knows a unit's state; the record methods
// ask it through unitFrom and the unit's methods.

type unitKey struct{}

// unit is the writes of one login step; used by one goroutine.
type unit struct {
	loaded   map[rowKey]*storedRequest // a code exchange's records (nil value: none); nil at /authorize
	codeKey  rowKey
	usedCode *insertRow // exchange: the row that records the code's use
	redeem   bool       // the code is redeemed by this exchange
	deletes  []rowKey
	inserts  []insertRow
	failed   bool // fosite rolled back
}

type rowKey struct {
	kind      kind
	signature string // hashed, as a string
}

type insertRow struct {
	key             rowKey
	row             *requestRow
	accessSignature []byte
}

func unitFrom(ctx context.Context) *unit {
	u, _ := ctx.Value(unitKey{}).(*unit)
	return u
}

func (u *unit) fail() { u.failed = true }

// get answers a read of a record the exchange loaded.
func (u *unit) get(key rowKey) (*storedRequest, bool) {
	if u == nil || u.loaded == nil {
		return nil, false
	}
	row, ok := u.loaded[key]
	return row, ok
}

// insert keeps a record to create.
func (u *unit) insert(key rowKey, row *requestRow, accessSignature []byte) {
	u.inserts = append(u.inserts, insertRow{key, row, accessSignature})
	if u.loaded != nil {
		delete(u.loaded, key)
	}
}

// remove keeps a record to delete.
func (u *unit) remove(key rowKey) {
	u.deletes = append(u.deletes, key)
	if u.loaded != nil {
		u.loaded[key] = nil
	}
}

// deleted reports whether the unit deletes the record under key.
func (u *unit) deleted(key rowKey) bool {
	for _, k := range u.deletes {
		if k == key {
			return true
		}
	}
	return false
}

// redeemCode answers an InvalidateAuthorizeCodeSession of the exchange's
// code; handled is false for any other code.
func (u *unit) redeemCode(key rowKey) (handled bool, err error) {
	if u == nil || u.loaded == nil || key != u.codeKey {
		return false, nil
	}
	row := u.loaded[key]
	switch {
	case row == nil:
		return true, fosite.ErrNotFound
	case !row.active:
		return true, fosite.ErrInvalidatedAuthorizeCode
	}
	row.active = false
	u.redeem = true
	return true, nil
}

// sealedRecord is one record as it travels inside a code.
//
// fosite makes the code, PKCE and OpenID Connect records of one request
// with one session, and only their forms differ (each keeps the parameters
// its handler needs). So a record whose every other field is the first
// record's carries only its kind and form, and says Same: a login's
// records are then about 1.4 KB rather than 2.0 KB (the code is not
// compressed, see sealedCodes).
type sealedRecord struct {
	Kind             kind            `json:"k"`
	Same             bool            `json:"=,omitempty"` // all but Kind and Form are the first record's
	RequestID        string          `json:"i,omitempty"`
	RequestedAt      time.Time       `json:"t,omitzero"`
	ClientID         string          `json:"c,omitempty"`
	Subject          string          `json:"s,omitempty"`
	Scopes           []string        `json:"sc,omitempty"`
	GrantedScopes    []string        `json:"gs,omitempty"`
	Audiences        []string        `json:"au,omitempty"`
	GrantedAudiences []string        `json:"ga,omitempty"`
	Form             json.RawMessage `json:"f"`
	Session          json.RawMessage `json:"ss,omitempty"`
	ExpiresAt        *time.Time      `json:"e,omitempty"`
}

// sameRequest reports whether r and first differ in nothing but their kind
// and form.
func (r *sealedRecord) sameRequest(first *sealedRecord) bool {
	sameTime := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
	return r.RequestID == first.RequestID && r.RequestedAt.Equal(first.RequestedAt) && r.ClientID == first.ClientID &&
		r.Subject == first.Subject && slices.Equal(r.Scopes, first.Scopes) && slices.Equal(r.GrantedScopes, first.GrantedScopes) &&
		slices.Equal(r.Audiences, first.Audiences) && slices.Equal(r.GrantedAudiences, first.GrantedAudiences) &&
		bytes.Equal(r.Session, first.Session) && sameTime(r.ExpiresAt, first.ExpiresAt)
}

// CollectAuthorizeRecords runs fn (fosite's NewAuthorizeResponse) and
// returns the records it created, encoded, instead of storing them. The
// caller seals them into the code (they hold the subscriber's session).
func (s *Store) CollectAuthorizeRecords(ctx context.Context, fn func(ctx context.Context) error) ([]byte, error) {
	u := &unit{}
	if err := fn(context.WithValue(ctx, unitKey{}, u)); err != nil {
		return nil, err
	}
	if u.failed {
		return nil, fosite.ErrServerError.WithDebug("the authorization was rolled back")
	}
	records := make([]sealedRecord, 0, len(u.inserts))
	for _, w := range u.inserts {
		r := w.row
		record := sealedRecord{Kind: w.key.kind, RequestID: r.requestID, RequestedAt: r.requestedAt,
			ClientID: r.clientID, Subject: r.subject, Scopes: r.scopes, GrantedScopes: r.grantedScopes,
			Audiences: r.audiences, GrantedAudiences: r.grantedAudiences, Form: r.form, Session: r.session,
			ExpiresAt: r.expiresAt}
		if len(records) > 0 && record.sameRequest(&records[0]) {
			record = sealedRecord{Kind: record.Kind, Same: true, Form: record.Form}
		}
		records = append(records, record)
	}
	return json.Marshal(records)
}

// WithSealedCodeExchange runs one authorization-code exchange (fosite's
// NewAccessRequest and NewAccessResponse in fn) for a code that carries its
// records (CollectAuthorizeRecords; the caller has opened and authenticated
// them; codeSignature is fosite's signature of code): nothing is read but
// the client (cached), and the writes are one statement: the used code's
// row, and the tokens only if that row is new. An exchange refused before
// its PKCE check writes nothing; one whose PKCE check failed spends the code.
// A code presented again (a row already there) revokes what it issued and
// is answered invalid_grant, also when its PKCE check failed.
func (s *Store) WithSealedCodeExchange(ctx context.Context, records []byte, codeSignature, code string, fn func(ctx context.Context) error) error {
	var decoded []sealedRecord
	if err := json.Unmarshal(records, &decoded); err != nil {
		return fosite.ErrInvalidGrant.WithHint("The authorization code is malformed.")
	}
	codeSig := hashSignature(codeSignature)
	u := &unit{codeKey: rowKey{kindCode, string(codeSig)}, loaded: map[rowKey]*storedRequest{}}
	keys := map[kind]rowKey{
		kindCode: u.codeKey, kindPKCE: {kindPKCE, string(codeSig)}, kindOIDC: {kindOIDC, string(hashSignature(code))},
	}
	for _, k := range keys {
		u.loaded[k] = nil
	}
	clients := map[string]fosite.Client{}
	for i, r := range decoded {
		if r.Same && i > 0 && !decoded[0].Same {
			first := decoded[0]
			first.Kind, first.Form = r.Kind, r.Form
			r = first
		}
		if r.Same || len(r.Session) == 0 {
			return fosite.ErrInvalidGrant.WithHint("The authorization code is malformed.")
		}
		key, ok := keys[r.Kind]
		if !ok {
			continue
		}
		client, err := clients[r.ClientID], error(nil)
		if client == nil {
			if client, err = s.GetClient(ctx, r.ClientID); errors.Is(err, fosite.ErrNotFound) {
				continue // a deleted client's code finds nothing
			} else if err != nil {
				return err
			}
			clients[r.ClientID] = client
		}
		u.loaded[key] = &storedRequest{requestID: r.RequestID, requestedAt: r.RequestedAt, scopes: r.Scopes,
			granted: r.GrantedScopes, audiences: r.Audiences, grantedAud: r.GrantedAudiences,
			form: r.Form, session: r.Session, active: true, ready: client}
		if r.Kind == kindCode {
			// The used code's row: enough to refuse it and find what it issued.
			u.usedCode = &insertRow{key: u.codeKey, row: &requestRow{requestID: r.RequestID,
				requestedAt: r.RequestedAt, clientID: r.ClientID, subject: r.Subject, scopes: []string{},
				grantedScopes: []string{}, audiences: []string{}, grantedAudiences: []string{},
				form: []byte("{}"), session: []byte("{}"), expiresAt: r.ExpiresAt}}
		}
	}
	fnErr := fn(context.WithValue(ctx, unitKey{}, u))
	if fnErr != nil || u.failed {
		if u.usedCode == nil || !u.deleted(keys[kindPKCE]) {
			return orRolledBack(fnErr) // refused before the PKCE check: the code is not spent
		}
		// The PKCE check failed: spend the code all the same (a wrong
		// verifier burns it); if it was spent already, this was a replay.
		sql, args := insertStatement([]insertRow{*u.usedCode}, false, 0, true)
		tag, err := s.pool.Exec(ctx, sql, args...)
		if err != nil {
			return errors.Join(orRolledBack(fnErr), fmt.Errorf("spend code: %w", pg.MapError(err)))
		}
		if tag.RowsAffected() == 0 {
			return s.revokeReplayed(ctx, u.usedCode.row.requestID)
		}
		return orRolledBack(fnErr)
	}
	redeemed, err := s.sendExchange(ctx, u)
	if err != nil {
		return err
	}
	if u.redeem && redeemed == 0 {
		return s.revokeReplayed(ctx, u.usedCode.row.requestID)
	}
	return nil
}

func orRolledBack(err error) error {
	if err == nil {
		return fosite.ErrServerError.WithDebug("the exchange was rolled back")
	}
	return err
}

// sendExchange sends the exchange's writes, durably, and returns how many
// codes they redeemed.
func (s *Store) sendExchange(ctx context.Context, u *unit) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(sqlSynchronousCommit, "on") // a redemption lost to a crash would let the code be used again
	sql, args := exchangeStatement(u)
	b.Queue(sql, args...)
	br := s.pool.SendBatch(ctx, b)
	var redeemed int64
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&redeemed)
	}
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return 0, fmt.Errorf("code exchange: %w", pg.MapError(err))
	}
	return redeemed, nil
}

// revokeReplayed revokes what a code issued, as it was presented again
// (RFC 6749 §4.1.2), and answers invalid_grant.
func (s *Store) revokeReplayed(ctx context.Context, requestID string) error {
	if err := s.RevokeAccessToken(ctx, requestID); err != nil {
		return err
	}
	if err := s.RevokeRefreshToken(ctx, requestID); err != nil {
		return err
	}
	return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
}

const (
	sqlDeleteRequest = `DELETE FROM oauth2_requests WHERE kind = $1 AND signature = $2`
	// sqlRedeemCode turns an active code inactive: it affects one row only
	// for the first of concurrent redemptions.
	sqlRedeemCode = `UPDATE oauth2_requests SET active = false WHERE kind = 'code' AND signature = $1 AND active`
)

// exchangeStatement is the exchange's writes as one statement returning how
// many codes it redeemed: the used code's row (a conflict: used before), a
// deletion of any stored record fosite deleted, and the inserts (only with a
// new used-code row, when the exchange redeems the code). Every part finds
// its rows by one whole primary key with plain equalities: the only shape
// whose cached generic plan is an index lookup whatever the planner's
// statistics say (plans_test.go).
func exchangeStatement(u *unit) (string, []any) {
	var sb strings.Builder
	var args []any
	param := func(v any, cast string) string {
		args = append(args, v)
		return fmt.Sprintf("$%d%s", len(args), cast)
	}
	sb.WriteString("WITH redeemed AS (")
	if u.redeem {
		ins, insArgs := insertStatement([]insertRow{*u.usedCode}, false, 0, true)
		args = append(args, insArgs...)
		sb.WriteString(ins + " RETURNING 1")
	} else {
		sb.WriteString("SELECT 1 WHERE false")
	}
	sb.WriteString(")")
	for i, k := range u.deletes {
		if _, carried := u.loaded[k]; carried {
			continue // carried by the code, never stored
		}
		fmt.Fprintf(&sb, ",\n\tdeleted%d AS (DELETE FROM oauth2_requests WHERE kind = %s AND signature = %s)",
			i, param(string(k.kind), "::text"), param([]byte(k.signature), "::bytea"))
	}
	if len(u.inserts) > 0 {
		sb.WriteString(",\n\tinserted AS (")
		ins, insArgs := insertStatement(u.inserts, true, len(args), false)
		args = append(args, insArgs...)
		sb.WriteString(ins)
		if u.redeem {
			sb.WriteString(" WHERE EXISTS (SELECT FROM redeemed)")
		}
		sb.WriteString(")")
	}
	sb.WriteString("\nSELECT count(*) FROM redeemed")
	return sb.String(), args
}

const insertColumns = 15

// insertColumnTypes are the casts a row needs when its VALUES are selected
// from (no INSERT target to type them).
var insertColumnTypes = [insertColumns]string{"text", "bytea", "text", "timestamptz", "text", "text",
	"text[]", "text[]", "text[]", "text[]", "jsonb", "jsonb", "timestamptz", "text", "bytea"}

// insertStatement is one INSERT of rows, its parameters numbered after
// offset: as a SELECT from VALUES when asSelect (so a WHERE can follow); of
// used codes (inactive, a conflict skipped) when used.
func insertStatement(rows []insertRow, asSelect bool, offset int, used bool) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO oauth2_requests (kind, signature, request_id, requested_at, client_id, subject,
		scopes, granted_scopes, audiences, granted_audiences, form, session, expires_at, jti,
		access_signature`)
	if used {
		sb.WriteString(", active")
	}
	sb.WriteString(") ")
	if asSelect {
		sb.WriteString("SELECT * FROM (")
	}
	sb.WriteString("VALUES ")
	args := make([]any, 0, len(rows)*insertColumns)
	for i, w := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for c := range insertColumns {
			if c > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "$%d", offset+i*insertColumns+c+1)
			if asSelect {
				sb.WriteString("::" + insertColumnTypes[c])
			}
		}
		if used {
			sb.WriteString(", false")
		}
		sb.WriteString(")")
		r := w.row
		args = append(args, string(w.key.kind), []byte(w.key.signature), r.requestID, r.requestedAt, r.clientID,
			r.subject, r.scopes, r.grantedScopes, r.audiences, r.grantedAudiences, string(r.form),
			string(r.session), r.expiresAt, r.jti, w.accessSignature)
	}
	if asSelect {
		sb.WriteString(") v")
	}
	if used {
		sb.WriteString(" ON CONFLICT (kind, signature) DO NOTHING")
	}
	return sb.String(), args
}
