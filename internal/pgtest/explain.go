package pgtest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PlanNode is one node of a query plan as EXPLAIN (FORMAT JSON) prints it,
// with the fields plan checks read.
type PlanNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	IndexCond    string     `json:"Index Cond"`
	Filter       string     `json:"Filter"`
	Plans        []PlanNode `json:"Plans"`
	// RowsRemovedByFilter is printed by EXPLAIN ANALYZE only.
	RowsRemovedByFilter float64 `json:"Rows Removed by Filter"`
}

// Nodes is n and every node below it, depth first, parents before children.
func (n PlanNode) Nodes() []PlanNode {
	out := []PlanNode{n}
	for _, child := range n.Plans {
		out = append(out, child.Nodes()...)
	}
	return out
}

// Explain runs EXPLAIN (FORMAT JSON) of statement (with args) on q (a
// connection, pool or transaction) and returns the plan and the raw JSON,
// for messages; a failure ends the test.
func Explain(ctx context.Context, t testing.TB, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, statement string, args ...any) (PlanNode, []byte) {
	t.Helper()
	explain := "EXPLAIN (FORMAT JSON) " + statement
	var raw []byte
	if err := q.QueryRow(ctx, explain, args...).Scan(&raw); err != nil {
		t.Fatalf("%s: %v", explain, err)
	}
	var plans []struct{ Plan PlanNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %s: %v", raw, err)
	}
	return plans[0].Plan, raw
}
