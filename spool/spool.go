package spool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxBytes is the size limit of a spool whose Config.MaxBytes is
// zero: 1 GiB.
const DefaultMaxBytes = 1 << 30

// MaxPayload is the largest payload a record may carry: 64 MiB.
const MaxPayload = 64 << 20

// Reasons for dropping records, the keys of Stats.Dropped.
const (
	// ReasonFull: the spool was past MaxBytes and the oldest records went
	// to make room.
	ReasonFull = "spool_full"
	// ReasonTooOld: DropOlderThan removed the record.
	ReasonTooOld = "too_old"
)

const (
	lockName   = "lock"
	segSuffix  = ".spool"
	ackSuffix  = ".ack"
	minSegment = 64 << 10
	maxSegment = 16 << 20
)

// Errors a caller may test for with errors.Is.
var (
	// ErrWrite marks every error of Append: the record is not in the
	// spool and the caller should keep it elsewhere (in memory). The
	// underlying error (syscall.ENOSPC for a full disk, ...) is wrapped too.
	ErrWrite = errors.New("spool: write failed")
	// ErrLocked: another process (or another Spool of this process) holds
	// the directory.
	ErrLocked = errors.New("spool: directory locked")
	// ErrTooLarge: the record can never fit (payload past MaxPayload, or
	// its frame past MaxBytes). It is returned wrapped together with
	// ErrWrite.
	ErrTooLarge = errors.New("spool: record too large")
	// ErrRead marks an error of Take that left records in the spool: a
	// segment file could not be opened or read (too many open files, EIO,
	// ...). They are taken by a later Take once the file can be read.
	ErrRead = errors.New("spool: read failed")
	// ErrClosed: the spool was closed.
	ErrClosed = errors.New("spool: closed")
	// ErrVersion: a segment file has a format version this code does not
	// read; Open refuses rather than delete or skip it.
	ErrVersion = errors.New("spool: unknown segment format version")
)

// Config configures a Spool.
type Config struct {
	// Dir is the spool directory, created (mode 0700) if missing. It
	// belongs to one Spool at a time (an flock on Dir/lock).
	Dir string
	// MaxBytes bounds the spool's files; past it the oldest segments go.
	// Zero means DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which a segment file is closed and a new
	// one begun, and so the granularity of eviction past MaxBytes. Zero
	// means MaxBytes/8 within [64 KiB, 16 MiB]; it never exceeds MaxBytes.
	SegmentBytes int64
	// NoSync skips the fsync(2) after each Append (and of the directory
	// after a segment is created). An Append then survives the process
	// being killed but not a power loss or kernel crash before the kernel
	// writes it back (usually within 30 s); Sync forces it. An fsync per
	// Append costs 0.3-3 ms for a 40 KB request on the development
	// machine, against 30-80 us without and 80 us with one Sync per 3,334
	// appends (BenchmarkAppend): a caller that appends many requests at
	// once (a whole period's while Librato is down) should set NoSync and
	// call Sync once after the batch.
	NoSync bool
}

// Record is one spooled item.
type Record struct {
	// Time is the time the payload belongs to (a period), unix seconds.
	Time int64
	// Measurements is the number of measurements in the payload, for
	// accounting (at most 2^32-1).
	Measurements int
	// Kind is free for the caller, e.g. the payload's encoding or API.
	Kind uint8
	// Payload is the opaque content. Append copies it; Take returns a
	// fresh slice owned by the caller.
	Payload []byte
}

// ID names a record in the spool, for Ack and Release.
type ID struct {
	seq uint64 // segment number
	idx uint32 // index of the record in the segment
}

// Entry is a record taken from the spool.
type Entry struct {
	ID ID
	Record
}

// Count is a number of records and of the measurements they hold.
type Count struct {
	Records, Measurements int64
}

func (c *Count) add(measurements uint32) {
	c.Records++
	c.Measurements += int64(measurements)
}

