package main

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/flusher"
	"github.com/libratod/libratod/librato"
	"github.com/libratod/libratod/listener"
	"github.com/libratod/libratod/parser"
)

// maxIdleWork bounds the idle scratch spaces kept for Handle: enough for
// every UDP reader and many TCP connections at once.
const maxIdleWork = 64

// maxLoggedLine is how much of a bad line a log entry quotes.
const maxLoggedLine = 200

// ingest is the listener's Handler: it splits packets into lines, parses
// them and adds the metrics to the aggregator, counting what it sees.
type ingest struct {
	agg *aggregator.Aggregator
	// free holds idle scratch space for Handle, last in first out, so that
	// a reader that comes back mostly gets the Writer it had, whose key
	// cache is warm in its core's memory cache. Unlike a sync.Pool it is
	// not emptied at every garbage collection.
	freeMu sync.Mutex
	free   []*ingestWork

	packets     [listener.Unixgram + 1]prometheus.Counter // by listener.Transport
	lines       [listener.Unixgram + 1]prometheus.Counter
	invalid     [256]prometheus.Counter // by parser.Error
	unsupported [256]prometheus.Counter // events and service checks, by parser.Error
	maxSeries   prometheus.Counter
	overflow    prometheus.Counter // metrics whose weighted value would overflow their series
	belowLevel  prometheus.Counter
	badName     prometheus.Counter // metrics whose name has nothing Librato accepts
	// The tags the aggregator left out: not kept (legacy API), invalid
	// after sanitizing, past the most a series keeps. Nil counts nothing.
	tagsNotKept, tagsInvalid, tagsTooMany prometheus.Counter
	// minLevel drops lines whose level tag is below it; levelOff keeps all.
	minLevel atomic.Int32
	// syntaxes holds the parser.TagSyntaxes read (listen.tag_syntaxes).
	syntaxes atomic.Uint32
	// events turns DogStatsD events into annotations; nil ignores them.
	events *eventSink
	// period is the aggregation period and now the clock, by which lines
	// whose "|T" timestamp lies outside the open period are counted in
	// tsLate and tsFuture; period 0 counts none.
	period           time.Duration
	now              func() time.Time
	tsLate, tsFuture prometheus.Counter

	badLog *rateLog
}

type ingestWork struct {
	w  *aggregator.Writer
	ms []parser.Metric
}

// ingestMetrics are the counters ingest updates; newIngestMetrics registers them.
type ingestMetrics struct {
	packets, lines, invalid, unsupported, timestamps *prometheus.CounterVec
}

func newIngestMetrics(reg prometheus.Registerer) (*ingestMetrics, error) {
	m := &ingestMetrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_packets_received_total",
			Help: "Datagrams (UDP, unixgram) or chunks of complete lines (TCP) received.",
		}, []string{"transport"}),
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_lines_received_total",
			Help: "Non-empty StatsD lines received, valid or not.",
		}, []string{"transport"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_lines_invalid_total",
			Help: "Lines dropped because they could not be parsed, by reason.",
		}, []string{"reason"}),
		unsupported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_lines_unsupported_total",
			Help: "Well-formed lines of a kind libratod does not handle yet (DogStatsD events, service checks).",
		}, []string{"kind"}),
		timestamps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "libratod_lines_timestamp_outside_period_total",
			Help: "Lines whose DogStatsD |T timestamp is before (late) or after (future) the open period; they are aggregated into the open period all the same.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.packets, m.lines, m.invalid, m.unsupported, m.timestamps} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func newIngest(agg *aggregator.Aggregator, m *ingestMetrics, dropped func(reason string) prometheus.Counter, log zerolog.Logger) *ingest {
	in := &ingest{
		agg:        agg,
		maxSeries:  dropped("max_series"),
		overflow:   dropped("overflow"),
		badName:    dropped("bad_name"),
		belowLevel: dropped("below_min_level"),
		badLog:     &rateLog{every: time.Second, log: log},
		now:        time.Now,
		tsLate:     m.timestamps.WithLabelValues("late"),
		tsFuture:   m.timestamps.WithLabelValues("future"),
	}
	in.minLevel.Store(levelOff)
	in.syntaxes.Store(uint32(parser.AllTagSyntaxes))
	in.free = make([]*ingestWork, 0, maxIdleWork)
	for _, t := range []listener.Transport{listener.UDP, listener.TCP, listener.Unixgram} {
		in.packets[t] = m.packets.WithLabelValues(t.String())
		in.lines[t] = m.lines.WithLabelValues(t.String())
	}
	for _, e := range parser.Reasons() {
		switch e {
		case parser.ErrEvent, parser.ErrServiceCheck:
			in.unsupported[e] = m.unsupported.WithLabelValues(e.Reason())
		default:
			in.invalid[e] = m.invalid.WithLabelValues(e.Reason())
		}
	}
	in.invalid[0] = m.invalid.WithLabelValues("unknown")
	return in
}

