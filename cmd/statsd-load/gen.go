package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// metricType is a StatsD metric type the tool sends.
type metricType uint8

// The types, in the order of their tables below.
const (
	counterType metricType = iota
	gaugeType
	timerType
	setType
	numTypes
)

// typeCodes are the StatsD type codes, also used in the metric names.
var typeCodes = [numTypes]string{"c", "g", "ms", "s"}

// String returns the StatsD type code.
func (t metricType) String() string {
	if t < numTypes {
		return typeCodes[t]
	}
	return "?"
}

// parseType returns the type of a StatsD type code.
func parseType(code string) (metricType, bool) {
	for t, c := range typeCodes {
		if c == code {
			return metricType(t), true
		}
	}
	return 0, false
}

// mix is the relative weight of each type among the lines sent.
type mix [numTypes]int

// parseMix parses "c,g,ms,s" (equal weights) or "c=8,ms=2" (weights; a type
// without "=" weighs 1).
func parseMix(s string) (mix, error) {
	var m mix
	total := 0
	for item := range strings.SplitSeq(s, ",") {
		code, weight, hasWeight := strings.Cut(strings.TrimSpace(item), "=")
		t, ok := parseType(code)
		if !ok {
			return m, fmt.Errorf("type %q: want one of c, g, ms, s", code)
		}
		w := 1
		if hasWeight {
			n, err := strconv.Atoi(weight)
			if err != nil || n < 0 || n > 1000 {
				return m, fmt.Errorf("weight of %s %q: want an integer from 0 to 1000", code, weight)
			}
			w = n
		}
		if m[t] != 0 {
			return m, fmt.Errorf("type %s given twice", code)
		}
		m[t] = w
		total += w
	}
	if total == 0 {
		return m, fmt.Errorf("%q: no type with a weight above 0", s)
	}
	return m, nil
}

// types returns how many types m sends.
func (m mix) types() int {
	n := 0
	for _, w := range m {
		if w > 0 {
			n++
		}
	}
	return n
}

// String formats m as parseMix reads it.
func (m mix) String() string {
	var parts []string
	for t, w := range m {
		if w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", metricType(t), w))
		}
	}
	return strings.Join(parts, ",")
}

// pattern returns one cycle of types in m's proportions, spread evenly (smooth
// weighted round robin), so that every packet holds a mix rather than runs of
// one type.
func (m mix) pattern() []metricType {
	total := 0
	for _, w := range m {
		total += w
	}
	var cur [numTypes]int
	p := make([]metricType, 0, total)
	for range total {
		best := -1
		for t, w := range m {
			if w == 0 {
				continue
			}
			cur[t] += w
			if best < 0 || cur[t] > cur[best] {
				best = t
			}
		}
		cur[best] -= total
		p = append(p, metricType(best))
	}
	return p
}

// genConfig is what every sender's generator shares.
type genConfig struct {
	prefix string  // names are prefix.<type>.<index>
	names  int     // distinct names per type
	tags   int     // DogStatsD tags per line
	rate   float64 // sample rate of counter and timer lines, in (0,1]
	conns  int     // senders; each sends its own share of the gauge names
	mix    mix
	// stamp stamps every line with a DogStatsD "|T" of the time it is
	// made (generator.now), and the fraction backFrac of the lines, all
	// counters, timers or sets while there are enough, with the time back
	// seconds earlier (a gauge's last value must stay the last one sent).
	stamp    bool
	backFrac float64
	back     int64
}

// checkRate checks that rate is in (0,1] and that 1/rate is a whole number: the
// daemon rounds a timer's weighted count to an integer per period, so only then
// is the expected count exact.
func checkRate(rate float64) error {
	if !(rate > 0 && rate <= 1) {
		return fmt.Errorf("rate %v: want a number in (0,1]", rate)
	}
	if w := 1 / rate; math.Abs(w-math.Round(w)) > 1e-9 {
		return fmt.Errorf("rate %v: 1/rate must be a whole number (0.5, 0.1, 0.01, ...), as timer counts are rounded", rate)
	}
	return nil
}

// metricName returns the name of index i of type t.
func metricName(prefix string, t metricType, i int) string {
	return prefix + "." + typeCodes[t] + "." + strconv.Itoa(i)
}

