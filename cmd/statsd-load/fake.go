package main

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libratod/libratod/internal/fakelibrato"
	metricsv1 "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// faultKind is what a fault does to a request.
type faultKind uint8

// The fault kinds.
const (
	faultStatus faultKind = iota + 1 // answer with an error status; the daemon must resend
	faultDelay                       // wait, then take the request and answer 200, if the client still waits
	faultSlow                        // take the request, then answer 200 late: a client that gives up first resends a request already taken
	faultDrop                        // close the connection without an answer; the daemon must resend
)

// fault is one kind of trouble injected with probability p per request.
type fault struct {
	kind   faultKind
	status int           // faultStatus
	delay  time.Duration // faultDelay, faultSlow
	p      float64
}

// String formats f as parseFaults reads it.
func (f fault) String() string {
	p := strconv.FormatFloat(f.p, 'g', -1, 64)
	switch f.kind {
	case faultStatus:
		return strconv.Itoa(f.status) + ":" + p
	case faultDelay:
		return "delay=" + f.delay.String() + ":" + p
	case faultSlow:
		return "slow=" + f.delay.String() + ":" + p
	}
	return "drop:" + p
}

// parseFaults parses a comma-separated list of faults, each WHAT:PROBABILITY
// where WHAT is an HTTP status from 400 to 599, delay=DURATION, slow=DURATION,
// or drop. The probabilities add up to at most 1; "" means none.
func parseFaults(s string) ([]fault, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var faults []fault
	total := 0.0
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		i := strings.LastIndexByte(item, ':')
		if i < 0 {
			return nil, fmt.Errorf("fault %q: want WHAT:PROBABILITY", item)
		}
		what, ps := item[:i], item[i+1:]
		p, err := strconv.ParseFloat(ps, 64)
		if err != nil || !(p >= 0 && p <= 1) {
			return nil, fmt.Errorf("fault %q: probability %q: want a number from 0 to 1", item, ps)
		}
		f := fault{p: p}
		switch {
		case what == "drop":
			f.kind = faultDrop
		case strings.HasPrefix(what, "delay="), strings.HasPrefix(what, "slow="):
			name, dur, _ := strings.Cut(what, "=")
			d, err := time.ParseDuration(dur)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("fault %q: want %s=DURATION with a duration > 0", item, name)
			}
			f.kind, f.delay = faultDelay, d
			if name == "slow" {
				f.kind = faultSlow
			}
		default:
			code, err := strconv.Atoi(what)
			if err != nil || code < 400 || code > 599 {
				return nil, fmt.Errorf("fault %q: want an HTTP status from 400 to 599, delay=DURATION, slow=DURATION or drop", item)
			}
			f.kind, f.status = faultStatus, code
		}
		total += p
		faults = append(faults, f)
	}
	if total > 1+1e-9 {
		return nil, fmt.Errorf("faults %q: probabilities add up to %g, more than 1", s, total)
	}
	return faults, nil
}

// pick returns the fault a roll u in [0,1) selects, or nil for none: each fault
// takes the next slice of [0,1) as wide as its probability.
func pick(faults []fault, u float64) *fault {
	end := 0.0
	for i := range faults {
		end += faults[i].p
		if u < end {
			return &faults[i]
		}
	}
	return nil
}

// fakeStats counts the requests the fake answered, by outcome.
type fakeStats struct {
	Requests   int // every request
	Accepted   int // answered 200 and counted as delivered
	Down       int // answered 503 during the -down window
	Status     int // answered with an injected error status
	Delayed    int // delayed, then accepted (also in Accepted)
	Slow       int // accepted, then answered late (also in Accepted)
	Dropped    int // connection closed without an answer
	ClientGone int // the client gave up during a delay: not delivered
	LateGone   int // the client gave up during a slow answer: delivered, and it will resend
	Bad        int // not a POST /v1/measurements with a JSON payload (OTLP: /v1/metrics, protobuf): answered 4xx
}

// fakeConfig configures a fakeLibrato.
type fakeConfig struct {
	prefix string        // the names the tool sends; other names are counted apart
	faults []fault       // injected per request
	down   time.Duration // answer 503 to everything for this long after the fake is made
	seed   uint64        // seeds the fault rolls
	otlp   bool          // serve OTLP/HTTP (POST /v1/metrics, protobuf), not Librato's tagged API
}

// fakeLibrato stands in for Librato's tagged API (a fakelibrato.Fake). It
// decodes every payload and tallies what it accepted; a request it answers
// with anything but 200 is not counted, since the daemon sends it again.
type fakeLibrato struct {
	cfg       fakeConfig
	downUntil time.Time
	now       func() time.Time
	fake      fakelibrato.Fake

	mu    sync.Mutex // guards the fields below
	rolls *rand.Rand
	stats fakeStats
	got   *received
}

// newFake returns a fake Librato; its -down window starts now.
func newFake(cfg fakeConfig) *fakeLibrato {
	f := &fakeLibrato{
		cfg:       cfg,
		downUntil: time.Now().Add(cfg.down),
		now:       time.Now,
		rolls:     rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
		got:       newReceived(cfg.prefix),
	}
	f.fake = fakelibrato.Fake{Serve: f.serve, Take: f.take, OK: answerOK}
	return f
}