// Handle implements listener.Handler.
func (in *ingest) Handle(t listener.Transport, p []byte) {
	var wk *ingestWork
	in.freeMu.Lock()
	if n := len(in.free); n > 0 {
		wk, in.free = in.free[n-1], in.free[:n-1]
	}
	in.freeMu.Unlock()
	if wk == nil {
		wk = &ingestWork{w: in.agg.NewWriter(), ms: make([]parser.Metric, 0, 16)}
	}
	lines := 0
	syntaxes := parser.TagSyntaxes(in.syntaxes.Load())
	for len(p) > 0 {
		var line []byte
		line, p = parser.NextLine(p)
		if len(line) == 0 {
			continue
		}
		ms, err := parser.ParseWith(line, wk.ms[:0], syntaxes)
		wk.ms = ms
		if len(ms) == 0 && err == nil {
			continue // blank
		}
		lines++
		if err != nil {
			in.reject(line, err)
			continue
		}
		if ms[0].Timestamp != 0 && in.period > 0 {
			in.checkTimestamp(ms[0].Timestamp)
		}
		for i := range ms {
			if min := in.minLevel.Load(); min != levelOff && lineLevel(&ms[i]) < min {
				in.belowLevel.Inc()
				continue
			}
			if err := wk.w.Add(&ms[i]); err != nil {
				if errors.Is(err, aggregator.ErrMaxSeries) {
					in.maxSeries.Inc()
					in.badLog.log0("series limit reached; new series are dropped", line, "max_series")
					continue
				}
				if errors.Is(err, aggregator.ErrBadName) {
					in.badName.Inc()
					in.badLog.log0("metric dropped: no letter or digit in its name", line, "bad_name")
					continue
				}
				if errors.Is(err, aggregator.ErrOverflow) {
					in.overflow.Inc()
					in.badLog.log0("metric dropped: its weighted value would overflow", line, "overflow")
					continue
				}
				in.badLog.log0("metric refused", line, err.Error())
			}
		}
	}
	if d := wk.w.DroppedTags(); d != (aggregator.DroppedTags{}) && in.tagsNotKept != nil {
		in.tagsNotKept.Add(float64(d.NotKept))
		in.tagsInvalid.Add(float64(d.Invalid))
		in.tagsTooMany.Add(float64(d.TooMany))
	}
	if int(t) < len(in.packets) && in.packets[t] != nil {
		in.packets[t].Inc()
		in.lines[t].Add(float64(lines))
	}
	in.freeMu.Lock()
	if len(in.free) < maxIdleWork { // else more Handles ran at once than are kept idle
		in.free = append(in.free, wk)
	}
	in.freeMu.Unlock()
}

// checkTimestamp counts a line whose "|T" timestamp (unix seconds) is
// outside the open period. The line is aggregated into the open period
// all the same: sending it with the time of its own period would give
// Librato a second point for a series and time that may already hold one,
// and Librato keeps one of them, losing the other's units.
func (in *ingest) checkTimestamp(ts int64) {
	start := in.now().Truncate(in.period).Unix()
	switch {
	case ts < start:
		in.tsLate.Inc()
	case ts >= start+int64(in.period/time.Second):
		in.tsFuture.Inc()
	}
}

func (in *ingest) reject(line []byte, err error) {
	var pe parser.Error
	if !errors.As(err, &pe) {
		pe = 0
	}
	switch pe {
	case parser.ErrEvent:
		if in.events != nil {
			if err := in.events.add(line); err != nil {
				in.invalid[parser.ErrBadEvent].Inc()
				in.badLog.log0("invalid event dropped", line, parser.ErrBadEvent.Reason())
			}
			return
		}
	case parser.ErrServiceCheck:
		if _, err := parser.ParseServiceCheck(line); err != nil {
			in.invalid[parser.ErrBadServiceCheck].Inc()
			in.badLog.log0("invalid service check dropped", line, parser.ErrBadServiceCheck.Reason())
			return
		}
	}
	if c := in.unsupported[pe]; c != nil {
		c.Inc()
		return
	}
	if c := in.invalid[pe]; c != nil {
		c.Inc()
	} else {
		in.invalid[0].Inc()
	}
	in.badLog.log0("invalid line dropped", line, pe.Reason())
}

// rateLog logs at most one entry per period and says how many it held back.
type rateLog struct {
	every      time.Duration
	log        zerolog.Logger
	last       atomic.Int64 // unix nanoseconds of the last entry
	suppressed atomic.Int64
}

