package network

import (
	"encoding/json"
	"fmt"
	"time"
)

// sessionJSON is a session on the wire (admin API and `--json`): the address
// as a plain string for a /32 or /128 and as a prefix for a /64, the ports as
// "lo-hi".
type sessionJSON struct {
	ID        int64      `json:"id"`
	MSISDN    string     `json:"msisdn"`
	IP        string     `json:"ip"`
	Ports     string     `json:"ports"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	Active    bool       `json:"active"`
	APN       string     `json:"apn"`
	RAT       string     `json:"rat"`
	IMSI      string     `json:"imsi,omitempty"`
}

// MarshalJSON renders the wire form.
func (s Session) MarshalJSON() ([]byte, error) {
	return json.Marshal(sessionJSON{
		ID: s.ID, MSISDN: s.MSISDN, IP: FormatAddress(s.IP), Ports: s.Ports.String(),
		StartedAt: s.Start, EndedAt: s.End, Active: s.End == nil,
		APN: s.APN, RAT: s.RAT, IMSI: s.IMSI,
	})
}

// UnmarshalJSON reads the wire form (for clients of the admin API).
func (s *Session) UnmarshalJSON(data []byte) error {
	var w sessionJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	ip, err := ParseAddress(w.IP)
	if err != nil {
		return fmt.Errorf("session ip: %w", err)
	}
	ports, err := ParsePortRange(w.Ports)
	if err != nil {
		return fmt.Errorf("session ports: %w", err)
	}
	*s = Session{ID: w.ID, MSISDN: w.MSISDN, IP: ip, Ports: ports, Start: w.StartedAt, End: w.EndedAt,
		APN: w.APN, RAT: w.RAT, IMSI: w.IMSI}
	return nil
}
