package synth

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// person is one patient's drawn characteristics; everything emitted for
// the patient derives from it and from its random stream.
type person struct {
	idx int
	id  string
	r   *rand.Rand

	race       string // stratum key (RaceWhite..., RaceMultiple, Unknown, Declined)
	raceOMB    []code
	raceDetail *code
	eth        string
	ethDetail  *code
	lang       string
	bg         string // name pool

	gender string
	birth  time.Time
	ageMP  int // age on the last day of the measurement period

	place, clinic, pcp, hospital int

	payer int // index into payers, -1 when uninsured
	covID string
	covOn time.Time

	htn, dm           bool
	htnOnset, dmOnset time.Time
	dmCoding          []code

	bpControlled bool // the deciding blood pressure is below 140/90
	a1cPoor      bool // the deciding HbA1c is above 9%
}

func (p *person) ageAt(t time.Time) int {
	a := t.Year() - p.birth.Year()
	if t.Month() < p.birth.Month() || (t.Month() == p.birth.Month() && t.Day() < p.birth.Day()) {
		a--
	}
	return a
}

func (p *person) hispanic() bool   { return p.eth == EthHispanic }
func (p *person) nonEnglish() bool { return p.lang != "en" }

func (g *gen) patient(i int) error {
	p := g.person(i)
	if err := g.emit("Patient", g.patientResource(p)); err != nil {
		return err
	}
	if p.payer >= 0 {
		if err := g.emit("Coverage", g.coverage(p)); err != nil {
			return err
		}
	}
	if p.htn {
		if err := g.emit("Condition", g.condition(p, "htn", htnCodings[0], p.htnOnset)); err != nil {
			return err
		}
	}
	if p.dm {
		if err := g.emit("Condition", g.condition(p, "dm", p.dmCoding, p.dmOnset)); err != nil {
			return err
		}
	}
	evs := g.schedule(p)
	g.plant(p, &evs)
	facts := &facts{}
	for n, ev := range evs {
		if err := g.emitEvent(p, n, ev, facts); err != nil {
			return err
		}
	}
	g.truth.add(g, p, evs, facts)
	return nil
}

func (g *gen) person(i int) *person {
	r := g.rngFor(uint64(i))
	p := &person{idx: i, id: g.patientID(i), r: r, payer: -1, pcp: -1}

	p.race = pickWeighted(r, raceShares)
	switch p.race {
	case RaceMultiple:
		a := pick(r, []string{RaceWhite, RaceBlack, RaceAsian, RaceAIAN})
		b := pick(r, []string{RaceWhite, RaceBlack, RaceAsian, RaceAIAN, RaceNHPI})
		for b == a {
			b = pick(r, []string{RaceWhite, RaceBlack, RaceAsian, RaceAIAN, RaceNHPI})
		}
		if a > b {
			a, b = b, a
		}
		p.raceOMB = []code{raceCodes[a], raceCodes[b]}
	default:
		p.raceOMB = []code{raceCodes[p.race]}
		if d := raceDetail[p.race]; len(d) > 0 && r.IntN(100) < 35 {
			c := pickWeighted(r, d)
			p.raceDetail = &c
		}
	}

	// Ethnicity is correlated with race as in census data: most people who
	// answer "Other Race" are Hispanic, and people who decline one question
	// often decline the other.
	switch {
	case p.race == RaceOther:
		p.eth = EthNonHispanic
		if r.IntN(100) < 75 {
			p.eth = EthHispanic
		}
	case (p.race == Unknown || p.race == Declined) && r.IntN(100) < 60:
		p.eth = p.race
	default:
		p.eth = pickWeighted(r, []weighted[string]{{140, EthHispanic}, {800, EthNonHispanic}, {35, Unknown}, {25, Declined}})
	}
	if p.eth == EthHispanic && r.IntN(100) < 40 {
		c := pick(r, ethnicityDetail)
		p.ethDetail = &c
	}
	p.lang, p.bg = chooseLanguage(r, p)

	switch n := r.IntN(1000); {
	case n < 510:
		p.gender = "female"
	case n < 996:
		p.gender = "male"
	case n < 998:
		p.gender = "other"
	default:
		p.gender = "unknown"
	}
	ageBand := pickWeighted(r, []weighted[[2]int]{
		{18, [2]int{0, 17}}, {22, [2]int{18, 34}}, {19, [2]int{35, 49}}, {20, [2]int{50, 64}},
		{12, [2]int{65, 74}}, {7, [2]int{75, 84}}, {2, [2]int{85, 99}},
	})
	age := ageBand[0] + r.IntN(ageBand[1]-ageBand[0]+1)
	p.birth = time.Date(g.now.Year()-age-1, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(365))
	if p.birth.Month() == time.February && p.birth.Day() == 29 {
		// Ages of leap-day births differ between age calculations; keep
		// the measures' age limits unambiguous.
		p.birth = p.birth.AddDate(0, 0, 1)
	}
	p.ageMP = p.ageAt(g.mpEnd.AddDate(0, 0, -1))

	p.place = r.IntN(len(places))
	key := p.race
	if p.hispanic() {
		key = "hispanic"
	}
	if pl := groupPlaces[key]; len(pl) > 0 && r.IntN(100) < 55 {
		p.place = pick(r, pl)
	}
	p.clinic = p.place % g.nClinics
	if p.place < g.nClinics {
		p.clinic = p.place + len(places)*r.IntN((g.nClinics-1-p.place)/len(places)+1)
	}
	p.hospital = p.clinic % g.nHospitals
	if r.IntN(100) < 82 {
		p.pcp = g.clinicPractitioner(r, p.clinic)
	}

	g.drawCoverage(p)
	g.drawConditions(p)
	return p
}