func (r *rateLog) log0(msg string, line []byte, reason string) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(r.every) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return
	}
	cut := line
	if len(cut) > maxLoggedLine {
		cut = cut[:maxLoggedLine]
	}
	r.log.Warn().Str("reason", reason).Bytes("line", cut).Bool("cut", len(cut) < len(line)).
		Int64("suppressed", r.suppressed.Swap(0)).Msg(msg)
}

// The levels a line's "level" tag may name, lowest first.
const (
	levelOff   = -1 // min_level unset: keep every line
	levelNone  = 1 << 20
	levelDebug = iota
	levelInfo
	levelWarning
	levelError
	levelCritical
)

// parseLevel returns the level a name means, or levelNone.
func parseLevel(b []byte) int32 {
	switch string(b) {
	case "debug":
		return levelDebug
	case "info":
		return levelInfo
	case "warning", "warn":
		return levelWarning
	case "error":
		return levelError
	case "critical", "crit":
		return levelCritical
	}
	return levelNone
}

// lineLevel returns the level of a metric's "level" tag (DogStatsD
// "level:x", or "level=x" among the name's tags); a metric without one, or
// with an unknown one, is above every level and so always kept.
func lineLevel(m *parser.Metric) int32 {
	nameSep := m.NameTagSep
	if nameSep == 0 {
		nameSep = ','
	}
	lvl := int32(levelNone)
	for _, src := range [2]struct {
		raw     []byte
		sep, kv byte
	}{{m.NameTags, nameSep, '='}, {m.Tags, ',', ':'}} {
		raw := src.raw
		for len(raw) > 0 {
			item := raw
			if i := bytes.IndexByte(raw, src.sep); i >= 0 {
				item, raw = raw[:i], raw[i+1:]
			} else {
				raw = nil
			}
			if len(item) > 0 && item[0] == '#' {
				item = item[1:] // "|#a:1,#level:x", as the aggregator reads it
			}
			if len(item) > 6 && string(item[:5]) == "level" && item[5] == src.kv {
				lvl = parseLevel(item[6:]) // the last one wins, as for every tag
			}
		}
	}
	return lvl
}

// setTagSyntaxes sets listen.tag_syntaxes, names the config has
// validated; an unknown name keeps the syntaxes read so far.
func (in *ingest) setTagSyntaxes(names []string) {
	if s, err := parser.ParseTagSyntaxes(names); err == nil {
		in.syntaxes.Store(uint32(s))
	}
}

// setMinLevel sets aggregate.min_level: "" keeps every line.
func (in *ingest) setMinLevel(name string) {
	lvl := int32(levelOff)
	if name != "" {
		lvl = parseLevel([]byte(name))
	}
	in.minLevel.Store(lvl)
}

// eventSink maps DogStatsD events to Librato annotations and queues them
// for the next flush.
type eventSink struct {
	stream  string // default stream
	host    string // source when the event names no host
	queue   *flusher.Annotations
	dropped prometheus.Counter
	now     func() time.Time
}

// add parses an event line and queues its annotation. A full queue drops
// it, counted.
func (e *eventSink) add(line []byte) error {
	ev, err := parser.ParseEvent(line)
	if err != nil {
		return err
	}
	a := librato.Annotation{
		Stream:    e.stream,
		Title:     string(parser.UnescapeEventText(nil, ev.Title)),
		Source:    librato.SanitizeSource(e.host),
		StartTime: ev.Timestamp,
	}
	if len(ev.Host) > 0 {
		a.Source = librato.SanitizeSource(string(ev.Host))
	}
	if a.StartTime == 0 {
		a.StartTime = e.now().Unix()
	}
	var desc strings.Builder
	desc.Write(parser.UnescapeEventText(nil, ev.Text))
	field := func(name string, v []byte) {
		if len(v) == 0 {
			return
		}
		if desc.Len() > 0 {
			desc.WriteByte('\n')
		}
		desc.WriteString(name)
		desc.WriteString(": ")
		desc.Write(v)
	}
	field("alert_type", ev.AlertType)
	field("priority", ev.Priority)
	field("source_type", ev.SourceType)
	field("aggregation_key", ev.AggregationKey)
	var tags []string
	for item := range strings.SplitSeq(string(ev.Tags), ",") {
		if k, v, ok := strings.Cut(item, ":"); ok && k == "stream" && v != "" {
			a.Stream = v
			continue
		}
		if item != "" {
			tags = append(tags, item)
		}
	}
	field("tags", []byte(strings.Join(tags, ", ")))
	a.Description = desc.String()
	if !e.queue.Add(a) {
		e.dropped.Inc()
	}
	return nil
}