// Stats is a snapshot of a spool's state and of its totals since Open.
type Stats struct {
	// Bytes is the size of the spool's segment and acknowledgement files.
	Bytes int64
	// Segments is the number of segment files.
	Segments int
	// Pending is what is stored and not acknowledged, including records
	// taken and not yet acknowledged or released.
	Pending Count
	// InFlight is what Take returned and is not yet acknowledged or
	// released.
	InFlight Count
	// Appended is what Append stored since Open.
	Appended Count
	// Replayed is what Open found unacknowledged in existing segments (and
	// kept, within MaxBytes).
	Replayed Count
	// Acknowledged is what Ack removed since Open.
	Acknowledged Count
	// Dropped is what was removed unacknowledged, by reason (ReasonFull,
	// ReasonTooOld).
	Dropped map[string]Count
	// CorruptRecords and CorruptBytes count damaged data skipped since
	// Open: each run of bytes between valid records (a torn or damaged
	// record) is one corrupt record.
	CorruptRecords, CorruptBytes int64
	// WriteErrors counts failed Appends; AckErrors failed writes of
	// acknowledgements (those records may be resent after a restart).
	WriteErrors, AckErrors int64
	// ReadErrors counts segment files that Take could not open or read
	// (EMFILE, EIO, ...): their records stay in the spool and later Takes
	// try them again.
	ReadErrors int64
}

// record states
const (
	pending uint8 = iota
	inFlight
	done
)

// recInfo is the in-memory index entry of one record; payloads stay on
// disk until Take.
type recInfo struct {
	off   uint32
	n     uint32
	time  int64
	count uint32
	kind  uint8
	state uint8
}

// segment is one segment file and the index of its records.
type segment struct {
	seq      uint64
	size     int64 // bytes of the segment file (next write offset when active)
	ackSize  int64 // bytes of the acknowledgement file
	recs     []recInfo
	first    int // records before first are done
	open     int // records not done
	inflight int
	dirty    bool     // written since the last fsync (NoSync)
	f        *os.File // read (and, when active, write) handle; nil until needed
	ack      *os.File // acknowledgement file, opened on the first Ack
}

// Spool is a directory of segment files holding records oldest first. It
// is safe for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	fsync    bool
	lock     *os.File
	// syncFile is (*os.File).Sync; tests observe it.
	syncFile func(*os.File) error
	// openSeg (os.Open) and readAt ((*os.File).ReadAt) read segment files
	// at Take; tests inject read errors through them.
	openSeg func(name string) (*os.File, error)
	readAt  func(f *os.File, b []byte, off int64) (int, error)

	mu       sync.Mutex
	closed   bool
	segs     []*segment // oldest first
	active   *segment   // the last of segs, appended to; nil until the next Append
	nextSeq  uint64
	bytes    int64
	detached map[ID]uint32 // taken records whose segment was evicted: their measurements
	buf      []byte
	st       Stats
}

func segPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%09d%s", seq, segSuffix))
}

func ackPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%09d%s", seq, ackSuffix))
}

// Open opens (creating it if needed) the spool in cfg.Dir, locks it, and
// reads the index of the records that earlier processes left
// unacknowledged; they come first out of Take. Segments whose records are
// all acknowledged are removed. Damaged data is skipped and counted in
// Stats. ctx ends the scan early (Open then fails).
func Open(ctx context.Context, cfg Config) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("spool: no directory given")
	}
	s := &Spool{
		dir:      cfg.Dir,
		maxBytes: cfg.MaxBytes,
		segBytes: cfg.SegmentBytes,
		fsync:    !cfg.NoSync,
		detached: make(map[ID]uint32),
		nextSeq:  1,
		syncFile: (*os.File).Sync,
		openSeg:  os.Open,
		readAt:   (*os.File).ReadAt,
	}
	if s.maxBytes <= 0 {
		s.maxBytes = DefaultMaxBytes
	}
	if s.segBytes <= 0 {
		s.segBytes = min(max(s.maxBytes/8, minSegment), maxSegment)
	}
	s.segBytes = min(s.segBytes, s.maxBytes, 1<<30)
	s.st.Dropped = map[string]Count{ReasonFull: {}, ReasonTooOld: {}}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create directory: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	if err := s.load(ctx); err != nil {
		s.closeFiles()
		lock.Close()
		return nil, err
	}
	return s, nil
}