func (g *gen) clinicPractitioner(r *rand.Rand, clinic int) int {
	count := (g.nPCP-1-clinic)/g.nClinics + 1
	return clinic + g.nClinics*r.IntN(count)
}

// chooseLanguage returns the preferred language and the name pool; non-
// English preference follows the group shares of the American Community
// Survey (limited English proficiency is most common among Hispanic and
// Asian patients).
func chooseLanguage(r *rand.Rand, p *person) (lang, bg string) {
	lang, bg = "en", "general"
	pct := r.IntN(1000)
	detail := ""
	if p.raceDetail != nil {
		detail = p.raceDetail.code
	}
	switch {
	case p.hispanic():
		bg = "hispanic"
		if pct < 420 {
			lang = "es"
		}
	case p.race == RaceAsian:
		bg = "asian"
		switch detail {
		case "2034-7":
			bg = "zh"
			if pct < 450 {
				lang = "zh"
			}
		case "2047-9":
			bg = "vi"
			if pct < 500 {
				lang = "vi"
			}
		case "2040-4":
			bg = "ko"
			if pct < 400 {
				lang = "ko"
			}
		case "2036-2":
			if pct < 150 {
				lang = "tl"
			}
		case "2029-7":
			if pct < 80 {
				lang = "hi"
			}
		default:
			switch {
			case pct < 150:
				lang, bg = "zh", "zh"
			case pct < 250:
				lang, bg = "vi", "vi"
			case pct < 310:
				lang, bg = "ko", "ko"
			case pct < 360:
				lang = "tl"
			}
		}
	case p.race == RaceAIAN:
		bg = "aian"
		if pct < 50 {
			lang = "nv"
		}
	case p.race == RaceNHPI:
		bg = "nhpi"
	case p.race == RaceBlack:
		switch {
		case detail == "2071-9" && pct < 400, pct < 20:
			lang = "ht"
		case pct < 30:
			lang = "fr"
		}
	case p.race == RaceWhite:
		switch {
		case detail == "2118-8" && pct < 350, pct < 10:
			lang = "ar"
		case pct < 25:
			lang = "ru"
		}
	case p.race == RaceOther && pct < 50:
		lang = "es"
	}
	return lang, bg
}

