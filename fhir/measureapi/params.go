package measureapi

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/outcome"
)

// param is one operation parameter: a primitive value as text, a
// reference's reference, or a resource.
type param struct {
	value    string
	resource []byte
}

// params are an operation's parameters by name, in request order.
type params map[string][]param

// formatParams are query parameters of the FHIR REST API that operations
// accept besides their own.
var formatParams = map[string]bool{"_format": true, "_pretty": true}

// readParams reads GET query parameters, or a POST body: a Parameters
// resource (application/fhir+json or application/json) or an HTML form.
// Parameters outside allowed are a 400 naming them.
func readParams(w http.ResponseWriter, r *http.Request, maxBody int64, allowed map[string]bool) (params, error) {
	out := params{}
	addQuery := func(q url.Values) {
		for k, vs := range q {
			for _, v := range vs {
				out[k] = append(out[k], param{value: v})
			}
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		addQuery(r.URL.Query())
	case http.MethodPost:
		addQuery(r.URL.Query())
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			return nil, outcome.Errorf(http.StatusRequestEntityTooLarge, "too-costly", "request body larger than %d bytes", maxBody)
		}
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case ct == "application/x-www-form-urlencoded":
			q, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, outcome.Errorf(http.StatusBadRequest, "structure", "malformed form body: %v", err)
			}
			addQuery(q)
		case len(strings.TrimSpace(string(body))) == 0:
		default:
			if err := parseParameters(body, out); err != nil {
				return nil, err
			}
		}
	default:
		return nil, outcome.Errorf(http.StatusMethodNotAllowed, "not-supported", "use GET or POST")
	}
	for name := range out {
		if !allowed[name] && !formatParams[name] {
			return nil, outcome.Errorf(http.StatusBadRequest, "not-supported", "unknown parameter %q (this operation accepts %s)", name, names(allowed))
		}
	}
	return out, nil
}

func names(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// parseParameters reads a FHIR Parameters resource into out.
func parseParameters(body []byte, out params) error {
	if !gjson.ValidBytes(body) {
		return outcome.Errorf(http.StatusBadRequest, "structure", "body is not valid JSON")
	}
	if rt := gjson.GetBytes(body, "resourceType").String(); rt != "Parameters" {
		return outcome.Errorf(http.StatusBadRequest, "structure", "body must be a Parameters resource, not %q", rt)
	}
	var perr error
	gjson.GetBytes(body, "parameter").ForEach(func(key, p gjson.Result) bool {
		name := p.Get("name").String()
		if name == "" {
			perr = outcome.Errorf(http.StatusBadRequest, "required", "Parameters.parameter[%d] has no name", key.Int())
			return false
		}
		var v param
		p.ForEach(func(k, val gjson.Result) bool {
			switch key := k.String(); {
			case key == "resource":
				v.resource = []byte(val.Raw)
			case key == "valueReference":
				v.value = val.Get("reference").String()
			case strings.HasPrefix(key, "value"):
				if val.IsObject() || val.IsArray() {
					perr = outcome.Errorf(http.StatusBadRequest, "not-supported", "parameter %q: %s is not supported here", name, key)
					return false
				}
				v.value = val.String()
			case key == "part":
				perr = outcome.Errorf(http.StatusBadRequest, "not-supported", "parameter %q: parts are not supported here", name)
				return false
			}
			return true
		})
		if perr != nil {
			return false
		}
		out[name] = append(out[name], v)
		return true
	})
	return perr
}

// one returns the single value of name ("" when absent); repeating a
// single-valued parameter is a 400.
func (p params) one(name string) (string, error) {
	vs := p[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		if vs[0].resource != nil {
			return "", outcome.Errorf(http.StatusBadRequest, "invalid", "parameter %q must be a value, not a resource", name)
		}
		return strings.TrimSpace(vs[0].value), nil
	}
	return "", outcome.Errorf(http.StatusBadRequest, "invalid", "parameter %q may be given only once", name)
}
