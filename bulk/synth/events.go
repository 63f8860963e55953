package synth

import (
	"fmt"
	"math"
	"time"
)

var (
	officeDx = []code{{sysICD10CM, "J06.9", "Acute upper respiratory infection, unspecified"}, {sysICD10CM, "M54.50", "Low back pain, unspecified"},
		{sysICD10CM, "R51.9", "Headache, unspecified"}, {sysICD10CM, "K21.9", "Gastro-esophageal reflux disease without esophagitis"}, {sysICD10CM, "L30.9", "Dermatitis, unspecified"}}
	pediatricDx = code{sysICD10CM, "Z00.129", "Encounter for routine child health examination without abnormal findings"}
)

// facts collects what the patient's measure results depend on while the
// resources are emitted, so the truth is computed from the data itself.
type facts struct {
	obsN int
	bp   []bpReading // blood pressures at ambulatory visits in the measurement period
	a1c  []a1cResult // HbA1c results in the measurement period
}

type bpReading struct {
	day      time.Time
	sys, dia int
}

type a1cResult struct {
	day   time.Time
	value float64
}

func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func (g *gen) emitEvent(p *person, n int, ev event, f *facts) error {
	r := p.r
	if ev.kind == evLab {
		return g.emitA1c(p, "", ev, f)
	}
	encID := fmt.Sprintf("%s-enc-%03d", p.id, n)
	dx := g.diagnosis(p, ev)
	if err := g.emit("Encounter", g.encounter(p, encID, ev, dx)); err != nil {
		return err
	}
	if ev.cancelled {
		return nil
	}
	switch {
	case ev.kind.inPersonOutpatient() && p.ageAt(ev.start) >= 18:
		readings := 1
		if r.IntN(100) < 12 {
			readings = 2
		}
		for k := 0; k < readings; k++ {
			sys, dia := g.bpValues(p, ev)
			at := ev.start.Add(time.Duration(5+10*k) * time.Minute)
			if err := g.emit("Observation", g.bpObservation(p, f, encID, ev.pract, at, sys, dia)); err != nil {
				return err
			}
			if g.inMP(at) {
				f.bp = append(f.bp, bpReading{dayOf(at), sys, dia})
			}
		}
	case ev.kind == evED && p.ageAt(ev.start) >= 18 && r.IntN(100) < 60:
		sys := int(normal(r, 138, 18, 95, 200))
		dia := int(normal(r, 84, 12, 50, 120))
		if err := g.emit("Observation", g.bpObservation(p, f, encID, ev.pract, ev.start.Add(20*time.Minute), sys, dia)); err != nil {
			return err
		}
	}
	if ev.draw {
		if err := g.emitA1c(p, encID, ev, f); err != nil {
			return err
		}
	}
	if p.payer >= 0 && !ev.start.Before(p.covOn) {
		return g.emit("ExplanationOfBenefit", g.eob(p, n, encID, ev, dx))
	}
	return nil
}

// bpValues draws a reading. Uncontrolled readings always have a systolic
// of 140 or more, so the lowest of several same-day readings (what CMS165
// takes) is uncontrolled exactly when each reading is.
func (g *gen) bpValues(p *person, ev event) (sys, dia int) {
	r := p.r
	controlled := true
	switch {
	case ev.plantedBP:
		controlled = p.bpControlled
	case p.htn:
		controlled = r.IntN(2) == 0
	default:
		return int(normal(r, 118, 10, 95, 139)), int(normal(r, 75, 7, 55, 89))
	}
	if controlled {
		return int(normal(r, 127, 7, 105, 139)), int(normal(r, 79, 5, 60, 89))
	}
	return int(normal(r, 153, 9, 140, 195)), int(normal(r, 88, 9, 62, 118))
}

func (g *gen) a1cValue(p *person, ev event) float64 {
	r := p.r
	var v float64
	switch {
	case ev.plantedA1c && p.a1cPoor:
		v = 9.2 + 3.8*r.Float64()
	case ev.plantedA1c:
		v = normal(r, 7.3, 0.7, 5.6, 8.9)
	case p.dm:
		v = normal(r, 7.9, 1.3, 5.6, 13.5)
	default:
		v = normal(r, 5.4, 0.3, 4.6, 6.2)
	}
	return math.Round(v*10) / 10
}

