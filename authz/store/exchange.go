package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/pg"
)

// LoadCodeExchange reads, in one statement pipelined with BEGIN, the three
// records a code exchange needs (the authorization code and its PKCE
// request, both under codeSignature, and the OpenID Connect session stored
// under the code itself) and locks them until the transaction in ctx ends,
// in a fixed order so that concurrent exchanges of one code queue on the
// code's row instead of deadlocking. The store's getters then answer from
// what was read, and the exchange's writes are buffered to the commit: a
// login's token request costs two round trips.
//
// Of concurrent exchanges of one code, the first to lock it issues tokens;
// each later one waits for it to commit, then reads the code inactive (and
// the PKCE and OpenID Connect records gone), so fosite answers
// invalid_grant and revokes what the code issued, as with a locked read
// (see WithTokenTx). Calling it is optional: without it each getter reads
// (and the code's getter locks) on its own.
func (s *Store) LoadCodeExchange(ctx context.Context, codeSignature, code string) error {
	h, ok := txFrom(ctx)
	if !ok {
		return ErrNoTransaction
	}
	st := h.st
	codeSig, oidcSig := hashSignature(codeSignature), hashSignature(code)
	keys := []rowKey{{kindCode, string(codeSig)}, {kindPKCE, string(codeSig)}, {kindOIDC, string(oidcSig)}}
	b := &pgx.Batch{}
	b.Queue(sqlLoadCodeExchange, codeSig, oidcSig)
	br, err := st.send(ctx, b, false)
	if err != nil {
		return fmt.Errorf("load code exchange: %w", pg.MapError(err))
	}
	found := map[rowKey]*storedRequest{}
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			var k string
			row := &storedRequest{}
			if err = rows.Scan(append([]any{&k}, row.scanDest()...)...); err != nil {
				break
			}
			for _, key := range keys {
				if string(key.kind) == k {
					found[key] = row
				}
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("load code exchange: %w", pg.MapError(err))
	}
	if st.locked == nil {
		st.locked = map[rowKey]*storedRequest{}
	}
	for _, key := range keys {
		st.locked[key] = found[key] // nil: no such record
	}
	return nil
}

// sqlLoadCodeExchange locks and reads the code, PKCE and OpenID Connect
// records of one exchange, in that order (the order of the UNION ALL: a
// locking CTE runs when first read). Each is looked up by its whole primary
// key with plain equalities, joined to its client by the client's key, so
// that every cached plan of it is three index lookups: the single statement
// it replaces, an OR of the three keys, was planned as a sequential scan when
// prepared on a small table, and kept that plan as the table grew.
var sqlLoadCodeExchange = `WITH
	code AS (` + lockedRequest(kindCode, "$1") + `),
	pkce AS (` + lockedRequest(kindPKCE, "$1") + `),
	oidc AS (` + lockedRequest(kindOIDC, "$2") + `)
	SELECT * FROM code UNION ALL SELECT * FROM pkce UNION ALL SELECT * FROM oidc`

func lockedRequest(k kind, signatureParam string) string {
	return `SELECT r.kind, ` + requestColumns + `
		FROM oauth2_requests r JOIN oauth2_clients c ON c.id = r.client_id
		WHERE r.kind = '` + string(k) + `' AND r.signature = ` + signatureParam + `
		FOR UPDATE OF r`
}
