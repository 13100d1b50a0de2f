package parser

import "bytes"

// maxLengthDigits is the most digits of a length in an event header: 9
// digits keep the sum of both lengths within an int even on 32-bit systems.
const maxLengthDigits = 9

// Event is a DogStatsD event:
//
//	_e{title_len,text_len}:title|text|d:timestamp|h:hostname|k:aggregation_key|p:priority|s:source_type|t:alert_type|#tags
//
// Its byte slices point into the line that was parsed: they are valid only
// as long as that buffer is. A slice is nil when its part is absent or
// empty; none is ever empty but not nil.
type Event struct {
	// Title is the title, as written; never empty.
	Title []byte
	// Text is the body, as written: a newline is still the two bytes `\n`
	// (see UnescapeEventText).
	Text []byte
	// Timestamp is the "d:" field in unix seconds, or 0.
	Timestamp int64
	// Host is the "h:" field, the host the event is about.
	Host []byte
	// AggregationKey is the "k:" field, grouping related events.
	AggregationKey []byte
	// Priority is the "p:" field as written; the protocol knows "normal"
	// (its default) and "low". It is not checked.
	Priority []byte
	// SourceType is the "s:" field, the kind of system that sent it.
	SourceType []byte
	// AlertType is the "t:" field as written; the protocol knows "info" (its
	// default), "success", "warning" and "error". It is not checked.
	AlertType []byte
	// Tags is the raw "#" field ("k:v,k2:v2,bare"), not split.
	Tags []byte
}

// ServiceCheck is a DogStatsD service check:
//
//	_sc|name|status|d:timestamp|h:hostname|#tags|m:message
//
// Its byte slices point into the line that was parsed, and are nil when
// their part is absent or empty, as for Event.
type ServiceCheck struct {
	// Name is the name of the check, as written; never empty.
	Name []byte
	// Status is 0 (OK), 1 (warning), 2 (critical) or 3 (unknown).
	Status int
	// Timestamp is the "d:" field in unix seconds, or 0.
	Timestamp int64
	// Host is the "h:" field, the host the check is about.
	Host []byte
	// Message is the "m:" field, as written: a newline is still the two
	// bytes `\n` (see UnescapeEventText), and datadog-go writes "m:" inside
	// a message as `m\:`.
	Message []byte
	// Tags is the raw "#" field ("k:v,k2:v2,bare"), not split.
	Tags []byte
}

// ParseEvent parses a DogStatsD event line (one that Parse reports as
// ErrEvent). It does not allocate: the Event points into line. Spaces,
// tabs, '\r' and '\n' at either end of the line are ignored, as by Parse.
//
// The header "_e{title_len,text_len}:" holds two decimal lengths of at most
// 9 digits; a title length of 0 is refused. The title and then the text are
// each taken by their declared length in bytes when that length ends
// exactly at a '|' or at the end of the line, so that either may hold '|'.
// Otherwise the part runs to the next '|' (or the end of the line): some
// clients (hot-shots) count UTF-16 units rather than bytes, so their lengths
// are short for non-ASCII text, which still parses this way. A text length
// of 0 means an empty text, the fields following the title directly. A line
// that stops after the title has no text.
//
// The fields after the text come in any order: "d:<unix seconds>"
// (Timestamp: 1 to 18 decimal digits), "h:", "k:", "p:", "s:", "t:" and
// "#" (kept as written). Empty and unknown fields ("c:<container>",
// "e:...", "card:...") are ignored; when a field repeats, the last one wins.
//
// A line that does not start with "_e{", has a malformed header, an empty
// title or a malformed timestamp is refused with ErrBadEvent.
func ParseEvent(line []byte) (Event, error) {
	line = trimSpace(line)
	if !bytes.HasPrefix(line, []byte("_e{")) {
		return Event{}, ErrBadEvent
	}
	titleLen, p, ok := parseLength(line[3:], ',')
	if !ok {
		return Event{}, ErrBadEvent
	}
	textLen, p, ok := parseLength(p, '}')
	if !ok || titleLen == 0 || len(p) == 0 || p[0] != ':' {
		return Event{}, ErrBadEvent
	}
	var ev Event
	ev.Title, p = cutPart(p[1:], titleLen)
	if len(ev.Title) == 0 {
		return Event{}, ErrBadEvent
	}
	if len(p) > 0 {
		p = p[1:] // the '|' after the title
		if textLen > 0 {
			ev.Text, p = cutPart(p, textLen)
			ev.Text = nilIfEmpty(ev.Text)
		}
	}
	for len(p) > 0 {
		var f []byte
		f, p = nextField(p)
		switch {
		case len(f) == 0:
			continue
		case f[0] == '#':
			ev.Tags = nilIfEmpty(f[1:])
			continue
		case len(f) < 2 || f[1] != ':':
			continue // not a known field
		}
		v := nilIfEmpty(f[2:])
		switch f[0] {
		case 'd':
			ts, e := parseTimestamp(v)
			if e != 0 {
				return Event{}, ErrBadEvent
			}
			ev.Timestamp = ts
		case 'h':
			ev.Host = v
		case 'k':
			ev.AggregationKey = v
		case 'p':
			ev.Priority = v
		case 's':
			ev.SourceType = v
		case 't':
			ev.AlertType = v
		}
	}
	return ev, nil
}

