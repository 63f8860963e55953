package elm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/equitas/equitas/measures/elm/cql"
)

func (cp *compiler) interval(l *clib, n node, sc *scope) (evalFn, error) {
	var low, high, lc, hc evalFn
	var err error
	if low, err = cp.optExpr(l, n, "low", sc); err != nil {
		return nil, err
	}
	if high, err = cp.optExpr(l, n, "high", sc); err != nil {
		return nil, err
	}
	if lc, err = cp.optExpr(l, n, "lowClosedExpression", sc); err != nil {
		return nil, err
	}
	if hc, err = cp.optExpr(l, n, "highClosedExpression", sc); err != nil {
		return nil, err
	}
	lowClosed, _ := n["lowClosed"].(bool)
	highClosed, _ := n["highClosed"].(bool)
	// An untyped null bound (a bare Null node, not "null as T") has no
	// point type to be unbounded in: it is unknown.
	if b, _ := n["low"].(map[string]any); str(b, "type") == "Null" {
		lowClosed = false
	}
	if b, _ := n["high"].(map[string]any); str(b, "type") == "Null" {
		highClosed = false
	}
	return func(c *Context) cql.Value {
		iv := &cql.Interval{LowClosed: lowClosed, HighClosed: highClosed}
		if low != nil {
			iv.Low = low(c)
		}
		if high != nil {
			iv.High = high(c)
		}
		if lc != nil {
			b, _ := lc(c).(cql.Boolean)
			iv.LowClosed = bool(b)
		}
		if hc != nil {
			b, _ := hc(c).(cql.Boolean)
			iv.HighClosed = bool(b)
		}
		if err := cql.ValidateInterval(iv); err != nil {
			c.fail(&EvalError{Library: l.id, Locator: str(n, "locator"), Err: err})
		}
		return iv
	}, nil
}

func (cp *compiler) caseExpr(l *clib, n node, sc *scope) (evalFn, error) {
	comparand, err := cp.optExpr(l, n, "comparand", sc)
	if err != nil {
		return nil, err
	}
	items, _ := n["caseItem"].([]any)
	whens := make([]evalFn, len(items))
	thens := make([]evalFn, len(items))
	for i, it := range items {
		im, _ := it.(map[string]any)
		if whens[i], err = cp.expr(l, im["when"], sc); err != nil {
			return nil, err
		}
		if thens[i], err = cp.expr(l, im["then"], sc); err != nil {
			return nil, err
		}
	}
	els, err := cp.expr(l, n["else"], sc)
	if err != nil {
		return nil, err
	}
	return func(c *Context) cql.Value {
		if comparand != nil {
			v := comparand(c)
			for i, w := range whens {
				if b, ok := cql.Equal(v, w(c)).(cql.Boolean); ok && bool(b) {
					return thens[i](c)
				}
			}
			return els(c)
		}
		for i, w := range whens {
			if b, ok := w(c).(cql.Boolean); ok && bool(b) {
				return thens[i](c)
			}
		}
		return els(c)
	}, nil
}

func (cp *compiler) message(l *clib, n node, sc *scope) (evalFn, error) {
	get := func(k string) (evalFn, error) {
		if n[k] == nil {
			return func(*Context) cql.Value { return nil }, nil
		}
		return cp.expr(l, n[k], sc)
	}
	src, err := get("source")
	if err != nil {
		return nil, err
	}
	cond, err := get("condition")
	if err != nil {
		return nil, err
	}
	code, err := get("code")
	if err != nil {
		return nil, err
	}
	sev, err := get("severity")
	if err != nil {
		return nil, err
	}
	msg, err := get("message")
	if err != nil {
		return nil, err
	}
	return func(c *Context) cql.Value {
		v := src(c)
		if b, ok := cond(c).(cql.Boolean); ok && bool(b) {
			if s, _ := sev(c).(cql.String); strings.EqualFold(string(s), "error") {
				cs, _ := code(c).(cql.String)
				ms, _ := msg(c).(cql.String)
				c.fail(&EvalError{Library: l.id, Locator: str(n, "locator"), Err: fmt.Errorf("%s: %s", cs, ms)})
			}
		}
		return v
	}, nil
}

type querySource struct {
	alias string
	slot  int
	fn    evalFn
}

type queryLet struct {
	slot int
	fn   evalFn
}

type queryRel struct {
	without bool
	slot    int
	src     evalFn
	such    evalFn
}

