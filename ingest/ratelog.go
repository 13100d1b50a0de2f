package ingest

import (
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// maxLoggedLine is how much of a bad line a log entry quotes.
const maxLoggedLine = 200

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
