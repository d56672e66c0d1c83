package pgtest

import (
	"context"
	"testing"
)

// TestExplain: the plan of a join comes back with its scans as nodes, the
// join first, a scan by key as an index scan on its condition.
func TestExplain(t *testing.T) {
	db := New(t)
	ctx := context.Background()
	db.Exec(t, "CREATE TABLE explained (id int PRIMARY KEY, v text)")
	db.Exec(t, "INSERT INTO explained SELECT i, i::text FROM generate_series(1, 10000) i")
	db.Exec(t, "ANALYZE explained")
	plan, raw := Explain(ctx, t, db.Pool, "SELECT a.v FROM explained a JOIN explained b ON b.id = a.id + 1 WHERE a.id = $1", 7)
	if len(raw) == 0 {
		t.Fatal("no raw plan")
	}
	nodes := plan.Nodes()
	if len(nodes) < 3 || nodes[0].NodeType != plan.NodeType || len(plan.Plans) == 0 {
		t.Fatalf("nodes %+v of plan %s", nodes, raw)
	}
	keyed := 0
	for _, n := range nodes {
		if n.RelationName == "explained" && n.IndexName == "explained_pkey" && n.IndexCond != "" {
			keyed++
		}
	}
	if keyed == 0 {
		t.Errorf("no index scan of explained on its key in %s", raw)
	}
}
