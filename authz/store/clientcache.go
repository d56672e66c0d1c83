package store

import (
	"sync"
	"time"
)

// maxCachedClients bounds the client cache; when full it starts afresh.
const maxCachedClients = 10_000

// clientCache keeps recently read clients for a short time. Only clients
// found are kept: an unknown client_id is looked up every time.
type clientCache struct {
	ttl     time.Duration
	mu      sync.RWMutex
	entries map[string]cachedClient
}

type cachedClient struct {
	client  *Client
	expires time.Time
}

func newClientCache(ttl time.Duration) *clientCache {
	return &clientCache{ttl: ttl, entries: map[string]cachedClient{}}
}

// get returns the client cached under id, if it has not expired. Cached
// clients are shared: nothing may change them.
func (c *clientCache) get(id string, now time.Time) (*Client, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || now.After(e.expires) {
		return nil, false
	}
	return e.client, true
}

func (c *clientCache) put(client *Client, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedClients {
		c.entries = map[string]cachedClient{}
	}
	c.entries[client.ID] = cachedClient{client: client, expires: now.Add(c.ttl)}
}

func (c *clientCache) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}
