package hl7v2_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/equitas/equitas/fhir/hl7v2"
)

func ExampleParse() {
	raw := "MSH|^~\\&|EPIC|GOODHOSP|EQUITAS|HIE|20260301080000-0500||ADT^A01^ADT_A01|MSG0001|P|2.5.1\n" +
		"PID|1||MRN123^^^GOODHOSP^MR~999^^^SSA^SS||O\\S\\Brien^Mary||19800214|F\n" +
		"ZPI|site specific, ignored unless asked for\n"
	m, err := hl7v2.Parse([]byte(raw))
	if err != nil {
		fmt.Println(err)
		return
	}
	pid := m.Segment("PID")
	fmt.Println(m.Segment("MSH").Field(9).Component(2).String())
	fmt.Println(pid.Field(3).Repetition(2).Component(5).String())
	fmt.Println(pid.Field(5).Component(1).String())
	// Output:
	// A01
	// SS
	// O^Brien
}

func ExampleAckBuilder_ACK() {
	m, _ := hl7v2.Parse([]byte("MSH|^~\\&|EPIC|GOODHOSP|EQUITAS|HIE|20260301080000||ADT^A01^ADT_A01|MSG0001|P|2.5.1\rPID|1||MRN123||Doe^Jane||19801302\r"))
	b := hl7v2.AckBuilder{
		Now:       func() time.Time { return time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC) },
		ControlID: func() string { return "ACK0001" },
	}
	ack := b.ACK(m, hl7v2.AE, "", hl7v2.Errorf(hl7v2.Location{Segment: "PID", Field: 7}, hl7v2.CodeDataType, "PID-7 birth date is not a valid date"))
	fmt.Println(strings.ReplaceAll(string(ack), "\r", "\n"))
	// Output:
	// MSH|^~\&|EQUITAS|HIE|EPIC|GOODHOSP|20260301130000+0000||ACK^A01^ACK|ACK0001|P|2.5.1
	// MSA|AE|MSG0001
	// ERR||PID^1^7|102^Data type error^HL70357|E||||PID-7 birth date is not a valid date
}
