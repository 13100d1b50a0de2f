package main

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/libratod/libratod/librato"
)

// selfReport turns libratod's own counters and gauges into Librato
// measurements ([metrics] to_librato): counters as their increase since
// the last report, gauges as their value, labels as tags (tagged API) or
// name suffixes (legacy API). Histograms and the Go runtime's metrics are
// left out.
type selfReport struct {
	gather func() ([]*dto.MetricFamily, error)
	legacy bool
	mu     sync.Mutex
	last   map[string]float64 // counter values at the last report
}

func newSelfReport(g prometheus.Gatherer, legacy bool) *selfReport {
	return &selfReport{gather: g.Gather, legacy: legacy, last: map[string]float64{}}
}

// measurements implements flusher.Config.Extra.
func (r *selfReport) measurements() []librato.Measurement {
	mfs, err := r.gather()
	if err != nil && len(mfs) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []librato.Measurement
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "libratod_") {
			continue
		}
		base := "libratod." + strings.TrimPrefix(name, "libratod_")
		for _, m := range mf.GetMetric() {
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			default:
				continue
			}
			labels := m.GetLabel()
			sort.Slice(labels, func(i, j int) bool { return labels[i].GetName() < labels[j].GetName() })
			meas := librato.Measurement{Name: base}
			key := base
			for _, l := range labels {
				key += "," + l.GetName() + "=" + l.GetValue()
				if r.legacy {
					meas.Name += "." + l.GetValue()
				} else {
					meas.Tags = append(meas.Tags, librato.Tag{Name: l.GetName(), Value: l.GetValue()})
				}
			}
			if mf.GetType() == dto.MetricType_COUNTER {
				prev, seen := r.last[key]
				r.last[key] = v
				if !seen {
					prev = 0
				}
				v -= prev
			}
			meas.Name = librato.SanitizeName(meas.Name)
			for i := range meas.Tags {
				// An empty value stays empty: the flusher leaves such tags out.
				meas.Tags[i] = librato.Tag{Name: librato.SanitizeTagName(meas.Tags[i].Name), Value: librato.SanitizeTagValue(meas.Tags[i].Value)}
			}
			meas.Value = v
			out = append(out, meas)
		}
	}
	return out
}