// load indexes the segments in the directory.
func (s *Spool) load(ctx context.Context) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: read directory: %w", err)
	}
	var segs, acks []uint64
	for _, e := range ents {
		name := e.Name()
		if seq, ok := parseName(name, segSuffix); ok {
			segs = append(segs, seq)
		} else if seq, ok := parseName(name, ackSuffix); ok {
			acks = append(acks, seq)
		}
	}
	slices.Sort(segs)
	var data []byte
	for _, seq := range segs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("spool: open: %w", err)
		}
		s.nextSeq = max(s.nextSeq, seq+1)
		seg, err := s.loadSegment(seq, &data)
		if err != nil {
			return err
		}
		if seg == nil {
			continue
		}
		s.segs = append(s.segs, seg)
		s.bytes += seg.size + seg.ackSize
	}
	// MaxBytes may have been lowered since the files were written.
	for s.bytes > s.maxBytes && len(s.segs) > 0 {
		s.evict(s.segs[0])
	}
	for _, g := range s.segs {
		for _, r := range g.recs {
			if r.state == pending {
				s.st.Replayed.add(r.count)
			}
		}
	}
	// Acknowledgements of segments that are gone (removed just before a
	// crash) serve nothing.
	for _, seq := range acks {
		s.nextSeq = max(s.nextSeq, seq+1)
		if _, ok := slices.BinarySearch(segs, seq); !ok {
			_ = os.Remove(ackPath(s.dir, seq))
		}
	}
	return nil
}

// parseName returns the segment number of a file name with the suffix,
// written as segPath and ackPath write it; other names are not the
// spool's.
func parseName(name, suffix string) (uint64, bool) {
	num, ok := strings.CutSuffix(name, suffix)
	if !ok || num == "" || strings.Trim(num, "0123456789") != "" {
		return 0, false
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	return seq, err == nil && seq > 0 && fmt.Sprintf("%09d", seq) == num
}

// loadSegment indexes one segment file and its acknowledgements. It
// removes the files and returns nil when nothing in it is left to send.
func (s *Spool) loadSegment(seq uint64, buf *[]byte) (*segment, error) {
	path := segPath(s.dir, seq)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("spool: open segment: %w", err)
	}
	size := fi.Size()
	if size > 1<<31 {
		// Not written by this package (segments stay below 1 GiB plus a
		// record): refuse rather than guess.
		return nil, fmt.Errorf("spool: segment %s is %d bytes, larger than any this package writes; move it away", path, size)
	}
	if int64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	data := (*buf)[:size]
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("spool: read segment: %w", err)
	}
	start := segHeaderLen
	switch st, v := parseSegHeader(data); st {
	case headerVersion:
		return nil, fmt.Errorf("spool: segment %s has format version %d, this program reads version %d; move it away or use a matching version: %w",
			path, v, version, ErrVersion)
	case headerBad:
		start = 0
	}
	seg := &segment{seq: seq, size: size}
	bad, badBytes := scan(data, start, func(fr frame) {
		seg.recs = append(seg.recs, recInfo{
			off: uint32(fr.off), n: uint32(fr.n), time: fr.time, count: fr.count, kind: fr.kind,
		})
	})
	s.st.CorruptRecords += int64(bad)
	s.st.CorruptBytes += int64(badBytes)
	seg.open = len(seg.recs)

	ack, err := os.ReadFile(ackPath(s.dir, seq))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool: read acknowledgements: %w", err)
	}
	seg.ackSize = int64(len(ack))
	end := parseAcks(ack, seq, func(off uint32) {
		i, ok := slices.BinarySearchFunc(seg.recs, off, func(r recInfo, off uint32) int { return cmp.Compare(r.off, off) })
		if ok && seg.recs[i].state != done {
			seg.recs[i].state = done
			seg.open--
		}
	})
	if seg.open == 0 {
		s.removeFiles(seq)
		return nil, nil
	}
	// A torn tail would put the entries appended next out of step; should
	// the trim fail, parseAcks finds them all the same.
	if end < len(ack) && os.Truncate(ackPath(s.dir, seq), int64(end)) == nil {
		seg.ackSize = int64(end)
	}
	seg.advance()
	return seg, nil
}