// drawCoverage assigns Medicare from 65, Medicaid and uninsurance more
// often for the groups and languages that have them more often.
func (g *gen) drawCoverage(p *person) {
	r := p.r
	pct := r.IntN(1000)
	switch {
	case p.ageMP >= 65:
		switch {
		case pct < 930:
			p.payer = payerIdxMedicare
		case pct < 980:
			p.payer = payerIdxCommFirst + r.IntN(len(payers)-payerIdxCommFirst)
		}
	default:
		medicaid, uninsured := 170, 80
		if p.ageMP < 18 {
			medicaid, uninsured = 400, 50
		}
		if p.race == RaceBlack || p.race == RaceAIAN || p.hispanic() {
			medicaid += 120
			uninsured += 60
		}
		if p.nonEnglish() {
			medicaid += 60
			uninsured += 40
		}
		switch {
		case pct < uninsured:
		case pct < uninsured+medicaid:
			p.payer = payerIdxMedicaid
		default:
			p.payer = payerIdxCommFirst + r.IntN(len(payers)-payerIdxCommFirst)
		}
	}
	if p.payer >= 0 {
		p.covID = p.id + "-cov-1"
		start := g.winStart.AddDate(-r.IntN(8), -r.IntN(12), 0)
		if p.payer == payerIdxMedicare {
			start = later(start, p.birth.AddDate(65, 0, 0))
		}
		start = later(start, p.birth)
		p.covOn = time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
}

func (g *gen) drawConditions(p *person) {
	r := p.r
	a := p.ageMP
	var htn, dm float64
	switch {
	case a < 18:
	case a < 40:
		htn, dm = 0.07, 0.04
	case a < 60:
		htn, dm = 0.30, 0.12
	default:
		htn, dm = 0.55, 0.22
	}
	if p.race == RaceBlack {
		htn *= 1.3
	}
	switch {
	case p.race == RaceBlack, p.race == RaceAIAN, p.hispanic():
		dm *= 1.6
	case p.race == RaceAsian:
		dm *= 1.2
	}
	mid := g.mpStart.AddDate(0, 6, 0)
	if r.Float64() < htn {
		p.htn = true
		lo := later(p.birth.AddDate(18, 0, 0), g.now.AddDate(-15, 0, 0))
		if r.IntN(100) < 8 {
			// A new diagnosis late in the year: too late for CMS165's
			// "diagnosed in the first six months" rule.
			p.htnOnset = between(r, mid.AddDate(0, 0, 1), g.now.AddDate(0, 0, -1))
		} else {
			if !lo.Before(mid) {
				lo = mid.AddDate(0, -3, 0)
			}
			p.htnOnset = between(r, lo, mid)
		}
	}
	if r.Float64() < dm {
		p.dm = true
		p.dmCoding = dmCodings[pickIndex(r, dmWeights)]
		lo := later(p.birth.AddDate(18, 0, 0), g.now.AddDate(-20, 0, 0))
		if r.IntN(100) < 8 || !lo.Before(g.mpStart) {
			p.dmOnset = between(r, g.mpStart, g.mpEnd.AddDate(0, 0, -1))
		} else {
			p.dmOnset = between(r, lo, g.mpStart)
		}
	}
}

func (g *gen) patientResource(p *person) obj {
	r := p.r
	raceSub := arr{}
	texts := make([]string, 0, 2)
	for _, c := range p.raceOMB {
		raceSub = append(raceSub, obj{{"url", "ombCategory"}, {"valueCoding", c.coding()}})
		texts = append(texts, c.display)
	}
	if p.raceDetail != nil {
		raceSub = append(raceSub, obj{{"url", "detailed"}, {"valueCoding", p.raceDetail.coding()}})
		texts = []string{p.raceDetail.display}
	}
	raceSub = append(raceSub, obj{{"url", "text"}, {"valueString", strings.Join(texts, ", ")}})

	ethCode := ethNonHispanic
	switch p.eth {
	case EthHispanic:
		ethCode = ethHispanic
	case Unknown:
		ethCode = nullUNK
	case Declined:
		ethCode = nullASKU
	}
	ethSub := arr{obj{{"url", "ombCategory"}, {"valueCoding", ethCode.coding()}}}
	ethText := ethCode.display
	if p.ethDetail != nil {
		ethSub = append(ethSub, obj{{"url", "detailed"}, {"valueCoding", p.ethDetail.coding()}})
		ethText = p.ethDetail.display
	}
	ethSub = append(ethSub, obj{{"url", "text"}, {"valueString", ethText}})

	birthSex := "UNK"
	switch p.gender {
	case "female":
		birthSex = "F"
	case "male":
		birthSex = "M"
	}
	family, given := personName(r, p.bg, p.gender == "female")
	lang := languages[p.lang]
	o := obj{
		{"resourceType", "Patient"}, {"id", p.id}, {"meta", meta(profPatient)},
		{"extension", arr{
			obj{{"url", extRace}, {"extension", raceSub}},
			obj{{"url", extEthnicity}, {"extension", ethSub}},
			obj{{"url", extBirthSex}, {"valueCode", birthSex}},
		}},
		{"identifier", arr{obj{
			{"use", "usual"},
			{"type", code{sysV2IDType, "MR", "Medical record number"}.concept()},
			{"system", sysMRN}, {"value", fmt.Sprintf("E%d-%07d", g.opts.Seed, p.idx)},
			{"assigner", ref("Organization", g.hospitalID(p.hospital))},
		}}},
		{"active", true},
		{"name", arr{obj{{"use", "official"}, {"family", family}, {"given", arr{given}}}}},
		{"telecom", arr{obj{{"system", "phone"}, {"value", phone(r)}, {"use", "home"}}}},
		{"gender", p.gender},
		{"birthDate", date(p.birth)},
		{"address", arr{address(r, places[p.place], "home")}},
		{"communication", arr{obj{
			{"language", obj{{"coding", arr{lang.coding()}}, {"text", lang.display}}},
			{"preferred", true},
		}}},
	}
	if p.pcp >= 0 {
		o = append(o, kv{"generalPractitioner", arr{ref("Practitioner", g.practID(p.pcp))}})
	}
	return append(o, kv{"managingOrganization", ref("Organization", g.clinicID(p.clinic))})
}

func (g *gen) coverage(p *person) obj {
	r := p.r
	py := payers[p.payer]
	var typ code
	var plan string
	switch py.kind {
	case payerMedicare:
		typ = pickWeighted(r, []weighted[code]{{70, code{sysPayerType, "121", "Medicare FFS"}}, {30, code{sysPayerType, "111", "Medicare HMO"}}})
		plan = "Medicare Part B"
	case payerMedicaid:
		typ = code{sysPayerType, "21", "Medicaid (Managed Care)"}
		plan = "Medicaid Managed Care"
	default:
		typ = pickWeighted(r, []weighted[code]{{50, code{sysPayerType, "512", "Commercial Managed Care - PPO"}}, {35, code{sysPayerType, "511", "Commercial Managed Care - HMO"}}, {15, code{sysPayerType, "6", "BLUE CROSS/BLUE SHIELD"}}})
		plan = py.name + " " + pick(r, []string{"Gold PPO", "Silver HMO", "Bronze HMO", "Platinum PPO"})
	}
	rel := code{sysSubscriber, "self", "Self"}
	if p.ageMP < 18 {
		rel = code{sysSubscriber, "child", "Child"}
	}
	member := fmt.Sprintf("%s%d%08d", strings.ToUpper(py.key[:2]), g.opts.Seed%10, p.idx)
	return obj{
		{"resourceType", "Coverage"}, {"id", p.covID}, {"meta", meta(profCoverage)},
		{"identifier", arr{ident(sysMember, member)}},
		{"status", "active"},
		{"type", typ.concept()},
		{"subscriberId", member},
		{"beneficiary", ref("Patient", p.id)},
		{"relationship", rel.concept()},
		{"period", obj{{"start", date(p.covOn)}}},
		{"payor", arr{ref("Organization", g.payerID(p.payer))}},
		{"class", arr{obj{
			{"type", code{sysCovClass, "plan", "Plan"}.concept()},
			{"value", fmt.Sprintf("PLAN-%s-%02d", strings.ToUpper(py.key), r.IntN(12))},
			{"name", plan},
		}}},
	}
}

func (g *gen) condition(p *person, kind string, codings []code, onset time.Time) obj {
	cs := make(arr, len(codings))
	for i, c := range codings {
		cs[i] = c.coding()
	}
	return obj{
		{"resourceType", "Condition"}, {"id", p.id + "-cond-" + kind}, {"meta", meta(profCondition)},
		{"clinicalStatus", code{sysCondClinical, "active", "Active"}.concept()},
		{"verificationStatus", code{sysCondVerif, "confirmed", "Confirmed"}.concept()},
		{"category", arr{code{sysCondCategory, "problem-list-item", "Problem List Item"}.concept()}},
		{"code", obj{{"coding", cs}, {"text", codings[0].display}}},
		{"subject", ref("Patient", p.id)},
		{"onsetDateTime", dt(onset)},
		{"recordedDate", dt(onset.Add(2 * time.Hour))},
	}
}

// Event kinds.
type eventKind int

const (
	evOffice eventKind = iota + 1
	evPreventive
	evAWV
	evTelephone
	evVirtual
	evPediatric
	evED
	evInpatient
	evLab // a lab draw without an encounter
)

func (k eventKind) inPersonOutpatient() bool {
	return k == evOffice || k == evPreventive || k == evAWV
}

// qualifying reports whether the kind's codes are in the measures'
// "Qualifying Encounters" value sets.
func (k eventKind) qualifying() bool {
	return k.inPersonOutpatient() || k == evTelephone || k == evVirtual
}

type event struct {
	kind       eventKind
	start, end time.Time
	cpt        code
	pract      int
	cancelled  bool
	viaED      bool
	readmit    bool
	dispo      code
	dx         code
	draw       bool // HbA1c drawn
	plantedBP  bool // the reading that decides CMS165
	plantedA1c bool // the result that decides CMS122
}

func workTime(r *rand.Rand, day time.Time) time.Time {
	d := time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 0, 0, time.UTC)
	return d.Add(time.Duration(r.IntN(36)) * 15 * time.Minute)
}

