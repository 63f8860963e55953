package rest

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/equitas/equitas/fhir/resourcetype"
	"github.com/equitas/equitas/store/searchparam"
)

// capabilities serves the CapabilityStatement. It is derived from what the
// code does: every R4 type with the interactions the handlers implement,
// the search parameters of store/searchparam, and the registered
// operations.
func (s *Server) capabilities(w http.ResponseWriter, r *http.Request) {
	label(r, "capabilities", "")
	base := s.Base(r)
	s.capMu.Lock()
	b, ok := s.caps[base]
	if !ok {
		var err error
		b, err = json.Marshal(s.capabilityStatement(base))
		if err != nil {
			s.capMu.Unlock()
			s.fail(w, r, err)
			return
		}
		// The base may come from the Host header: bound the cache so
		// arbitrary hosts cannot grow it.
		if len(s.caps) < 16 {
			s.caps[base] = b
		}
	}
	s.capMu.Unlock()
	w.Header().Set("Content-Type", fhirJSON)
	_, _ = w.Write(b)
}

type obj = map[string]any

var spTypes = map[string]string{
	searchparam.Token: "token", searchparam.Reference: "reference", searchparam.Date: "date",
	searchparam.String: "string", searchparam.Number: "number", searchparam.Quantity: "quantity",
	searchparam.URI: "uri", searchparam.Composite: "composite",
}

func (s *Server) capabilityStatement(base string) obj {
	types := resourcetype.All()
	// revIncludes[T] lists "Source:param" whose parameter can point at T.
	revIncludes := map[string][]string{}
	for _, src := range types {
		for _, d := range searchparam.For(src) {
			if d.Type != searchparam.Reference {
				continue
			}
			targets := d.Targets
			if len(targets) == 0 {
				targets = types
			}
			for _, t := range targets {
				revIncludes[t] = append(revIncludes[t], src+":"+d.Name)
			}
		}
	}
	ops := s.operations()
	var resources []obj
	for _, t := range types {
		var params []obj
		var includes []string
		for _, d := range searchparam.For(t) {
			params = append(params, obj{"name": d.Name, "type": spTypes[d.Type]})
			if d.Type == searchparam.Reference {
				includes = append(includes, t+":"+d.Name)
			}
		}
		res := obj{
			"type": t,
			"interaction": []obj{
				{"code": "read"}, {"code": "vread"}, {"code": "update"}, {"code": "delete"},
				{"code": "history-instance"}, {"code": "history-type"}, {"code": "create"}, {"code": "search-type"},
			},
			"versioning":        "versioned-update",
			"readHistory":       true,
			"updateCreate":      true,
			"conditionalCreate": true,
			"conditionalRead":   "full-support",
			"conditionalUpdate": true,
			"conditionalDelete": "single",
			"referencePolicy":   []string{"literal", "local"},
			"searchParam":       params,
		}
		if len(includes) > 0 {
			res["searchInclude"] = includes
		}
		if ri := revIncludes[t]; len(ri) > 0 {
			slices.Sort(ri)
			res["searchRevInclude"] = slices.Compact(ri)
		}
		var tops []obj
		for _, op := range ops {
			if op.Level == System {
				continue
			}
			if len(op.Types) == 0 || slices.Contains(op.Types, t) {
				tops = append(tops, opEntry(op))
			}
		}
		if len(tops) > 0 {
			res["operation"] = tops
		}
		resources = append(resources, res)
	}
	var sysOps []obj
	for _, op := range ops {
		if op.Level == System {
			sysOps = append(sysOps, opEntry(op))
		}
	}
	rest := obj{
		"mode":          "server",
		"resource":      resources,
		"interaction":   []obj{{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}},
		"documentation": "Result parameters: _count, _sort, _total, _include and _revinclude (with :iterate), _summary=count, data, and true (for Group, Patient, Practitioner, Organization, Coverage, Observation, Encounter, Condition), _elements. Unknown parameters are rejected unless Prefer: handling=lenient.",
	}
	if len(sysOps) > 0 {
		rest["operation"] = sysOps
	}
	s.opsMu.RLock()
	instantiates := slices.Clone(s.instantiates)
	tokenURL := s.tokenURL
	s.opsMu.RUnlock()
	if tokenURL != nil {
		rest["security"] = obj{
			"cors": false,
			"service": []obj{{"coding": []obj{{
				"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR",
			}}}},
			"extension": []obj{{
				"url":       "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
				"extension": []obj{{"url": "token", "valueUri": tokenURL(base)}},
			}},
			"description": "SMART Backend Services (client_credentials with a private_key_jwt assertion, RS384 or ES384); discovery at .well-known/smart-configuration",
		}
	}
	version := s.cfg.Version
	if version == "" {
		version = "dev"
	}
	cs := obj{
		"resourceType":   "CapabilityStatement",
		"status":         "active",
		"date":           s.started.UTC().Format(time.RFC3339),
		"publisher":      "Equitas",
		"kind":           "instance",
		"software":       obj{"name": "Equitas", "version": version},
		"implementation": obj{"description": "Equitas FHIR R4 server", "url": base},
		"fhirVersion":    "4.0.1",
		"format":         []string{"application/fhir+json", "json"},
		"rest":           []obj{rest},
	}
	if len(instantiates) > 0 {
		cs["instantiates"] = instantiates
	}
	return cs
}

func opEntry(op Operation) obj {
	def := op.Definition
	if def == "" {
		def = "http://equitas.example/OperationDefinition/" + op.Name
	}
	return obj{"name": op.Name, "definition": def}
}

// SMART declares SMART Backend Services authorization in
// CapabilityStatement.rest.security, with the token endpoint for a FHIR
// base URL in the oauth-uris extension (bulk-data-client reads it when
// .well-known/smart-configuration is missing).
func (s *Server) SMART(tokenURL func(base string) string) {
	s.opsMu.Lock()
	s.tokenURL = tokenURL
	s.opsMu.Unlock()
	s.forgetCapabilities()
}
