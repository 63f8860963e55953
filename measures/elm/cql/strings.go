package cql

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Concatenate joins strings; null if any operand is null.
func Concatenate(args []Value) Value {
	var b strings.Builder
	for _, a := range args {
		s, ok := ToCQLValue(a).(String)
		if !ok {
			return nil
		}
		b.WriteString(string(s))
	}
	return String(b.String())
}

// Combine joins a list of strings with a separator, skipping nulls.
func Combine(a, sep Value) Value {
	lst, ok := a.(List)
	s, ok2 := sep.(String)
	if !ok || !ok2 {
		return nil
	}
	var parts []string
	for _, e := range lst {
		if x, ok := ToCQLValue(e).(String); ok {
			parts = append(parts, string(x))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return String(strings.Join(parts, string(s)))
}

// Split splits a string on a separator.
func Split(a, sep Value) Value {
	s, ok := ToCQLValue(a).(String)
	if !ok {
		return nil
	}
	p, ok := sep.(String)
	if !ok || p == "" {
		return List{s}
	}
	out := List{}
	for _, x := range strings.Split(string(s), string(p)) {
		out = append(out, String(x))
	}
	return out
}

// SplitOnMatches splits a string on a regular expression.
func SplitOnMatches(a, sep Value) Value {
	s, ok := a.(String)
	p, ok2 := sep.(String)
	if !ok || !ok2 {
		return nil
	}
	re, err := regexp.Compile(string(p))
	if err != nil {
		return nil
	}
	out := List{}
	for _, x := range re.Split(string(s), -1) {
		out = append(out, String(x))
	}
	return out
}

// Length of a string (characters) or list.
func Length(a Value) Value {
	switch x := ToCQLValue(a).(type) {
	case String:
		return Integer(utf8.RuneCountInString(string(x)))
	case List:
		return Integer(len(x))
	case nil:
		if _, ok := a.(List); ok {
			return Integer(0)
		}
	}
	return nil
}

// Upper upper-cases a string.
func Upper(a Value) Value {
	if s, ok := ToCQLValue(a).(String); ok {
		return String(strings.ToUpper(string(s)))
	}
	return nil
}

// Lower lower-cases a string.
func Lower(a Value) Value {
	if s, ok := ToCQLValue(a).(String); ok {
		return String(strings.ToLower(string(s)))
	}
	return nil
}

// StartsWith reports a prefix.
func StartsWith(a, b Value) Value {
	s, ok1 := ToCQLValue(a).(String)
	p, ok2 := ToCQLValue(b).(String)
	if !ok1 || !ok2 {
		return nil
	}
	return Boolean(strings.HasPrefix(string(s), string(p)))
}

// EndsWith reports a suffix.
func EndsWith(a, b Value) Value {
	s, ok1 := ToCQLValue(a).(String)
	p, ok2 := ToCQLValue(b).(String)
	if !ok1 || !ok2 {
		return nil
	}
	return Boolean(strings.HasSuffix(string(s), string(p)))
}

// Matches reports a full regular-expression match.
func Matches(a, b Value) Value {
	s, ok1 := ToCQLValue(a).(String)
	p, ok2 := ToCQLValue(b).(String)
	if !ok1 || !ok2 {
		return nil
	}
	re, err := regexp.Compile("^(?:" + string(p) + ")$")
	if err != nil {
		fail("invalid regular expression " + string(p))
	}
	return Boolean(re.MatchString(string(s)))
}

// ReplaceMatches replaces regular-expression matches.
func ReplaceMatches(args []Value) Value {
	if len(args) != 3 {
		return nil
	}
	s, ok1 := args[0].(String)
	p, ok2 := args[1].(String)
	r, ok3 := args[2].(String)
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	re, err := regexp.Compile(string(p))
	if err != nil {
		fail("invalid regular expression " + string(p))
	}
	return String(re.ReplaceAllString(string(s), strings.ReplaceAll(string(r), `\$`, "$$")))
}

// PositionOf returns the (last) index of pattern in s, or -1.
func PositionOf(pat, s Value, last bool) Value {
	p, ok1 := pat.(String)
	x, ok2 := s.(String)
	if !ok1 || !ok2 {
		return nil
	}
	var i int
	if last {
		i = strings.LastIndex(string(x), string(p))
	} else {
		i = strings.Index(string(x), string(p))
	}
	if i < 0 {
		return Integer(-1)
	}
	return Integer(utf8.RuneCountInString(string(x)[:i]))
}

// Substring returns characters from start (with optional length).
func Substring(s, start, length Value, hasLen bool) Value {
	x, ok1 := s.(String)
	st, ok2 := start.(Integer)
	if !ok1 || !ok2 {
		return nil
	}
	r := []rune(string(x))
	if st < 0 || int(st) > len(r) || (int(st) == len(r) && len(r) > 0) {
		return nil
	}
	end := len(r)
	if hasLen {
		l, ok := length.(Integer)
		if !ok {
			return nil
		}
		if l < 0 {
			return nil
		}
		if int(st)+int(l) < end {
			end = int(st) + int(l)
		}
	}
	return String(r[st:end])
}
