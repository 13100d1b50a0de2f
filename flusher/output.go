package flusher

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libratod/libratod/aggregator"
	"github.com/libratod/libratod/spool"
)

// An output is one destination of the periods: Librato or OTLP. It turns
// a period's series into requests of type B (its own: Librato
// measurements, OTLP points) and sends one; everything else, the retries
// and backoff, the split around a refused item, the backlog and the spool,
// the failure episodes and the accounting, is the lane's, written once.
type output[B any] interface {
	// name is the output's label in metrics and logs: "librato", "otlp".
	name() string
	// size returns the number of items (measurements, points) b holds.
	size(b B) int
	// unix returns the time of b's period in unix seconds.
	unix(b B) int64
	// build turns the period's series into requests of at most
	// BatchSize items, handing each to emit, and returns the period's
	// result (series, items built, items dropped while building).
	build(l *lane[B], s *settings, p period, emit func(B)) Result
	// send makes one attempt at delivering b.
	send(ctx context.Context, l *lane[B], s *settings, b B) (accepted, *refusal)
	// halves splits b (of at least 2 items) in two.
	halves(b B) (B, B)
	// join returns the items of a and then b in one request.
	join(a, b B) B
	// without returns b without the items whose name drop reports, and
	// how many it left out.
	without(b B, drop func(name string) bool) (B, int)
	// firstName returns the name of b's first item, for the logs.
	firstName(b B) string
	// identity appends to dst the identity of b's i-th item: its name
	// and tags (or source), what tells one series from another at the
	// service.
	identity(dst []byte, b B, i int) []byte
	// filter returns b with only the items keep reports (by index in
	// b), and how many it left out.
	filter(b B, keep func(i int) bool) (B, int)
	// marshal appends b's spool record payload to dst; unmarshal reads
	// one back; kind is the record kind of what marshal writes now (a
	// record of another kind is dropped as written by another setting).
	marshal(dst []byte, b B) []byte
	unmarshal(p []byte) (B, error)
	kind(s *settings) uint8
}

// period is what an output's build is given of a closed period.
type period struct {
	snap  *aggregator.Snapshot
	start time.Time // the time the period is sent with (its start)
	end   time.Time // the boundary that closed it
	// totals holds the running totals of counters_as = "counter"
	// (Librato's legacy API), or nil.
	totals map[string]float64
}

// accepted is what an output made of a request the server took.
type accepted struct {
	status int // HTTP status
	// sent is the number of items the server took; skipped those the
	// client left out as unsendable (a NaN, say), counted not_sendable;
	// failed those the server reported as refused, counted partial, with
	// its messages in errors (errors alone: a partial failure with no
	// count).
	sent, skipped, failed int
	errors                []string
	// skippedName is the name of the first item skipped, for the log.
	skippedName string
}

// refusal is a failed request, in terms every output shares.
type refusal struct {
	status      int    // HTTP status; 0 when no response came
	message     string // the service's words
	reason      string // the whole error, for the logs
	retryable   bool
	rateLimited bool // a rate limit: wait, do not retry within the period
	credentials bool // the credentials were refused: keep until max_age
	splittable  bool // refused for what it holds: split to find the culprit
	retryAfter  time.Duration
	// conflicts are names the service has with another type (Librato):
	// they go on the stop list and are left out of every later request.
	conflicts []string
}

func (r *refusal) Error() string { return r.reason }

// lane is the delivery of one output: its backlog, spool, stop list,
// failure episodes and accounting. It shares the flusher's shutdown state.
type lane[B any] struct {
	f   *Flusher
	out output[B]
	// what is the service as the logs name it: "Librato", "the OTLP
	// endpoint".
	what string
	set  atomic.Pointer[settings]
	m    *laneMetrics

	backlog backlog[B]
	stops   stopList
	refused refusedList

	// built counts the items built for delivery (including those dropped
	// before a request was made), sent and dropped what became of them;
	// the difference is in flight or in the backlog.
	built, sent, dropped atomic.Int64

	statusMu      sync.Mutex
	lastDelivered time.Time

	logs    logLimit // rate limits the warnings of delivery problems
	episode episode  // the failure under way, if any
	// credsLogged: a refusal of the credentials was logged since the
	// last request that succeeded.
	credsLogged atomic.Bool

	sp    *spool.Spool // nil: memory only
	spool spoolState[B]
}

// newLane returns the lane of out, with the settings s and the spool sp
// (nil for none).
func newLane[B any](f *Flusher, out output[B], what string, s *settings, sp *spool.Spool) *lane[B] {
	l := &lane[B]{f: f, out: out, what: what, m: f.m.forOutput(out.name()), sp: sp}
	l.backlog.wake = make(chan struct{}, 1)
	l.set.Store(s)
	l.backlog.setLimit(s.cfg.Backlog)
	if sp != nil {
		l.openSpool(s)
	}
	return l
}

// reconfigure replaces the lane's settings; what waits is resent at once.
func (l *lane[B]) reconfigure(s *settings) {
	l.set.Store(s)
	l.backlog.setLimit(s.cfg.Backlog)
	l.backlog.kick()
}

// laneRunner is what the flusher does with every lane, whatever its
// output.
type laneRunner interface {
	name() string
	settings() *settings
	reconfigure(s *settings)
	drainLoop(ctx context.Context)
	drainAll(ctx context.Context)
	deliver(ctx context.Context, s *settings, p period) Result
	finish(s *settings, sent0, dropped0 int64) Result
	counts() (built, sent, dropped int64)
	state() (pending int, oldest time.Time, lastDelivered time.Time)
}

func (l *lane[B]) name() string        { return l.out.name() }
func (l *lane[B]) settings() *settings { return l.set.Load() }
func (l *lane[B]) counts() (b, s, d int64) {
	return l.built.Load(), l.sent.Load(), l.dropped.Load()
}

func (l *lane[B]) state() (int, time.Time, time.Time) {
	n, oldest := l.backlog.state()
	l.statusMu.Lock()
	defer l.statusMu.Unlock()
	return n, oldest, l.lastDelivered
}
