package network

import (
	"context"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
)

// TestResolveUsesIndex shows, on a table of a few thousand analysed rows
// (planner settings untouched), that the resolver's query is answered from
// the exclusion constraint's GiST index, never by a sequential scan.
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
			usesIndex := false
			for _, n := range nodes {
				if n.NodeType == "Seq Scan" {
					t.Errorf("plan has a Seq Scan:\n%s", raw)
				}
				if n.IndexName == "network_sessions_no_overlap" {
					usesIndex = true
				}
			}
			if !usesIndex {
				t.Errorf("plan does not use network_sessions_no_overlap:\n%s", raw)
			}
		})
	}
}
