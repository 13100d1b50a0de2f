package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// comparison is what arrived at the fake Librato checked against what was sent.
// A unit is one counted thing: a counter's value/rate, a timer value's weight
// 1/rate, a set member. Gauges are checked by their last value.
//
// A set's cardinality is exact only up to the daemon's bound on the members it
// keeps per period (past it the daemon estimates), so when a delivered
// cardinality comes near that bound the sets are left out of the units, lost
// and doubled, and only their relative error is reported.
type comparison struct {
	sent, delivered [numTypes]float64 // units by type (gauges: 0)
	lost, doubled   float64           // units missing or delivered too often, summed over names
	setsEstimated   bool              // sets are not in lost, doubled and units()
	gauges          int               // gauge names sent
	gaugesOK        int               // of those, delivered with the last value sent
	dupes           int               // points (name, tags, time) delivered twice
	sameDupes       int               // of those, copies with the same value: a request resent after it was taken
	other           int               // measurements with names the tool did not send
	wrongType       int               // the tool's names delivered with the wrong shape
	conflicts       int               // gauges two senders set (a bug of the tool)
}

// estimatedShare is how close to the set bound a delivered cardinality may come
// before the sets count as estimated: a HyperLogLog estimate of a count just
// past the bound may fall a little below it.
const estimatedShare = 0.9

// compare checks got against want. setLimit is the daemon's bound on the
// members a set keeps per period.
func compare(want *tally, got *received, setLimit int) comparison {
	c := comparison{dupes: got.dupes, sameDupes: got.sameDup, other: got.other, wrongType: got.wrongTyp,
		conflicts: want.conflict}
	c.setsEstimated = got.maxSet >= estimatedShare*float64(setLimit)
	for _, t := range []metricType{counterType, timerType, setType} {
		exact := t != setType || !c.setsEstimated
		var w []float64
		switch t {
		case counterType:
			w = want.counters
		case timerType:
			w = want.timers
		case setType:
			w = want.sets
		}
		for i, x := range w {
			c.sent[t] += x
			diff := got.sums[t][i] - x
			switch {
			case !exact:
			case math.Abs(diff) <= 1e-9*math.Max(1, x): // the daemon adds in another order
			case diff < 0:
				c.lost -= diff
			default:
				c.doubled += diff
			}
		}
		for i, x := range got.sums[t] {
			c.delivered[t] += x
			if i >= len(w) && exact {
				c.doubled += x // a name never sent
			}
		}
	}
	for i, g := range want.gauges {
		if !g.set {
			continue
		}
		c.gauges++
		if s, ok := got.gauges[i]; ok && s.value == float64(g.value) {
			c.gaugesOK++
		}
	}
	for i := range got.gauges {
		if i >= len(want.gauges) || !want.gauges[i].set {
			c.other++
		}
	}
	return c
}

// units returns the units sent and delivered, over every type checked exactly.
func (c comparison) units() (sent, delivered float64) {
	for t := range numTypes {
		if t == setType && c.setsEstimated {
			continue
		}
		sent += c.sent[t]
		delivered += c.delivered[t]
	}
	return sent, delivered
}

// clean says whether everything sent arrived exactly once.
func (c comparison) clean() bool {
	return c.lost == 0 && c.doubled == 0 && c.gaugesOK == c.gauges && c.dupes == 0 && c.wrongType == 0 &&
		c.conflicts == 0
}

// sendStats counts what the senders sent.
type sendStats struct {
	lines, packets, bytes uint64
	errors                uint64 // failed writes (their lines are not counted as sent)
}

// daemonStats is what the tool measured of a daemon it ran.
type daemonStats struct {
	cpu     time.Duration // user+system CPU time used from the start of sending until the daemon went idle
	peakRSS uint64        // bytes, VmHWM
	idleRSS uint64        // VmRSS before sending (-cardinality); 0: none
}

// result is the outcome of one run.
type result struct {
	proto       string
	output      string // "librato", "otlp" or "collector": who received the traffic
	conns       int
	send        sendStats
	elapsed     time.Duration // of the sending
	cmp         comparison
	fake        fakeStats
	daemon      *daemonStats // nil without -daemon
	kernelDrops int64        // datagrams the kernel dropped on the daemon's port during the run; -1 unknown
	series      int          // -cardinality: series of the fullest period
	spread      bool         // -cardinality: sending outlasted a period
}

// clean says whether everything sent arrived exactly once.
func (r *result) clean() bool {
	return r.cmp.clean()
}