// schedule draws the patient's encounters over the two-year window.
func (g *gen) schedule(p *person) []event {
	r := p.r
	var evs []event
	chronic := p.htn || p.dm
	firstVisit := true
	for y := 0; y < 2; y++ {
		from := g.winStart.AddDate(y, 0, 0)
		to := from.AddDate(1, 0, 0)
		age := p.ageAt(from)
		if from.Before(p.birth) {
			continue
		}
		pract := func() int {
			if p.pcp >= 0 && r.IntN(100) < 85 {
				return p.pcp
			}
			return g.clinicPractitioner(r, p.clinic)
		}
		if age < 18 {
			if r.IntN(100) < 70 {
				t := workTime(r, between(r, from, to))
				c := cptPediatric
				if age >= 12 {
					c = code{sysCPT, "99394", "Periodic preventive medicine est, 12-17 years"}
				}
				evs = append(evs, event{kind: evPediatric, start: t, end: t.Add(30 * time.Minute), cpt: c, pract: pract()})
			}
		}
		lambda := 1.0
		if age >= 18 {
			lambda = 1.0 + 0.8*b2f(age >= 65)
			if p.htn {
				lambda += 1.4
			}
			if p.dm {
				lambda += 1.8
			}
		}
		for n := poisson(r, lambda); n > 0; n-- {
			t := workTime(r, between(r, from, to))
			ev := event{start: t, pract: pract()}
			switch k := r.IntN(100); {
			case k < 8:
				ev.kind, ev.cpt, ev.end = evTelephone, cptTelephone, t.Add(15*time.Minute)
			case k < 13:
				ev.kind, ev.cpt, ev.end = evVirtual, cptVirtual, t.Add(15*time.Minute)
			default:
				ev.kind = evOffice
				if firstVisit && r.IntN(100) < 15 {
					ev.cpt = pick(r, cptNew)
				} else {
					w := cptEstWeights
					if chronic {
						w = []int{5, 35, 45, 15}
					}
					ev.cpt = cptEstablished[pickIndex(r, w)]
				}
				firstVisit = false
				ev.end = t.Add(time.Duration(15+r.IntN(26)) * time.Minute)
				ev.cancelled = r.IntN(100) < 3
			}
			evs = append(evs, ev)
		}
		if age >= 18 && r.IntN(100) < 40 {
			t := workTime(r, between(r, from, to))
			ev := event{kind: evPreventive, start: t, end: t.Add(45 * time.Minute), pract: pract()}
			switch {
			case age >= 65 && r.IntN(2) == 0:
				ev.kind, ev.cpt = evAWV, hcpcsAWV
			case age >= 65:
				ev.cpt = cptPreventive[65]
			case age >= 40:
				ev.cpt = cptPreventive[40]
			default:
				ev.cpt = cptPreventive[18]
			}
			evs = append(evs, ev)
		}
		edLambda := 0.12 + 0.08*b2f(chronic)
		if p.payer < 0 || p.payer == payerIdxMedicaid {
			edLambda += 0.12
		}
		for n := poisson(r, edLambda); n > 0; n-- {
			t := between(r, from, to)
			evs = append(evs, g.edVisit(p, t))
		}
		ipLambda := 0.03 + 0.07*b2f(age >= 65) + 0.04*b2f(chronic)
		for n := poisson(r, ipLambda); n > 0; n-- {
			evs = g.admission(p, evs, between(r, from, to), false)
		}
	}
	// Nothing may happen at or after the reference instant.
	evs = slices.DeleteFunc(evs, func(e event) bool { return !e.end.Before(g.now) || e.start.Before(p.birth) })
	sortEvents(evs)
	return evs
}

