package sim

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestDemoTranscript(t *testing.T) {
	op := newFakeOperator(t, "http://localhost:8080/callback")
	cfg := DemoConfig{
		RP:      op.rpConfig("openid", "number-verification:verify", "number-verification:device-phone-number:read"),
		Network: op.network(),
		Subscribers: []DemoSubscriber{
			{MSISDN: "+33612345678", Addr: netip.MustParseAddr("127.10.220.1")},
			{MSISDN: "+33698765432", Addr: netip.MustParseAddr("127.10.220.2")},
		},
		WiFi: netip.MustParseAddr("127.10.220.99"),
	}
	op.singleUse = true
	var out bytes.Buffer
	err := RunDemo(context.Background(), cfg, &out)
	transcript := out.String()
	t.Log("\n" + transcript)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"All 24 steps gave the expected answer", "error=access_denied",
		"401 UNAUTHENTICATED: a token answers one call (single-use)", "devicePhoneNumberVerified: false (expected false)", "+33•••••••78"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q", want)
		}
	}
	for _, secret := range []string{"+33612345678", "+33698765432", op.secret} {
		if strings.Contains(transcript, secret) {
			t.Errorf("transcript shows %q in clear", secret)
		}
	}
	if strings.Contains(transcript, "FAIL") {
		t.Error("a step failed")
	}

	// A server that lies makes the demo fail.
	op.lieAbout = "+33612345678"
	out.Reset()
	if err := RunDemo(context.Background(), cfg, &out); err == nil || !strings.Contains(out.String(), "FAIL") {
		t.Fatalf("a wrong answer should fail the demo: %v\n%s", err, out.String())
	}
}

func TestRedactTokens(t *testing.T) {
	got := redactTokens(`GET http://x/cb?code=abcdefghijkl&state=1: access_token=zzzzzzzzzzzz`)
	if strings.Contains(got, "abcdefghijkl") || strings.Contains(got, "zzzzzzzzzzzz") || !strings.Contains(got, "code=abcdef…") {
		t.Fatalf("got %q", got)
	}
}