// rate returns the lines sent per second.
func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.send.lines) / r.elapsed.Seconds()
}

// summary is the one line that tells how a run went.
func (r *result) summary() string {
	var b strings.Builder
	secs := r.elapsed.Seconds()
	packets := "datagrams"
	if r.proto == "tcp" {
		packets = "writes"
	}
	pps := 0.0
	if secs > 0 {
		pps = float64(r.send.packets) / secs
	}
	fmt.Fprintf(&b, "sent=%d lines in %.1fs (%s lines/s, %s %s/s) %s conns=%d", r.send.lines, secs,
		si(r.rate()), si(pps), packets, r.proto, r.conns)
	if r.send.errors > 0 {
		fmt.Fprintf(&b, " send_errors=%d", r.send.errors)
	}
	sent, delivered := r.cmp.units()
	lostPct := 0.0
	if sent > 0 {
		lostPct = 100 * r.cmp.lost / sent
	}
	fmt.Fprintf(&b, " delivered=%s/%s units lost=%s (%.3f%%) doubled=%s gauges=%d/%d dup_points=%d",
		num(delivered), num(sent), num(r.cmp.lost), lostPct, num(r.cmp.doubled), r.cmp.gaugesOK, r.cmp.gauges,
		r.cmp.dupes)
	if r.cmp.dupes > 0 {
		fmt.Fprintf(&b, " (%d identical copies)", r.cmp.sameDupes)
	}
	if r.cmp.setsEstimated {
		fmt.Fprintf(&b, " sets=estimated (%s/%s members, %+.2f%%)", num(r.cmp.delivered[setType]), num(r.cmp.sent[setType]),
			100*(r.cmp.delivered[setType]-r.cmp.sent[setType])/max(1, r.cmp.sent[setType]))
	}
	if r.cmp.wrongType > 0 {
		fmt.Fprintf(&b, " wrong_type=%d", r.cmp.wrongType)
	}
	if r.cmp.other > 0 {
		fmt.Fprintf(&b, " other_measurements=%d", r.cmp.other)
	}
	if r.kernelDrops >= 0 {
		fmt.Fprintf(&b, " kernel_drops=%d", r.kernelDrops)
	}
	f := r.fake
	switch r.output {
	case "collector":
		fmt.Fprintf(&b, " collector: %d exports", f.Accepted)
	case "otlp":
		fmt.Fprintf(&b, " otlp: %d requests %d accepted", f.Requests, f.Accepted)
	default:
		fmt.Fprintf(&b, " librato: %d requests %d accepted", f.Requests, f.Accepted)
	}
	if faulted := f.Down + f.Status + f.Dropped + f.Delayed + f.ClientGone + f.Slow; faulted > 0 {
		fmt.Fprintf(&b, " (faults: %d down, %d status, %d dropped, %d delayed, %d gone while delayed, %d slow, %d gone while slow)",
			f.Down, f.Status, f.Dropped, f.Delayed, f.ClientGone, f.Slow, f.LateGone)
	}
	if f.Bad > 0 {
		fmt.Fprintf(&b, " %d bad", f.Bad)
	}
	if d := r.daemon; d != nil && secs > 0 {
		who := "daemon"
		if r.output == "collector" {
			who = "collector"
		}
		fmt.Fprintf(&b, " %s cpu=%.2f cores peak_rss=%dMiB", who, d.cpu.Seconds()/secs, d.peakRSS>>20)
		if d.idleRSS > 0 {
			fmt.Fprintf(&b, " idle_rss=%dMiB series=%d", d.idleRSS>>20, r.series)
			if r.series > 0 {
				fmt.Fprintf(&b, " rss/series=%.0fB", (float64(d.peakRSS)-float64(d.idleRSS))/float64(r.series))
			}
			if r.spread {
				b.WriteString(" (sending outlasted a period: lengthen -period)")
			}
		}
	}
	return b.String()
}

// si formats x with 3 significant digits and a k or M suffix: 85.0k, 2.00M,
// 512.
func si(x float64) string {
	suffix := ""
	switch {
	case x >= 999.5e3:
		x, suffix = x/1e6, "M"
	case x >= 999.5:
		x, suffix = x/1e3, "k"
	}
	prec := 0
	switch {
	case suffix == "":
	case x < 9.995:
		prec = 2
	case x < 99.95:
		prec = 1
	}
	return strconv.FormatFloat(x, 'f', prec, 64) + suffix
}

// num formats a unit count: whole numbers without decimals.
func num(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.3f", x)
}
