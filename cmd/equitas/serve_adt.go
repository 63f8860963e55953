package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"

	"github.com/equitas/equitas/fhir/adt"
	"github.com/equitas/equitas/fhir/adtapi"
	"github.com/equitas/equitas/fhir/hl7v2"
	"github.com/equitas/equitas/fhir/hl7v2/mllp"
	"github.com/equitas/equitas/fhir/message"
	"github.com/equitas/equitas/fhir/validate"
)

// adtOptions are the serve flags of the HL7 v2 MLLP listener, $hl7v2 and $process-message (issue 7).
type adtOptions struct {
	mllpAddr        string
	mllpMaxMessage  int
	mllpIdleTimeout time.Duration
	mllpWorkers     int
	mllpMaxConns    int
	mllpShutdown    time.Duration
}

func (o *adtOptions) flags(f *pflag.FlagSet) {
	f.StringVar(&o.mllpAddr, "mllp-addr", "", "HL7 v2 MLLP listen address, e.g. 127.0.0.1:2575 (empty: no MLLP listener)")
	f.IntVar(&o.mllpMaxMessage, "mllp-max-message", mllp.DefaultMaxMessageBytes, "largest HL7 v2 message accepted over MLLP, in bytes (larger ones get AR)")
	f.DurationVar(&o.mllpIdleTimeout, "mllp-idle-timeout", mllp.DefaultIdleTimeout, "close MLLP connections idle this long")
	f.IntVar(&o.mllpWorkers, "mllp-workers", mllp.DefaultWorkers, "HL7 v2 messages processed at once over all MLLP connections")
	f.IntVar(&o.mllpMaxConns, "mllp-max-connections", mllp.DefaultMaxConnections, "open MLLP connections at most")
	f.DurationVar(&o.mllpShutdown, "mllp-shutdown-timeout", 30*time.Second, "how long shutdown waits for MLLP messages in flight")
}

// mountADT mounts the HL7 v2 MLLP listener, $hl7v2 and $process-message (issue 7).
func mountADT(ctx context.Context, env *serveEnv, o adtOptions) (stop func(), err error) {
	// Alerts are queued in the message's own commit and handed to delivery
	// after it (a nil *alertsServer queues and notifies nothing).
	notify, queue := env.alerts.notify, env.alerts.queue
	proc := adt.New(env.st, adt.Options{Notify: notify, Queue: queue, Logger: env.log})
	v, err := validate.New()
	if err != nil {
		return nil, fmt.Errorf("adt: %w", err)
	}
	msgs := message.New(env.st, v, message.Options{Notify: notify, Queue: queue, Logger: env.log})
	adtapi.Mount(env.srv, adtapi.Config{HL7: proc, Messages: msgs, MaxER7Bytes: int64(o.mllpMaxMessage)})
	if o.mllpAddr == "" {
		return nil, nil
	}
	srv, err := mllp.NewServer(mllp.Config{
		Handler:         proc,
		Logger:          env.log,
		MaxMessageBytes: o.mllpMaxMessage,
		IdleTimeout:     o.mllpIdleTimeout,
		Workers:         o.mllpWorkers,
		MaxConnections:  o.mllpMaxConns,
		Reject:          hl7v2.RejectHead,
		Registerer:      env.srv.Registry(),
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.mllpAddr)
	if err != nil {
		return nil, fmt.Errorf("--mllp-addr: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, mllp.ErrServerClosed) {
			env.log.Error("mllp listener stopped", "error", err)
		}
	}()
	env.log.Info("serving HL7 v2 over MLLP", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), o.mllpShutdown)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			env.log.Warn("mllp shutdown: connections closed with messages unacknowledged", "error", err)
		}
		<-done
	}, nil
}
