package pg

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://app:s3cret@db.internal:5433/numverify?sslmode=disable", "postgres://app@db.internal:5433/numverify"},
		// A multi-host URL names every host: a failover log must say where
		// the servers looked, not only the first.
		{"postgres://app:s3cret@10.0.0.1:5432,10.0.0.2:5433/numverify?sslmode=disable&target_session_attrs=read-write",
			"postgres://app@10.0.0.1:5432,10.0.0.2:5433/numverify"},
		// sslmode=prefer gives two attempts per host: still one entry each.
		{"host=10.0.0.1,10.0.0.2 port=5432,5433 user=app password=s3cret dbname=numverify sslmode=prefer",
			"postgres://app@10.0.0.1:5432,10.0.0.2:5433/numverify"},
	} {
		got := Redact(tc.url)
		if got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}
