package radius

// generations is a bounded map of two generations, for the server's
// memories (openSessions, numbers): entries go into the newer one; when it
// holds capacity/2 entries (or its owner says so) it becomes the older one
// and the older one is dropped whole; an entry found in the older one moves
// back to the newer, so what is still in use survives. Not safe for
// concurrent use: its owner locks.
type generations[K comparable, V any] struct {
	cur, old map[K]V
	capacity int
}

func newGenerations[K comparable, V any](capacity int) generations[K, V] {
	return generations[K, V]{cur: map[K]V{}, old: map[K]V{}, capacity: capacity}
}

// get returns k's value, moving it to the newer generation.
func (g *generations[K, V]) get(k K) (V, bool) {
	if v, ok := g.cur[k]; ok {
		return v, true
	}
	v, ok := g.old[k]
	if ok {
		delete(g.old, k)
		g.cur[k] = v
	}
	return v, ok
}

// put sets k's value in the newer generation, rotating first when it is full.
func (g *generations[K, V]) put(k K, v V) {
	if _, ok := g.cur[k]; !ok && len(g.cur) >= g.capacity/2 {
		g.rotate()
	}
	delete(g.old, k)
	g.cur[k] = v
}

// rotate makes the newer generation the older one.
func (g *generations[K, V]) rotate() {
	g.old, g.cur = g.cur, make(map[K]V, len(g.cur))
}

func (g *generations[K, V]) delete(k K) {
	delete(g.cur, k)
	delete(g.old, k)
}

func (g *generations[K, V]) clear() {
	clear(g.cur)
	clear(g.old)
}

func (g *generations[K, V]) len() int { return len(g.cur) + len(g.old) }
