package sqlstore

import (
	"sync"

	"github.com/xenflow/xenflow/compute"
)

// cacheRows bounds a recordCache; a full cache starts over.
const cacheRows = 1024

// recordCache keeps, for each row a step wrote or read, its record as
// stored (the JSON text) and decoded. A step reads the record the step
// before it wrote, so when the stored text is the one cached the decode
// is a clone instead. The stored text is the key, not a version, so a
// row another process changed is decoded afresh.
type recordCache[T any] struct {
	mu    sync.Mutex
	rows  map[string]cachedRecord[T]
	clone func(T) T
}

type cachedRecord[T any] struct {
	rec string
	v   T
}

func newRecordCache[T any](clone func(T) T) *recordCache[T] {
	return &recordCache[T]{rows: map[string]cachedRecord[T]{}, clone: clone}
}

// get returns a copy of the decoded record of id when rec is the text
// cached for it.
func (c *recordCache[T]) get(id, rec string) (T, bool) {
	c.mu.Lock()
	r, ok := c.rows[id]
	c.mu.Unlock()
	if !ok || r.rec != rec {
		var zero T
		return zero, false
	}
	return c.clone(r.v), true
}

// put caches a copy of v as the decoded form of rec, the text stored for
// id.
func (c *recordCache[T]) put(id, rec string, v T) {
	v = c.clone(v)
	c.mu.Lock()
	if len(c.rows) >= cacheRows {
		clear(c.rows)
	}
	c.rows[id] = cachedRecord[T]{rec: rec, v: v}
	c.mu.Unlock()
}

// caches are a store's record caches.
type caches struct {
	instances  *recordCache[*compute.Instance]
	migrations *recordCache[*compute.Migration]
}

func newCaches() caches {
	return caches{
		instances:  newRecordCache((*compute.Instance).Clone),
		migrations: newRecordCache((*compute.Migration).Clone),
	}
}