func (g *gen) bpObservation(p *person, f *facts, encID string, pract int, at time.Time, sys, dia int) obj {
	f.obsN++
	comp := func(c code, v int) obj {
		return obj{
			{"code", c.concept()},
			{"valueQuantity", obj{{"value", v}, {"unit", "mmHg"}, {"system", sysUCUM}, {"code", "mm[Hg]"}}},
		}
	}
	return obj{
		{"resourceType", "Observation"}, {"id", fmt.Sprintf("%s-obs-%03d", p.id, f.obsN)}, {"meta", meta(profBP)},
		{"status", "final"},
		{"category", arr{catVitalSigns.concept()}},
		{"code", loincBPPanel.concept()},
		{"subject", ref("Patient", p.id)},
		{"encounter", ref("Encounter", encID)},
		{"effectiveDateTime", dt(at)},
		{"performer", arr{ref("Practitioner", g.practID(pract))}},
		{"component", arr{comp(loincSystolic, sys), comp(loincDiastolic, dia)}},
	}
}

func (g *gen) emitA1c(p *person, encID string, ev event, f *facts) error {
	r := p.r
	v := g.a1cValue(p, ev)
	at := ev.start.Add(20 * time.Minute)
	f.obsN++
	interp := code{sysInterp, "N", "Normal"}
	if v >= 5.7 {
		interp = code{sysInterp, "H", "High"}
	}
	o := obj{
		{"resourceType", "Observation"}, {"id", fmt.Sprintf("%s-obs-%03d", p.id, f.obsN)}, {"meta", meta(profObservation)},
		{"status", "final"},
		{"category", arr{catLaboratory.concept()}},
		{"code", loincHbA1c[pickIndex(r, loincHbA1cWeights)].concept()},
		{"subject", ref("Patient", p.id)},
	}
	if encID != "" {
		o = append(o, kv{"encounter", ref("Encounter", encID)})
	}
	o = append(o,
		kv{"effectiveDateTime", dt(at)},
		kv{"issued", at.Add(time.Duration(6+r.IntN(40)) * time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")},
		kv{"valueQuantity", obj{{"value", dec(v, 1)}, {"unit", "%"}, {"system", sysUCUM}, {"code", "%"}}},
		kv{"interpretation", arr{interp.concept()}},
		kv{"referenceRange", arr{obj{{"high", obj{{"value", num("5.6")}, {"unit", "%"}, {"system", sysUCUM}, {"code", "%"}}}}}},
	)
	if g.inMP(at) {
		f.a1c = append(f.a1c, a1cResult{dayOf(at), v})
	}
	return g.emit("Observation", o)
}

func (g *gen) diagnosis(p *person, ev event) code {
	switch ev.kind {
	case evED, evInpatient:
		return ev.dx
	case evPediatric:
		return pediatricDx
	case evPreventive, evAWV:
		return routineDx
	}
	switch {
	case p.dm && !p.dmOnset.After(ev.start) && (!p.htn || p.r.IntN(2) == 0):
		return p.dmCoding[0]
	case p.htn && !p.htnOnset.After(ev.start):
		return htnCodings[0][0]
	}
	return pick(p.r, officeDx)
}

func (g *gen) encounter(p *person, id string, ev event, dx code) obj {
	class, partType, org := classAMB, code{sysPartType, "PPRF", "primary performer"}, g.clinicID(p.clinic)
	typ := ev.cpt
	switch ev.kind {
	case evTelephone, evVirtual:
		class = classVR
	case evED:
		class, partType, org = classEMER, code{sysPartType, "ATND", "attender"}, g.hospitalID(p.hospital)
	case evInpatient:
		class, partType, org = classIMP, code{sysPartType, "ATND", "attender"}, g.hospitalID(p.hospital)
		typ = snoAdmitElect
		if ev.viaED {
			typ = snoAdmitEmerg
		}
	}
	status := "finished"
	if ev.cancelled {
		status = "cancelled"
	}
	o := obj{
		{"resourceType", "Encounter"}, {"id", id}, {"meta", meta(profEncounter)},
		{"status", status},
		{"class", class.coding()},
		{"type", arr{typ.concept()}},
		{"subject", ref("Patient", p.id)},
		{"participant", arr{obj{
			{"type", arr{partType.concept()}},
			{"individual", ref("Practitioner", g.practID(ev.pract))},
		}}},
		{"period", obj{{"start", dt(ev.start)}, {"end", dt(ev.end)}}},
		{"reasonCode", arr{dx.concept()}},
	}
	var diags arr
	if p.htn && !p.htnOnset.After(ev.start) && dx == htnCodings[0][0] {
		diags = append(diags, obj{{"condition", ref("Condition", p.id+"-cond-htn")}, {"rank", 1}})
	}
	if p.dm && !p.dmOnset.After(ev.start) && dx == p.dmCoding[0] {
		diags = append(diags, obj{{"condition", ref("Condition", p.id+"-cond-dm")}, {"rank", 1}})
	}
	o = o.add("diagnosis", diags)
	if ev.kind == evInpatient {
		src := code{sysAdmitSource, "gp", "General Practitioner referral"}
		if ev.viaED {
			src = code{sysAdmitSource, "emd", "From accident/emergency department"}
		}
		o = append(o, kv{"hospitalization", obj{{"admitSource", src.concept()}, {"dischargeDisposition", ev.dispo.concept()}}})
	}
	return append(o, kv{"serviceProvider", ref("Organization", org)})
}

var payerFactor = map[payerKind]float64{payerMedicare: 1.0, payerMedicaid: 0.72, payerCommercial: 1.35}

func (g *gen) eob(p *person, n int, encID string, ev event, dx code) obj {
	r := p.r
	py := payers[p.payer]
	fee := feeSchedule[ev.cpt.code]
	if ev.kind == evInpatient {
		fee = feeSchedule[cptInpatient.code]
	}
	allowed := round2(fee * payerFactor[py.kind] * (0.95 + 0.1*r.Float64()))
	submitted := round2(allowed * 2.1)
	paid := round2(allowed * 0.8)
	if py.kind == payerMedicaid {
		paid = allowed
	}
	created := ev.end.Add(time.Duration(1+r.IntN(20)) * 24 * time.Hour)
	if !created.Before(g.now) {
		created = g.now.Add(-time.Minute)
	}
	paidOn := created.Add(14 * 24 * time.Hour)
	if !paidOn.Before(g.now) {
		paidOn = created
	}
	pos := code{sysPOS, "11", "Office"}
	switch ev.kind {
	case evTelephone, evVirtual:
		pos = code{sysPOS, "10", "Telehealth Provided in Patient's Home"}
	case evED:
		pos = code{sysPOS, "23", "Emergency Room - Hospital"}
	case evInpatient:
		pos = code{sysPOS, "21", "Inpatient Hospital"}
	}
	prov := obj{{"reference", "Practitioner/" + g.practID(ev.pract)}, {"identifier", ident(sysNPI, g.practNPI(ev.pract))}}
	product := ev.cpt
	if ev.kind == evInpatient {
		product = cptInpatient
	}
	adj := func(cat, disp string, v float64) obj {
		return obj{{"category", code{sysAdjudication, cat, disp}.concept()}, {"amount", money(v)}}
	}
	return obj{
		{"resourceType", "ExplanationOfBenefit"}, {"id", fmt.Sprintf("%s-eob-%03d", p.id, n)},
		{"identifier", arr{ident(sysClaimID, fmt.Sprintf("CLM%d-%07d-%03d", g.opts.Seed, p.idx, n))}},
		{"status", "active"},
		{"type", code{sysClaimType, "professional", "Professional"}.concept()},
		{"use", "claim"},
		{"patient", ref("Patient", p.id)},
		{"billablePeriod", obj{{"start", dt(ev.start)}, {"end", dt(ev.end)}}},
		{"created", dt(created)},
		{"insurer", ref("Organization", g.payerID(p.payer))},
		{"provider", prov},
		{"outcome", "complete"},
		{"careTeam", arr{obj{
			{"sequence", 1}, {"provider", prov}, {"responsible", true},
			{"role", code{sysCareTeamRole, "primary", "Primary provider"}.concept()},
		}}},
		{"diagnosis", arr{obj{{"sequence", 1}, {"diagnosisCodeableConcept", dx.concept()}}}},
		{"insurance", arr{obj{{"focal", true}, {"coverage", ref("Coverage", p.covID)}}}},
		{"item", arr{obj{
			{"sequence", 1},
			{"careTeamSequence", arr{1}},
			{"diagnosisSequence", arr{1}},
			{"productOrService", product.concept()},
			{"servicedDate", date(ev.start)},
			{"locationCodeableConcept", pos.concept()},
			{"encounter", arr{ref("Encounter", encID)}},
			{"net", money(submitted)},
			{"adjudication", arr{adj("submitted", "Submitted Amount", submitted), adj("eligible", "Eligible Amount", allowed), adj("benefit", "Benefit Amount", paid)}},
		}}},
		{"total", arr{adj("submitted", "Submitted Amount", submitted), adj("eligible", "Eligible Amount", allowed), adj("benefit", "Benefit Amount", paid)}},
		{"payment", obj{{"date", date(paidOn)}, {"amount", money(paid)}}},
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
