package sim

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// TestBrowseReadsTheResultPagesVerdict: Page.Verified is what the page's
// data-verified attribute states, nil when it states nothing or contradicts
// itself, so that a 2xx "Not verified" page is not taken for a success.
func TestBrowseReadsTheResultPagesVerdict(t *testing.T) {
	pages := map[string]string{
		"/yes":   `<h1 id="result" class="ok" data-verified="true">Verified: +33612345678</h1>`,
		"/no":    `<h1 id="result" class="no" data-verified="false">Not verified</h1>`,
		"/none":  `<h1>Verified, or so the text says</h1>`,
		"/mixed": `<h1 data-verified="true">a</h1><p data-verified="false">b</p>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>" + pages[r.URL.Path] + "</body></html>"))
	}))
	defer srv.Close()
	d := NewDevice(netip.MustParseAddr("127.10.201.4"), "", 0)
	defer d.Close()
	for path, want := range map[string]string{"/yes": "true", "/no": "false", "/none": "nil", "/mixed": "nil"} {
		page, err := d.Browse(context.Background(), srv.URL+path)
		if err != nil {
			t.Fatal(err)
		}
		got := "nil"
		if page.Verified != nil {
			got = map[bool]string{true: "true", false: "false"}[*page.Verified]
		}
		if got != want {
			t.Errorf("%s: Verified = %s, want %s (text %q)", path, got, want, page.Text)
		}
	}
}