// advance moves first past the records that are done.
func (g *segment) advance() {
	for g.first < len(g.recs) && g.recs[g.first].state == done {
		g.first++
	}
}

// removeFiles deletes a segment file, then its acknowledgements: a crash
// in between leaves an acknowledgement file alone, which Open removes.
func (s *Spool) removeFiles(seq uint64) {
	_ = os.Remove(segPath(s.dir, seq))
	_ = os.Remove(ackPath(s.dir, seq))
}

// Append stores r after every record already stored and returns its ID.
// Unless Config.NoSync is set, the record is on stable storage when Append
// returns. Past MaxBytes the oldest segments are removed first (counted
// under ReasonFull). On failure nothing of r is left in the spool and the
// error wraps ErrWrite and the cause; Append does not retry.
func (s *Spool) Append(r Record) (ID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ID{}, fmt.Errorf("%w: %w", ErrWrite, ErrClosed)
	}
	id, err := s.append(&r)
	if err != nil {
		s.st.WriteErrors++
	}
	return id, err
}

func (s *Spool) append(r *Record) (ID, error) {
	if len(r.Payload) > MaxPayload || r.Measurements < 0 || int64(r.Measurements) > 1<<32-1 {
		return ID{}, fmt.Errorf("%w: payload of %d bytes, %d measurements: %w",
			ErrWrite, len(r.Payload), r.Measurements, ErrTooLarge)
	}
	frameLen := int64(frameHeader + len(r.Payload))
	if frameLen+segHeaderLen > s.maxBytes {
		return ID{}, fmt.Errorf("%w: a record of %d bytes cannot fit in max bytes %d: %w",
			ErrWrite, frameLen, s.maxBytes, ErrTooLarge)
	}
	if a := s.active; a != nil && len(a.recs) > 0 && a.size+frameLen > s.segBytes {
		s.seal()
	}
	need := frameLen
	if s.active == nil {
		need += segHeaderLen
	}
	for s.bytes+need > s.maxBytes && len(s.segs) > 0 {
		if s.segs[0] == s.active {
			s.seal() // removes it if nothing in it is left to send
			need += segHeaderLen
			continue
		}
		s.evict(s.segs[0])
	}
	created := false
	if s.active == nil {
		if err := s.create(); err != nil {
			return ID{}, err
		}
		created = true
	}
	a := s.active
	s.buf = appendFrame(s.buf[:0], r)
	_, err := a.f.WriteAt(s.buf, a.size)
	if err == nil && s.fsync {
		err = s.syncFile(a.f)
	}
	if err != nil {
		// Leave no partial record behind; should this fail too, the next
		// record overwrites it, and Open would skip what remains.
		_ = a.f.Truncate(a.size)
		if created {
			s.dropActive()
		}
		return ID{}, fmt.Errorf("%w: append to %s: %w", ErrWrite, segPath(s.dir, a.seq), err)
	}
	a.recs = append(a.recs, recInfo{
		off: uint32(a.size), n: uint32(len(r.Payload)), time: r.Time, count: uint32(r.Measurements), kind: r.Kind,
	})
	a.open++
	a.dirty = !s.fsync
	a.size += frameLen
	s.bytes += frameLen
	s.st.Appended.add(uint32(r.Measurements))
	if len(s.buf) > 1<<20 {
		s.buf = nil // do not keep a large buffer for the rare large record
	}
	return ID{seq: a.seq, idx: uint32(len(a.recs) - 1)}, nil
}

// create begins a new active segment.
func (s *Spool) create() error {
	seq := s.nextSeq
	path := segPath(s.dir, seq)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: create segment: %w", ErrWrite, err)
	}
	h := segHeader()
	_, err = f.WriteAt(h[:], 0)
	if err == nil && s.fsync {
		if err = s.syncFile(f); err == nil {
			err = syncDir(s.dir)
		}
	}
	if err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("%w: create segment %s: %w", ErrWrite, path, err)
	}
	s.nextSeq++
	seg := &segment{seq: seq, size: segHeaderLen, f: f, dirty: !s.fsync}
	s.segs = append(s.segs, seg)
	s.active = seg
	s.bytes += segHeaderLen
	return nil
}

