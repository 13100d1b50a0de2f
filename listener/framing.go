package listener

import (
	"bytes"
	"io"
)

// framer splits a byte stream into '\n'-terminated lines. It owns one fixed
// buffer of maxLine+1 bytes, so a complete line found in the buffer is never
// longer than maxLine; a line that fills the whole buffer without a '\n' is too
// long, and is skipped up to its '\n'.
type framer struct {
	buf        []byte // len maxLine+1
	start, end int    // pending bytes are buf[start:end]; they never contain '\n'
	discarding bool   // inside a too-long line: drop bytes up to the next '\n'

	// emit receives complete lines joined by '\n', without the final '\n'; it
	// never receives an empty chunk. The slice is only valid during the call.
	emit func(chunk []byte)
	// tooLong is called once per line longer than maxLine.
	tooLong func()
}

// newFramer returns a framer for lines of at most maxLine bytes (excluding the
// '\n'); maxLine must be positive.
func newFramer(maxLine int, emit func([]byte), tooLong func()) *framer {
	return &framer{buf: make([]byte, maxLine+1), emit: emit, tooLong: tooLong}
}

// readOnce does one Read from r and emits every line it completes, as one
// chunk. At io.EOF it emits the final line even without a '\n'. It returns the
// number of bytes read and the Read error; on an error other than io.EOF the
// pending partial line is kept (and dropped if the caller stops reading).
func (f *framer) readOnce(r io.Reader) (int, error) {
	if f.end == len(f.buf) {
		if f.start > 0 {
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		} else {
			// A full buffer holds no '\n': this line is longer than maxLine.
			f.tooLong()
			f.discarding = true
			f.end = 0
		}
	}

	n, err := r.Read(f.buf[f.end:])
	if n < 0 || n > len(f.buf)-f.end {
		n = 0 // A misbehaving Reader; never index past the buffer.
	}
	from := f.end
	f.end += n
	if f.discarding {
		i := bytes.IndexByte(f.buf[from:f.end], '\n')
		if i < 0 {
			f.end = 0 // still inside the long line: drop what was read
		} else {
			f.discarding = false
			f.start = from + i + 1
			from = f.start
		}
	}
	if i := bytes.LastIndexByte(f.buf[from:f.end], '\n'); i >= 0 {
		nl := from + i
		if nl > f.start {
			f.emit(f.buf[f.start:nl])
		}
		f.start = nl + 1
	}
	if err == io.EOF && !f.discarding && f.start < f.end {
		if f.end-f.start > len(f.buf)-1 {
			f.tooLong()
		} else {
			f.emit(f.buf[f.start:f.end])
		}
		f.start = f.end
	}
	if f.start == f.end {
		f.start, f.end = 0, 0
	}
	return n, err
}

// pending reports whether a partial line waits for its '\n' (a too-long line
// being skipped does not count).
func (f *framer) pending() bool {
	return !f.discarding && f.end > f.start
}
