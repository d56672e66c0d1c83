package janitor

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
)

// A batch of one kind of oauth2_requests reads that kind's rows only. Codes
// stay a whole access-token lifetime past their expiry (to catch a replay),
// so by expiry alone the access tokens that expired after them come after
// every kept code: on one index of expires_at for every kind, each batch of
// access tokens fetched and filtered out all those codes (185,841 a batch,
// 265 ms, at 641 logins a second). Migration 0014 gives each kind its own
// index. Here 4,000 kept codes expired before 1,000 access tokens due for
// purging; each task's batch, run for real with EXPLAIN ANALYZE in a
// transaction rolled back, must filter out nothing its index gave it. The
// plan is forced to the one of a table of hundreds of thousands of rows (the
// rows read in expiry order), as in that run.
func TestPurgeBatchReadsOnlyItsKind(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	db.Exec(t, `INSERT INTO oauth2_clients (id, name, secret_hash, token_endpoint_auth_method) VALUES ('sp', 'SP', '\x00', 'client_secret_basic')`)
	for _, r := range []struct {
		kind    string
		n       int
		expired time.Duration
	}{
		{"code", 4000, 4 * time.Minute},   // kept: within an access token's lifetime of their expiry
		{"access", 1000, 2 * time.Minute}, // due: past the clock skew
		{"pkce", 1000, 3 * time.Minute},
		{"oidc", 1000, 3 * time.Minute},
	} {
		db.Exec(t, `INSERT INTO oauth2_requests (kind, signature, request_id, requested_at, client_id, session, expires_at)
			SELECT $1::text, sha256(convert_to($1::text || g, 'UTF8')), $1::text || g, $2::timestamptz, 'sp', '{}',
				$2::timestamptz + g * interval '1 microsecond'
			FROM generate_series(1, $3) g`, r.kind, now.Add(-r.expired), r.n)
	}
	db.Exec(t, `ANALYZE oauth2_requests`)
	tasks := 0
	for _, task := range Tasks(lifetimes) {
		if task.Table != "oauth2_requests" {
			continue
		}
		tasks++
		t.Run(task.Name, func(t *testing.T) {
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			// The plan of a large table: the rows in expiry order, no sort
			// (on these few thousand rows the planner would sort a bitmap
			// scan of the primary key's kind instead).
			if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SET LOCAL enable_bitmapscan = off`); err != nil {
				t.Fatal(err)
			}
			var raw []byte
			statement := "EXPLAIN (ANALYZE, FORMAT JSON) " + deleteStatement(task, 1000)
			if err := tx.QueryRow(ctx, statement, now.Add(-task.Retention)).Scan(&raw); err != nil {
				t.Fatalf("%s: %v", statement, err)
			}
			var plans []struct{ Plan pgtest.PlanNode }
			if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
				t.Fatalf("EXPLAIN output %s: %v", raw, err)
			}
			for _, n := range plans[0].Plan.Nodes() {
				if n.RelationName != "oauth2_requests" || n.NodeType == "ModifyTable" {
					continue
				}
				if n.NodeType == "Seq Scan" {
					t.Errorf("a Seq Scan of oauth2_requests:\n%s", raw)
				}
				if n.RowsRemovedByFilter > 0 {
					t.Errorf("the batch read %.0f rows it did not delete (%s, filter %s):\n%s", n.RowsRemovedByFilter, n.NodeType, n.Filter, raw)
				}
			}
		})
	}
	if tasks == 0 {
		t.Fatal("no purge task of oauth2_requests")
	}
}
