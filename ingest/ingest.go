// Package ingest is the stage between the listener and the aggregator: its
// Handler splits what the listener read into lines, parses them, drops the
// lines below the minimum level, counts what it sees and adds the metrics to
// the aggregator. DogStatsD service checks become gauges (see
// Config.ServiceChecks); events go to an EventSink, which knows nothing of
// where they end up.
package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/listener"
	"github.com/libratod/libratod/parser"
)

// maxIdleWork bounds the idle scratch spaces kept for Handle: enough for
// every UDP reader and many TCP connections at once.
const maxIdleWork = 64

// Aggregator is where the Handler adds the metrics it parses; it is
// implemented by *aggregator.Aggregator.
type Aggregator interface {
	// NewWriter returns a Writer for one goroutine at a time.
	NewWriter() *aggregator.Writer
}

// EventSink receives the DogStatsD events the Handler reads. Event is called
// from the listener's goroutines, several at once, and must copy what it
// keeps: the event's slices point into the listener's buffer.
type EventSink interface {
	Event(ev *parser.Event)
}

// Config is what New needs.
type Config struct {
	// Aggregator receives the metrics; required.
	Aggregator Aggregator
	// Registerer registers the Handler's counters (packets, lines, invalid
	// and unsupported lines, timestamps outside the period); nil registers
	// them nowhere, and they still count.
	Registerer prometheus.Registerer
	// Dropped returns the counter of metrics dropped for a reason
	// ("max_series", "overflow", "bad_name", "below_min_level"); nil counts
	// none.
	Dropped func(reason string) prometheus.Counter
	// TagsDropped returns the counter of tags the aggregator left out for a
	// reason ("legacy_api", "invalid", "too_many"); nil counts none.
	TagsDropped func(reason string) prometheus.Counter
	// Logger receives the bad lines, at most one entry a second.
	Logger zerolog.Logger
	// TagSyntaxes are the tag syntaxes read (listen.tag_syntaxes); nil
	// reads every one.
	TagSyntaxes []string
	// MinLevel drops lines whose "level" tag is below it
	// (aggregate.min_level); "" keeps every line.
	MinLevel string
	// Events receives the DogStatsD events; nil counts them as unsupported.
	Events EventSink
	// ServiceChecks turns each valid DogStatsD service check into a gauge
	// (aggregate.service_checks; see SetServiceChecks); false counts them
	// as unsupported.
	ServiceChecks bool
	// ServiceCheckHostTag is the tag a service check's "h:" host becomes:
	// "host" (tagged API, OTLP) or "source" (legacy API); "" leaves the
	// host out.
	ServiceCheckHostTag string
}

// Handler is the listener's Handler: it splits packets into lines, parses
// them and adds the metrics to the aggregator, counting what it sees. It is
// safe for concurrent use.
type Handler struct {
	agg Aggregator
	// free holds idle scratch space for Handle, last in first out, so that
	// a reader that comes back mostly gets the Writer it had, whose key
	// cache is warm in its core's memory cache. Unlike a sync.Pool it is
	// not emptied at every garbage collection.
	freeMu sync.Mutex
	free   []*work

	packets     [listener.Unixgram + 1]prometheus.Counter // by listener.Transport
	lines       [listener.Unixgram + 1]prometheus.Counter
	invalid     [256]prometheus.Counter // by parser.Error
	unsupported [256]prometheus.Counter // events and service checks, by parser.Error
	maxSeries   prometheus.Counter
	overflow    prometheus.Counter // metrics whose weighted value would overflow their series
	belowLevel  prometheus.Counter
	badName     prometheus.Counter // metrics whose name has nothing Librato accepts
	// The tags the aggregator left out: not kept (legacy API), invalid
	// after sanitizing, past the most a series keeps.
	tagsNotKept, tagsInvalid, tagsTooMany prometheus.Counter
	// minLevel drops lines whose level tag is below it; levelOff keeps all.
	minLevel atomic.Int32
	// syntaxes holds the parser.TagSyntaxes read (listen.tag_syntaxes).
	syntaxes atomic.Uint32
	// events receives DogStatsD events; nil ignores them.
	events EventSink
	// The metrics stamped with a DogStatsD "|T" timestamp, by the period
	// the aggregator put them in (see aggregator.Stamped): outside every
	// open period (late, future) or in their own (current, closing).
	tsLate, tsFuture, tsCurrent, tsClosing prometheus.Counter
	// serviceChecks turns service checks into gauges, counted in
	// converted; scHostTag is the tag their "h:" host becomes ("": none).
	serviceChecks atomic.Bool
	scHostTag     []byte
	converted     [256]prometheus.Counter // by parser.Error, as unsupported

	badLog *rateLog
}

