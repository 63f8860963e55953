package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/adtreport"
	"github.com/equitas/equitas/fhir/rest"
	"github.com/equitas/equitas/fhir/subscription"
)

// alertsOptions are the serve flags of ADT alerting: subscriptions and
// the daily $adt-report (issue 7).
type alertsOptions struct {
	baseURL     string
	maxAttempts int
	backoff     time.Duration
	maxBackoff  time.Duration
	workers     int
	timeout     time.Duration
	lookback    int
	allowHosts  []string
}

func (o *alertsOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.baseURL, "alerts-base-url", "", "FHIR base URL written in notification references (default: --base-url, else http://ADDR/fhir)")
	f.IntVar(&o.maxAttempts, "alerts-max-attempts", 6, "delivery attempts of one notification before it becomes a dead letter")
	f.DurationVar(&o.backoff, "alerts-backoff", 2*time.Second, "delay before the first redelivery; doubles with every failed attempt")
	f.DurationVar(&o.maxBackoff, "alerts-max-backoff", 10*time.Minute, "longest delay between redeliveries")
	f.IntVar(&o.workers, "alerts-workers", 4, "concurrent notification deliveries")
	f.DurationVar(&o.timeout, "alerts-timeout", 10*time.Second, "timeout of one notification request")
	f.StringSliceVar(&o.allowHosts, "alerts-allow-hosts", nil, "hosts (host or host:port) Subscription endpoints may name (default: any)")
	f.IntVar(&o.lookback, "adt-report-lookback", 30, "days before the report date whose discharges $adt-report tracks for follow-up")
}

// alertsServer routes ADT events to the providers attributed to the patient.
type alertsServer struct {
	env  *serveEnv
	subs *subscription.Manager
}

// mountAlerts mounts subscription delivery and $adt-report.
func mountAlerts(ctx context.Context, env *serveEnv, o alertsOptions) (*alertsServer, func(), error) {
	base := o.baseURL
	if base == "" {
		base = env.baseURL
	}
	if base == "" {
		base = "http://" + env.addr + rest.BasePath
	}
	subs := subscription.New(env.st, subscription.Options{
		BaseURL: base, MaxAttempts: o.maxAttempts, Backoff: o.backoff, MaxBackoff: o.maxBackoff,
		Workers: o.workers, Timeout: o.timeout, Logger: env.log, Registry: env.srv.Registry(),
		AllowEndpoint: allowEndpoint(o.allowHosts),
	})
	if err := subs.PublishTopic(ctx); err != nil {
		return nil, nil, fmt.Errorf("alerts: %w", err)
	}
	if err := subs.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("alerts: %w", err)
	}
	subs.Mount(env.srv)
	adtreport.NewHandler(env.st, env.srv.Base, adtreport.Options{Lookback: o.lookback}, env.log).Mount(env.srv)
	a := &alertsServer{env: env, subs: subs}
	return a, subs.Stop, nil
}

// queue is adt.Options.Queue: the notification jobs of an ADT event, to be
// committed with the message itself.
func (a *alertsServer) queue(ctx context.Context, ev adt.Event) (map[string][]byte, error) {
	if a == nil || a.subs == nil {
		return nil, nil
	}
	return a.subs.Queue(ctx, event(ev))
}

// notify is adt.Options.Notify: it queues the notifications of one applied
// ADT event. A failure is logged; the message itself stays applied.
func (a *alertsServer) notify(ctx context.Context, ev adt.Event) {
	if a == nil || a.subs == nil {
		return
	}
	err := a.subs.Notify(ctx, event(ev))
	if err != nil {
		a.env.log.ErrorContext(ctx, "alerts: queue notifications", "trigger", ev.Trigger, "patient", ev.PatientID, "error", err)
	}
}

func event(ev adt.Event) subscription.Event {
	return subscription.Event{Kind: ev.Kind, Trigger: ev.Trigger, PatientID: ev.PatientID, EncounterID: ev.EncounterID,
		MessageHeaderID: ev.MessageHeaderID, At: ev.At}
}

// allowEndpoint restricts Subscription endpoints to hosts (host or
// host:port); nil when any host is allowed.
func allowEndpoint(hosts []string) func(*url.URL) error {
	if len(hosts) == 0 {
		return nil
	}
	return hostIn(hosts, "--alerts-allow-hosts")
}