// dropActive removes the active segment, which holds no record.
func (s *Spool) dropActive() {
	a := s.active
	s.active = nil
	s.segs = s.segs[:len(s.segs)-1]
	s.closeSeg(a)
	s.removeFiles(a.seq)
	s.bytes -= a.size + a.ackSize
}

// seal ends appends to the active segment, and removes it if nothing in it
// is left to send.
func (s *Spool) seal() {
	a := s.active
	s.active = nil
	if a.open == 0 {
		s.remove(a)
	}
}

// syncDir makes the creation or removal of files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// segment returns the segment numbered seq, or nil.
func (s *Spool) segment(seq uint64) *segment {
	i, ok := slices.BinarySearchFunc(s.segs, seq, func(g *segment, seq uint64) int { return cmp.Compare(g.seq, seq) })
	if !ok {
		return nil
	}
	return s.segs[i]
}

// remove deletes a segment whose records are all done.
func (s *Spool) remove(g *segment) {
	i := slices.Index(s.segs, g)
	if i < 0 {
		return
	}
	s.segs = slices.Delete(s.segs, i, i+1)
	if g == s.active {
		s.active = nil
	}
	s.closeSeg(g)
	s.removeFiles(g.seq)
	s.bytes -= g.size + g.ackSize
}

// evict removes a segment whatever its records' state: the records not
// done count as dropped for lack of room; those in flight are remembered
// so that Release counts them and Ack does not.
func (s *Spool) evict(g *segment) {
	full := s.st.Dropped[ReasonFull]
	for i, r := range g.recs {
		switch r.state {
		case pending:
			full.add(r.count)
		case inFlight:
			s.detached[ID{seq: g.seq, idx: uint32(i)}] = r.count
		}
	}
	s.st.Dropped[ReasonFull] = full
	s.remove(g)
}

func (s *Spool) closeSeg(g *segment) {
	if g.f != nil {
		g.f.Close()
		g.f = nil
	}
	if g.ack != nil {
		g.ack.Close()
		g.ack = nil
	}
}

// Take returns up to n records, oldest first, that are neither
// acknowledged nor already taken. Each must later be acknowledged (Ack,
// once delivered) or released (Release, to be taken again).
//
// A record proven damaged since Open (its framing or checksum, a file cut
// short or removed behind the spool's back) is skipped for good and
// counted as corrupt, so that one bad spot never stops the records behind
// it. A segment file that cannot be opened or read (too many open files,
// EIO, ...) loses nothing: its records stay where they are, counted in
// Stats.ReadErrors, and later Takes try them again; meanwhile the records
// of the segments after it are taken. The error then wraps ErrRead (and
// the cause); otherwise it reports the first damage found. The records
// returned are valid all the same.
func (s *Spool) Take(n int) ([]Entry, error) {
	return s.take(n, -1)
}

// TakeKind is Take of the records of kind alone: it returns the oldest
// records of that kind not yet taken, at most n, and leaves the others
// where they are, for Take.
func (s *Spool) TakeKind(kind uint8, n int) ([]Entry, error) {
	return s.take(n, int(kind))
}

