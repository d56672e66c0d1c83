package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"

	"github.com/numverify/numverify/internal/phone"
)

// DemoConfig is what the scripted demo runs against: servers already
// started, a registered client allowed to verify and share, and the
// subscribers to attach.
type DemoConfig struct {
	RP      RPConfig // scopes must allow verify and share
	Network *NetworkAdmin
	// Subscribers are attached at their addresses and each runs the flow;
	// at least two (the second's number is the first's "wrong number").
	Subscribers []DemoSubscriber
	// WiFi is an address no session holds: a device off the mobile network.
	WiFi netip.Addr
	// WiFiSIM, when set, is the SIM of the first subscriber, provisioned at
	// the entitlement server (EntitlementURL): on Wi-Fi, the device gets
	// operator tokens by EAP-AKA, which the SP redeems by JWT-bearer and by
	// CIBA (RP.ClientKey is then required). See demo_wifi.go.
	WiFiSIM        *SIM
	EntitlementURL string
	// Gateway, when set, opens the subscribers' data sessions as a packet
	// gateway does, by RADIUS accounting (Start, and Stop at the end), and
	// Network's admin API only checks who holds each address. Without it
	// the admin API attaches them.
	Gateway *Gateway
}

// DemoSubscriber is one SIM: its number and the device address it gets.
type DemoSubscriber struct {
	MSISDN string
	Addr   netip.Addr
}

// demo is the state of one run: the transcript and the tally.
type demo struct {
	cfg    DemoConfig
	out    io.Writer
	rp     *RelyingParty
	steps  int
	failed int
}

// RunDemo runs the whole flow as a device and as the SP backend would, and
// writes a short transcript to out (secrets, tokens and codes cut to their
// first 6 characters, numbers masked). It returns an error unless every step
// gave the expected answer.
func RunDemo(ctx context.Context, cfg DemoConfig, out io.Writer) error {
	if len(cfg.Subscribers) < 2 {
		return errors.New("demo: two subscribers at least")
	}
	d := &demo{cfg: cfg, out: out}
	rp, err := NewRelyingParty(ctx, cfg.RP)
	if err != nil {
		return err
	}
	d.rp = rp
	d.say("SP discovered %s/.well-known/openid-configuration: authorize at %s", cfg.RP.Issuer, rp.AuthURL())

	sessions, attached := d.attach(ctx)
	defer sessions.release(context.WithoutCancel(ctx))
	if !attached {
		return d.result()
	}

	var subjects []string
	for i, s := range cfg.Subscribers {
		other := cfg.Subscribers[(i+1)%len(cfg.Subscribers)].MSISDN
		d.heading("Device %d on mobile data at %s (SIM %s)", i+1, s.Addr, phone.Mask(s.MSISDN))
		sub, ok := d.subscriberFlow(ctx, s, other)
		if !ok {
			continue
		}
		subjects = append(subjects, sub)
	}
	if len(subjects) == len(cfg.Subscribers) {
		distinct := subjects[0] != subjects[1]
		d.check(distinct, "SP       compares the two ID tokens' sub", "%s… and %s…: two subscribers, two pseudonyms",
			nil, []any{cut(subjects[0]), cut(subjects[1])}, nil)
	}

	d.heading("A device on Wi-Fi at %s (an address no session holds)", cfg.WiFi)
	wifi := NewDevice(cfg.WiFi, "", 0)
	defer wifi.Close()
	req := rp.NewAuthRequest("")
	outcome, err := wifi.Authorize(ctx, req.URL)
	denied := err == nil && outcome.Error == "access_denied" && outcome.State == req.State
	d.check(denied, "device   GET /authorize (prompt=none, PKCE S256, state %s…)", "%s", []any{cut(req.State)},
		[]any{describeOutcome(outcome)}, err)
	if cfg.WiFiSIM != nil {
		first := ""
		if len(subjects) > 0 {
			first = subjects[0]
		}
		d.wifiFlows(ctx, first)
	}
	if cfg.Gateway != nil {
		d.stopSessions(ctx, sessions)
	}
	return d.result()
}

