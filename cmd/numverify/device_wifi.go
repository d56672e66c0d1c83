package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/numverify/numverify/sim"
)

// wifiFlags are `numverify device --wifi`: the handset off the mobile data
// path, which proves its SIM to the entitlement server (TS.43, EAP-AKA) and
// obtains an operator token for an SP client.
type wifiFlags struct {
	enabled          bool
	entitlementURL   string
	imsi, k, opc     string
	sqn              uint64
	mncDigits        int
	clientID         string
	operationTargets string
	spURL            string
	phoneNumber      string
	flow             string
}

func (f *wifiFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.enabled, "wifi", false,
		"act as a device on Wi-Fi: acquire an operator token from the entitlement server by EAP-AKA with the SIM (--imsi, --k, --opc) for --client-id, and print it for the SP")
	fs.StringVar(&f.entitlementURL, "entitlement-url", "http://127.0.0.1:9093/", "with --wifi: the TS.43 entitlement server")
	fs.StringVar(&f.imsi, "imsi", "", "with --wifi: the SIM's IMSI (as `numverify network sim add` provisioned it)")
	fs.StringVar(&f.k, "k", "", "with --wifi: the SIM's MILENAGE key K, 32 hex digits")
	fs.StringVar(&f.opc, "opc", "", "with --wifi: the SIM's MILENAGE OPc, 32 hex digits")
	fs.Uint64Var(&f.sqn, "sqn", 0, "with --wifi: the SIM's highest accepted sequence number SQN_MS (a higher one than the network's makes it resynchronise)")
	fs.IntVar(&f.mncDigits, "mnc-digits", 2, "with --wifi: digits of the MNC in the IMSI (2 or 3), for the EAP_ID realm")
	fs.StringVar(&f.clientID, "client-id", "", "with --wifi: the SP client the operator token is for")
	fs.StringVar(&f.operationTargets, "operation-targets", "", "with --wifi: TS.43 operation_targets to ask for (optional)")
	fs.StringVar(&f.spURL, "sp-url", "", "with --wifi: hand the operator token to this SP (numverify sp) at its POST /wifi, which redeems it and verifies --phone-number; without it the token is printed")
	fs.StringVar(&f.phoneNumber, "phone-number", "", "with --wifi --sp-url: the number the SP verifies (E.164)")
	fs.StringVar(&f.flow, "flow", string(sim.FlowJWTBearer), "with --wifi --sp-url: how the SP redeems the token: jwt-bearer or ciba")
}

// run acquires the token and prints it: the SP's backend redeems it
// (JWT-bearer sub=operatortoken:<token>, or CIBA login_hint=operatortoken:<token>).
func (f *wifiFlags) run(ctx context.Context, ip string, asJSON bool, timeout time.Duration) error {
	if f.imsi == "" || f.k == "" || f.opc == "" || f.clientID == "" {
		return fmt.Errorf("--wifi needs --imsi, --k, --opc and --client-id: %w", errUsage)
	}
	flow, err := sim.ParseOperatorTokenFlow(f.flow)
	if err != nil {
		return fmt.Errorf("--flow: %w", err)
	}
	if f.spURL != "" && f.phoneNumber == "" {
		return fmt.Errorf("--sp-url needs --phone-number: %w", errUsage)
	}
	if f.mncDigits != 2 && f.mncDigits != 3 {
		return errors.New("--mnc-digits: 2 or 3")
	}
	k, errK := hex.DecodeString(f.k)
	opc, errOPc := hex.DecodeString(f.opc)
	if errK != nil || errOPc != nil || len(k) != 16 || len(opc) != 16 {
		return errors.New("--k and --opc: 32 hex digits each")
	}
	device := &sim.WiFiDevice{EntitlementURL: f.entitlementURL,
		SIM: &sim.SIM{IMSI: f.imsi, MNCDigits: f.mncDigits, K: k, OPc: opc, SQN: f.sqn}}
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("--ip %q: not an IP address", ip)
		}
		device.LocalAddr = addr
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	token, err := device.AcquireOperatorToken(ctx, f.clientID, f.operationTargets)
	if err != nil {
		return fmt.Errorf("operator token: %w", err)
	}
	report := wifiReport{ClientID: f.clientID, OperatorToken: token, SQN: device.SIM.SQN,
		LoginHint: sim.OperatorTokenPrefix + token.Token}
	if f.spURL != "" {
		return f.handOver(ctx, report, flow, asJSON)
	}
	if asJSON {
		return printJSON(os.Stdout, report)
	}
	fmt.Printf("device on Wi-Fi: EAP-AKA with the entitlement server succeeded (%d resynchronisation(s)); SIM SQN now %d\n",
		token.Resyncs, device.SIM.SQN)
	fmt.Printf("operator token for %s, expires %s:\n%s\n", f.clientID, token.ExpiresAt.UTC().Format(time.RFC3339), report.LoginHint)
	return nil
}

// wifiReport is what `numverify device --wifi --json` prints.
type wifiReport struct {
	ClientID string `json:"client_id"`
	sim.OperatorToken
	SQN       uint64 `json:"sqn"`        // the SIM's SQN_MS afterwards, for the next --sqn
	LoginHint string `json:"login_hint"` // CIBA login_hint / JWT-bearer sub
}

// handOver gives the token to the SP, which redeems it by flow and verifies
// the number; the token itself is not printed (it is spent). Exit status 0
// only when the SP says verified.
func (f *wifiFlags) handOver(ctx context.Context, report wifiReport, flow sim.OperatorTokenFlow, asJSON bool) error {
	result, err := sim.HandOverOperatorToken(ctx, f.spURL, f.phoneNumber, report.Token, flow)
	if err != nil {
		return fmt.Errorf("the SP: %w", err)
	}
	if asJSON {
		if err := printJSON(os.Stdout, result); err != nil {
			return err
		}
	} else {
		fmt.Printf("device on Wi-Fi: EAP-AKA succeeded; operator token %s handed to %s (%s)\nSP: verified=%t: %s\n",
			sim.Mask(report.Token), f.spURL, flow, result.Verified, result.Detail)
	}
	if !result.Verified {
		return errors.New("the SP did not verify the number")
	}
	return nil
}
