// Package subscription delivers ADT encounter events to the provider
// organizations a patient is attributed to, as FHIR R4 topic-based
// Subscriptions (Subscriptions R5 Backport IG 1.1.0, R4 profile).
//
// A Subscription names the topic TopicURL in Subscription.criteria, narrows
// it with backport-filter-criteria extensions (see Filter), and is bound to
// exactly one provider organization (its owner): the Organization of the
// client that created it, or, for a system client, the value of its
// "organization" filter. An event is delivered to a Subscription only when
// the patient is attributed to the owner through an active ATR list at the
// event time, so a provider never hears about a patient it is not
// attributed.
//
// Deliveries are jobs persisted in the store's KV space before Notify
// returns: a restart resumes them. A failed delivery is retried with
// exponential backoff up to a bounded number of attempts; an exhausted job
// becomes a dead letter (listed by $dead-letters) and puts the
// Subscription in status error.
package subscription

import "github.com/equitas/equitas/fhir/access"

// TopicURL is the canonical of the SubscriptionTopic this server supports:
// encounter admit, discharge and transfer events (and the register and
// cancel events of the same encounters) received over HL7 v2 or FHIR
// messaging. R4 has no SubscriptionTopic resource; the canonical is
// described by TopicResource.
const TopicURL = "http://equitas.example/SubscriptionTopic/encounter-adt"

// Extension and profile URLs of the Subscriptions R5 Backport IG 1.1.0.
const (
	ExtFilterCriteria   = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria"
	ExtPayloadContent   = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content"
	ExtTimeout          = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout"
	ExtMaxCount         = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-max-count"
	ProfileSubscription = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
	ProfileStatus       = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"
	ProfileNotification = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4"
	// StatusDefinition is the $status OperationDefinition.
	StatusDefinition = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
	// ExtOwner records the provider organization a Subscription is bound
	// to. The server sets it; a value sent by a client is replaced.
	ExtOwner = access.SubscriptionOwnerExtension
	// DeadLettersDefinition names this server's $dead-letters operation.
	DeadLettersDefinition = "http://equitas.example/fhir/OperationDefinition/Subscription-dead-letters"
)

// Event kinds of the topic (the Kind of an Event).
const (
	KindAdmit           = "admit"
	KindDischarge       = "discharge"
	KindTransfer        = "transfer"
	KindRegister        = "register"
	KindCancelAdmit     = "cancel-admit"
	KindCancelDischarge = "cancel-discharge"
)

// topicKinds are the event kinds the topic carries; demographic updates
// and merges are not encounter events and are not delivered.
var topicKinds = map[string]bool{
	KindAdmit: true, KindDischarge: true, KindTransfer: true,
	KindRegister: true, KindCancelAdmit: true, KindCancelDischarge: true,
}

// TopicResource is the topic as an R4 Basic resource carrying the R5
// SubscriptionTopic elements in cross-version extensions, so a client can
// read what the canonical means at [base]/Basic/encounter-adt.
func TopicResource() []byte {
	return []byte(`{"resourceType":"Basic","id":"encounter-adt",` +
		`"code":{"coding":[{"system":"http://hl7.org/fhir/fhir-types","code":"SubscriptionTopic"}]},` +
		`"extension":[` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url","valueUri":"` + TopicURL + `"},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.title","valueString":"Encounter ADT events (admit, discharge, transfer) for attributed patients"},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.status","valueCode":"active"},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.description","valueMarkdown":"An HL7 v2 ADT (A01, A02, A03, A04, A11, A13) or Da Vinci Unsolicited Notification admit, transfer or discharge was applied to an Encounter of a patient attributed to the subscriber's organization through an active ATR list. Focus: the Encounter; additional context: the Patient and the MessageHeader. Filters: Encounter?event=admit,discharge,transfer,register,cancel-admit,cancel-discharge; Encounter?patient=Patient/[id]; Encounter?group=Group/[ATR list id]; Encounter?organization=[organization id, NPI or TIN]."},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.resourceTrigger","extension":[` +
		`{"url":"resource","valueUri":"http://hl7.org/fhir/StructureDefinition/Encounter"},` +
		`{"url":"supportedInteraction","valueCode":"create"},{"url":"supportedInteraction","valueCode":"update"}]},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.canFilterBy","extension":[{"url":"resource","valueUri":"Encounter"},{"url":"filterParameter","valueString":"event"}]},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.canFilterBy","extension":[{"url":"resource","valueUri":"Encounter"},{"url":"filterParameter","valueString":"patient"}]},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.canFilterBy","extension":[{"url":"resource","valueUri":"Encounter"},{"url":"filterParameter","valueString":"group"}]},` +
		`{"url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.canFilterBy","extension":[{"url":"resource","valueUri":"Encounter"},{"url":"filterParameter","valueString":"organization"}]}` +
		`]}`)
}
