// Package metrics exports zdm's Prometheus metrics on its own registry.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds zdm's collectors.
type Metrics struct {
	reg        *prometheus.Registry
	lag        *prometheus.GaugeVec
	migrations *prometheus.GaugeVec
	refusals   *prometheus.CounterVec
	relayLost  *prometheus.CounterVec
	sentBack   prometheus.Counter
}

// Progress is a running migration's copy progress.
type Progress struct{ Copied, Total int64 }

// New registers the collectors. states is called at every scrape and
// returns the number of migrations in each state; every state in allStates
// is exported, 0 when no migration is in it. progress, also called at
// every scrape, returns the copy progress of each running migration.
func New(allStates []string, states func() map[string]int, progress func() map[string]Progress) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zdm_sync_lag_seconds",
			Help: "Sync lag of a migration: now minus the source commit time of the oldest write not yet applied on the target (0 when none is pending).",
		}, []string{"migration"}),
		migrations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zdm_migrations",
			Help: "Migrations by state.",
		}, []string{"state"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdm_proxy_refusals_total",
			Help: "Calls the proxies refused (an operation a running migration forbids, a write it cannot take), by method.",
		}, []string{"method"}),
		relayLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zdm_proxy_relay_lost_total",
			Help: "Calls relayed to the driving zdmd that died before answering: reads, deletes and upserts of client-given keys sent again to the next (outcome resent), other writes whose client was told UNAVAILABLE (outcome failed).",
		}, []string{"outcome"}),
		sentBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zdm_proxy_relay_sent_back_total",
			Help: "Calls this zdmd relayed that came back unsent from an instance that did not drive (this one's view of who drives was behind); each was relayed again to the instance the lease named.",
		}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m.lag, m.refusals, m.relayLost, m.sentBack,
		&stateCollector{m: m, all: allStates, states: states}, &progressCollector{progress: progress})
	return m
}

// ObserveLag sets a migration's lag gauge.
func (m *Metrics) ObserveLag(_ context.Context, migrationID string, _ time.Time, seconds float64) {
	m.lag.WithLabelValues(migrationID).Set(seconds)
}

// Refused counts a call of method (its short name) a proxy refused.
func (m *Metrics) Refused(method string) { m.refusals.WithLabelValues(method).Inc() }

// RelayLost counts a relayed call the driving instance died with: a read
// sent again (resent), or a write failed.
func (m *Metrics) RelayLost(resent bool) {
	outcome := "failed"
	if resent {
		outcome = "resent"
	}
	m.relayLost.WithLabelValues(outcome).Inc()
}

// RelaySentBack counts a relayed call sent back unsent by an instance that
// did not drive.
func (m *Metrics) RelaySentBack() { m.sentBack.Inc() }

// KeyWaits is how many writes the proxy held back for the order of writes
// of the same keys, and how long they waited in all.
type KeyWaits struct {
	Writes  uint64
	Seconds float64
}

// RegisterKeyWaits exports waits, read at every scrape.
func (m *Metrics) RegisterKeyWaits(waits func() KeyWaits) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "zdm_proxy_key_waits_total",
			Help: "Writes the proxy held back because a write in flight may touch the same keys (or DDL, or a delete by expression, on their collection).",
		}, func() float64 { return float64(waits().Writes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "zdm_proxy_key_wait_seconds_total",
			Help: "Time those writes waited, in all.",
		}, func() float64 { return waits().Seconds }))
}

// Registry lets other parts register their collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// stateCollector refreshes the migrations-by-state gauge at scrape time.
type stateCollector struct {
	m      *Metrics
	all    []string
	states func() map[string]int
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { c.m.migrations.Describe(ch) }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.migrations.Reset()
	for _, state := range c.all {
		c.m.migrations.WithLabelValues(state).Set(0)
	}
	for state, n := range c.states() {
		c.m.migrations.WithLabelValues(state).Set(float64(n))
	}
	c.m.migrations.Collect(ch)
}

var (
	copiedDesc = prometheus.NewDesc("zdm_copy_rows_copied", "Rows a running migration has copied so far.", []string{"migration"}, nil)
	totalDesc  = prometheus.NewDesc("zdm_copy_rows_total", "Rows a running migration has to copy, as its plan counted them.", []string{"migration"}, nil)
)

// progressCollector reads copy progress at scrape time, so a finished
// migration's series disappear with it.
type progressCollector struct{ progress func() map[string]Progress }

func (c *progressCollector) Describe(ch chan<- *prometheus.Desc) { ch <- copiedDesc; ch <- totalDesc }

func (c *progressCollector) Collect(ch chan<- prometheus.Metric) {
	for id, p := range c.progress() {
		ch <- prometheus.MustNewConstMetric(copiedDesc, prometheus.GaugeValue, float64(p.Copied), id)
		ch <- prometheus.MustNewConstMetric(totalDesc, prometheus.GaugeValue, float64(p.Total), id)
	}
}