func (cp *compiler) query(l *clib, n node, sc *scope) (evalFn, error) {
	srcs, _ := n["source"].([]any)
	if len(srcs) == 0 {
		return nil, cp.errAt(l, n, fmt.Errorf("%w: query without source", ErrInvalidELM))
	}
	var sources []querySource
	inner := sc
	for _, s := range srcs {
		sm, _ := s.(map[string]any)
		fn, err := cp.expr(l, sm["expression"], inner)
		if err != nil {
			return nil, err
		}
		qs := querySource{alias: str(sm, "alias"), slot: cp.newVar(), fn: fn}
		sources = append(sources, qs)
		inner = inner.withType(qs.alias, qs.slot, cp.staticType(l, sm["expression"], sc))
	}
	var lets []queryLet
	if ls, ok := n["let"].([]any); ok {
		for _, le := range ls {
			lm, _ := le.(map[string]any)
			fn, err := cp.expr(l, lm["expression"], inner)
			if err != nil {
				return nil, err
			}
			ql := queryLet{slot: cp.newVar(), fn: fn}
			lets = append(lets, ql)
			inner = inner.with(str(lm, "identifier"), ql.slot)
		}
	}
	var rels []queryRel
	if rs, ok := n["relationship"].([]any); ok {
		for _, r := range rs {
			rm, _ := r.(map[string]any)
			rt := str(rm, "type")
			if rt != "With" && rt != "Without" {
				return nil, cp.unsupported(l, rm, "relationship "+rt)
			}
			src, err := cp.expr(l, rm["expression"], inner)
			if err != nil {
				return nil, err
			}
			qr := queryRel{without: rt == "Without", slot: cp.newVar(), src: src}
			rs := inner.with(str(rm, "alias"), qr.slot)
			if qr.such, err = cp.expr(l, rm["suchThat"], rs); err != nil {
				return nil, err
			}
			rels = append(rels, qr)
		}
	}
	var where evalFn
	if n["where"] != nil {
		var err error
		if where, err = cp.expr(l, n["where"], inner); err != nil {
			return nil, err
		}
	}
	var ret evalFn
	distinct := false
	if rn, ok := n["return"].(map[string]any); ok {
		var err error
		if ret, err = cp.expr(l, rn["expression"], inner); err != nil {
			return nil, err
		}
		distinct = true
		if d, ok := rn["distinct"].(bool); ok {
			distinct = d
		}
	}
	var agg evalFn
	aggSlot, aggInit := -1, evalFn(nil)
	if an, ok := n["aggregate"].(map[string]any); ok {
		aggSlot = cp.newVar()
		ascope := inner.with(str(an, "identifier"), aggSlot)
		var err error
		if an["starting"] != nil {
			if aggInit, err = cp.expr(l, an["starting"], sc); err != nil {
				return nil, err
			}
		}
		if agg, err = cp.expr(l, an["expression"], ascope); err != nil {
			return nil, err
		}
		distinct = false
		if d, ok := an["distinct"].(bool); ok {
			distinct = d
		}
	}
	var sortFn func(c *Context, lst cql.List)
	if sn, ok := n["sort"].(map[string]any); ok {
		var err error
		if sortFn, err = cp.sortClause(l, sn, sc); err != nil {
			return nil, err
		}
	}
	single := len(sources) == 1
	if single && len(lets) == 0 && len(rels) == 0 && agg == nil {
		return cp.simpleQuery(sources[0], where, ret, distinct, sortFn), nil
	}
	var tupleNames []string
	if !single {
		for _, s := range sources {
			tupleNames = append(tupleNames, s.alias)
		}
	}
	return func(c *Context) cql.Value {
		// Evaluate sources; a single non-list source makes a singleton query.
		lists := make([]cql.List, len(sources))
		scalar := false
		for i, s := range sources {
			v := s.fn(c)
			switch x := v.(type) {
			case cql.List:
				lists[i] = x
			case nil:
				if single {
					scalar = true
				}
				lists[i] = nil
			default:
				if single {
					scalar = true
				}
				lists[i] = cql.List{x}
			}
		}
		if scalar && single && len(lists[0]) == 0 {
			return nil
		}
		var out cql.List
		var acc cql.Value
		if aggSlot >= 0 && aggInit != nil {
			acc = aggInit(c)
		}
		var idx = make([]int, len(sources))
		var rowTuple []cql.Value
		for {
			// current row
			empty := false
			for i, s := range sources {
				if len(lists[i]) == 0 {
					empty = true
					break
				}
				c.vars[s.slot] = lists[i][idx[i]]
			}
			if empty {
				break
			}
			ok := true
			for _, lt := range lets {
				c.vars[lt.slot] = lt.fn(c)
			}
			for _, r := range rels {
				found := false
				rl := r.src(c)
				items, isList := rl.(cql.List)
				if !isList && rl != nil {
					items = cql.List{rl}
				}
				for _, it := range items {
					c.vars[r.slot] = it
					if b, ok := r.such(c).(cql.Boolean); ok && bool(b) {
						found = true
						break
					}
				}
				if found == r.without {
					ok = false
					break
				}
			}
			if ok && where != nil {
				b, isB := where(c).(cql.Boolean)
				ok = isB && bool(b)
			}
			if ok {
				var v cql.Value
				switch {
				case ret != nil:
					v = ret(c)
				case single:
					v = c.vars[sources[0].slot]
				default:
					rowTuple = make([]cql.Value, len(sources))
					for i, s := range sources {
						rowTuple[i] = c.vars[s.slot]
					}
					v = &cql.Tuple{Names: tupleNames, Values: rowTuple}
				}
				if agg != nil && ret == nil && !single {
					// Aggregate over rows: keep the row so aliases can be restored.
					row := make([]cql.Value, len(sources))
					for i, s := range sources {
						row[i] = c.vars[s.slot]
					}
					v = &cql.Tuple{Names: tupleNames, Values: row}
				}
				out = append(out, v)
			}
			// advance odometer
			k := len(sources) - 1
			for k >= 0 {
				idx[k]++
				if idx[k] < len(lists[k]) {
					break
				}
				idx[k] = 0
				k--
			}
			if k < 0 {
				break
			}
		}
		if agg != nil {
			if distinct {
				out = cql.DistinctList(out)
			}
			for _, v := range out {
				if t, ok := v.(*cql.Tuple); ok && ret == nil && !single {
					for i, s := range sources {
						c.vars[s.slot] = t.Values[i]
					}
				} else {
					c.vars[sources[0].slot] = v
				}
				c.vars[aggSlot] = acc
				acc = agg(c)
			}
			return acc
		}
		return queryResult(c, out, distinct, sortFn, scalar)
	}, nil
}

