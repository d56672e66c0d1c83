package network

import (
	"context"
	"encoding/json"
	"testing"
	"time"
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
			var raw []byte
			err := store.db.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+resolveSQL,
				netipAddr(tt.addr), tt.port, tt.at).Scan(&raw)
			if err != nil {
				t.Fatalf("EXPLAIN: %v", err)
			}
			var plans []struct{ Plan planNode }
			if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
				t.Fatalf("EXPLAIN output %s: %v", raw, err)
			}
			nodes := plans[0].Plan.flatten()
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

type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	Plans     []planNode `json:"Plans"`
}

func (n planNode) flatten() []planNode {
	out := []planNode{n}
	for _, child := range n.Plans {
		out = append(out, child.flatten()...)
	}
	return out
}