func sortEvents(evs []event) {
	slices.SortStableFunc(evs, func(a, b event) int {
		return cmp.Or(a.start.Compare(b.start), cmp.Compare(a.kind, b.kind))
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (g *gen) edVisit(p *person, t time.Time) event {
	r := p.r
	return event{
		kind: evED, start: t, end: t.Add(time.Duration(2*60+r.IntN(300)) * time.Minute),
		cpt: cptED[pickIndex(r, cptEDWeights)], pract: g.edDoc(p.hospital), dx: pick(r, edDx),
	}
}

// admission adds an inpatient stay starting at t (after an ED visit most
// of the time) and, with the readmission probability, a second stay within
// 30 days of discharge.
func (g *gen) admission(p *person, evs []event, t time.Time, readmit bool) []event {
	r := p.r
	ev := event{kind: evInpatient, readmit: readmit, pract: g.hospitalist(p.hospital, r.IntN(2)), cpt: cptInpatient, dx: pick(r, ipDx)}
	if r.IntN(100) < 60 {
		ed := g.edVisit(p, t)
		ed.cpt = cptED[4]
		evs = append(evs, ed)
		ev.viaED = true
		ev.start = ed.end
	} else {
		ev.start = workTime(r, t)
	}
	ev.end = ev.start.Add(time.Duration(1+poisson(r, 2.5))*24*time.Hour + time.Duration(r.IntN(8))*time.Hour)
	ev.dispo = pickWeighted(r, dischargeDispositions)
	evs = append(evs, ev)
	pReadmit := 12
	if p.dm || p.ageAt(t) >= 65 {
		pReadmit = 20
	}
	if !readmit && r.IntN(100) < pReadmit {
		evs = g.admission(p, evs, ev.end.Add(time.Duration(2+r.IntN(27))*24*time.Hour), true)
	}
	return evs
}

// Planted rates: see DISPARITIES.md. They are probabilities per patient,
// applied to the reading or result that decides the measure.
var (
	bpControlByRace = map[string]float64{
		RaceWhite: 0.70, RaceBlack: 0.54, RaceAsian: 0.68, RaceAIAN: 0.56, RaceNHPI: 0.58,
		RaceOther: 0.62, RaceMultiple: 0.64, Unknown: 0.64, Declined: 0.64,
	}
	a1cPoorByRace = map[string]float64{
		RaceWhite: 0.18, RaceBlack: 0.30, RaceAsian: 0.16, RaceAIAN: 0.32, RaceNHPI: 0.28,
		RaceOther: 0.24, RaceMultiple: 0.22, Unknown: 0.22, Declined: 0.22,
	}
)

const (
	bpHispanicDelta   = -0.06
	bpNonEnglishDelta = -0.08
	a1cHispanicDelta  = 0.06
	a1cNonEnglish     = 0.05
	a1cNoTestEnglish  = 0.07
	a1cNoTestOther    = 0.13
)

// PlantedBPControl is the probability that a hypertensive patient's
// deciding blood pressure is below 140/90.
func PlantedBPControl(race, ethnicity, language string) float64 {
	p := bpControlByRace[race]
	if ethnicity == EthHispanic {
		p += bpHispanicDelta
	}
	if language != "en" {
		p += bpNonEnglishDelta
	}
	return p
}

// PlantedA1cPoor is the probability that a diabetic patient's deciding
// HbA1c, when there is one, is above 9%.
func PlantedA1cPoor(race, ethnicity, language string) float64 {
	p := a1cPoorByRace[race]
	if ethnicity == EthHispanic {
		p += a1cHispanicDelta
	}
	if language != "en" {
		p += a1cNonEnglish
	}
	return p
}

// PlantedA1cMissing is the probability that a diabetic patient has no
// HbA1c in the measurement period.
func PlantedA1cMissing(language string) float64 {
	if language != "en" {
		return a1cNoTestOther
	}
	return a1cNoTestEnglish
}

// plant marks the visit whose blood pressure decides CMS165 and the draw
// whose HbA1c decides CMS122, and decides the HbA1c draws.
func (g *gen) plant(p *person, evs *[]event) {
	r := p.r
	p.bpControlled = r.Float64() < PlantedBPControl(p.race, p.eth, p.lang)
	p.a1cPoor = r.Float64() < PlantedA1cPoor(p.race, p.eth, p.lang)
	last := -1
	for i := range *evs {
		e := &(*evs)[i]
		if e.kind.inPersonOutpatient() && !e.cancelled && p.ageAt(e.start) >= 18 {
			switch {
			case p.dm:
				e.draw = r.IntN(100) < 55
			case e.kind != evOffice:
				e.draw = r.IntN(100) < 15
			}
			if g.inMP(e.start) {
				last = i
			}
		}
	}
	if last >= 0 && p.htn {
		(*evs)[last].plantedBP = true
	}
	if !p.dm {
		return
	}
	if r.Float64() < PlantedA1cMissing(p.lang) {
		for i := range *evs {
			if g.inMP((*evs)[i].start) {
				(*evs)[i].draw = false
			}
		}
		return
	}
	lastDraw := -1
	for i, e := range *evs {
		if e.draw && g.inMP(e.start) {
			lastDraw = i
		}
	}
	switch {
	case lastDraw >= 0:
	case last >= 0:
		lastDraw = last
		(*evs)[last].draw = true
	default:
		end := g.mpEnd
		if g.now.Before(end) {
			end = g.now
		}
		t := workTime(r, between(r, g.mpStart, end.AddDate(0, 0, -1)))
		*evs = append(*evs, event{kind: evLab, start: t, end: t.Add(10 * time.Minute), draw: true, plantedA1c: true})
		sortEvents(*evs)
		return
	}
	(*evs)[lastDraw].plantedA1c = true
}

func (g *gen) inMP(t time.Time) bool { return !t.Before(g.mpStart) && t.Before(g.mpEnd) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