type work struct {
	w  *aggregator.Writer
	ms []parser.Metric // parsed, not yet added
	// lines holds the line of each metric of ms, for refused.
	lines   [][]byte
	refused func(i int, err error) // logs and counts ms[i], refused
	// tags holds a service check's tags and its host tag.
	tags []byte
}

// New returns the Handler for cfg, its counters registered with
// cfg.Registerer.
func New(cfg Config) (*Handler, error) {
	if cfg.Aggregator == nil {
		return nil, errors.New("ingest: no aggregator")
	}
	packets := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "libratod_packets_received_total",
		Help: "Datagrams (UDP, unixgram) or chunks of complete lines (TCP) received.",
	}, []string{"transport"})
	lines := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "libratod_lines_received_total",
		Help: "Non-empty StatsD lines received, valid or not.",
	}, []string{"transport"})
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "libratod_lines_invalid_total",
		Help: "Lines dropped because they could not be parsed, by reason.",
	}, []string{"reason"})
	unsupported := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "libratod_lines_unsupported_total",
		Help: "Well-formed lines of a kind libratod does not handle yet (DogStatsD events, service checks).",
	}, []string{"kind"})
	converted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "libratod_lines_converted_total",
		Help: "Well-formed lines of another kind turned into metrics (DogStatsD service checks into gauges).",
	}, []string{"kind"})
	timestamps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "libratod_lines_timestamp_outside_period_total",
		Help: "Metrics whose DogStatsD |T timestamp is before every open period (late) or after the current one (future); they are aggregated into the current period all the same.",
	}, []string{"reason"})
	inPeriod := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "libratod_lines_timestamped_total",
		Help: "Metrics whose DogStatsD |T timestamp lies in an open period, by that period: the current one, or the closing one (the period just ended, within aggregate.timestamp_grace).",
	}, []string{"period"})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{packets, lines, invalid, unsupported, converted, timestamps, inPeriod} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("ingest self-metrics: %w", err)
			}
		}
	}
	dropped := counterOrNone(cfg.Dropped)
	tagsDropped := counterOrNone(cfg.TagsDropped)
	h := &Handler{
		agg:         cfg.Aggregator,
		free:        make([]*work, 0, maxIdleWork),
		maxSeries:   dropped("max_series"),
		overflow:    dropped("overflow"),
		badName:     dropped("bad_name"),
		belowLevel:  dropped("below_min_level"),
		tagsNotKept: tagsDropped("legacy_api"),
		tagsInvalid: tagsDropped("invalid"),
		tagsTooMany: tagsDropped("too_many"),
		events:      cfg.Events,
		tsLate:      timestamps.WithLabelValues("late"),
		tsFuture:    timestamps.WithLabelValues("future"),
		tsCurrent:   inPeriod.WithLabelValues("current"),
		tsClosing:   inPeriod.WithLabelValues("closing"),
		badLog:      &rateLog{every: time.Second, log: cfg.Logger},
	}
	if cfg.ServiceCheckHostTag != "" {
		h.scHostTag = []byte(cfg.ServiceCheckHostTag)
	}
	h.serviceChecks.Store(cfg.ServiceChecks)
	h.converted[parser.ErrServiceCheck] = converted.WithLabelValues(parser.ErrServiceCheck.Reason())
	for _, t := range []listener.Transport{listener.UDP, listener.TCP, listener.Unixgram} {
		h.packets[t] = packets.WithLabelValues(t.String())
		h.lines[t] = lines.WithLabelValues(t.String())
	}
	for _, e := range parser.Reasons() {
		switch e {
		case parser.ErrEvent, parser.ErrServiceCheck:
			h.unsupported[e] = unsupported.WithLabelValues(e.Reason())
		default:
			h.invalid[e] = invalid.WithLabelValues(e.Reason())
		}
	}
	h.invalid[0] = invalid.WithLabelValues("unknown")
	h.syntaxes.Store(uint32(parser.AllTagSyntaxes))
	if cfg.TagSyntaxes != nil {
		if err := h.SetTagSyntaxes(cfg.TagSyntaxes); err != nil {
			return nil, err
		}
	}
	if err := h.SetMinLevel(cfg.MinLevel); err != nil {
		return nil, err
	}
	return h, nil
}

