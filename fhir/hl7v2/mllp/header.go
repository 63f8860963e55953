package mllp

import "bytes"

// header is what the transport logs of a message: identifiers only, never
// patient data.
type header struct {
	controlID string // MSH-10
	sender    string // MSH-3^MSH-4 (first components)
	msgType   string // MSH-9
}

// peekHeader reads the MSH fields the transport logs. It is deliberately
// lax: a message it cannot read is still handed to the Handler, which
// answers it properly.
func peekHeader(msg []byte) header {
	var h header
	if len(msg) < 8 || !bytes.HasPrefix(msg, []byte("MSH")) {
		return h
	}
	fs, cs := msg[3], msg[4]
	seg := msg
	if i := bytes.IndexAny(seg, "\r\n"); i >= 0 {
		seg = seg[:i]
	}
	fields := bytes.Split(seg, []byte{fs})
	field := func(n int) []byte { // MSH-n; fields[1] is MSH-2 as MSH-1 is the separator
		if n-1 < len(fields) {
			return fields[n-1]
		}
		return nil
	}
	first := func(b []byte) string {
		if i := bytes.IndexByte(b, cs); i >= 0 {
			b = b[:i]
		}
		return clip(b)
	}
	h.controlID = clip(field(10))
	h.msgType = clip(field(9))
	if app, fac := first(field(3)), first(field(4)); fac != "" {
		h.sender = app + "^" + fac
	} else {
		h.sender = app
	}
	return h
}

// ackCode returns MSA-1 of an acknowledgement ("" when absent).
func ackCode(ack []byte) string {
	if len(ack) < 8 || !bytes.HasPrefix(ack, []byte("MSH")) {
		return ""
	}
	fs := ack[3]
	for seg := range bytes.FieldsFuncSeq(ack, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if len(seg) > 4 && bytes.HasPrefix(seg, []byte("MSA")) && seg[3] == fs {
			code := seg[4:]
			if i := bytes.IndexByte(code, fs); i >= 0 {
				code = code[:i]
			}
			return clip(code)
		}
	}
	return ""
}

// clip bounds what a sender-controlled field can put in a log line or a
// metric label.
func clip(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// order is what sequencing needs of a message: the patients and visits it
// is about (PID-3 identifiers, PV1-19), or barrier when it must follow and
// be followed by every other message of its connection (no PID, or a merge
// naming a second patient in MRG).
type order struct {
	keys    []string
	barrier bool
}

// follows reports whether a message with order o must wait for one with
// order p sent before it.
func (o *order) follows(p *order) bool {
	if o.barrier || p.barrier {
		return true
	}
	for _, k := range o.keys {
		for _, pk := range p.keys {
			if k == pk {
				return true
			}
		}
	}
	return false
}

// orderOf reads the sequencing keys laxly: a message it cannot read is a
// barrier, which is always safe.
func orderOf(msg []byte) order {
	if len(msg) < 8 || !bytes.HasPrefix(msg, []byte("MSH")) {
		return order{barrier: true}
	}
	fs, cs, rs := msg[3], msg[4], msg[5]
	var o order
	first := func(b []byte) []byte {
		if i := bytes.IndexByte(b, cs); i >= 0 {
			return b[:i]
		}
		return b
	}
	for seg := range bytes.FieldsFuncSeq(msg, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if len(seg) < 4 || seg[3] != fs {
			continue
		}
		fields := bytes.Split(seg, []byte{fs})
		switch string(seg[:3]) {
		case "MRG":
			return order{barrier: true}
		case "PID":
			if len(fields) > 3 {
				for rep := range bytes.SplitSeq(fields[3], []byte{rs}) {
					if id := first(rep); len(id) > 0 {
						o.keys = append(o.keys, "p:"+clip(id))
					}
				}
			}
		case "PV1":
			if len(fields) > 19 {
				if id := first(fields[19]); len(id) > 0 {
					o.keys = append(o.keys, "v:"+clip(id))
				}
			}
		}
	}
	if len(o.keys) == 0 {
		o.barrier = true
	}
	return o
}