// take is Take of the records of kind, or of every kind when kind < 0.
func (s *Spool) take(n, kind int) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var out []Entry
	var rerr error
	for si := 0; si < len(s.segs) && len(out) < n; si++ {
		g := s.segs[si]
		if g.open == g.inflight {
			continue
		}
		for i := g.first; i < len(g.recs) && len(out) < n; i++ {
			r := &g.recs[i]
			if r.state != pending || (kind >= 0 && int(r.kind) != kind) {
				continue
			}
			p, retry, err := s.read(g, r)
			if retry {
				// Leave this segment as it is until a later Take.
				s.st.ReadErrors++
				s.dropHandle(g)
				if !errors.Is(rerr, ErrRead) {
					rerr = fmt.Errorf("%w: %w", ErrRead, err)
				}
				break
			}
			if err != nil && rerr == nil {
				rerr = err
			}
			if p == nil {
				s.st.CorruptRecords++
				s.st.CorruptBytes += frameHeader + int64(r.n)
				_ = s.finish(g, i) // an acknowledgement lost here only brings the record back
				continue
			}
			r.state = inFlight
			g.inflight++
			out = append(out, Entry{
				ID:     ID{seq: g.seq, idx: uint32(i)},
				Record: Record{Time: r.time, Measurements: int(r.count), Kind: r.kind, Payload: p},
			})
		}
		if g.open == 0 {
			s.remove(g)
			si--
		}
	}
	return out, rerr
}

// read returns the payload of r, or nil if the record cannot be read back
// intact, with the error if reading failed. retry reports an error that
// proves nothing about the record (it may pass): the record must stay.
func (s *Spool) read(g *segment, r *recInfo) (p []byte, retry bool, err error) {
	if g.f == nil {
		f, err := s.openSeg(segPath(s.dir, g.seq))
		if err != nil {
			// A file that is gone will not come back.
			return nil, !errors.Is(err, fs.ErrNotExist), fmt.Errorf("spool: take: %w", err)
		}
		g.f = f
	}
	b := make([]byte, frameHeader+int(r.n))
	if _, err := s.readAt(g.f, b, int64(r.off)); err != nil {
		// io.EOF: the file is shorter than the record, cut since Open.
		return nil, !errors.Is(err, io.EOF), fmt.Errorf("spool: take from %s: %w", segPath(s.dir, g.seq), err)
	}
	fr, ok := parseFrame(b, 0)
	if !ok || fr.n != int(r.n) || fr.time != r.time || fr.count != r.count || fr.kind != r.kind {
		return nil, false, nil
	}
	return b[frameHeader:], false, nil
}

// dropHandle closes the read handle of g after a read error, so that the
// next Take opens the file afresh; the active segment, and one with
// unsynced appends, keep theirs.
func (s *Spool) dropHandle(g *segment) {
	if g != s.active && !g.dirty && g.f != nil {
		g.f.Close()
		g.f = nil
	}
}

// finish marks record i of g done and writes its acknowledgement; the
// caller removes g when nothing is left in it.
func (s *Spool) finish(g *segment, i int) error {
	r := &g.recs[i]
	if r.state == inFlight {
		g.inflight--
	}
	r.state = done
	g.open--
	g.advance()
	if g.open == 0 {
		return nil // the files go
	}
	if g.ack == nil {
		f, err := os.OpenFile(ackPath(s.dir, g.seq), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			s.st.AckErrors++
			return fmt.Errorf("spool: acknowledge: %w", err)
		}
		g.ack = f
	}
	e := ackEntry(g.seq, r.off)
	if _, err := g.ack.Write(e[:]); err != nil {
		s.st.AckErrors++
		return fmt.Errorf("spool: acknowledge in %s: %w", ackPath(s.dir, g.seq), err)
	}
	g.ackSize += ackEntryLen
	s.bytes += ackEntryLen
	return nil
}

// Ack removes delivered records: they will not be taken again, in this
// process or after a restart. A segment whose records are all done is
// deleted. IDs unknown or already acknowledged are ignored. An error means
// an acknowledgement could not be written: the records are gone from this
// process but may be taken again after a restart.
func (s *Spool) Ack(ids ...ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var errs error
	for _, id := range ids {
		if _, ok := s.detached[id]; ok {
			delete(s.detached, id)
			continue
		}
		g := s.segment(id.seq)
		if g == nil || int(id.idx) >= len(g.recs) || g.recs[id.idx].state == done {
			continue
		}
		s.st.Acknowledged.add(g.recs[id.idx].count)
		if err := s.finish(g, int(id.idx)); err != nil && errs == nil {
			errs = err
		}
		if g.open == 0 {
			s.remove(g)
		}
	}
	return errs
}

