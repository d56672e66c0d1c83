package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// maxFetchBytes bounds a discovery, JWKS or introspection answer.
const maxFetchBytes = 1 << 20

// discoveryDocument is what this server reads of the authorization server's
// OpenID Provider metadata.
type discoveryDocument struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discovery fetches the metadata once and keeps it until forgotten (after a
// failure at the endpoints it names).
type discovery struct {
	url    string
	issuer string
	client *http.Client

	mu  sync.Mutex
	doc *discoveryDocument
}

func newDiscovery(url, issuer string, client *http.Client) *discovery {
	return &discovery{url: url, issuer: issuer, client: client}
}

func (d *discovery) get(ctx context.Context) (*discoveryDocument, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.doc != nil {
		return d.doc, nil
	}
	var doc discoveryDocument
	if err := getJSON(ctx, d.client, d.url, &doc); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != d.issuer {
		return nil, fmt.Errorf("discovery: issuer %q is not the configured %q", doc.Issuer, d.issuer)
	}
	d.doc = &doc
	return d.doc, nil
}

func (d *discovery) forget() {
	d.mu.Lock()
	d.doc = nil
	d.mu.Unlock()
}

// fetchJWKS returns the authorization server's published keys.
func (d *discovery) fetchJWKS(ctx context.Context) ([]jose.JSONWebKey, error) {
	doc, err := d.get(ctx)
	if err != nil {
		return nil, err
	}
	if doc.JWKSURI == "" {
		return nil, errors.New("discovery document has no jwks_uri")
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, d.client, doc.JWKSURI, &set); err != nil {
		d.forget()
		return nil, fmt.Errorf("jwks: %w", err)
	}
	return set.Keys, nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxFetchBytes))
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxFetchBytes)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
