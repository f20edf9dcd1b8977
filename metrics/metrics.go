// Package metrics exports zdm's Prometheus metrics on its own registry.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds zdm's collectors.
type Metrics struct {
	reg        *prometheus.Registry
	lag        *prometheus.GaugeVec
	migrations *prometheus.GaugeVec
}

// New registers the collectors. states is called at every scrape and
// returns the number of migrations in each state; every state in allStates
// is exported, 0 when no migration is in it.
func New(allStates []string, states func() map[string]int) *Metrics {
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
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), m.lag,
		&stateCollector{m: m, all: allStates, states: states})
	return m
}

// ObserveLag sets a migration's lag gauge.
func (m *Metrics) ObserveLag(migrationID string, seconds float64) {
	m.lag.WithLabelValues(migrationID).Set(seconds)
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
