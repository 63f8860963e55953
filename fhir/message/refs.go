package message

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// rewriteRefs replaces every Reference.reference in body that to resolves
// (a reference to another entry of the message) with the server's
// Type/id; references outside the message are kept as sent.
func rewriteRefs(body []byte, to func(ref string) (string, bool)) ([]byte, error) {
	type change struct{ path, val string }
	var changes []change
	var walk func(v gjson.Result, path string)
	walk = func(v gjson.Result, path string) {
		switch {
		case v.IsObject():
			v.ForEach(func(k, child gjson.Result) bool {
				p := joinPath(path, escapeKey(k.String()))
				if k.String() == "reference" && child.Type == gjson.String {
					if nv, ok := to(child.String()); ok && nv != child.String() {
						changes = append(changes, change{p, nv})
					}
					return true
				}
				walk(child, p)
				return true
			})
		case v.IsArray():
			i := 0
			v.ForEach(func(_, child gjson.Result) bool {
				walk(child, joinPath(path, strconv.Itoa(i)))
				i++
				return true
			})
		}
	}
	walk(gjson.ParseBytes(body), "")
	out := body
	var err error
	for _, c := range changes {
		if out, err = sjson.SetBytes(out, c.path, c.val); err != nil {
			return nil, fmt.Errorf("message: rewrite reference at %s: %w", c.path, err)
		}
	}
	return out, nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// escapeKey escapes the characters sjson paths give a meaning to.
func escapeKey(k string) string {
	if !strings.ContainsAny(k, `.*?|#@\:!=<>%`) {
		return k
	}
	var b strings.Builder
	for _, r := range k {
		if strings.ContainsRune(`.*?|#@\:!=<>%`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