// demoSessions are the subscribers' open sessions: the admin API's ids, or
// the gateway's Acct-Session-Ids.
type demoSessions struct {
	network *NetworkAdmin
	gateway *Gateway
	admin   []int64
	radius  []demoRadiusSession
}

type demoRadiusSession struct {
	DemoSubscriber
	id string
}

// release closes what is still open, without steps (after a failed step,
// or the admin API's sessions at the end).
func (s *demoSessions) release(ctx context.Context) {
	for _, id := range s.admin {
		_ = s.network.Detach(ctx, id)
	}
	for _, r := range s.radius {
		_ = s.gateway.Stop(ctx, r.id, r.MSISDN, r.Addr)
	}
	s.admin, s.radius = nil, nil
}

// attach opens every subscriber's session: by the gateway's RADIUS Start,
// each checked by a lookup, else through the admin API. It reports whether
// all of them are open.
func (d *demo) attach(ctx context.Context) (*demoSessions, bool) {
	sessions := &demoSessions{network: d.cfg.Network, gateway: d.cfg.Gateway}
	if d.cfg.Gateway == nil {
		d.heading("The network attaches the subscribers (simulated mobile core, admin API)")
		for _, s := range d.cfg.Subscribers {
			session, err := d.cfg.Network.Attach(ctx, s.MSISDN, s.Addr)
			d.check(err == nil, "network  POST /sessions {msisdn %s, ip %s}", "session %d, %s holds %s", []any{phone.Mask(s.MSISDN), s.Addr},
				[]any{session.ID, phone.Mask(session.MSISDN), session.IP}, err)
			if err != nil {
				return sessions, false
			}
			sessions.admin = append(sessions.admin, session.ID)
		}
		return sessions, true
	}
	d.heading("The packet gateway starts the subscribers' data sessions (RADIUS accounting, RFC 2866)")
	for _, s := range d.cfg.Subscribers {
		id, err := d.cfg.Gateway.Start(ctx, s.MSISDN, s.Addr)
		d.check(err == nil, "gateway  Accounting-Request Start {Calling-Station-Id %s, Framed-IP-Address %s}",
			"Accounting-Response: session %s recorded (answered once committed)", []any{callingStationID(s.MSISDN), s.Addr}, []any{id}, err)
		if err != nil {
			return sessions, false
		}
		sessions.radius = append(sessions.radius, demoRadiusSession{s, id})
		held, err := d.cfg.Network.Lookup(ctx, s.Addr)
		ok := err == nil && held != nil && held.MSISDN == s.MSISDN
		answer := []any{"no session holds it"}
		if held != nil {
			answer = []any{fmt.Sprintf("%s holds it (session %d)", phone.Mask(held.MSISDN), held.ID)}
		}
		d.check(ok, "network  GET /lookup?ip=%s", "%s", []any{s.Addr}, answer, err)
		if !ok {
			return sessions, false
		}
	}
	return sessions, true
}

// stopSessions ends the gateway's sessions by RADIUS Stop and checks that
// each address is free again.
func (d *demo) stopSessions(ctx context.Context, sessions *demoSessions) {
	d.heading("The packet gateway stops the data sessions (RADIUS Stop)")
	for _, r := range sessions.radius {
		err := d.cfg.Gateway.Stop(ctx, r.id, r.MSISDN, r.Addr)
		d.check(err == nil, "gateway  Accounting-Request Stop {Acct-Session-Id %s, Framed-IP-Address %s}",
			"Accounting-Response: session closed", []any{r.id, r.Addr}, nil, err)
		held, err := d.cfg.Network.Lookup(ctx, r.Addr)
		answer := "404: no session holds it (a device there is off the mobile network)"
		if held != nil {
			answer = fmt.Sprintf("still held by %s (session %d)", phone.Mask(held.MSISDN), held.ID)
		}
		d.check(err == nil && held == nil, "network  GET /lookup?ip=%s", "%s", []any{r.Addr}, []any{answer}, err)
	}
	sessions.radius = nil
}