// simpleQuery is the single-source query without let, relationships or
// aggregate: the shape of most measure logic.
func (cp *compiler) simpleQuery(src querySource, where, ret evalFn, distinct bool, sortFn func(*Context, cql.List)) evalFn {
	slot := src.slot
	return func(c *Context) cql.Value {
		v := src.fn(c)
		var items cql.List
		scalar := false
		switch x := v.(type) {
		case cql.List:
			items = x
		case nil:
			return nil
		default:
			scalar = true
			items = cql.List{x}
		}
		var out cql.List
		for _, it := range items {
			c.vars[slot] = it
			if where != nil {
				if b, ok := where(c).(cql.Boolean); !ok || !bool(b) {
					continue
				}
			}
			if ret != nil {
				out = append(out, ret(c))
			} else {
				out = append(out, it)
			}
		}
		return queryResult(c, out, distinct, sortFn, scalar)
	}
}

// queryResult applies the query's distinct and sort clauses to the rows and
// shapes the result: a query over a single (non-list) source yields its one
// row or null, a list query yields a list, never null.
func queryResult(c *Context, out cql.List, distinct bool, sortFn func(*Context, cql.List), scalar bool) cql.Value {
	if distinct {
		out = cql.DistinctList(out)
	}
	if sortFn != nil {
		sortFn(c, out)
	}
	if scalar {
		if len(out) == 0 {
			return nil
		}
		return out[0]
	}
	if out == nil {
		out = cql.List{}
	}
	return out
}

func (cp *compiler) sortClause(l *clib, sn node, sc *scope) (func(c *Context, lst cql.List), error) {
	bys, _ := sn["by"].([]any)
	type key struct {
		desc bool
		fn   evalFn // nil: the element itself
		path string
	}
	var keys []key
	thisSlot := cp.newVar()
	ssc := sc.with("$this", thisSlot)
	for _, b := range bys {
		bm, _ := b.(map[string]any)
		k := key{desc: strings.HasPrefix(str(bm, "direction"), "desc")}
		switch str(bm, "type") {
		case "ByDirection":
		case "ByColumn":
			k.path = str(bm, "path")
		case "ByExpression":
			fn, err := cp.expr(l, bm["expression"], ssc)
			if err != nil {
				return nil, err
			}
			k.fn = fn
		default:
			return nil, cp.unsupported(l, bm, "sort "+str(bm, "type"))
		}
		keys = append(keys, k)
	}
	return func(c *Context, lst cql.List) {
		// Precompute keys to keep the comparator cheap.
		vals := make([][]cql.Value, len(lst))
		for i, v := range lst {
			row := make([]cql.Value, len(keys))
			for j, k := range keys {
				switch {
				case k.fn != nil:
					c.vars[thisSlot] = v
					row[j] = k.fn(c)
				case k.path != "":
					row[j] = c.property(v, k.path)
				default:
					row[j] = v
				}
			}
			vals[i] = row
		}
		perm := make([]int, len(lst))
		for i := range perm {
			perm[i] = i
		}
		slices.SortStableFunc(perm, func(a, b int) int {
			for j, k := range keys {
				r := cql.SortCompare(vals[a][j], vals[b][j])
				if k.desc {
					r = -r
				}
				if r != 0 {
					return r
				}
			}
			return 0
		})
		sorted := make(cql.List, len(lst))
		for i, p := range perm {
			sorted[i] = lst[p]
		}
		copy(lst, sorted)
	}, nil
}

