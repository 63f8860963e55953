package message

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/validate"
)

// Code systems of MessageHeader.eventCoding this package understands.
const (
	// NotificationEventSystem is the Da Vinci Unsolicited Notifications
	// event code system.
	NotificationEventSystem = "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event"
	// V2EventSystem is HL7 table 0003 (event type), which the HL7
	// v2-to-FHIR IG puts in MessageHeader.eventCoding.
	V2EventSystem = "http://terminology.hl7.org/CodeSystem/v2-0003"
)

// kinds maps supported event codes to adt.Event kinds and triggers.
var kinds = map[[2]string][2]string{
	{NotificationEventSystem, "notification-admit"}:     {adt.KindAdmit, "A01"},
	{NotificationEventSystem, "notification-discharge"}: {adt.KindDischarge, "A03"},
	{NotificationEventSystem, "notification-transfer"}:  {adt.KindTransfer, "A02"},
	{V2EventSystem, "A01"}:                              {adt.KindAdmit, "A01"},
	{V2EventSystem, "A02"}:                              {adt.KindTransfer, "A02"},
	{V2EventSystem, "A03"}:                              {adt.KindDischarge, "A03"},
	{V2EventSystem, "A04"}:                              {adt.KindRegister, "A04"},
	{V2EventSystem, "A08"}:                              {adt.KindUpdate, "A08"},
	{V2EventSystem, "A11"}:                              {adt.KindCancelAdmit, "A11"},
	{V2EventSystem, "A13"}:                              {adt.KindCancelDischarge, "A13"},
}

// identifier is a business identifier usable for matching (both parts set).
type identifier struct{ system, value string }

func (i identifier) token() string { return i.system + "|" + i.value }

// entry is one resource of the message other than its MessageHeader.
type entry struct {
	index       int
	fullURL     string
	typ, id     string // as sent (sender-local id)
	body        []byte
	identifiers []identifier
}

func (e *entry) expr() string { return "Bundle.entry[" + strconv.Itoa(e.index) + "]" }

// parsed is a validated notification message.
type parsed struct {
	bundleID   string
	identifier identifier // Bundle.identifier (may be empty)
	timestamp  string
	header     []byte // MessageHeader as sent
	headerID   string
	source     string // MessageHeader.source.endpoint
	eventRaw   string // MessageHeader.eventCoding JSON, echoed in the response
	kind       string
	trigger    string
	entries    []*entry
	byRef      map[string]*entry // fullUrl and Type/id → entry
	encounter  *entry            // the focus Encounter
	patient    *entry            // the Encounter's subject
}

func badRequest(code, expr, format string, args ...any) *outcome.HTTPError {
	is := outcome.Issue{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...)}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return &outcome.HTTPError{Status: http.StatusBadRequest, Issues: []outcome.Issue{is}}
}

func unprocessable(code, expr, format string, args ...any) *outcome.HTTPError {
	e := badRequest(code, expr, format, args...)
	e.Status = http.StatusUnprocessableEntity
	return e
}

// parse validates body as a Da Vinci notification message Bundle (FHIR
// R4 validation of the Bundle and of every entry, then the profile rules
// the processing relies on) and extracts what processing needs. A
// Parameters body carrying the Bundle as parameter "content" (the core
// OperationDefinition's form) is accepted too.
func parse(v *validate.Validator, body []byte) (*parsed, error) {
	if !gjson.ValidBytes(body) {
		if _, _, err := v.Resource(body); err != nil {
			return nil, err
		}
		return nil, badRequest("structure", "", "the body is not valid JSON")
	}
	if gjson.GetBytes(body, "resourceType").String() == "Parameters" {
		content := ""
		for _, p := range gjson.GetBytes(body, "parameter").Array() {
			if p.Get("name").String() == "content" {
				content = p.Get("resource").Raw
			}
		}
		if content == "" {
			return nil, badRequest("required", "Parameters.parameter", "Parameters must carry the message Bundle as parameter \"content\"")
		}
		body = []byte(content)
	}
	shell, err := stripEntryResources(body)
	if err != nil {
		return nil, badRequest("structure", "", "the body is not a FHIR resource")
	}
	rtype, _, err := v.Resource(shell)
	if err != nil {
		return nil, err
	}
	if rtype != "Bundle" {
		return nil, badRequest("invalid", "", "$process-message takes a message Bundle, not %s", rtype)
	}
	b := gjson.ParseBytes(body)
	if t := b.Get("type").String(); t != "message" {
		return nil, badRequest("invalid", "Bundle.type", "Bundle.type must be message, not %q", t)
	}
	m := &parsed{
		bundleID:   b.Get("id").String(),
		identifier: identifier{b.Get("identifier.system").String(), b.Get("identifier.value").String()},
		timestamp:  b.Get("timestamp").String(),
		byRef:      map[string]*entry{},
	}
	var issues []outcome.Issue
	add := func(code, expr, format string, args ...any) {
		issues = append(issues, outcome.Issue{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...), Expression: []string{expr}})
	}
	// Da Vinci notifications-bundle: id, timestamp, at least two entries.
	if m.bundleID == "" {
		add("required", "Bundle.id", "a notification Bundle needs an id")
	}
	if m.timestamp == "" {
		add("required", "Bundle.timestamp", "a notification Bundle needs a timestamp")
	}
	entries := b.Get("entry").Array()
	if len(entries) < 2 {
		add("required", "Bundle.entry", "a notification Bundle holds the MessageHeader and at least its focus")
	}
	for i, e := range entries {
		expr := "Bundle.entry[" + strconv.Itoa(i) + "]"
		for _, k := range []string{"request", "response", "search"} {
			if e.Get(k).Exists() {
				add("invalid", expr+"."+k, "entries of a message Bundle carry no %s", k)
			}
		}
		res := e.Get("resource")
		if !res.IsObject() {
			add("required", expr+".resource", "every entry of a message Bundle holds a resource")
			continue
		}
		rt, id, err := v.ResourceAt([]byte(res.Raw), expr+".resource")
		if err != nil {
			var he *outcome.HTTPError
			if errors.As(err, &he) {
				issues = append(issues, he.Issues...)
			} else {
				add("invalid", expr+".resource", "%v", err)
			}
			continue
		}
		if i == 0 {
			if rt != "MessageHeader" {
				add("invalid", expr+".resource", "the first entry of a message Bundle is its MessageHeader, not %s", rt)
				continue
			}
			m.header, m.headerID = []byte(res.Raw), id
			continue
		}
		en := &entry{index: i, fullURL: e.Get("fullUrl").String(), typ: rt, id: id, body: []byte(res.Raw)}
		for _, idf := range res.Get("identifier").Array() {
			s, val := idf.Get("system").String(), idf.Get("value").String()
			if s != "" && val != "" && !strings.Contains(s, "|") {
				en.identifiers = append(en.identifiers, identifier{s, val})
			}
		}
		if rt == "MessageHeader" {
			add("invalid", expr+".resource", "a message Bundle holds one MessageHeader, first")
			continue
		}
		if en.fullURL != "" {
			if _, dup := m.byRef[en.fullURL]; dup {
				add("invalid", expr+".fullUrl", "fullUrl %q repeats (bdl-7)", en.fullURL)
			}
			m.byRef[en.fullURL] = en
		}
		if id != "" {
			m.byRef[rt+"/"+id] = en
		}
		m.entries = append(m.entries, en)
	}
	if len(issues) > 0 {
		return nil, &outcome.HTTPError{Status: http.StatusBadRequest, Issues: capIssues(issues)}
	}
	return m, m.readHeader()
}

