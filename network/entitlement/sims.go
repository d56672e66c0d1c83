package entitlement

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/milenage"
	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/internal/phone"
)

// Errors of the SIM credential store.
var (
	// ErrInvalid wraps a refusal of malformed input; nothing was stored.
	ErrInvalid = errors.New("entitlement: invalid input")
	// errUnknownSIM: no SIM has this IMSI.
	errUnknownSIM = errors.New("entitlement: unknown IMSI")
	// ErrSIMExists: a SIM with this IMSI is already provisioned.
	ErrSIMExists = errors.New("entitlement: a SIM with this IMSI exists")
)

// SIM is one subscriber's credentials as the home network keeps them.
type SIM struct {
	IMSI   string
	MSISDN string
	K      []byte
	OPc    []byte
	SQN    uint64 // SQN_HE
}

// cipher is the SIM's MILENAGE instance.
func (s SIM) cipher() (*milenage.Cipher, error) { return milenage.New(s.K, s.OPc) }

var imsiPattern = regexp.MustCompile(`^[0-9]{6,15}$`)

// NewSIMCredentials fills a SIM to provision: the MSISDN normalised, and K
// and OPc generated (256 fresh random bits) when k is nil; with op instead of
// opc, OPc is derived from it (TS 35.206 §4.1).
func NewSIMCredentials(imsi, msisdn string, k, op, opc []byte) (SIM, error) {
	var problems []error
	if !imsiPattern.MatchString(imsi) {
		problems = append(problems, fmt.Errorf("%w: imsi: 6 to 15 digits", ErrInvalid))
	}
	e164, err := phone.Normalize(msisdn)
	if err != nil {
		problems = append(problems, fmt.Errorf("%w: msisdn: not a valid international (E.164) phone number", ErrInvalid))
	}
	if k == nil && (op != nil || opc != nil) {
		problems = append(problems, fmt.Errorf("%w: an OP or OPc needs its K", ErrInvalid))
	}
	if op != nil && opc != nil {
		problems = append(problems, fmt.Errorf("%w: give OP or OPc, not both", ErrInvalid))
	}
	if len(problems) > 0 {
		return SIM{}, errors.Join(problems...)
	}
	sim := SIM{IMSI: imsi, MSISDN: e164, K: k, OPc: opc}
	if k == nil {
		sim.K, sim.OPc = make([]byte, milenage.KeySize), make([]byte, milenage.KeySize)
		rand.Read(sim.K)
		rand.Read(sim.OPc)
	}
	if op != nil {
		if sim.OPc, err = milenage.OPc(k, op); err != nil {
			return SIM{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if len(sim.K) != milenage.KeySize || len(sim.OPc) != milenage.KeySize {
		return SIM{}, fmt.Errorf("%w: K and OPc are 16 bytes (32 hex digits)", ErrInvalid)
	}
	return sim, nil
}

// SIMStore keeps SIM credentials in Postgres (table sim_credentials).
type SIMStore struct {
	db *pgxpool.Pool
}

// NewSIMStore returns the store on db.
func NewSIMStore(db *pgxpool.Pool) *SIMStore { return &SIMStore{db: db} }

// Add provisions a SIM (from NewSIMCredentials); ErrSIMExists when its IMSI is taken.
func (s *SIMStore) Add(ctx context.Context, sim SIM) error {
	_, err := s.db.Exec(ctx, `INSERT INTO sim_credentials (imsi, msisdn, k, opc, sqn) VALUES ($1, $2, $3, $4, $5)`,
		sim.IMSI, sim.MSISDN, sim.K, sim.OPc, int64(sim.SQN&milenage.MaxSQN))
	if err != nil {
		if errors.Is(pg.MapError(err), pg.ErrAlreadyExists) {
			return ErrSIMExists
		}
		return fmt.Errorf("add SIM: %w", pg.MapError(err))
	}
	return nil
}

// nextChallenge advances the SIM's SQN_HE by one, in one statement (so two
// concurrent challenges never carry the same SQN), and returns the SIM with
// the sequence number to put in the challenge. errUnknownSIM for an IMSI no
// SIM has.
func (s *SIMStore) nextChallenge(ctx context.Context, imsi string) (SIM, error) {
	return s.scan(s.db.QueryRow(ctx, `
UPDATE sim_credentials SET sqn = (sqn + 1) % 281474976710656 WHERE imsi = $1
RETURNING imsi, msisdn, k, opc, sqn`, imsi))
}

// Resynchronise sets SQN_HE to the SIM's SQN_MS, recovered from AUTS, so the
// next challenge carries SQN_MS + 1 (TS 33.102 §6.3.5).
func (s *SIMStore) Resynchronise(ctx context.Context, imsi string, sqnMS uint64) error {
	tag, err := s.db.Exec(ctx, `UPDATE sim_credentials SET sqn = $2 WHERE imsi = $1`, imsi, int64(sqnMS&milenage.MaxSQN))
	if err != nil {
		return fmt.Errorf("resynchronise SIM: %w", pg.MapError(err))
	}
	if tag.RowsAffected() == 0 {
		return errUnknownSIM
	}
	return nil
}

// Get returns the SIM of imsi.
func (s *SIMStore) Get(ctx context.Context, imsi string) (SIM, error) {
	return s.scan(s.db.QueryRow(ctx, `SELECT imsi, msisdn, k, opc, sqn FROM sim_credentials WHERE imsi = $1`, imsi))
}

func (s *SIMStore) scan(row pgx.Row) (SIM, error) {
	var sim SIM
	var sqn int64
	if err := row.Scan(&sim.IMSI, &sim.MSISDN, &sim.K, &sim.OPc, &sqn); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return SIM{}, errUnknownSIM
		}
		return SIM{}, fmt.Errorf("read SIM: %w", pg.MapError(err))
	}
	sim.SQN = uint64(sqn)
	return sim, nil
}
