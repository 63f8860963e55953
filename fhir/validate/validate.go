// Package validate checks FHIR R4 JSON resources at the API edge before they
// are stored. It runs github.com/google/fhir/go's validating parser (element
// names, cardinality, primitive formats, required elements, required-bound
// codes, reference target types) after a cheap pre-scan that enforces the
// FHIR JSON rules that parser silently accepts (empty arrays/objects/strings,
// null property values, duplicate property names).
//
// Failures are *outcome.HTTPError values with status 400 whose issues name
// the offending element as a FHIRPath-like expression (Patient.name[0].given),
// so the REST layer can return them unchanged.
//
// Not checked (as google/fhir does not): FHIRPath invariants, profiles,
// terminology beyond required bindings, resolution of contained or Bundle
// references. Contained resources are validated like top-level ones (which
// google/fhir alone does not do). google/fhir also
// rejects the null placeholders FHIR JSON allows inside primitive arrays
// ("given":["a",null] aligned with "_given"); such resources get a 400.
package validate

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/outcome"
)

// maxIssues caps the issues reported for one resource; a thoroughly broken
// body should not produce a megabyte OperationOutcome.
const maxIssues = 20

// Validator validates resources. It is safe for concurrent use: the
// underlying jsonformat.Unmarshaller holds only configuration set at
// construction, and every call uses its own error reporter.
type Validator struct {
	um *jsonformat.Unmarshaller
}

// New returns a Validator for FHIR R4.
func New() (*Validator, error) {
	um, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("validate: create R4 unmarshaller: %w", err)
	}
	um.MaxNestingDepth = maxDepth
	return &Validator{um: um}, nil
}

// Resource validates one resource and returns its resourceType and id (id
// is empty when the body has none). A failure is an *outcome.HTTPError with
// status 400.
func (v *Validator) Resource(body []byte) (resourceType, id string, err error) {
	return v.ResourceAt(body, "")
}

// ResourceAt is Resource for a resource nested at expr (for example
// "Bundle.entry[3].resource"): issue expressions are rooted there.
func (v *Validator) ResourceAt(body []byte, expr string) (resourceType, id string, err error) {
	issues, rtype, id := v.check(body, expr)
	if len(issues) > 0 {
		if len(issues) > maxIssues {
			issues = issues[:maxIssues]
		}
		return rtype, id, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: issues}
	}
	return rtype, id, nil
}

// check returns the issues of body, with expressions rooted at prefix (the
// location of a nested resource, or "" for a top-level one).
func (v *Validator) check(body []byte, prefix string) (issues []outcome.Issue, rtype, id string) {
	if !utf8.Valid(body) {
		return []outcome.Issue{issue("structure", "body is not valid UTF-8", prefix)}, "", ""
	}
	rtype, id, serr := prescan(body)
	if serr != nil {
		root := prefix
		if root == "" {
			// The scan stopped early; the type may still be readable.
			if t := gjson.GetBytes(body, "resourceType"); t.Type == gjson.String {
				rtype = t.String()
			}
			root = rtype
			if root == "" {
				root = "Resource"
			}
		}
		return []outcome.Issue{issue(serr.code, serr.msg, join(root, serr.path))}, rtype, id
	}
	if rtype == "" {
		return []outcome.Issue{issue("required", "missing resourceType", prefix)}, "", id
	}

	// google/fhir v0.7.4 rejects Parameters.parameter.resource as an
	// unknown field (fixed upstream after the last tag). Validate each
	// such resource on its own and the Parameters without them.
	if rtype == "Parameters" && bytes.Contains(body, []byte(`"resource"`)) {
		var nested []outcome.Issue
		body, nested = v.splitParameters(body, prefix)
		issues = append(issues, nested...)
	}

	rep := &reporter{}
	_, err := v.um.UnmarshalWithErrorReporter(body, rep)
	if err != nil {
		issues = append(issues, fromParseError(err, prefix)...)
	}
	for _, r := range rep.errs {
		issues = append(issues, fromUnmarshalError(r.err, r.path, prefix))
	}
	if err == nil && bytes.Contains(body, []byte(`"contained"`)) {
		// google/fhir parses contained resources but skips their
		// required-element and reference checks; run them one by one.
		root := prefix
		if root == "" {
			root = rtype
		}
		for i, c := range gjson.GetBytes(body, "contained").Array() {
			nested, _, _ := v.check([]byte(c.Raw), root+".contained["+strconv.Itoa(i)+"]")
			issues = append(issues, nested...)
		}
	}
	return issues, rtype, id
}

