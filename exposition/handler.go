package exposition

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/libratod/libratod/aggregator"
)

// ContentType is the media type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// help is the HELP text of each kind of metric.
func (s *Store) help(kind aggregator.Kind) string {
	switch kind {
	case aggregator.Counter:
		return "StatsD counter: running total of value/rate."
	case aggregator.Gauge:
		return "StatsD gauge: last value."
	case aggregator.Set:
		return "StatsD set: distinct members in the last period that had any."
	case aggregator.Timer:
		if s.histogram {
			return "StatsD timer: cumulative histogram."
		}
	}
	return "StatsD timer: quantiles of the last period that had values; running sum and count."
}

// typeName is the TYPE of each kind of metric.
func (s *Store) typeName(kind aggregator.Kind) string {
	switch kind {
	case aggregator.Counter:
		return "counter"
	case aggregator.Timer:
		if s.histogram {
			return "histogram"
		}
		return "summary"
	}
	return "gauge"
}

// row is one series as it was when a scrape copied it.
type row struct {
	e                 *entry // for its fixed fields only
	value, count, sum float64
	vals              []float64 // a copy of e.vals
}

// rows copies every live series, sorted by name, then labels.
func (s *Store) rows() []row {
	s.mu.Lock()
	now := s.now()
	rows := make([]row, 0, len(s.series))
	width := len(s.pctIn)
	if s.histogram {
		width = len(s.buckets)
	}
	var arena []float64
	for _, e := range s.series {
		if s.expire > 0 && now.Sub(e.seen) >= s.expire {
			continue // expired since the last period; removed at the next
		}
		r := row{e: e, value: e.value, count: e.count, sum: e.sum}
		if e.kind == aggregator.Timer && width > 0 {
			if len(arena) < width {
				arena = make([]float64, width*max(256, len(s.series)/8))
			}
			r.vals = arena[:width:width]
			copy(r.vals, e.vals)
			arena = arena[width:]
		}
		rows = append(rows, r)
	}
	s.mu.Unlock()
	slices.SortFunc(rows, func(a, b row) int {
		if c := strings.Compare(a.e.name, b.e.name); c != 0 {
			return c
		}
		return strings.Compare(a.e.labels, b.e.labels)
	})
	return rows
}

// ServeHTTP writes every series in the text exposition format 0.0.4,
// gzipped when the request accepts it.
func (s *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rows := s.rows()
	w.Header().Set("Content-Type", ContentType)
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz := gzip.NewWriter(w)
		defer gz.Close() // a failed write is the client's problem
		out = gz
	}
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	s.write(bw, rows)
	_ = bw.Flush() // a failed write is the client's problem
}

// write writes rows in the text format.
func (s *Store) write(w *bufio.Writer, rows []row) {
	var buf []byte
	line := func(name, suffix, labels, extra string, v float64) {
		buf = append(buf[:0], name...)
		buf = append(buf, suffix...)
		if labels != "" || extra != "" {
			buf = append(buf, '{')
			buf = append(buf, labels...)
			if labels != "" && extra != "" {
				buf = append(buf, ',')
			}
			buf = append(buf, extra...)
			buf = append(buf, '}')
		}
		buf = append(buf, ' ')
		buf = appendFloat(buf, v)
		buf = append(buf, '\n')
		_, _ = w.Write(buf) // bufio keeps the first error
	}
	family := ""
	for i := range rows {
		r := &rows[i]
		e := r.e
		if e.name != family || i == 0 {
			family = e.name
			for _, part := range [...]string{"# HELP ", e.name, " ", s.help(e.kind), "\n# TYPE ", e.name, " ", s.typeName(e.kind), "\n"} {
				_, _ = w.WriteString(part)
			}
		}
		switch {
		case e.kind != aggregator.Timer:
			line(e.name, "", e.labels, "", r.value)
		case s.histogram:
			for b, text := range s.leText[:len(s.buckets)] {
				line(e.name, "_bucket", e.labels, text, r.vals[b])
			}
			line(e.name, "_bucket", e.labels, s.leText[len(s.buckets)], r.count)
			line(e.name, "_sum", e.labels, "", r.sum)
			line(e.name, "_count", e.labels, "", r.count)
		default:
			for q, text := range s.qText {
				line(e.name, "", e.labels, text, r.vals[q])
			}
			line(e.name, "_sum", e.labels, "", r.sum)
			line(e.name, "_count", e.labels, "", r.count)
		}
	}
}

// acceptsGzip reports whether an Accept-Encoding header value accepts gzip.
func acceptsGzip(header string) bool {
	for item := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(item, ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
