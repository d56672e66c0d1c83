package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// TestClientDeleteRevokesItsTokens: `client delete` revokes every token the
// client was issued: the resource server, which validates JWT access tokens
// offline, refuses an unused token of the deleted client within a second,
// while another client's token still works.
func TestClientDeleteRevokesItsTokens(t *testing.T) {
	db := pgtest.New(t)
	ports := testbed.FreePorts(t, 3)
	issuer, api := "http://127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1]+"/number-verification/v2"
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_SECRETS_KEY": randomHex(32), "NUMVERIFY_NETWORK_ADMIN_TOKEN": testAdminToken,
		"NUMVERIFY_LOG_LEVEL": "warn"}
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := execute(context.Background(), commands(), args, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("numverify %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	serveInProcess(t, env, api[:strings.Index(api, "/number")]+"/readyz", "serve", "--authz-addr", "127.0.0.1:"+ports[0],
		"--resource-addr", "127.0.0.1:"+ports[1], "--network-addr", "127.0.0.1:"+ports[2], "--issuer", issuer, "--metrics-addr", "")
	msisdn, addr := "+33612349876", testbed.NthAddr(testbed.DevicePrefix(), 9)
	run("network", "attach", "--msisdn", msisdn, "--ip", addr.String())
	device := sim.NewDevice(addr, msisdn, 2)
	defer device.Close()

	login := func(clientID, secret string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rp, err := sim.NewRelyingParty(ctx, sim.RPConfig{Issuer: issuer, ClientID: clientID, ClientSecret: secret,
			RedirectURL: "http://localhost:8080/callback", Scopes: strings.Fields(sim.DefaultScope), APIURL: api})
		if err != nil {
			t.Fatal(err)
		}
		req := rp.NewAuthRequest("")
		out, err := device.Authorize(ctx, req.URL)
		if err != nil || out.Code == "" {
			t.Fatalf("authorize: %v %+v", err, out)
		}
		tokens, err := rp.Exchange(ctx, out.Code, req)
		if err != nil {
			t.Fatal(err)
		}
		return tokens.AccessToken
	}
	deleted, deletedSecret := createTestClient(t, env)
	kept, keptSecret := createTestClient(t, env)
	var tokens []string
	for i := 0; i < 5; i++ {
		tokens = append(tokens, login(deleted, deletedSecret))
	}
	control := login(kept, keptSecret)

	run("client", "delete", "--id", deleted)
	deadline := time.Now().Add(time.Second)
	refused := false
	for _, token := range tokens {
		status, body := verifyCall(t, api, token, msisdn)
		t.Logf("verify after delete: %d %s", status, body)
		if status == http.StatusUnauthorized && strings.Contains(body, "revoked") {
			refused = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the other process's revocation feed
	}
	if !refused || time.Now().After(deadline.Add(100*time.Millisecond)) {
		t.Fatal("the deleted client's token was not refused as revoked within a second")
	}
	if status, body := verifyCall(t, api, control, msisdn); status != http.StatusOK {
		t.Fatalf("another client's token: %d %s", status, body)
	}
}

func createTestClient(t *testing.T, env map[string]string) (id, secret string) {
	t.Helper()
	file := t.TempDir() + "/client.json"
	if code := execute(context.Background(), commands(), []string{"client", "create", "--name", "revocation test",
		"--redirect-uri", "http://localhost:8080/callback", "--scope", "openid",
		"--scope", "dpv:FraudPreventionAndDetection#number-verification:verify", "--output", file}, io.Discard, io.Discard,
		func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("client create: exit %d", code)
	}
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	raw, err := os.ReadFile(file)
	if err != nil || json.Unmarshal(raw, &c) != nil || c.ID == "" {
		t.Fatalf("client file: %v %s", err, raw)
	}
	return c.ID, c.Secret
}

func verifyCall(t *testing.T, api, token, msisdn string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, strings.Replace(api, "/v2", "/v0", 1)+"/verify", strings.NewReader(`{"phoneNumber":"`+msisdn+`"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
