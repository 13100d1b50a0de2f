package exposition

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/internal/fixture"
)

// FuzzExposition checks that whatever names, tags and values the lines
// hold, the exposition parses as the text format with legacy names, for
// summaries and histograms alike.
func FuzzExposition(f *testing.F) {
	for _, seed := range []string{
		"hits:1|c", "a.b-c:1|c|#x.y:1,x_y:2,__z:3,bare", "lat#quantile=a,le=b:1:2:3|ms|@0.5",
		"9x:5|g|#k:\"q\\\n", "u:\xff\xfe|s|#\xff:\xfe", "ü:1|h", "t_sum:1|ms\nt:1|ms",
	} {
		f.Add([]byte(seed), []byte("c:1|c"))
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		for _, cfg := range []Config{
			{Percentiles: []float64{50, 100}, Labels: map[string]string{"le": "x", "quantile": "y", "9": "z"}},
			{Histogram: true, TimerUnitSeconds: true, Prefix: "p", MaxSeries: 3},
		} {
			s := New(cfg)
			for i, lines := range [][]byte{first, second} {
				agg := aggregator.New(aggregator.Config{MaxTimerSamples: 2})
				fixture.FeedPacket(agg, lines)
				s.ObservePeriod(t0.Add(time.Duration(i)*time.Second), agg.Snapshot())
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			p := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := p.TextToMetricFamilies(rec.Body); err != nil {
				t.Fatalf("exposition of %q, %q does not parse: %v\n%s", first, second, err, rec.Body.String())
			}
		}
	})
}
