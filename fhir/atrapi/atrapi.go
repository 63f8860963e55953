// Package atrapi serves the Da Vinci Member Attribution (ATR 2.1.0) list
// operations over HTTP: $member-add, $member-remove, $attribution-status
// and $confirm-attribution-list on a Group, and the asynchronous
// Group/$attribute that computes lists. Handlers only translate HTTP and
// Parameters resources; the work is done by package fhir/attribution.
package atrapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tidwall/gjson"

	"github.com/equitas/equitas/fhir/access"
	"github.com/equitas/equitas/fhir/attribution"
	"github.com/equitas/equitas/fhir/outcome"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/store"
)

// Canonical URLs of the ATR OperationDefinitions.
const (
	defBase         = "http://hl7.org/fhir/us/davinci-atr/OperationDefinition/"
	DefMemberAdd    = defBase + "member-add"
	DefMemberRemove = defBase + "member-remove"
	DefStatus       = defBase + "attribution-status"
	DefConfirm      = defBase + "confirm-attribution-list"
	DefAttribute    = "http://equitas.example.org/fhir/OperationDefinition/Group-attribute"
	// ProducerCapabilityStatement is the ATR producer statement the
	// server instantiates once the list operations are mounted.
	ProducerCapabilityStatement = "http://hl7.org/fhir/us/davinci-atr/CapabilityStatement/atr-producer"
	maxParamsBytes              = 1 << 20
	jobsPathFragment            = "/attribution-jobs/"
)

// API serves the operations.
type API struct {
	st    store.Store
	lists *attribution.Lists
	jobs  *attribution.Jobs
	res   *attribution.Resolver
	base  func(*http.Request) string
	log   *slog.Logger
	now   func() time.Time
}

// Config assembles an API.
type Config struct {
	Store store.Store
	Lists *attribution.Lists
	Jobs  *attribution.Jobs
	// Base returns the FHIR base URL of a request (rest.Server.Base).
	Base   func(*http.Request) string
	Logger *slog.Logger
}

// New returns an API.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{st: cfg.Store, lists: cfg.Lists, jobs: cfg.Jobs, res: attribution.NewResolver(cfg.Store),
		base: cfg.Base, log: cfg.Logger, now: time.Now}
}

// Operations are the operations to register on a rest.Server.
func (a *API) Operations() []rest.Operation {
	group := []string{"Group"}
	return []rest.Operation{
		{Name: "member-add", Level: rest.Instance, Types: group, Definition: DefMemberAdd, Handler: http.HandlerFunc(a.memberAdd)},
		{Name: "member-remove", Level: rest.Instance, Types: group, Definition: DefMemberRemove, Handler: http.HandlerFunc(a.memberRemove)},
		{Name: "attribution-status", Level: rest.Instance, Types: group, Definition: DefStatus, Handler: http.HandlerFunc(a.status)},
		{Name: "confirm-attribution-list", Level: rest.Instance, Types: group, Definition: DefConfirm, Handler: http.HandlerFunc(a.confirm)},
		{Name: "attribute", Level: rest.Type, Types: group, Definition: DefAttribute, Handler: http.HandlerFunc(a.attribute)},
	}
}

// Mount registers the operations on srv, the $attribute status URL
// ([base]/attribution-jobs/{id}) under its FHIR router, and declares the
// ATR producer CapabilityStatement.
func (a *API) Mount(srv *rest.Server) {
	for _, op := range a.Operations() {
		srv.Operation(op)
	}
	srv.Instantiate(ProducerCapabilityStatement)
	srv.FHIR().Get(jobsPathFragment+"{job}", a.jobStatus)
	srv.FHIR().Delete(jobsPathFragment+"{job}", a.jobCancel)
}

// params is a Parameters resource.
type params struct{ r gjson.Result }

func (p params) get(name string) gjson.Result {
	for _, e := range p.r.Get("parameter").Array() {
		if e.Get("name").String() == name {
			return e
		}
	}
	return gjson.Result{}
}

// has reports which of names are present.
func (p params) has(name string) bool { return p.get(name).Exists() }

