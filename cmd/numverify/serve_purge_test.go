package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/testbed"
)

// TestServePurgesExpiredRecords: `serve` deletes expired records itself, on
// --purge-interval, and keeps live ones.
func TestServePurgesExpiredRecords(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	db.Exec(t, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ('expired', now() - interval '1 hour'), ('live', now() + interval '1 hour')`)
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_SECRETS_KEY": randomHex(32), "NUMVERIFY_RESOURCE_SECRETS_KEY": randomHex(32)}
	port := testbed.FreePorts(t, 1)[0]
	serveInProcess(t, env, "http://127.0.0.1:"+port+"/healthz",
		"serve", "authz", "--authz-addr", "127.0.0.1:"+port, "--metrics-addr", "", "--purge-interval", "20ms")
	deadline := time.Now().Add(15 * time.Second)
	for {
		var jtis []string
		rows, _ := db.Pool.Query(ctx, `SELECT jti FROM revoked_tokens ORDER BY jti`)
		for rows.Next() {
			var jti string
			rows.Scan(&jti)
			jtis = append(jtis, jti)
		}
		if got := strings.Join(jtis, ","); got == "live" {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("revoked_tokens holds %q; want only the live record", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeRefusesNegativePurgeInterval(t *testing.T) {
	db := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_SECRETS_KEY": randomHex(32), "NUMVERIFY_RESOURCE_SECRETS_KEY": randomHex(32)}
	var stderr bytes.Buffer
	code := execute(context.Background(), commands(), []string{"serve", "authz", "--authz-addr", "127.0.0.1:0", "--metrics-addr", "", "--purge-interval", "-1s"},
		io.Discard, &stderr, func(k string) string { return env[k] })
	if code == 0 || !strings.Contains(stderr.String(), "--purge-interval") {
		t.Fatalf("exit %d, %q; want a refusal naming --purge-interval", code, stderr.String())
	}
}