// callingStationID shows a number as the gateway sends it (no '+'), masked.
func callingStationID(msisdn string) string {
	return strings.TrimPrefix(phone.Mask(msisdn), "+")
}

// subscriberFlow runs, for one device, a login (authorize, token) and a
// question per access token, since tokens are single-use (CAMARA Number
// Verification 2.1.1): verify the right number, the same token once more
// (refused), then a new login for each of verify a wrong number, verify the
// hashed number, and share. It returns the first ID token's subject.
func (d *demo) subscriberFlow(ctx context.Context, s DemoSubscriber, wrongNumber string) (string, bool) {
	device := NewDevice(s.Addr, s.MSISDN, 0)
	defer device.Close()
	req := d.rp.NewAuthRequest("")
	outcome, err := device.Authorize(ctx, req.URL)
	gotCode := err == nil && outcome.Code != "" && outcome.State == req.State
	d.check(gotCode, "device   GET /authorize (prompt=none, PKCE S256, state %s…)", "%s", []any{cut(req.State)},
		[]any{describeOutcome(outcome)}, err)
	if !gotCode {
		return "", false
	}
	tokens, err := d.rp.Exchange(ctx, outcome.Code, req)
	okTokens := err == nil && tokens.Subject != "" && tokens.Subject != s.MSISDN
	var tokenAnswer []any
	if tokens != nil {
		tokenAnswer = []any{cut(tokens.AccessToken), cut(tokens.Subject), strings.Join(tokens.AMR, ",")}
	} else {
		tokenAnswer = []any{"-", "-", "-"}
	}
	d.check(okTokens, "SP       POST /token ("+d.clientAuthMethod()+", code %s…, code_verifier)",
		"access_token %s…, ID token verified: sub %s… (pairwise, not the number), amr [%s]",
		[]any{cut(outcome.Code)}, tokenAnswer, err)
	if !okTokens {
		return "", false
	}
	verifyStep := func(accessToken, what, shown, number string, hashed, want bool) {
		got, err := d.rp.Verify(ctx, accessToken, number, hashed)
		d.check(err == nil && got == want, "SP       POST /verify {%s %s}", "devicePhoneNumberVerified: %t (expected %t)",
			[]any{what, shown}, []any{got, want}, err)
	}
	verifyStep(tokens.AccessToken, "phoneNumber", phone.Mask(s.MSISDN), s.MSISDN, false, true)
	d.reuseStep(ctx, tokens.AccessToken, s.MSISDN)
	if next, ok := d.nextLogin(ctx, device); ok {
		verifyStep(next, "phoneNumber", phone.Mask(wrongNumber)+" (another subscriber's)", wrongNumber, false, false)
	}
	if next, ok := d.nextLogin(ctx, device); ok {
		verifyStep(next, "hashedPhoneNumber", cut(hashPhoneNumber(s.MSISDN))+"… (SHA-256)", s.MSISDN, true, true)
	}
	if next, ok := d.nextLogin(ctx, device); ok {
		number, err := d.rp.DevicePhoneNumber(ctx, next)
		d.check(err == nil && number == s.MSISDN, "SP       GET /device-phone-number", "devicePhoneNumber: %s (expected %s)",
			nil, []any{phone.Mask(number), phone.Mask(s.MSISDN)}, err)
	}
	return tokens.Subject, true
}

// reuseStep calls verify a second time with a token that has answered once:
// single-use, it must be refused with 401 UNAUTHENTICATED.
func (d *demo) reuseStep(ctx context.Context, accessToken, number string) {
	_, err := d.rp.Verify(ctx, accessToken, number, false)
	var apiErr *APIError
	refused := errors.As(err, &apiErr) && apiErr.Status == 401 && apiErr.Code == "UNAUTHENTICATED"
	answer := "401 UNAUTHENTICATED: a token answers one call (single-use)"
	if err == nil {
		answer = "answered again: a token must answer one call only"
	} else if refused {
		err = nil
	}
	d.check(refused, "SP       POST /verify again with the same token", "%s", nil, []any{answer}, err)
}