// counterOrNone returns get, or when it is nil a function giving counters
// that count nowhere.
func counterOrNone(get func(string) prometheus.Counter) func(string) prometheus.Counter {
	if get != nil {
		return get
	}
	return func(reason string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered", ConstLabels: prometheus.Labels{"reason": reason}})
	}
}

// Handle implements listener.Handler, with scratch space (a Writer among
// it) from a pool: for TCP connections, which may be many. A goroutine
// that hands over packets all the time is better served by a Session of
// its own.
func (h *Handler) Handle(t listener.Transport, p []byte) {
	var wk *work
	h.freeMu.Lock()
	if n := len(h.free); n > 0 {
		wk, h.free = h.free[n-1], h.free[:n-1]
	}
	h.freeMu.Unlock()
	if wk == nil {
		wk = h.newWork()
	}
	lines := h.handle(wk, p)
	h.count(t, 1, uint64(lines))
	h.freeMu.Lock()
	keep := len(h.free) < maxIdleWork // else more Handles ran at once than are kept idle
	if keep {
		h.free = append(h.free, wk)
	}
	h.freeMu.Unlock()
	if !keep {
		wk.w.Close() // publishes the counter sums it holds
	}
}

func (h *Handler) newWork() *work {
	wk := &work{w: h.agg.NewWriter(), ms: make([]parser.Metric, 0, addBatch+16), lines: make([][]byte, 0, addBatch+16)}
	wk.refused = func(i int, err error) { h.refused(wk.lines[i], err) }
	return wk
}

// addBatch is about the most metrics handle parses before it adds them
// (with aggregator.Writer.AddAll, whose lookups overlap): a datagram's
// lines, or a part of a long one's.
const addBatch = 32

// addAll adds the metrics wk holds, and empties it.
func (h *Handler) addAll(wk *work) {
	if len(wk.ms) > 0 {
		wk.w.AddAll(wk.ms, wk.refused)
		wk.ms, wk.lines = wk.ms[:0], wk.lines[:0]
	}
}

// Session is the Handler of one datagram reader goroutine (see
// listener.Sessions): its scratch space and Writer are its own, so its
// key cache and the counter sums its Writer holds stay on that
// goroutine's core, and it takes no lock per packet. It counts packets
// and lines itself, and adds them to the Handler's counters at Flush.
type Session struct {
	h              *Handler
	wk             *work
	packets, lines [listener.Unixgram + 1]uint64 // by transport, since the last Flush
}

// NewSession implements listener.Sessions.
func (h *Handler) NewSession() listener.Session {
	return &Session{h: h, wk: h.newWork()}
}

// Handle handles a packet as Handler.Handle does.
func (s *Session) Handle(t listener.Transport, p []byte) {
	lines := s.h.handle(s.wk, p)
	if int(t) < len(s.packets) {
		s.packets[t]++
		s.lines[t] += uint64(lines)
	}
}

// Flush adds the packets and lines handled since the last Flush to the
// Handler's counters.
func (s *Session) Flush() {
	for t, n := range s.packets {
		if n > 0 {
			s.h.count(listener.Transport(t), n, s.lines[t])
			s.packets[t], s.lines[t] = 0, 0
		}
	}
}

// Close flushes s and publishes the counter sums its Writer holds (see
// aggregator.Writer.Close); s must not be used again.
func (s *Session) Close() {
	s.Flush()
	s.wk.w.Close()
}