// reference returns a parameter's valueReference.reference.
func (p params) reference(name string) (string, error) {
	e := p.get(name)
	if !e.Exists() {
		return "", nil
	}
	ref := e.Get("valueReference.reference").String()
	if ref == "" {
		return "", bad("parameter %s must be a Reference with a reference", name)
	}
	return ref, nil
}

// identifier returns a parameter's valueIdentifier (valueString is taken
// as a bare value).
func (p params) identifier(name string) (system, value string, err error) {
	e := p.get(name)
	if !e.Exists() {
		return "", "", nil
	}
	if s := e.Get("valueString"); s.Exists() {
		return "", s.String(), nil
	}
	value = e.Get("valueIdentifier.value").String()
	if value == "" {
		return "", "", bad("parameter %s must be an Identifier with a value", name)
	}
	return e.Get("valueIdentifier.system").String(), value, nil
}

func bad(format string, args ...any) error {
	return outcome.Errorf(http.StatusBadRequest, "invalid", format, args...)
}

// begin checks the method, the caller's scope and its right to the list,
// and parses the Parameters body (none for confirm).
func (a *API) begin(w http.ResponseWriter, r *http.Request, class rune, body bool) (*attribution.GroupInfo, params, *access.Principal, bool) {
	var p params
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		outcome.Error(w, http.StatusMethodNotAllowed, "not-supported", "use POST")
		return nil, p, nil, false
	}
	who := access.FromContext(r.Context())
	if who == nil {
		outcome.Error(w, http.StatusUnauthorized, "login", "authentication required")
		return nil, p, nil, false
	}
	if !who.Allows("Group", class) {
		outcome.Error(w, http.StatusForbidden, "forbidden", "scope does not allow this operation on Group")
		return nil, p, nil, false
	}
	id := chi.URLParam(r, "id")
	g, err := attribution.ListOf(r.Context(), a.st, id)
	if err != nil {
		a.fail(w, r, err)
		return nil, p, nil, false
	}
	if !mayUse(who, g) {
		// Another organization's list: as if it did not exist.
		outcome.Error(w, http.StatusNotFound, "not-found", "Group/"+id+" not found")
		return nil, p, nil, false
	}
	if body {
		if p, err = readParams(w, r); err != nil {
			a.fail(w, r, err)
			return nil, p, nil, false
		}
	}
	return g, p, who, true
}

// mayUse applies provider scoping to a list: a restricted caller uses
// only the lists it sees (its organization's), an organization-bound one
// only lists with its identifiers.
func mayUse(who *access.Principal, g *attribution.GroupInfo) bool {
	if who.Restricted() {
		return who.SeesGroup(g.ID)
	}
	return who.Organization == "" || g.OwnedBy(who.Organization)
}

// visibleMember hides members a restricted caller may not see behind the
// answer for a non-member, so no other organization's patient is revealed.
func (a *API) visibleMember(ctx context.Context, who *access.Principal, g *attribution.GroupInfo, p params) (attribution.Member, error) {
	m, err := a.member(ctx, g, p)
	if err == nil && !who.SeesPatient(m.PatientID) {
		return m, fmt.Errorf("%w: Patient/%s", attribution.ErrMemberNotFound, m.PatientID)
	}
	return m, err
}

func readParams(w http.ResponseWriter, r *http.Request) (params, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxParamsBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return params{}, outcome.Errorf(http.StatusRequestEntityTooLarge, "too-costly", "Parameters larger than %d bytes", maxParamsBytes)
		}
		return params{}, bad("reading the body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return params{}, bad("a Parameters resource is required")
	}
	if !gjson.ValidBytes(b) {
		return params{}, bad("the body is not valid JSON")
	}
	pr := gjson.ParseBytes(b)
	if pr.Get("resourceType").String() != "Parameters" {
		return params{}, bad("the body must be a Parameters resource, not %q", pr.Get("resourceType").String())
	}
	return params{pr}, nil
}

func audit(who *access.Principal, p params) attribution.Audit {
	return attribution.Audit{Who: who.ClientID, OnBehalfOf: who.Organization, Why: p.get("reason").Get("valueString").String()}
}

