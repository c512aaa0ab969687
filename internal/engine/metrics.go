package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-migrate/ferry/internal/model"
	"github.com/ferry-migrate/ferry/internal/store"
)

// Collector exposes migration statistics from the store, so every node reports the same totals.
type Collector struct {
	st                                    *store.Store
	items, passes, objects, bytes, errors *prometheus.Desc
}

// NewCollector returns a Prometheus collector over the store.
func NewCollector(st *store.Store) *Collector {
	return &Collector{st: st,
		items:   prometheus.NewDesc("ferry_items", "Items by status.", []string{"status"}, nil),
		passes:  prometheus.NewDesc("ferry_passes_total", "Passes started.", nil, nil),
		objects: prometheus.NewDesc("ferry_objects_copied_total", "Objects copied.", nil, nil),
		bytes:   prometheus.NewDesc("ferry_bytes_copied_total", "Bytes copied.", nil, nil),
		errors:  prometheus.NewDesc("ferry_object_errors_total", "Objects that failed to copy.", nil, nil),
	}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.items, c.passes, c.objects, c.bytes, c.errors} {
		ch <- d
	}
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.st.StatusCounts(ctx, "")
	if err == nil {
		for _, s := range model.Statuses {
			ch <- prometheus.MustNewConstMetric(c.items, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
	}
	total, passes, err := c.st.Totals(ctx)
	if err == nil {
		ch <- prometheus.MustNewConstMetric(c.passes, prometheus.CounterValue, float64(passes))
		ch <- prometheus.MustNewConstMetric(c.objects, prometheus.CounterValue, float64(total.Objects))
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(total.Bytes))
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(total.Errors))
	}
}
