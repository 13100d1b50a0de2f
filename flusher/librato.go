package flusher

import (
	"context"
	"errors"
	"math"
	"slices"

	"github.com/libratod/libratod/librato"
)

// libratoOutput is the Librato output: measurements, sent with the
// Sender of the settings (a librato.Client).
type libratoOutput struct{}

func (libratoOutput) name() string                { return "librato" }
func (libratoOutput) size(b *librato.Batch) int   { return len(b.Measurements) }
func (libratoOutput) unix(b *librato.Batch) int64 { return b.Time }
func (libratoOutput) kind(s *settings) uint8      { return uint8(s.cfg.API) }
func (libratoOutput) firstName(b *librato.Batch) string {
	if len(b.Measurements) == 0 {
		return ""
	}
	return b.Measurements[0].Name
}

func (libratoOutput) build(l *lane[*librato.Batch], s *settings, p period, emit func(*librato.Batch)) Result {
	res := measurements(l, s, p.snap, p.totals, func(ms []librato.Measurement) {
		emit(s.batch(ms, p.start))
	})
	return res
}

func (libratoOutput) send(ctx context.Context, l *lane[*librato.Batch], s *settings, b *librato.Batch) (accepted, *refusal) {
	res, err := s.dst.Send(ctx, b)
	if err == nil {
		l.m.setRateLimit(res.RateLimit)
		a := accepted{status: res.StatusCode, sent: res.Sent, skipped: res.Skipped, failed: res.Failed, errors: res.Errors}
		if res.Skipped > 0 {
			a.skippedName = unsendable(b)
		}
		return a, nil
	}
	le := libratoError(err)
	l.m.setRateLimit(le.RateLimit)
	return accepted{}, &refusal{
		status:      le.StatusCode,
		message:     le.Message,
		reason:      le.Error(),
		retryable:   le.Retryable,
		rateLimited: le.RateLimited,
		credentials: credentials(le),
		splittable:  splittable(le.StatusCode),
		retryAfter:  le.RetryAfter,
		conflicts:   le.TypeConflicts,
	}
}

// libratoError returns err as a *librato.Error; any other error is taken
// as a transport failure, worth retrying.
func libratoError(err error) *librato.Error {
	var le *librato.Error
	if !errors.As(err, &le) {
		le = &librato.Error{Message: err.Error(), Retryable: true, Err: err}
	}
	return le
}

func (libratoOutput) halves(b *librato.Batch) (*librato.Batch, *librato.Batch) {
	h := len(b.Measurements) / 2
	lo, hi := *b, *b
	lo.Measurements, hi.Measurements = b.Measurements[:h:h], b.Measurements[h:]
	return &lo, &hi
}

func (libratoOutput) join(a, b *librato.Batch) *librato.Batch {
	r := *a
	r.Measurements = append(slices.Clip(a.Measurements), b.Measurements...)
	return &r
}

func (libratoOutput) without(b *librato.Batch, drop func(string) bool) (*librato.Batch, int) {
	rest := *b
	rest.Measurements = make([]librato.Measurement, 0, len(b.Measurements))
	for _, m := range b.Measurements {
		if !drop(m.Name) {
			rest.Measurements = append(rest.Measurements, m)
		}
	}
	return &rest, len(b.Measurements) - len(rest.Measurements)
}

// identity is the measurement's name, then its source (legacy API) or
// its tags (tagged API), the batch's when it has none of its own.
func (libratoOutput) identity(dst []byte, b *librato.Batch, i int) []byte {
	m := &b.Measurements[i]
	dst = append(dst, m.Name...)
	if b.Source != "" || m.Source != "" {
		src := m.Source
		if src == "" {
			src = b.Source
		}
		dst = append(append(dst, 0, 's', 0), src...)
	}
	tags := m.Tags
	if len(tags) == 0 {
		tags = b.Tags
	}
	for _, t := range tags {
		dst = append(append(append(append(dst, 0), t.Name...), 0), t.Value...)
	}
	return dst
}

// filter returns b itself when it keeps every measurement.
func (libratoOutput) filter(b *librato.Batch, keep func(int) bool) (*librato.Batch, int) {
	var kept []librato.Measurement // nil until one is left out
	for i, m := range b.Measurements {
		switch {
		case keep(i):
			if kept != nil {
				kept = append(kept, m)
			}
		case kept == nil:
			kept = append(make([]librato.Measurement, 0, len(b.Measurements)-1), b.Measurements[:i]...)
		}
	}
	if kept == nil {
		return b, 0
	}
	rest := *b
	rest.Measurements = kept
	return &rest, len(b.Measurements) - len(kept)
}

func (libratoOutput) marshal(dst []byte, b *librato.Batch) []byte {
	return librato.MarshalBatch(dst, b)
}

func (libratoOutput) unmarshal(p []byte) (*librato.Batch, error) {
	return librato.UnmarshalBatch(p)
}

// unsendable returns the name of the first measurement of b that the
// client cannot encode, as far as can be told here, or "".
func unsendable(b *librato.Batch) string {
	bad := func(v float64) bool { return !(math.Abs(v) <= 1e126) }
	for _, m := range b.Measurements {
		if m.Name == "" {
			return "(empty name)"
		}
		if len(m.Tags) > librato.MaxTags || bad(m.Value) || bad(m.Sum) || bad(m.Min) || bad(m.Max) ||
			bad(m.SumSquares) || bad(m.Last) {
			return m.Name
		}
	}
	return ""
}