// Release returns taken records to the spool undelivered: the next Take
// returns them again, in their place. A released record whose segment was
// evicted meanwhile (past MaxBytes) is counted as dropped.
func (s *Spool) Release(ids ...ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if n, ok := s.detached[id]; ok {
			delete(s.detached, id)
			c := s.st.Dropped[ReasonFull]
			c.add(n)
			s.st.Dropped[ReasonFull] = c
			continue
		}
		g := s.segment(id.seq)
		if g == nil || int(id.idx) >= len(g.recs) || g.recs[id.idx].state != inFlight {
			continue
		}
		g.recs[id.idx].state = pending
		g.inflight--
	}
}

// DropOlderThan removes the records not taken whose Time is before t and
// returns what it removed (counted under ReasonTooOld). The error, as for
// Ack, means an acknowledgement could not be written.
func (s *Spool) DropOlderThan(t time.Time) (Count, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c Count
	if s.closed {
		return c, ErrClosed
	}
	cut := t.Unix()
	var errs error
	for si := 0; si < len(s.segs); si++ {
		g := s.segs[si]
		for i := g.first; i < len(g.recs); i++ {
			r := &g.recs[i]
			if r.state != pending || r.time >= cut {
				continue
			}
			c.add(r.count)
			if err := s.finish(g, i); err != nil && errs == nil {
				errs = err
			}
		}
		if g.open == 0 {
			s.remove(g)
			si--
		}
	}
	d := s.st.Dropped[ReasonTooOld]
	d.Records += c.Records
	d.Measurements += c.Measurements
	s.st.Dropped[ReasonTooOld] = d
	return c, errs
}

// Oldest returns the time (unix seconds) of the oldest record waiting to
// be taken, and false when none waits.
func (s *Spool) Oldest() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		for i := g.first; i < len(g.recs); i++ {
			if g.recs[i].state == pending {
				return g.recs[i].time, true
			}
		}
	}
	return 0, false
}

// Stats returns the spool's state and totals.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Dropped = make(map[string]Count, len(s.st.Dropped))
	for k, v := range s.st.Dropped {
		st.Dropped[k] = v
	}
	st.Bytes = s.bytes
	st.Segments = len(s.segs)
	for _, g := range s.segs {
		for i := g.first; i < len(g.recs); i++ {
			switch r := g.recs[i]; r.state {
			case pending:
				st.Pending.add(r.count)
			case inFlight:
				st.Pending.add(r.count)
				st.InFlight.add(r.count)
			}
		}
	}
	for _, n := range s.detached {
		st.InFlight.add(n)
	}
	return st
}

// Sync makes every record appended so far durable (fsync of the segments
// written since the last Sync, and of the directory), for a caller that
// set NoSync and wants one fsync per batch of appends.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.syncDirty()
}

func (s *Spool) syncDirty() error {
	synced := false
	for _, g := range s.segs {
		if !g.dirty {
			continue
		}
		if err := s.syncFile(g.f); err != nil {
			return fmt.Errorf("spool: sync %s: %w", segPath(s.dir, g.seq), err)
		}
		g.dirty, synced = false, true
	}
	if synced {
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("spool: sync directory: %w", err)
		}
	}
	return nil
}

// Close syncs what Append left unsynced (NoSync), closes the files and releases
// the directory's lock. Records taken and not acknowledged stay in the spool
// for the next Open. Close is idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.syncDirty()
	s.closeFiles()
	if cerr := s.lock.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("spool: release lock: %w", cerr)
	}
	return err
}

func (s *Spool) closeFiles() {
	for _, g := range s.segs {
		s.closeSeg(g)
	}
}

// Check reports whether dir can serve as a spool directory: it exists or
// can be created, and a file can be created, written and removed in it.
// It does not take the lock (a running daemon may hold it).
func Check(dir string) error {
	if dir == "" {
		return errors.New("spool: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("spool directory %s cannot be created: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("spool directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("spool directory %s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("spool directory %s is not writable: %w", dir, err)
	}
	_, err = f.Write([]byte("probe\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("spool directory %s is not writable: %w", dir, err)
	}
	return nil
}
