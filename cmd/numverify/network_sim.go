package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"

	"github.com/numverify/numverify/network/entitlement"
)

// networkSIMAddCommand is `numverify network sim add`: it provisions a SIM
// in the simulated home network, so that a device on Wi-Fi can authenticate
// with EAP-AKA at the entitlement server (`numverify device --wifi`).
type networkSIMAddCommand struct {
	db     databaseFlags
	imsi   string
	msisdn string
	k      string
	opc    string
	op     string
	asJSON bool
}

func (c *networkSIMAddCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.StringVar(&c.imsi, "imsi", "", "the SIM's IMSI, 6 to 15 digits, starting with its MCC and MNC (required)")
	fs.StringVar(&c.msisdn, "msisdn", "", "the subscriber's number, international format (+33612345678) (required)")
	fs.StringVar(&c.k, "k", "", "MILENAGE subscriber key K, 32 hex digits (default: generated)")
	fs.StringVar(&c.opc, "opc", "", "MILENAGE OPc, 32 hex digits (default: generated with K, or derived from --op)")
	fs.StringVar(&c.op, "op", "", "MILENAGE operator variant OP, 32 hex digits, to derive OPc from (instead of --opc)")
	fs.BoolVar(&c.asJSON, "json", false, "print the SIM, K and OPc included, as JSON")
}

func (c *networkSIMAddCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.imsi == "" || c.msisdn == "" {
		return fmt.Errorf("--imsi and --msisdn are required: %w", errUsage)
	}
	var keys [3][]byte
	for i, f := range []struct{ name, value string }{{"k", c.k}, {"op", c.op}, {"opc", c.opc}} {
		if f.value == "" {
			continue
		}
		b, err := hex.DecodeString(f.value)
		if err != nil || len(b) != 16 {
			return fmt.Errorf("--%s: 32 hex digits", f.name)
		}
		keys[i] = b
	}
	sim, err := entitlement.NewSIMCredentials(c.imsi, c.msisdn, keys[0], keys[1], keys[2])
	if err != nil {
		return err
	}
	pool, err := c.db.open(ctx, "network", true)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := entitlement.NewSIMStore(pool).Add(ctx, sim); err != nil {
		return err
	}
	out := simOutput{IMSI: sim.IMSI, MSISDN: sim.MSISDN, K: hex.EncodeToString(sim.K), OPc: hex.EncodeToString(sim.OPc),
		EAPID: entitlement.EAPID(sim.IMSI, 2)}
	if c.asJSON {
		return printJSON(os.Stdout, out)
	}
	fmt.Printf("SIM %s for %s provisioned\nK   %s\nOPc %s\n(shown once: the device needs them, as `numverify device --wifi --imsi %s --k … --opc …`)\n",
		out.IMSI, out.MSISDN, out.K, out.OPc, out.IMSI)
	return nil
}

// simOutput is what `network sim add --json` prints.
type simOutput struct {
	IMSI   string `json:"imsi"`
	MSISDN string `json:"msisdn"`
	K      string `json:"k"`
	OPc    string `json:"opc"`
	EAPID  string `json:"eap_id"` // with a two-digit MNC
}