// snapshot returns copies of the counters and of what was accepted so far.
func (f *fakeLibrato) snapshot() (fakeStats, *received) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, f.got.clone()
}

// ServeHTTP implements http.Handler.
func (f *fakeLibrato) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.fake.ServeHTTP(w, r)
}

// serve answers what is not a tagged payload, what comes during the -down
// window and what an injected fault picks (see fakelibrato.Fake.Serve).
func (f *fakeLibrato) serve(w http.ResponseWriter, r *http.Request, req *fakelibrato.Request, take func()) bool {
	f.count(func(s *fakeStats) { s.Requests++ })
	path, decode := "/v1/measurements", func(req *fakelibrato.Request) (any, error) { return decodePayload(req) }
	if f.cfg.otlp {
		path, decode = "/v1/metrics", func(req *fakelibrato.Request) (any, error) { return decodeOTLP(req) }
	}
	if r.Method != http.MethodPost || r.URL.Path != path {
		f.count(func(s *fakeStats) { s.Bad++ })
		fakelibrato.Fail(w, http.StatusNotFound, "only POST "+path+" is served")
		return true
	}
	p, err := decode(req)
	if err != nil {
		f.count(func(s *fakeStats) { s.Bad++ })
		fakelibrato.Fail(w, http.StatusBadRequest, err.Error())
		return true
	}
	req.Payload = p
	if f.now().Before(f.downUntil) {
		f.count(func(s *fakeStats) { s.Down++ })
		fakelibrato.Fail(w, http.StatusServiceUnavailable, "down for maintenance (-down)")
		return true
	}

	f.mu.Lock()
	flt := pick(f.cfg.faults, f.rolls.Float64())
	f.mu.Unlock()
	if flt == nil {
		return false
	}
	switch flt.kind {
	case faultStatus:
		f.count(func(s *fakeStats) { s.Status++ })
		fakelibrato.Fail(w, flt.status, "injected fault")
	case faultDrop:
		f.count(func(s *fakeStats) { s.Dropped++ })
		fakelibrato.HangUp(w)
	case faultDelay:
		if !fakelibrato.Wait(r, flt.delay) {
			// The client gave up (its timeout): it will resend, so this one
			// does not count.
			f.count(func(s *fakeStats) { s.ClientGone++ })
			return true
		}
		f.count(func(s *fakeStats) { s.Delayed++ })
		take()
		answerOK(w, req)
	case faultSlow:
		take()
		f.count(func(s *fakeStats) { s.Slow++ })
		if !fakelibrato.Wait(r, flt.delay) {
			f.count(func(s *fakeStats) { s.LateGone++ })
			return true
		}
		answerOK(w, req)
	}
	return true
}

// take tallies a request taken.
func (f *fakeLibrato) take(req *fakelibrato.Request) {
	f.mu.Lock()
	f.stats.Accepted++
	switch p := req.Payload.(type) {
	case *payload:
		f.got.add(p)
	case *metricsv1.MetricsData:
		f.got.addOTLP(p, -1)
	}
	f.mu.Unlock()
}