// count adds packets and lines received over t to the counters.
func (h *Handler) count(t listener.Transport, packets, lines uint64) {
	if int(t) < len(h.packets) && h.packets[t] != nil {
		h.packets[t].Add(float64(packets))
		h.lines[t].Add(float64(lines))
	}
}

// handle parses packet p's lines and adds their metrics with wk, and
// returns the number of lines that were not blank.
func (h *Handler) handle(wk *work, p []byte) int {
	// The packet's lines are one run of Adds: a period's end waits for
	// them (see aggregator.Writer.Begin).
	wk.w.Begin()
	lines := 0
	syntaxes := parser.TagSyntaxes(h.syntaxes.Load())
	minLevel := h.minLevel.Load()
	wk.ms, wk.lines = wk.ms[:0], wk.lines[:0]
	for len(p) > 0 {
		var line []byte
		line, p = parser.NextLine(p)
		if len(line) == 0 {
			continue
		}
		n0 := len(wk.ms)
		ms, err := parser.ParseWith(line, wk.ms, syntaxes)
		if len(ms) == n0 {
			if err != nil {
				lines++
				h.addAll(wk) // what came before first, in order
				h.reject(wk, line, err)
			}
			continue // else blank
		}
		lines++
		if minLevel != levelOff {
			ms = h.keepLevel(ms, n0, minLevel)
		}
		for range len(ms) - n0 {
			wk.lines = append(wk.lines, line)
		}
		wk.ms = ms
		if len(ms) >= addBatch {
			h.addAll(wk)
		}
	}
	h.addAll(wk)
	wk.w.End()
	if d := wk.w.DroppedTags(); d != (aggregator.DroppedTags{}) {
		h.tagsNotKept.Add(float64(d.NotKept))
		h.tagsInvalid.Add(float64(d.Invalid))
		h.tagsTooMany.Add(float64(d.TooMany))
	}
	if s := wk.w.Stamped(); s != (aggregator.Stamped{}) {
		h.countStamped(s)
	}
	return lines
}

// keepLevel removes from ms[n0:] the metrics whose level is below lowest,
// counting them, and returns what is left.
func (h *Handler) keepLevel(ms []parser.Metric, n0 int, lowest int32) []parser.Metric {
	kept := n0
	for i := n0; i < len(ms); i++ {
		if lineLevel(&ms[i]) < lowest {
			h.belowLevel.Inc()
			continue
		}
		if kept != i {
			ms[kept] = ms[i]
		}
		kept++
	}
	return ms[:kept]
}

// refused counts and logs a metric of line the aggregator refused with err.
func (h *Handler) refused(line []byte, err error) {
	switch {
	case errors.Is(err, aggregator.ErrMaxSeries):
		h.maxSeries.Inc()
		h.badLog.log0("series limit reached; new series are dropped", line, "max_series")
	case errors.Is(err, aggregator.ErrBadName):
		h.badName.Inc()
		h.badLog.log0("metric dropped: no letter or digit in its name", line, "bad_name")
	case errors.Is(err, aggregator.ErrOverflow):
		h.overflow.Inc()
		h.badLog.log0("metric dropped: its weighted value would overflow", line, "overflow")
	default:
		h.badLog.log0("metric refused", line, err.Error())
	}
}

// countStamped counts the metrics stamped with "|T" the aggregator added,
// by the period they went to. A metric is counted where its time lies,
// whether the aggregator then took it or refused it.
func (h *Handler) countStamped(s aggregator.Stamped) {
	h.tsLate.Add(float64(s.Late))
	h.tsFuture.Add(float64(s.Future))
	h.tsCurrent.Add(float64(s.Current))
	h.tsClosing.Add(float64(s.Closing))
}

