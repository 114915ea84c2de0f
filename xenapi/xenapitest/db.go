package xenapitest

import (
	"sort"
	"strconv"
	"time"
)

// object is one row of the simulated database.
type object struct {
	cls *class
	ref string
	f   map[string]any // field name -> stored value (see kind)
	// created and modified are event generations, as in xapi's database.
	created, modified uint64
}

// tombstone remembers a deleted object for event.from.
type tombstone struct {
	cls *class
	ref string
	gen uint64
}

func (o *object) str(name string) string {
	s, _ := o.f[name].(string)
	return s
}

func (o *object) int(name string) int64 {
	n, _ := o.f[name].(int64)
	return n
}

func (o *object) bool(name string) bool {
	b, _ := o.f[name].(bool)
	return b
}

func (o *object) set(name string) []string {
	s, _ := o.f[name].([]string)
	return s
}

func (o *object) mapv(name string) map[string]string {
	m, _ := o.f[name].(map[string]string)
	if m == nil {
		m = map[string]string{}
		o.f[name] = m
	}
	return m
}

// addToSet appends v to a set field unless it is there already.
func (o *object) addToSet(name, v string) {
	s := o.set(name)
	for _, x := range s {
		if x == v {
			return
		}
	}
	o.f[name] = append(append([]string(nil), s...), v)
}

// removeFromSet removes v from a set field.
func (o *object) removeFromSet(name, v string) {
	s := o.set(name)
	out := make([]string, 0, len(s))
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	o.f[name] = out
}

// record returns the object's record in the wire value model.
func (o *object) record() map[string]any {
	r := make(map[string]any, len(o.cls.fields))
	for i := range o.cls.fields {
		fd := &o.cls.fields[i]
		r[fd.name] = o.wireField(fd.name)
	}
	return r
}

// wireField returns one field in the wire value model; a VM's
// allowed_operations is computed from its state, as xapi keeps it.
func (o *object) wireField(name string) any {
	if o.cls == classVM && name == "allowed_operations" {
		return wireValue(vmAllowedOperations(o))
	}
	return wireValue(o.f[name])
}

// wireValue converts a stored value to what xapi puts on the wire: ints
// as decimal strings, sets as arrays, maps as structs.
func wireValue(v any) any {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		return a
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return m
	case time.Time:
		return x.UTC()
	case nil:
		return ""
	default:
		return v
	}
}

// copyValue deep-copies a stored value.
func copyValue(v any) any {
	switch x := v.(type) {
	case []string:
		return append([]string{}, x...)
	case map[string]string:
		m := make(map[string]string, len(x))
		for k, s := range x {
			m[k] = s
		}
		return m
	default:
		return v
	}
}

// newObject stores a new object of cls with every field at its zero value
// (refs at OpaqueRef:NULL), then applies fields. It assigns ref and uuid.
// The caller holds p.mu.
func (p *Pool) newObject(cls *class, fields map[string]any) *object {
	o := &object{cls: cls, f: make(map[string]any, len(cls.fields))}
	for i := range cls.fields {
		fd := &cls.fields[i]
		if fd.kind == kString && refFields[fd.name] {
			o.f[fd.name] = nullRef
		} else {
			o.f[fd.name] = fd.zero()
		}
	}
	for k, v := range fields {
		o.f[k] = v
	}
	if o.str("uuid") == "" {
		o.f["uuid"] = p.newUUID()
	}
	o.ref = "OpaqueRef:" + p.newUUID()
	p.gen++
	o.created, o.modified = p.gen, p.gen
	p.objs[o.ref] = o
	if p.byClass[cls] == nil {
		p.byClass[cls] = map[string]*object{}
	}
	p.byClass[cls][o.ref] = o
	p.byUUID[cls.name+"/"+o.str("uuid")] = o
	p.changed()
	return o
}

// touch records that o changed. The caller holds p.mu.
func (p *Pool) touch(o *object) {
	p.gen++
	o.modified = p.gen
	p.changed()
}

// deleteObject removes o. The caller holds p.mu.
func (p *Pool) deleteObject(o *object) {
	if _, ok := p.objs[o.ref]; !ok {
		return
	}
	delete(p.objs, o.ref)
	delete(p.byClass[o.cls], o.ref)
	delete(p.byUUID, o.cls.name+"/"+o.str("uuid"))
	p.gen++
	p.tombstones = append(p.tombstones, tombstone{cls: o.cls, ref: o.ref, gen: p.gen})
	p.changed()
}

// changed wakes every event.from waiter. The caller holds p.mu.
func (p *Pool) changed() {
	close(p.notify)
	p.notify = make(chan struct{})
}

// get returns the object of class cls with this ref, or HANDLE_INVALID.
// The caller holds p.mu.
func (p *Pool) get(cls *class, ref string) (*object, error) {
	o, ok := p.objs[ref]
	if !ok || o.cls != cls {
		return nil, fail(ErrHandleInvalid, cls.name, ref)
	}
	return o, nil
}

// all returns the objects of a class sorted by creation. The caller holds
// p.mu.
func (p *Pool) all(cls *class) []*object {
	m := p.byClass[cls]
	out := make([]*object, 0, len(m))
	for _, o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created < out[j].created })
	return out
}