// ParseServiceCheck parses a DogStatsD service check line (one that Parse
// reports as ErrServiceCheck). It does not allocate: the ServiceCheck
// points into line. Spaces, tabs, '\r' and '\n' at either end of the line
// are ignored, as by Parse.
//
// After "_sc|" come the name, which must not be empty, and the status, one
// digit from 0 to 3. The fields after them come in any order:
// "d:<unix seconds>" (Timestamp: 1 to 18 decimal digits), "h:", "m:" and
// "#" (kept as written); each runs to the next '|'. Empty and unknown fields
// ("c:<container>", ...) are ignored; when a field repeats, the last one
// wins.
//
// A line that does not start with "_sc|", or has an empty name, a missing or
// bad status or a malformed timestamp, is refused with ErrBadServiceCheck.
func ParseServiceCheck(line []byte) (ServiceCheck, error) {
	line = trimSpace(line)
	if !bytes.HasPrefix(line, []byte("_sc|")) {
		return ServiceCheck{}, ErrBadServiceCheck
	}
	name, p := nextField(line[4:])
	status, p := nextField(p)
	if len(name) == 0 || len(status) != 1 || status[0] < '0' || status[0] > '3' {
		return ServiceCheck{}, ErrBadServiceCheck
	}
	sc := ServiceCheck{Name: name, Status: int(status[0] - '0')}
	for len(p) > 0 {
		var f []byte
		f, p = nextField(p)
		switch {
		case len(f) == 0:
			continue
		case f[0] == '#':
			sc.Tags = nilIfEmpty(f[1:])
			continue
		case len(f) < 2 || f[1] != ':':
			continue // not a known field
		}
		v := nilIfEmpty(f[2:])
		switch f[0] {
		case 'd':
			ts, e := parseTimestamp(v)
			if e != 0 {
				return ServiceCheck{}, ErrBadServiceCheck
			}
			sc.Timestamp = ts
		case 'h':
			sc.Host = v
		case 'm':
			sc.Message = v
		}
	}
	return sc, nil
}

// UnescapeEventText appends src to dst with each two-byte sequence `\n`
// (a backslash and the letter n) replaced by a newline, and returns the
// extended slice, as the DogStatsD agent decodes event texts. Nothing else
// is unescaped. It does not allocate when dst has room.
func UnescapeEventText(dst, src []byte) []byte {
	for {
		i := bytes.Index(src, []byte(`\n`))
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(dst, src[:i]...)
		dst = append(dst, '\n')
		src = src[i+2:]
	}
}

// parseLength parses the decimal length at the start of p, which must be 1
// to maxLengthDigits digits followed by end, and returns it and what
// follows end.
func parseLength(p []byte, end byte) (n int, rest []byte, ok bool) {
	i := 0
	for ; i < len(p) && p[i] >= '0' && p[i] <= '9'; i++ {
		if i == maxLengthDigits {
			return 0, nil, false
		}
		n = n*10 + int(p[i]-'0')
	}
	if i == 0 || i == len(p) || p[i] != end {
		return 0, nil, false
	}
	return n, p[i+1:], true
}

// cutPart cuts the title or text off the start of p: its first n bytes when
// they end at a '|' or at the end of p, else everything up to the first
// '|'. rest is empty or starts with that '|'.
func cutPart(p []byte, n int) (part, rest []byte) {
	if n <= len(p) && (n == len(p) || p[n] == '|') {
		return p[:n], p[n:]
	}
	if i := bytes.IndexByte(p, '|'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, nil
}

// nextField splits p at its first '|': f is what comes before it, rest what
// follows it (nil when p has no '|').
func nextField(p []byte) (f, rest []byte) {
	if i := bytes.IndexByte(p, '|'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, nil
}

// nilIfEmpty returns b, or nil when b is empty.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