// answerOK answers a request taken as Librato does, or for OTLP with an
// empty ExportMetricsServiceResponse (nothing rejected).
func answerOK(w http.ResponseWriter, req *fakelibrato.Request) {
	if _, ok := req.Payload.(*metricsv1.MetricsData); ok {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"measurements":{"summary":{"total":`+strconv.Itoa(len(req.Payload.(*payload).Measurements))+`}}}`)
}

// count applies update to the counters under the lock.
func (f *fakeLibrato) count(update func(*fakeStats)) {
	f.mu.Lock()
	update(&f.stats)
	f.mu.Unlock()
}

// payload is the part of a tagged API request body the fake checks.
type payload struct {
	Time         int64             `json:"time"`
	Tags         map[string]string `json:"tags"`
	Measurements []measurement     `json:"measurements"`
}

// measurement is one tagged API measurement: a gauge (value) or a summary
// (count, sum, ...).
type measurement struct {
	Name  string            `json:"name"`
	Value *float64          `json:"value"`
	Count *float64          `json:"count"`
	Time  int64             `json:"time"`
	Tags  map[string]string `json:"tags"`
}

// decodePayload decodes a request's body.
func decodePayload(req *fakelibrato.Request) (*payload, error) {
	if req.Err != nil {
		return nil, req.Err
	}
	var p payload
	if err := json.Unmarshal(req.Body, &p); err != nil {
		return nil, fmt.Errorf("body is not a tagged payload: %w", err)
	}
	for i, m := range p.Measurements {
		if m.Name == "" || (m.Value == nil) == (m.Count == nil) {
			return nil, fmt.Errorf("measurement %d: want a name and either value or count", i)
		}
	}
	return &p, nil
}

// dupKey groups the points delivered more than once.
type dupKey struct {
	time int64
	typ  string // StatsD type code, or "other"
}

// gaugeSeen is the latest value a gauge was delivered with.
type gaugeSeen struct {
	time  int64
	value float64
}

// received tallies what the fake accepted, summed over periods and tag sets, by
// type and name index.
type received struct {
	prefix   string
	sums     [numTypes]map[int]float64 // counters: values; timers: counts; sets: values (cardinalities)
	gauges   map[int]gaugeSeen
	points   map[uint64]float64 // hashes of (name, tags, time) to the value (or count) first delivered
	seed     maphash.Seed
	maxSet   float64        // the largest set cardinality delivered
	dupes    int            // points delivered more than once
	sameDup  int            // of those, copies with the value first delivered (a request resent whole)
	dupTimes map[dupKey]int // the duplicate points by time and type
	other    int            // measurements whose names the tool did not send (timer percentiles among them)
	wrongTyp int            // the tool's names with the wrong shape (a counter as a summary, say)
	total    int            // measurements
	perTime  map[int64]int  // the tool's points by time, once each
}

func newReceived(prefix string) *received {
	rc := &received{
		prefix:   prefix,
		gauges:   make(map[int]gaugeSeen),
		points:   make(map[uint64]float64),
		dupTimes: make(map[dupKey]int),
		perTime:  make(map[int64]int),
		seed:     maphash.MakeSeed(),
	}
	for t := range rc.sums {
		rc.sums[t] = make(map[int]float64)
	}
	return rc
}

// add tallies the measurements of p.
func (rc *received) add(p *payload) {
	for _, m := range p.Measurements {
		tm := m.Time
		if tm == 0 {
			tm = p.Time
		}
		tags := m.Tags
		if tags == nil {
			tags = p.Tags
		}
		if m.Count != nil {
			rc.point(m.Name, tags, tm, *m.Count, shapeCount)
		} else {
			rc.point(m.Name, tags, tm, *m.Value, shapeValue)
		}
	}
}

// shape is the form a point was delivered in.
type shape uint8

// The shapes of points.
const (
	shapeValue shape = iota // a Librato gauge measurement: any type but a timer
	shapeCount              // a summary or histogram (its count): a timer
	shapeSum                // an OTLP delta Sum: a counter
	shapeGauge              // an OTLP Gauge: a gauge or a set
	shapeWrong              // a shape no StatsD type is sent as (a cumulative Sum)
)

// fits says whether a point of the tool's type t may come in shape s.
func (s shape) fits(t metricType) bool {
	switch s {
	case shapeValue:
		return t != timerType
	case shapeCount:
		return t == timerType
	case shapeSum:
		return t == counterType
	case shapeGauge:
		return t == gaugeType || t == setType
	}
	return false
}

// point tallies one point: the series (name, tags) at time tm (unix
// seconds) with value v, a count for shapeCount.
func (rc *received) point(name string, tags map[string]string, tm int64, v float64, s shape) {
	rc.total++
	t, i, ok := parseName(rc.prefix, name)
	first, seen := rc.firstPoint(name, tags, tm, v)
	if seen {
		rc.dupes++
		if first == v {
			rc.sameDup++
		}
		k := dupKey{time: tm, typ: "other"}
		if ok {
			k.typ = t.String()
		}
		rc.dupTimes[k]++
	}
	if !ok {
		rc.other++
		return
	}
	if !s.fits(t) {
		rc.wrongTyp++
		return
	}
	if !seen {
		rc.perTime[tm]++
	}
	switch t {
	case gaugeType:
		if g, seen := rc.gauges[i]; !seen || tm >= g.time {
			rc.gauges[i] = gaugeSeen{time: tm, value: v}
		}
	case setType:
		rc.sums[t][i] += v
		rc.maxSet = max(rc.maxSet, v)
	default:
		rc.sums[t][i] += v
	}
}

// firstPoint records the point (name, tags, time) with its value v, unless it
// was seen before: then it returns the value first seen and true.
func (rc *received) firstPoint(name string, tags map[string]string, tm int64, v float64) (float64, bool) {
	var h maphash.Hash
	h.SetSeed(rc.seed)
	h.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		h.WriteByte(0)
		h.WriteString(k)
		h.WriteByte('=')
		h.WriteString(tags[k])
	}
	h.WriteByte(0)
	h.WriteString(strconv.FormatInt(tm, 10))
	key := h.Sum64()
	if first, dup := rc.points[key]; dup {
		return first, true
	}
	rc.points[key] = v
	return v, false
}

// maxPeriodSeries returns the most series of the tool's names delivered for
// one time (one period): the live series of the fullest period.
func (rc *received) maxPeriodSeries() int {
	n := 0
	for _, c := range rc.perTime {
		n = max(n, c)
	}
	return n
}

// clone returns a copy of rc's tallies, to read: it does not keep the points
// seen, so it cannot add.
func (rc *received) clone() *received {
	c := *rc
	for t := range c.sums {
		c.sums[t] = maps.Clone(rc.sums[t])
	}
	c.gauges = maps.Clone(rc.gauges)
	c.dupTimes = maps.Clone(rc.dupTimes)
	c.perTime = maps.Clone(rc.perTime)
	c.points = nil
	return &c
}