func (cp *compiler) sortExpr(l *clib, n node, sc *scope) (evalFn, error) {
	src, err := cp.expr(l, n["source"], sc)
	if err != nil {
		return nil, err
	}
	sf, err := cp.sortClause(l, node{"by": n["by"]}, sc)
	if err != nil {
		return nil, err
	}
	return func(c *Context) cql.Value {
		lst, ok := src(c).(cql.List)
		if !ok {
			return nil
		}
		out := slices.Clone(lst)
		sf(c, out)
		return out
	}, nil
}

func (cp *compiler) iteration(l *clib, n node, sc *scope, t string) (evalFn, error) {
	src, err := cp.expr(l, n["source"], sc)
	if err != nil {
		return nil, err
	}
	slot := cp.newVar()
	isc := sc.with("$this", slot)
	if sc2 := str(n, "scope"); sc2 != "" {
		isc = isc.with(sc2, slot)
	}
	key := "element"
	if t == "Filter" {
		key = "condition"
	}
	body, err := cp.expr(l, n[key], isc)
	if err != nil {
		return nil, err
	}
	return func(c *Context) cql.Value {
		lst, ok := src(c).(cql.List)
		if !ok {
			return nil
		}
		out := cql.List{}
		switch t {
		case "Filter":
			for _, v := range lst {
				c.vars[slot] = v
				if b, ok := body(c).(cql.Boolean); ok && bool(b) {
					out = append(out, v)
				}
			}
		case "ForEach":
			for _, v := range lst {
				c.vars[slot] = v
				out = append(out, body(c))
			}
		case "Repeat":
			seen := cql.List{}
			queue := slices.Clone(lst)
			for len(queue) > 0 && len(seen) < 100000 {
				v := queue[0]
				queue = queue[1:]
				if cql.ListContains(seen, v) {
					continue
				}
				seen = append(seen, v)
				c.vars[slot] = v
				r := body(c)
				if rl, ok := r.(cql.List); ok {
					queue = append(queue, rl...)
				} else if r != nil {
					queue = append(queue, r)
				}
			}
			out = seen
		}
		return out
	}, nil
}

func (cp *compiler) instance(l *clib, n node, sc *scope) (evalFn, error) {
	ts, err := cp.typeSpec(l, nil, n["classType"])
	if err != nil {
		return nil, cp.errAt(l, n, err)
	}
	els, _ := n["element"].([]any)
	names := make([]string, len(els))
	fns := make([]evalFn, len(els))
	for i, e := range els {
		em, _ := e.(map[string]any)
		names[i] = str(em, "name")
		if fns[i], err = cp.expr(l, em["value"], sc); err != nil {
			return nil, err
		}
	}
	eval := func(c *Context) []cql.Value {
		vals := make([]cql.Value, len(fns))
		for i, f := range fns {
			vals[i] = f(c)
		}
		return vals
	}
	if ts.fhir {
		ft := cp.p.model.Type(ts.name)
		return func(c *Context) cql.Value {
			return cql.NewFHIRInstance(ft, names, eval(c))
		}, nil
	}
	mk := cql.InstanceBuilder(ts.name)
	if mk == nil {
		return nil, cp.unsupported(l, n, "Instance of "+ts.String())
	}
	return func(c *Context) cql.Value { return mk(names, eval(c)) }, nil
}

func (cp *compiler) dateCtor(l *clib, n node, sc *scope, t string) (evalFn, error) {
	var parts []string
	switch t {
	case "DateTime":
		parts = []string{"year", "month", "day", "hour", "minute", "second", "millisecond", "timezoneOffset"}
	case "Date":
		parts = []string{"year", "month", "day"}
	default:
		parts = []string{"hour", "minute", "second", "millisecond"}
	}
	fns := make([]evalFn, len(parts))
	for i, p := range parts {
		fn, err := cp.optExpr(l, n, p, sc)
		if err != nil {
			return nil, err
		}
		fns[i] = fn
	}
	return func(c *Context) cql.Value {
		vals := make([]cql.Value, len(fns))
		for i, f := range fns {
			if f != nil {
				vals[i] = f(c)
			}
		}
		v, err := cql.Construct(t, vals, c.p.opts.TimezoneOffset)
		if err != nil {
			c.fail(&EvalError{Library: l.id, Locator: str(n, "locator"), Err: err})
		}
		return v
	}, nil
}