// nextLogin logs the device in again (authorize, token) for the next
// question, as one step; it returns the new access token.
func (d *demo) nextLogin(ctx context.Context, device *Device) (string, bool) {
	req := d.rp.NewAuthRequest("")
	outcome, err := device.Authorize(ctx, req.URL)
	if err == nil && (outcome.Code == "" || outcome.State != req.State) {
		err = fmt.Errorf("authorize: %s", describeOutcome(outcome))
	}
	var tokens *Tokens
	if err == nil {
		tokens, err = d.rp.Exchange(ctx, outcome.Code, req)
	}
	if err != nil {
		d.check(false, "device + SP  a new login for the next question (GET /authorize, POST /token)", "", nil, nil, err)
		return "", false
	}
	d.check(true, "device + SP  a new login for the next question (GET /authorize, POST /token)", "access_token %s…",
		nil, []any{cut(tokens.AccessToken)}, nil)
	return tokens.AccessToken, true
}

func describeOutcome(o *Outcome) string {
	switch {
	case o == nil:
		return "no answer"
	case o.Code != "":
		return fmt.Sprintf("302 to the SP's redirect URI %s with code %s…", callbackBase(o.Callback), cut(o.Code))
	case o.Error != "":
		return fmt.Sprintf("302 to the SP's redirect URI %s with error=%s", callbackBase(o.Callback), o.Error)
	default:
		return fmt.Sprintf("HTTP %d page: %s", o.Status, o.Page)
	}
}

func callbackBase(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// cut shows the first 6 characters of a secret, token, code or hash.
func cut(s string) string {
	if len(s) <= 6 {
		return s
	}
	return s[:6]
}

// Mask cuts a secret for display: its first 6 characters and "…".
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	return cut(secret) + "…"
}

func (d *demo) heading(format string, args ...any) {
	fmt.Fprintf(d.out, "\n%s\n", fmt.Sprintf(format, args...))
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "  %s\n", fmt.Sprintf(format, args...))
}

// check writes one step: "ok" or "FAIL", who called what, and the answer
// (or the error).
func (d *demo) check(ok bool, callFormat, answerFormat string, callArgs, answerArgs []any, err error) {
	d.steps++
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		d.failed++
	}
	answer := fmt.Sprintf(answerFormat, answerArgs...)
	if err != nil {
		answer = "error: " + redactTokens(err.Error())
	}
	fmt.Fprintf(d.out, "  %s %s\n         → %s\n", mark, fmt.Sprintf(callFormat, callArgs...), answer)
}

func (d *demo) result() error {
	if d.failed > 0 {
		fmt.Fprintf(d.out, "\n%d of %d steps did not give the expected answer.\n", d.failed, d.steps)
		return fmt.Errorf("demo: %d of %d steps failed", d.failed, d.steps)
	}
	fmt.Fprintf(d.out, "\nAll %d steps gave the expected answer.\n", d.steps)
	return nil
}

// redactTokens cuts anything in an error that looks like a query's code,
// token or secret value.
func redactTokens(s string) string {
	for _, key := range []string{"code=", "access_token=", "client_secret=", "code_verifier="} {
		for i := strings.Index(s, key); i >= 0; {
			start := i + len(key)
			end := start
			for end < len(s) && !strings.ContainsRune("&\" \n", rune(s[end])) {
				end++
			}
			if end-start > 6 {
				s = s[:start] + s[start:start+6] + "…" + s[end:]
			}
			next := strings.Index(s[start:], key)
			if next < 0 {
				break
			}
			i = start + next
		}
	}
	return s
}
