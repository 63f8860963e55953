package interaction

import (
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// mandatoryElements are kept by _elements whatever the client asks.
var mandatoryElements = map[string]bool{"resourceType": true, "id": true, "meta": true}

// Subset applies the search's _elements and _summary=data to a matched
// resource's stored JSON: only the listed top-level elements (plus
// resourceType, id, meta) are kept, or everything but the narrative, and
// the resource is tagged SUBSETTED. Otherwise the stored bytes are
// returned untouched.
func (q *Search) Subset(body []byte) []byte {
	return subset(body, q.Elements, q.SummaryData)
}

func subset(body []byte, keep []string, dropText bool) []byte {
	if len(keep) == 0 && !dropText {
		return body
	}
	want := map[string]bool{}
	for _, k := range keep {
		want[k] = true
	}
	out := []byte{'{'}
	first := true
	gjson.ParseBytes(body).ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		base := strings.TrimPrefix(name, "_")
		if dropText && name == "text" {
			return true
		}
		if len(keep) > 0 && !mandatoryElements[name] && !want[base] && !want[strings.TrimSuffix(base, "[x]")] && !choiceWanted(base, want) {
			return true
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, k.Raw...)
		out = append(out, ':')
		out = append(out, v.Raw...)
		return true
	})
	out = append(out, '}')
	tagged, err := sjson.SetRawBytes(out, "meta.tag.-1", []byte(`{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}`))
	if err != nil {
		return out
	}
	return tagged
}

// choiceWanted matches valueQuantity against _elements=value.
func choiceWanted(name string, want map[string]bool) bool {
	for i := 1; i < len(name); i++ {
		if name[i] >= 'A' && name[i] <= 'Z' {
			return want[name[:i]]
		}
	}
	return false
}
