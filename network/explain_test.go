package network

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/pgtest"
)

// TestResolveUsesIndex shows, on a table of a few thousand analysed rows
// (planner settings untouched), that the resolver's query is answered from
// the exclusion constraint's GiST index, never by a sequential scan, and that
// for an instant of now it asks the open sessions' B-tree first.
func TestResolveUsesIndex(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	loadSessions(t, store, 2000, 6000)
	tests := []struct {
		name string
		addr string
		port int32
		at   time.Time
	}{
		{"active address now", "10.0.3.7", 443, time.Now()},
		{"address an hour and a half ago", "10.0.3.7", 443, time.Now().Add(-90 * time.Minute)},
		{"unknown address", "192.0.2.1", 443, time.Now()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql := resolveSQL
			if past(tt.at) {
				sql = resolveHistorySQL // both tables in one statement
			}
			plan, raw := pgtest.Explain(context.Background(), t, store.db, sql, netipAddr(tt.addr), tt.port, tt.at)
			nodes := plan.Nodes()
			usesIndex, usesOpen := false, false
			for _, n := range nodes {
				if n.NodeType == "Seq Scan" {
					t.Errorf("plan has a Seq Scan:\n%s", raw)
				}
				if n.IndexName == "network_sessions_no_overlap" {
					usesIndex = true
				}
				if n.IndexName == "network_sessions_active" {
					usesOpen = true
				}
			}
			if !usesIndex {
				t.Errorf("plan does not use network_sessions_no_overlap:\n%s", raw)
			}
			if !past(tt.at) && !usesOpen {
				t.Errorf("plan for now does not ask network_sessions_active first:\n%s", raw)
			}
		})
	}
}

// TestAccountingPlansUseIndexesWhenEmpty: the feed's statements are planned
// once per connection (generic plans) from the statistics of that moment.
// The hot table vacuumed while empty (MaintainHistory vacuums it every 30
// seconds) says "no rows", which makes a sequential scan look cheapest for
// every probe: a plan that would then be kept while the table fills up (a
// preload of 80,000 Starts answered 7,000 of 8,000 requests a second, each
// batch taking seconds). planSettingsSQL rules sequential scans out; without
// it the same plans have them, which this test also shows.
func TestAccountingPlansUseIndexesWhenEmpty(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	ctx := context.Background()
	for _, table := range []string{"network_sessions", "network_session_history", "network_accounting_stops"} {
		if _, err := store.db.Exec(ctx, "VACUUM "+table); err != nil {
			t.Fatal(err)
		}
	}
	statements := map[string]string{"fastOpen": fastOpenSQL, "close": closeSQL, "closeNAS": closeNASSQL,
		"openState": openStateSQL, "openInsert": openInsertSQL, "openInsertTolerant": openInsertTolerantSQL}
	seqScans := func(settings bool) map[string][]string {
		found := map[string][]string{}
		for name, sql := range statements {
			tx, err := store.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if settings {
				if _, err := tx.Exec(ctx, planSettingsSQL); err != nil {
					t.Fatal(err)
				}
			} else if _, err := tx.Exec(ctx, `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`); err != nil {
				t.Fatal(err)
			}
			for _, n := range explainGeneric(ctx, t, tx, sql).Nodes() {
				if n.NodeType == "Seq Scan" {
					found[name] = append(found[name], n.RelationName)
				}
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return found
	}
	if found := seqScans(true); len(found) > 0 {
		t.Errorf("with planSettingsSQL, sequential scans planned on an empty vacuumed table: %v", found)
	}
	if found := seqScans(false); len(found) == 0 {
		t.Error("without planSettingsSQL no statement planned a sequential scan: the test no longer shows the hazard")
	}
}

// explainGeneric is the plan of statement as the server's prepared
// statement would run it (its generic plan, if the transaction's
// plan_cache_mode says so): prepared by name over the simple protocol (the
// $n are the prepared statement's), explained with NULL for each parameter,
// and deallocated (a session's, not the transaction's).
func explainGeneric(ctx context.Context, t *testing.T, tx pgx.Tx, statement string) pgtest.PlanNode {
	t.Helper()
	if _, err := tx.Exec(ctx, "PREPARE explained_statement AS "+statement, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	args := strings.TrimSuffix(strings.Repeat("NULL, ", maxParam(statement)), ", ")
	plan, _ := pgtest.Explain(ctx, t, tx, "EXECUTE explained_statement("+args+")")
	if _, err := tx.Exec(ctx, "DEALLOCATE explained_statement"); err != nil {
		t.Fatal(err)
	}
	return plan
}

// maxParam is the highest $n of a statement.
func maxParam(sql string) int {
	highest := 0
	for i := 0; i < len(sql); i++ {
		if sql[i] != '$' {
			continue
		}
		n := 0
		for j := i + 1; j < len(sql) && sql[j] >= '0' && sql[j] <= '9'; j++ {
			n = n*10 + int(sql[j]-'0')
		}
		highest = max(highest, n)
	}
	return highest
}