// reject counts and logs a line the parser refused with err; an event or a
// service check is not an error but a kind of line handled apart.
func (h *Handler) reject(wk *work, line []byte, err error) {
	pe := parserError(err)
	switch pe {
	case parser.ErrEvent:
		if h.events != nil {
			ev, err := parser.ParseEvent(line)
			if err != nil {
				h.invalid[parser.ErrBadEvent].Inc()
				h.badLog.log0("invalid event dropped", line, parser.ErrBadEvent.Reason())
				return
			}
			h.events.Event(&ev)
			return
		}
	case parser.ErrServiceCheck:
		sc, err := parser.ParseServiceCheck(line)
		if err != nil {
			h.invalid[parser.ErrBadServiceCheck].Inc()
			h.badLog.log0("invalid service check dropped", line, parser.ErrBadServiceCheck.Reason())
			return
		}
		if h.serviceChecks.Load() {
			h.serviceCheck(wk, line, &sc)
			return
		}
	}
	if c := h.unsupported[pe]; c != nil {
		c.Inc()
		return
	}
	if c := h.invalid[pe]; c != nil {
		c.Inc()
	} else {
		h.invalid[0].Inc()
	}
	h.badLog.log0("invalid line dropped", line, pe.Reason())
}

// parserError returns the parser.Error err is or wraps, or 0. The parser
// returns its Errors as they are: that case does not allocate, which
// errors.As would (service checks are a steady-state path).
func parserError(err error) parser.Error {
	if pe, ok := err.(parser.Error); ok {
		return pe
	}
	var pe parser.Error
	if errors.As(err, &pe) {
		return pe
	}
	return 0
}

// serviceCheck adds sc, read from line, to the aggregator as a gauge
// update: the check's name, its status as the value, its tags and its host
// as the tag scHostTag. A gauge keeps its last value, so the last status of
// a period wins.
func (h *Handler) serviceCheck(wk *work, line []byte, sc *parser.ServiceCheck) {
	h.converted[parser.ErrServiceCheck].Inc()
	tags := append(wk.tags[:0], sc.Tags...)
	if host := sc.Host; len(host) > 0 && h.scHostTag != nil {
		if i := bytes.IndexByte(host, ','); i >= 0 {
			host = host[:i] // a comma would start another tag
		}
		if len(tags) > 0 {
			tags = append(tags, ',')
		}
		tags = append(tags, h.scHostTag...)
		tags = append(tags, ':')
		tags = append(tags, host...)
	}
	wk.tags = tags
	m := parser.Metric{Name: sc.Name, Type: parser.Gauge, Value: float64(sc.Status), Rate: 1}
	if len(tags) > 0 {
		m.Tags = tags
	}
	if min := h.minLevel.Load(); min != levelOff && lineLevel(&m) < min {
		h.belowLevel.Inc()
		return
	}
	if err := wk.w.Add(&m); err != nil {
		h.refused(line, err)
	}
}

// SetTagSyntaxes sets the tag syntaxes read (listen.tag_syntaxes) while
// running; an unknown name is an error and keeps the syntaxes read so far.
func (h *Handler) SetTagSyntaxes(names []string) error {
	s, err := parser.ParseTagSyntaxes(names)
	if err != nil {
		return fmt.Errorf("tag syntaxes: %w", err)
	}
	h.syntaxes.Store(uint32(s))
	return nil
}

// SetMinLevel sets the minimum level (aggregate.min_level) while running:
// "" keeps every line; an unknown level is an error and keeps the one set.
func (h *Handler) SetMinLevel(name string) error {
	if err := CheckLevel(name); err != nil {
		return fmt.Errorf("min level: %w", err)
	}
	lvl := int32(levelOff)
	if name != "" {
		lvl = parseLevel([]byte(name))
	}
	h.minLevel.Store(lvl)
	return nil
}

// SetServiceChecks turns the mapping of service checks to gauges
// (aggregate.service_checks) on or off while running.
func (h *Handler) SetServiceChecks(on bool) {
	h.serviceChecks.Store(on)
}

// LinesReceived returns how many non-empty lines the Handler has seen
// (libratod_lines_received_total summed over the transports).
func (h *Handler) LinesReceived() uint64 {
	var total float64
	for _, c := range h.lines {
		if c == nil {
			continue
		}
		var m dto.Metric
		if c.Write(&m) == nil {
			total += m.GetCounter().GetValue()
		}
	}
	return uint64(total)
}

// The Handler hands each datagram reader a Session of its own.
var _ listener.Sessions = (*Handler)(nil)
