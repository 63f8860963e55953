package adt

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// object is a JSON object edited at the top level: stored members keep
// their order and bytes, set members replace or append, and it is written
// back in one pass. Building resources this way costs one parse of the
// stored body instead of one per element (sjson), and never re-encodes
// content the mapper does not own.
type object struct {
	keys []string
	vals map[string][]byte
}

func parseObject(body []byte) (*object, error) {
	r := gjson.ParseBytes(body)
	if !r.IsObject() {
		return nil, fmt.Errorf("adt: stored body is not a JSON object")
	}
	o := &object{vals: map[string][]byte{}}
	r.ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		if _, dup := o.vals[name]; !dup {
			o.keys = append(o.keys, name)
		}
		o.vals[name] = member(body, v)
		return true
	})
	return o, nil
}

// member returns v's bytes within body without copying when gjson's
// offset points at them, a copy otherwise. The result is capacity-limited
// so nothing can append into body; the stored body is never written.
func member(body []byte, v gjson.Result) []byte {
	if end := v.Index + len(v.Raw); v.Index > 0 && end <= len(body) && string(body[v.Index:end]) == v.Raw {
		return body[v.Index:end:end]
	}
	return []byte(v.Raw)
}

func newObject(resourceType, id string) *object {
	o := &object{vals: map[string][]byte{}}
	o.set("resourceType", raw(resourceType))
	o.set("id", raw(id))
	return o
}

// get returns the member as a gjson value.
func (o *object) get(name string) gjson.Result {
	v, ok := o.vals[name]
	if !ok {
		return gjson.Result{}
	}
	return gjson.ParseBytes(v)
}

// set replaces or appends a member; nil (or JSON null) removes it.
func (o *object) set(name string, v []byte) {
	if v == nil || string(v) == "null" {
		o.del(name)
		return
	}
	if _, ok := o.vals[name]; !ok {
		o.keys = append(o.keys, name)
	}
	o.vals[name] = v
}

func (o *object) setValue(name string, v any) { o.set(name, raw(v)) }

func (o *object) del(name string) {
	if _, ok := o.vals[name]; !ok {
		return
	}
	delete(o.vals, name)
	for i, k := range o.keys {
		if k == name {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
}

func (o *object) bytes() []byte {
	n := 2
	for _, k := range o.keys {
		n += len(k) + len(o.vals[k]) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = append(b, o.vals[k]...)
	}
	return append(b, '}')
}
