package subscription

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/outcome"
)

// Payload contents (backport-payload-content).
const (
	ContentEmpty        = "empty"
	ContentIDOnly       = "id-only"
	ContentFullResource = "full-resource"
)

// Subscription statuses (R4 Subscription.status).
const (
	StatusRequested = "requested"
	StatusActive    = "active"
	StatusError     = "error"
	StatusOff       = "off"
)

// Subscription is a parsed, validated topic-based Subscription.
type Subscription struct {
	ID      string
	Version uint64
	Status  string
	// Owner is the provider organization the Subscription is bound to: an
	// Organization id, NPI or TIN, as held in an auth client's Organization
	// (a "system|value" form is compared on its value).
	Owner    string
	Endpoint string
	Headers  [][2]string // channel.header split into name and value
	Content  string
	End      time.Time // Subscription.end; zero when open-ended
	Filter   Filter
	errText  string // Subscription.error, for $status
}

// Filter is the conjunction of a Subscription's filter criteria; a nil map
// does not restrict.
type Filter struct {
	Kinds        map[string]bool // event=
	Patients     map[string]bool // patient=
	Groups       map[string]bool // group= (ATR list ids)
	Organization string          // organization= (must name the owner)
}

// invalid is the 400 of a Subscription that breaks a rule, with the
// element at fault.
func invalid(expr, format string, args ...any) error {
	e := outcome.Errorf(http.StatusBadRequest, "invalid", format, args...)
	e.Issues[0].Expression = []string{expr}
	return e
}

// Parse validates a Subscription resource against this server's topic and
// channel rules. The owner extension is read as stored; it is the server's
// to set (see Bind).
func Parse(body []byte) (*Subscription, error) {
	if !gjson.ValidBytes(body) {
		return nil, outcome.Errorf(http.StatusBadRequest, "structure", "the body is not valid JSON")
	}
	r := gjson.ParseBytes(body)
	if rt := r.Get("resourceType").String(); rt != "Subscription" {
		return nil, invalid("resourceType", "expected a Subscription, got %q", rt)
	}
	s := &Subscription{ID: r.Get("id").String(), Status: r.Get("status").String()}
	switch s.Status {
	case StatusRequested, StatusActive, StatusError, StatusOff:
	default:
		return nil, invalid("Subscription.status", "status must be requested, active, error or off, not %q", s.Status)
	}
	if c := r.Get("criteria").String(); c != TopicURL {
		return nil, invalid("Subscription.criteria", "criteria must be the topic canonical %s (topic-based subscriptions only), not %q", TopicURL, c)
	}
	if e := r.Get("end"); e.Exists() {
		t, err := parseInstant(e.String())
		if err != nil {
			return nil, invalid("Subscription.end", "end %q is not a dateTime", e.String())
		}
		s.End = t
	}
	ch := r.Get("channel")
	if t := ch.Get("type").String(); t != "rest-hook" {
		return nil, invalid("Subscription.channel.type", "only the rest-hook channel is supported, not %q", t)
	}
	s.Endpoint = ch.Get("endpoint").String()
	u, err := url.Parse(s.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, invalid("Subscription.channel.endpoint", "endpoint must be an absolute http or https URL without credentials")
	}
	for _, h := range ch.Get("header").Array() {
		name, value, ok := strings.Cut(h.String(), ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || strings.ContainsAny(h.String(), "\r\n") || strings.ContainsAny(name, " \t") {
			return nil, invalid("Subscription.channel.header", "a header must be \"Name: value\" on one line")
		}
		s.Headers = append(s.Headers, [2]string{name, value})
	}
	s.Content = ContentIDOnly
	for _, x := range ch.Get("_payload.extension").Array() {
		if x.Get("url").String() == ExtPayloadContent {
			s.Content = x.Get("valueCode").String()
		}
	}
	switch s.Content {
	case ContentEmpty, ContentIDOnly, ContentFullResource:
	default:
		return nil, invalid("Subscription.channel.payload", "payload content must be empty, id-only or full-resource, not %q", s.Content)
	}
	if p := ch.Get("payload"); p.Exists() {
		mt := strings.TrimSpace(strings.Split(p.String(), ";")[0])
		if mt != "application/fhir+json" && mt != "application/json" {
			return nil, invalid("Subscription.channel.payload", "payload must be application/fhir+json, not %q", p.String())
		}
	}
	for i, x := range r.Get("_criteria.extension").Array() {
		if x.Get("url").String() != ExtFilterCriteria {
			continue
		}
		if err := s.Filter.add(x.Get("valueString").String()); err != nil {
			return nil, invalid("Subscription.criteria.extension["+strconv.Itoa(i)+"]", "%v", err)
		}
	}
	for _, x := range r.Get("extension").Array() {
		if x.Get("url").String() == ExtOwner {
			s.Owner = x.Get("valueString").String()
		}
	}
	return s, nil
}

// add parses one filter criterion, "Encounter?param=v1,v2&param2=v".
func (f *Filter) add(criterion string) error {
	typ, query, ok := strings.Cut(criterion, "?")
	if !ok || typ != "Encounter" {
		return fmt.Errorf("filter criteria must have the form Encounter?name=value, not %q", criterion)
	}
	q, err := url.ParseQuery(query)
	if err != nil || len(q) == 0 {
		return fmt.Errorf("filter criteria %q is not a query string", criterion)
	}
	for name, vals := range q {
		var all []string
		for _, v := range vals {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					all = append(all, p)
				}
			}
		}
		if len(all) == 0 {
			return fmt.Errorf("filter %s has no value", name)
		}
		switch name {
		case "event":
			for _, k := range all {
				if !topicKinds[k] {
					return fmt.Errorf("event %q is not an event of the topic", k)
				}
			}
			f.Kinds = intersect(f.Kinds, all, "")
		case "patient":
			f.Patients = intersect(f.Patients, all, "Patient/")
		case "group":
			f.Groups = intersect(f.Groups, all, "Group/")
		case "organization":
			if len(all) != 1 || (f.Organization != "" && f.Organization != all[0]) {
				return fmt.Errorf("organization filter takes exactly one value")
			}
			f.Organization = all[0]
		default:
			return fmt.Errorf("%q is not a filter parameter of the topic (event, patient, group, organization)", name)
		}
	}
	return nil
}

// intersect ANDs a new OR-list into a set (repeated criteria narrow).
func intersect(set map[string]bool, vals []string, prefix string) map[string]bool {
	next := map[string]bool{}
	for _, v := range vals {
		v = strings.TrimPrefix(v, prefix)
		if set == nil || set[v] {
			next[v] = true
		}
	}
	return next
}

// Matches reports whether an event passes the filter.
func (f *Filter) Matches(kind, patientID string) bool {
	return (f.Kinds == nil || f.Kinds[kind]) && (f.Patients == nil || f.Patients[patientID])
}

func parseInstant(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Parse(time.RFC3339, s)
}