// readHeader reads the MessageHeader: Da Vinci notifications-messageheader
// (id, eventCoding from a supported system, focus on the Encounter,
// whose subject is the Patient, both in the Bundle).
func (m *parsed) readHeader() error {
	h := gjson.ParseBytes(m.header)
	const mh = "Bundle.entry[0].resource"
	if m.headerID == "" {
		return badRequest("required", mh+".id", "a notification MessageHeader needs an id")
	}
	ev := h.Get("eventCoding")
	if !ev.Exists() {
		return unprocessable("not-supported", mh+".event", "only eventCoding events are processed (eventUri is not)")
	}
	m.eventRaw = ev.Raw
	k, ok := kinds[[2]string{ev.Get("system").String(), ev.Get("code").String()}]
	if !ok {
		return unprocessable("not-supported", mh+".eventCoding",
			"event %s#%s is not processed here: send notification-admit, -discharge or -transfer (%s) or an ADT trigger (%s)",
			ev.Get("system").String(), ev.Get("code").String(), NotificationEventSystem, V2EventSystem)
	}
	m.kind, m.trigger = k[0], k[1]
	m.source = h.Get("source.endpoint").String()
	for i, f := range h.Get("focus").Array() {
		if e := m.resolve(f.Get("reference").String()); e != nil && e.typ == "Encounter" {
			m.encounter = e
			break
		} else if e == nil {
			return badRequest("invalid", fmt.Sprintf("%s.focus[%d]", mh, i), "focus %q is not in the Bundle (references stay inside a notification Bundle)", f.Get("reference").String())
		}
	}
	if m.encounter == nil {
		return badRequest("required", mh+".focus", "an ADT notification's focus is its Encounter, which the Bundle must hold")
	}
	subj := gjson.GetBytes(m.encounter.body, "subject.reference").String()
	if p := m.resolve(subj); p != nil && p.typ == "Patient" {
		m.patient = p
	} else {
		return badRequest("required", m.encounter.expr()+".resource.subject", "the Encounter's subject must be a Patient held in the Bundle")
	}
	return nil
}

// resolve finds the entry a reference points to: by fullUrl, by Type/id,
// or by an absolute URL ending in Type/id.
func (m *parsed) resolve(ref string) *entry {
	if ref == "" {
		return nil
	}
	if e, ok := m.byRef[ref]; ok {
		return e
	}
	parts := strings.Split(strings.TrimRight(ref, "/"), "/")
	if n := len(parts); n >= 2 {
		if e, ok := m.byRef[parts[n-2]+"/"+parts[n-1]]; ok {
			return e
		}
		// Type/id/_history/v
		if n >= 4 && parts[n-2] == "_history" {
			if e, ok := m.byRef[parts[n-4]+"/"+parts[n-3]]; ok {
				return e
			}
		}
	}
	return nil
}

// stripEntryResources returns the Bundle with each entry resource replaced
// by a minimal valid placeholder, for validating the shell: the resources
// are validated one by one so every issue names its entry. (Deleting them
// would leave entries without fullUrl as empty objects, which are invalid.)
func stripEntryResources(body []byte) ([]byte, error) {
	out := body
	var err error
	for i, e := range gjson.GetBytes(body, "entry").Array() {
		if !e.Get("resource").Exists() {
			continue
		}
		if out, err = sjson.SetRawBytes(out, "entry."+strconv.Itoa(i)+".resource", placeholder); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var placeholder = []byte(`{"resourceType":"Basic","code":{"text":"entry"}}`)

const maxIssues = 50

func capIssues(is []outcome.Issue) []outcome.Issue {
	if len(is) > maxIssues {
		return is[:maxIssues]
	}
	return is
}
