package httpx

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// dialFrom opens a TCP connection to addr from source (on Linux every
// 127.0.0.0/8 address reaches loopback).
func dialFrom(t *testing.T, source, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 2 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", source, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// served reports whether a keep-alive request on conn is answered (the
// connection is then held open by the server).
func served(conn net.Conn) bool {
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("GET /ping HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestLimitConnectionsPerAddress(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejected := prometheus.NewCounter(prometheus.CounterOpts{Name: "rejected"})
	l := LimitConnections(raw, ConnLimit{PerAddress: 3, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}, Rejected: rejected})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := raw.Addr().String()

	var held []net.Conn
	for i := 0; i < 3; i++ {
		c := dialFrom(t, "127.0.0.1", addr)
		if !served(c) {
			t.Fatalf("connection %d of 3 from one address not served", i+1)
		}
		held = append(held, c)
	}
	over := dialFrom(t, "127.0.0.1", addr)
	if served(over) {
		t.Fatal("a 4th concurrent connection from one address was served; cap is 3")
	}
	if got := counterValue(t, rejected); got != 1 {
		t.Errorf("rejected counter %v; want 1", got)
	}
	if !served(dialFrom(t, "127.0.0.2", addr)) {
		t.Fatal("another address was refused: the cap is per address")
	}
	for i := 0; i < 5; i++ {
		if !served(dialFrom(t, "127.0.0.3", addr)) {
			t.Fatalf("exempt (trusted proxy) connection %d refused", i+1)
		}
	}
	// Closing one gives its slot back.
	held[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for !served(dialFrom(t, "127.0.0.1", addr)) {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection's slot never came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLimitConnectionsDisabled(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if l := LimitConnections(raw, ConnLimit{PerAddress: 0}); l != raw {
		t.Fatal("a cap of 0 must leave the listener as it is")
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