// splitParameters validates every parameter[..](.part[..])*.resource of a
// Parameters body and returns the body without them.
func (v *Validator) splitParameters(body []byte, prefix string) ([]byte, []outcome.Issue) {
	base := prefix
	if base == "" {
		base = "Parameters"
	}
	type loc struct{ json, fhir string }
	var found []loc
	var walk func(arr gjson.Result, jsonPath, fhirPath string)
	walk = func(arr gjson.Result, jsonPath, fhirPath string) {
		i := 0
		arr.ForEach(func(_, p gjson.Result) bool {
			jp := jsonPath + "." + strconv.Itoa(i)
			fp := fhirPath + "[" + strconv.Itoa(i) + "]"
			if p.Get("resource").Exists() {
				found = append(found, loc{jp + ".resource", fp + ".resource"})
			}
			if parts := p.Get("part"); parts.IsArray() {
				walk(parts, jp+".part", fp+".part")
			}
			i++
			return true
		})
	}
	walk(gjson.GetBytes(body, "parameter"), "parameter", base+".parameter")

	var issues []outcome.Issue
	for _, l := range found {
		raw := gjson.GetBytes(body, l.json).Raw
		nested, _, _ := v.check([]byte(raw), l.fhir)
		issues = append(issues, nested...)
	}
	for _, l := range found {
		out, err := sjson.DeleteBytes(body, l.json)
		if err != nil {
			issues = append(issues, issue("structure", "cannot separate nested resource: "+err.Error(), l.fhir))
			continue
		}
		body = out
	}
	return body, issues
}

type reported struct {
	path string
	err  error
}

// reporter collects google/fhir validation errors (required fields,
// reference types, primitive formats) instead of stopping at the first.
type reporter struct{ errs []reported }

func (r *reporter) ReportValidationError(path string, err error) error {
	r.errs = append(r.errs, reported{path, err})
	return nil
}

func (r *reporter) ReportValidationWarning(string, error) error { return nil }

func issue(code, msg, expr string) outcome.Issue {
	is := outcome.Issue{Severity: "error", Code: code, Diagnostics: msg}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return is
}

func join(root, rel string) string {
	switch {
	case rel == "":
		return root
	case root == "":
		return rel
	case rel[0] == '[':
		return root + rel
	default:
		return root + "." + rel
	}
}

// fromParseError unpacks google/fhir's parse error (an UnmarshalErrorList
// or a single *UnmarshalError; both types live in an internal package).
func fromParseError(err error, prefix string) []outcome.Issue {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Slice {
		var out []outcome.Issue
		for i := 0; i < v.Len() && i < maxIssues; i++ {
			if e, ok := v.Index(i).Interface().(error); ok {
				out = append(out, fromUnmarshalError(e, "", prefix))
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return []outcome.Issue{fromUnmarshalError(err, "", prefix)}
}

// fromUnmarshalError reads the Path, Details and Diagnostics fields of a
// google/fhir UnmarshalError by reflection (the type is internal to
// google/fhir), falling back to the error text.
func fromUnmarshalError(err error, path, prefix string) outcome.Issue {
	var details, diag string
	if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		e := v.Elem()
		if f := e.FieldByName("Path"); f.IsValid() && f.Kind() == reflect.String && path == "" {
			path = f.String()
		}
		if f := e.FieldByName("Details"); f.IsValid() && f.Kind() == reflect.String {
			details = f.String()
		}
		if f := e.FieldByName("Diagnostics"); f.IsValid() && f.Kind() == reflect.String {
			diag = f.String()
		}
	}
	if details == "" {
		details = err.Error()
	}
	code := "invalid"
	switch {
	case details == "unknown field":
		code = "structure"
		if name := strings.Trim(diag, `"`); name != "" && !strings.ContainsAny(name, " .") {
			path = path + "." + name
			diag = ""
			details = "unknown element"
		}
	case strings.HasPrefix(details, "missing required field"):
		code = "required"
	case details == "code type mismatch":
		code = "code-invalid"
	case details == "invalid JSON":
		code = "structure"
	case strings.HasPrefix(details, "invalid reference"), strings.HasPrefix(details, "expected "),
		strings.HasPrefix(details, "invalid "):
		code = "value"
	}
	msg := details
	if diag != "" && len(diag) < 200 {
		msg += ": " + strings.ToValidUTF8(diag, "")
	}
	return issue(code, msg, fhirPath(path, prefix))
}

// typeStep matches the resource type google/fhir inserts into paths after a
// nested resource (Bundle.entry[0].resource.Patient.gender); FHIRPath has no
// such step.
var typeStep = regexp.MustCompile(`(\.resource|\.contained\[\d+\])\.[A-Z][A-Za-z]*`)

// fhirPath converts a google/fhir JSON path into a FHIRPath-like expression,
// re-rooted at prefix for nested resources.
func fhirPath(p, prefix string) string {
	p = typeStep.ReplaceAllString(p, "$1")
	if prefix == "" {
		return p
	}
	// Replace the leading resource type with the nested location.
	if i := strings.IndexAny(p, ".["); i >= 0 {
		return prefix + p[i:]
	}
	return prefix
}
