package sqlstore

import (
	"testing"

	"github.com/xenflow/xenflow/compute"
)

func TestRecordCache(t *testing.T) {
	c := newCaches().instances
	inst := &compute.Instance{UUID: "i1", Name: "a", SystemMetadata: map[string]string{"k": "v"}}
	if _, ok := c.get("i1", `{"a"}`); ok {
		t.Fatal("hit in an empty cache")
	}
	c.put("i1", `{"a"}`, inst)
	inst.SystemMetadata["k"] = "changed after put"
	for _, tc := range []struct {
		id, rec string
		hit     bool
	}{
		{"i1", `{"a"}`, true},
		{"i1", `{"b"}`, false}, // another process wrote the row
		{"i2", `{"a"}`, false},
	} {
		got, ok := c.get(tc.id, tc.rec)
		if ok != tc.hit {
			t.Fatalf("get(%s, %s): hit %v, want %v", tc.id, tc.rec, ok, tc.hit)
		}
		if ok && (got.Name != "a" || got.SystemMetadata["k"] != "v") {
			t.Fatalf("get(%s, %s) = %+v, want the record as put", tc.id, tc.rec, got)
		}
		if ok {
			got.SystemMetadata["k"] = "changed by a caller"
		}
	}
	if got, _ := c.get("i1", `{"a"}`); got.SystemMetadata["k"] != "v" {
		t.Fatalf("a caller's change reached the cache: %+v", got)
	}
	for i := 0; i < cacheRows; i++ {
		c.put(itoa(int64(i)), "r", inst)
	}
	if n := len(c.rows); n > cacheRows {
		t.Fatalf("cache holds %d rows, bound %d", n, cacheRows)
	}
}