// parseName returns the type and index of a name metricName made with prefix,
// allowing anything before prefix (a daemon's own name prefix). ok is false for
// other names, timer percentiles among them.
func parseName(prefix, name string) (t metricType, i int, ok bool) {
	at := strings.Index(name, prefix+".")
	if at < 0 || (at > 0 && name[at-1] != '.') {
		return 0, 0, false
	}
	code, idx, found := strings.Cut(name[at+len(prefix)+1:], ".")
	if !found {
		return 0, 0, false
	}
	if t, ok = parseType(code); !ok {
		return 0, 0, false
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || strconv.Itoa(i) != idx {
		return 0, 0, false
	}
	return t, i, true
}

// line is what one generated line means, for the tally.
type line struct {
	typ   metricType
	name  int   // index of the name
	value int64 // the value sent (a counter's value, a timer's value, a gauge's value); a set's member is unique
	end   int   // offset in the packet just past the line and its '\n'
}

// generator makes the lines of one sender. Names cycle per type; each line's
// tags depend on its name only (so the series count is bounded by the names);
// gauge values increase and each gauge name belongs to one sender (so the last
// value is known); set members are unique over the run (so the delivered
// cardinalities add up to the lines).
type generator struct {
	cfg     genConfig
	conn    int
	pattern []metricType
	names   [numTypes][]string // names[t][i], with the ':' after them
	suffix  [numTypes][]string // per name: "|type[|@rate][|#tags]"
	gauges  []int              // the gauge names this sender owns
	next    [numTypes]int      // next position per type (in names, or in gauges)
	seq     int64              // lines made
	now     int64              // unix seconds the lines are stamped with (cfg.stamp)
	stamped int64              // lines stamped back so far
}

// newGenerator returns the generator of sender conn (0 <= conn < cfg.conns).
// Each sender needs a gauge name of its own when gauges are in the mix, so
// cfg.names must be at least cfg.conns then.
func newGenerator(cfg genConfig, conn int) (*generator, error) {
	if cfg.names < 1 || conn < 0 || conn >= cfg.conns {
		return nil, fmt.Errorf("generator %d of %d with %d names", conn, cfg.conns, cfg.names)
	}
	if cfg.mix[gaugeType] > 0 && cfg.names < cfg.conns {
		return nil, fmt.Errorf("%d names for %d senders: each sender needs gauge names of its own", cfg.names, cfg.conns)
	}
	g := &generator{cfg: cfg, conn: conn, pattern: cfg.mix.pattern()}
	rate := ""
	if cfg.rate != 1 {
		rate = "|@" + strconv.FormatFloat(cfg.rate, 'g', -1, 64)
	}
	for t := range numTypes {
		if cfg.mix[t] == 0 {
			continue
		}
		g.names[t] = make([]string, cfg.names)
		g.suffix[t] = make([]string, cfg.names)
		for i := range cfg.names {
			g.names[t][i] = metricName(cfg.prefix, t, i) + ":"
			var b strings.Builder
			b.WriteString("|" + typeCodes[t])
			if t == counterType || t == timerType {
				b.WriteString(rate)
			}
			for j := range cfg.tags {
				if j == 0 {
					b.WriteString("|#")
				} else {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "t%d:v%d", j, (i+j)%7)
			}
			g.suffix[t][i] = b.String()
		}
	}
	for i := conn; i < cfg.names; i += cfg.conns {
		g.gauges = append(g.gauges, i)
	}
	return g, nil
}

// appendLine appends the next line (without its '\n') to dst.
func (g *generator) appendLine(dst []byte) ([]byte, line) {
	t := g.pattern[int(g.seq%int64(len(g.pattern)))]
	pos := g.next[t]
	l := line{typ: t, name: pos}
	if t == gaugeType {
		l.name = g.gauges[pos]
		g.next[t] = (pos + 1) % len(g.gauges)
	} else {
		g.next[t] = (pos + 1) % g.cfg.names
	}
	dst = append(dst, g.names[t][l.name]...)
	switch t {
	case counterType:
		l.value = 1
		dst = append(dst, '1')
	case gaugeType:
		l.value = g.seq
		dst = strconv.AppendInt(dst, l.value, 10)
	case timerType:
		l.value = g.seq % 1000
		dst = strconv.AppendInt(dst, l.value, 10)
	case setType:
		dst = strconv.AppendInt(dst, int64(g.conn), 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, g.seq, 10)
	}
	dst = append(dst, g.suffix[t][l.name]...)
	if g.cfg.stamp {
		ts := g.now
		// Stamped back: as many lines as the fraction makes so far.
		if t != gaugeType && float64(g.stamped) < g.cfg.backFrac*float64(g.seq+1) {
			ts -= g.cfg.back
			g.stamped++
		}
		dst = append(dst, "|T"...)
		dst = strconv.AppendInt(dst, ts, 10)
	}
	g.seq++
	return dst, l
}

// gaugeValue is the last value sent to a gauge.
type gaugeValue struct {
	value int64
	set   bool
}

// tally is what was sent, per name index: the expected deliveries.
type tally struct {
	lines    [numTypes]uint64
	counters []float64 // sum of value/rate
	timers   []float64 // number of values, each weighing 1/rate
	sets     []float64 // members (each unique)
	gauges   []gaugeValue
	conflict int // gauges set by two senders (their last value is not known)
}

func newTally(names int) *tally {
	return &tally{
		counters: make([]float64, names),
		timers:   make([]float64, names),
		sets:     make([]float64, names),
		gauges:   make([]gaugeValue, names),
	}
}

// add accounts one line sent; weight is 1/rate.
func (t *tally) add(l line, weight float64) {
	t.lines[l.typ]++
	switch l.typ {
	case counterType:
		t.counters[l.name] += float64(l.value) * weight
	case timerType:
		t.timers[l.name] += weight
	case setType:
		t.sets[l.name]++
	case gaugeType:
		t.gauges[l.name] = gaugeValue{value: l.value, set: true}
	}
}

// merge adds o to t. A gauge both set is counted in conflict.
func (t *tally) merge(o *tally) {
	for i := range t.lines {
		t.lines[i] += o.lines[i]
	}
	for i := range t.counters {
		t.counters[i] += o.counters[i]
		t.timers[i] += o.timers[i]
		t.sets[i] += o.sets[i]
		if o.gauges[i].set {
			if t.gauges[i].set {
				t.conflict++
			}
			t.gauges[i] = o.gauges[i]
		}
	}
	t.conflict += o.conflict
}
