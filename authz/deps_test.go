package authz_test

import (
	"strings"
	"testing"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
)

// TestNewReportsMissingDeps: New names every missing collaborator at once;
// the client-secret hasher is the store's own (nothing else to pass that
// could differ from the one the secrets were made with).
func TestNewReportsMissingDeps(t *testing.T) {
	cfg := authz.Config{Issuer: "https://authz.example", SecretsKey: make([]byte, 32)}
	_, err := authz.New(cfg, authz.Deps{Store: store.New(nil, nil)})
	if err == nil {
		t.Fatal("New without a hasher, keys or resolver succeeded")
	}
	for _, want := range []string{"client secret hasher", "key store", "network resolver"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v; want it to name the %s", err, want)
		}
	}
}