// member resolves the member parameters (memberId or patientReference).
func (a *API) member(ctx context.Context, g *attribution.GroupInfo, p params) (attribution.Member, error) {
	sys, mid, err := p.identifier("memberId")
	if err != nil {
		return attribution.Member{}, err
	}
	pref, err := p.reference("patientReference")
	if err != nil {
		return attribution.Member{}, err
	}
	switch {
	case mid != "" && pref != "":
		m, err := a.res.MemberByIdentifier(ctx, g, sys, mid)
		if err == nil && "Patient/"+m.PatientID != pref {
			err = outcome.Errorf(http.StatusUnprocessableEntity, "invalid", "memberId %s is not %s", mid, pref)
		}
		return m, err
	case mid != "":
		return a.res.MemberByIdentifier(ctx, g, sys, mid)
	case pref != "":
		pid, ok := strings.CutPrefix(pref, "Patient/")
		if !ok || pid == "" || strings.Contains(pid, "/") {
			return attribution.Member{}, bad("patientReference must be Patient/[id], not %q", pref)
		}
		return a.res.MemberByPatient(ctx, g, pid)
	}
	return attribution.Member{}, bad("memberId or patientReference is required")
}

// provider reads providerNpi (or its alias providerId) and providerReference.
func (a *API) provider(p params) (npi, ref string, err error) {
	name := "providerNpi"
	if !p.has(name) && p.has("providerId") {
		name = "providerId"
	}
	if _, npi, err = p.identifier(name); err != nil {
		return "", "", err
	}
	ref, err = p.reference("providerReference")
	return npi, ref, err
}

