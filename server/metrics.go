package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhook outcomes, the values of the "outcome" label of
// relay_git_sync_webhooks_total.
const (
	OutcomeAccepted     = "accepted"     // committed by the EventSink, 200
	OutcomeDuplicate    = "duplicate"    // same non-empty event id accepted before, 200
	OutcomeUnauthorized = "unauthorized" // 401
	OutcomeBadRequest   = "bad_request"  // 400: not UTF-8 JSON, invalid payload, unreadable body
	OutcomeTooLarge     = "too_large"    // 413
	OutcomeError        = "error"        // 500: the EventSink failed
	OutcomeUnavailable  = "unavailable"  // 503: no space left to store the event
)

var webhookOutcomes = []string{
	OutcomeAccepted, OutcomeDuplicate, OutcomeUnauthorized,
	OutcomeBadRequest, OutcomeTooLarge, OutcomeError, OutcomeUnavailable,
}

// Metrics are the Prometheus metrics of `relay-git-sync serve`. NewMetrics
// creates and registers all of them; the HTTP layer updates the webhook and
// request metrics itself, and the rest of the program updates the others
// through the exported fields (all are safe for concurrent use):
//
//   - QueueDepth: the durable queue (internal/store) sets it to the number of
//     accepted events not yet processed by ingest, after every enqueue and
//     dequeue.
//   - SnapshotLatency: ingest observes, for every snapshot it commits, the
//     seconds from the receive time of the oldest event the snapshot covers
//     to the commit (coalescing delay + fetching + storing).
//   - Snapshots: ingest increments it for every committed snapshot.
//   - RelayFetchErrors: ingest increments it for every failed request to the
//     Relay Server (after the client's own retries).
//   - Reconciles: the reconcile sweep increments it once per sweep, with
//     result "ok" or "error".
//   - SnapshotsHeld: serve increments it for every snapshot the
//     mass-deletion guard holds (relay_git_sync_held_folders, registered
//     with Config.Held, says how many folders are held now).
//
// All names start with relay_git_sync_. Go runtime and process collectors
// are not included: register collectors.NewGoCollector() and
// collectors.NewProcessCollector(…) on the same registry if wanted.
type Metrics struct {
	// Webhooks counts POST /webhooks answers by outcome (Outcome* constants):
	// relay_git_sync_webhooks_total{outcome}.
	Webhooks *prometheus.CounterVec
	// WebhookAckSeconds is the time from receiving a webhook to answering
	// it, including the durable enqueue: relay_git_sync_webhook_ack_seconds.
	WebhookAckSeconds prometheus.Histogram
	// HTTPRequests counts every HTTP answer by route template (gin's full
	// path, "unmatched" for unknown routes) and status code:
	// relay_git_sync_http_requests_total{route,code}.
	HTTPRequests *prometheus.CounterVec

	// QueueDepth is the number of accepted events not yet processed:
	// relay_git_sync_queue_depth.
	QueueDepth prometheus.Gauge
	// SnapshotLatency: relay_git_sync_snapshot_latency_seconds.
	SnapshotLatency prometheus.Histogram
	// Snapshots: relay_git_sync_snapshots_total.
	Snapshots prometheus.Counter
	// RelayFetchErrors: relay_git_sync_relay_fetch_errors_total.
	RelayFetchErrors prometheus.Counter
	// Reconciles counts reconcile sweeps by result ("ok" or "error"):
	// relay_git_sync_reconciles_total{result}.
	Reconciles *prometheus.CounterVec
	// SnapshotsHeld: relay_git_sync_snapshots_held_total.
	SnapshotsHeld prometheus.Counter
	// LeasesHeld is the number of folder leases this instance holds on a
	// shared NATS store: relay_git_sync_leases_held (0 on Badger).
	LeasesHeld prometheus.Gauge
	// LeaseChanges counts leases taken, lost and released:
	// relay_git_sync_lease_changes_total{event}.
	LeaseChanges *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg. It fails if one
// of them is already registered there (for example NewMetrics called twice
// with the same registry).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_git_sync_webhooks_total",
			Help: "Webhooks answered on POST /webhooks, by outcome (accepted, duplicate, unauthorized, bad_request, too_large, error).",
		}, []string{"outcome"}),
		WebhookAckSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "relay_git_sync_webhook_ack_seconds",
			Help:    "Seconds from receiving a webhook to answering it, including the durable enqueue.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_git_sync_http_requests_total",
			Help: "HTTP requests answered, by route template and status code.",
		}, []string{"route", "code"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_git_sync_queue_depth",
			Help: "Accepted webhook events not yet processed by ingest.",
		}),
		SnapshotLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "relay_git_sync_snapshot_latency_seconds",
			Help:    "Seconds from receiving the oldest event a snapshot covers to committing the snapshot.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600},
		}),
		Snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_git_sync_snapshots_total",
			Help: "Snapshots committed.",
		}),
		RelayFetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_git_sync_relay_fetch_errors_total",
			Help: "Failed requests to the Relay Server (after retries).",
		}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_git_sync_reconciles_total",
			Help: "Reconcile sweeps, by result (ok, error).",
		}, []string{"result"}),
		SnapshotsHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relay_git_sync_snapshots_held_total",
			Help: "Snapshots held back from the connectors by the mass-deletion guard (--hold-deletions).",
		}),
		LeasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relay_git_sync_leases_held",
			Help: "Folder leases this instance holds on a shared NATS store (it syncs and pushes those folders).",
		}),
		LeaseChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relay_git_sync_lease_changes_total",
			Help: "Folder leases taken, lost (renewal failed: another instance has the folder) and released (graceful stop).",
		}, []string{"event"}),
	}
	for _, c := range []prometheus.Collector{
		m.Webhooks, m.WebhookAckSeconds, m.HTTPRequests, m.QueueDepth,
		m.SnapshotLatency, m.Snapshots, m.RelayFetchErrors, m.Reconciles, m.SnapshotsHeld,
		m.LeasesHeld, m.LeaseChanges,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: registering metrics: %w", err)
		}
	}
	// Every outcome and result is exported from the start (as 0), so rates
	// and alerts work before the first event of a kind.
	for _, o := range webhookOutcomes {
		m.Webhooks.WithLabelValues(o)
	}
	m.Reconciles.WithLabelValues("ok")
	m.Reconciles.WithLabelValues("error")
	for _, e := range []string{"taken", "lost", "released"} {
		m.LeaseChanges.WithLabelValues(e)
	}
	return m, nil
}

// registerDiskMetrics registers gauges read from space at every scrape:
// relay_git_sync_data_dir_free_bytes, relay_git_sync_data_dir_reserve_bytes
// and relay_git_sync_data_dir_full (1 while writes are refused).
func registerDiskMetrics(reg prometheus.Registerer, space func() (free, reserve uint64, err error)) error {
	read := func(pick func(free, reserve uint64, err error) float64) func() float64 {
		return func() float64 { return pick(space()) }
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "relay_git_sync_data_dir_free_bytes",
			Help: "Bytes free on the data dir's file system.",
		}, read(func(free, _ uint64, _ error) float64 { return float64(free) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "relay_git_sync_data_dir_reserve_bytes",
			Help: "Bytes the store keeps free for the database's own writes; writes are refused below it.",
		}, read(func(_, reserve uint64, _ error) float64 { return float64(reserve) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "relay_git_sync_data_dir_full",
			Help: "1 while writes (and webhooks) are refused for lack of space on the data dir, else 0.",
		}, read(func(_, _ uint64, err error) float64 {
			if err != nil {
				return 1
			}
			return 0
		})),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("server: registering data dir metrics: %w", err)
		}
	}
	return nil
}