func (a *API) memberAdd(w http.ResponseWriter, r *http.Request) {
	g, p, who, ok := a.begin(w, r, access.Update, true)
	if !ok {
		return
	}
	ctx := r.Context()
	npi, ref, err := a.provider(p)
	if err == nil && npi == "" && ref == "" {
		err = bad("providerNpi or providerReference is required")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	start, end := a.now().UTC().Format(time.DateOnly), ""
	if per := p.get("attributionPeriod"); per.Exists() {
		if !per.Get("valuePeriod").IsObject() {
			a.fail(w, r, bad("attributionPeriod must be a Period"))
			return
		}
		start, end = per.Get("valuePeriod.start").String(), per.Get("valuePeriod.end").String()
		if err := checkPeriod(start, end); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	m, err := a.member(ctx, g, p)
	if err == nil && !who.SeesPatient(m.PatientID) {
		// A provider client cannot claim patients it is not attributed:
		// that would open their records to it. Declined like an unknown
		// member, so their existence is not revealed either.
		err = fmt.Errorf("%w: %s", attribution.ErrUnknownMember, "not a patient this client may attribute")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if m.Provider, err = a.res.Provider(ctx, npi, ref); err != nil {
		a.fail(w, r, err)
		return
	}
	res, err := a.lists.Add(ctx, g.ID, m, start, end, audit(who, p))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.done(w, r, http.StatusOK, res, fmt.Sprintf("Patient/%s added to Group/%s", m.PatientID, g.ID))
}

func (a *API) memberRemove(w http.ResponseWriter, r *http.Request) {
	g, p, who, ok := a.begin(w, r, access.Update, true)
	if !ok {
		return
	}
	ctx := r.Context()
	npi, ref, err := a.provider(p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	cov, err := p.reference("coverageReference")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sel := attribution.Selector{ProviderNPI: npi, ProviderRef: ref}
	if cov != "" {
		if sel.CoverageID, err = a.res.Coverage(ctx, cov); err != nil {
			a.fail(w, r, bad("coverageReference must be Coverage/[id], not %q", cov))
			return
		}
	}
	m, err := a.visibleMember(ctx, who, g, p)
	if errors.Is(err, attribution.ErrUnknownPatient) || errors.Is(err, attribution.ErrUnknownMember) {
		err = fmt.Errorf("%w: %w", attribution.ErrMemberNotFound, err)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sel.PatientID = m.PatientID
	res, err := a.lists.Remove(ctx, g.ID, sel, audit(who, p))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.done(w, r, http.StatusOK, res, fmt.Sprintf("Patient/%s removed from Group/%s (list %s)", m.PatientID, g.ID, g.Status))
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	g, p, who, ok := a.begin(w, r, access.Read, true)
	if !ok {
		return
	}
	m, err := a.visibleMember(r.Context(), who, g, p)
	if errors.Is(err, attribution.ErrUnknownPatient) || errors.Is(err, attribution.ErrUnknownMember) {
		err = fmt.Errorf("%w: %w", attribution.ErrMemberNotFound, err)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Rendered whole before answering so an error is still a clean 4xx/5xx.
	var buf strings.Builder
	if err := attribution.WriteStatus(r.Context(), a.st, a.base(r), g.ID, m.PatientID, &buf, who.Sees); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, buf.String())
}

func (a *API) confirm(w http.ResponseWriter, r *http.Request) {
	g, _, who, ok := a.begin(w, r, access.Update, false)
	if !ok {
		return
	}
	res, err := a.lists.Confirm(r.Context(), g.ID, attribution.Audit{Who: who.ClientID, OnBehalfOf: who.Organization, Why: "attribution list confirmed"})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// ATR: the Producer SHALL answer "201 Accepted".
	a.done(w, r, http.StatusCreated, res, fmt.Sprintf("Group/%s confirmed: the list is final", g.ID))
}

// done answers a list change: an informational OperationOutcome, with the
// new Group version in Location and ETag.
func (a *API) done(w http.ResponseWriter, r *http.Request, status int, res *attribution.GroupResult, msg string) {
	v := strconv.FormatUint(res.Version, 10)
	w.Header().Set("Location", a.base(r)+"/Group/"+res.ID+"/_history/"+v)
	w.Header().Set("ETag", `W/"`+v+`"`)
	outcome.Write(w, status, outcome.New("information", "informational",
		fmt.Sprintf("%s; Group version %s, %d active and %d inactive members, Provenance/%s", msg, v, res.Active, res.Inactive, res.Provenance)))
}

func checkPeriod(start, end string) error {
	for _, d := range []string{start, end} {
		if d == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, d[:min(len(d), 10)]); err != nil || (len(d) > 10 && !validDateTime(d)) {
			return bad("attributionPeriod: %q is not a date", d)
		}
	}
	if start != "" && end != "" && end[:min(len(end), 10)] < start[:min(len(start), 10)] {
		return bad("attributionPeriod ends before it starts")
	}
	return nil
}

func validDateTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// fail maps errors to OperationOutcomes.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *outcome.HTTPError
	switch {
	case errors.As(err, &he):
		outcome.WriteError(w, err)
	case errors.Is(err, attribution.ErrNoList), errors.Is(err, attribution.ErrNoJob):
		outcome.Error(w, http.StatusNotFound, "not-found", msg(err))
	case errors.Is(err, attribution.ErrListFinal):
		outcome.Error(w, http.StatusUnprocessableEntity, "business-rule", "the attribution list is final: it can no longer be changed")
	case errors.Is(err, attribution.ErrMemberNotFound):
		outcome.Error(w, http.StatusNotFound, "not-found", msg(err))
	case errors.Is(err, attribution.ErrUnknownMember), errors.Is(err, attribution.ErrUnknownPatient), errors.Is(err, attribution.ErrUnknownProvider):
		outcome.Error(w, http.StatusUnprocessableEntity, "not-found", msg(err))
	case errors.Is(err, attribution.ErrConflict):
		outcome.Error(w, http.StatusConflict, "conflict", msg(err))
	case errors.Is(err, context.Canceled):
		outcome.Error(w, http.StatusServiceUnavailable, "timeout", "request cancelled")
	default:
		a.log.Error("attribution operation failed", "path", r.URL.Path, "error", err)
		outcome.Error(w, http.StatusInternalServerError, "exception", "internal error")
	}
}

// msg strips the package prefix of an attribution error for clients.
func msg(err error) string {
	return strings.ReplaceAll(err.Error(), "attribution: ", "")
}
