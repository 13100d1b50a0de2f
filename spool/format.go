package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// On-disk format, version 1. All integers are little-endian.
//
// A segment file (NNNNNNNNN.spool) begins with a 16-byte header:
//
//	0  8  "LIBSPOOL"
//	8  1  format version (1)
//	9  3  reserved, zero
//	12 4  CRC32-C of bytes 0..11
//
// and is followed by records, each framed as:
//
//	0  4  magic F8 C1 53 52 (0xF8 and 0xC1 never occur in UTF-8 text)
//	4  4  CRC32-C of bytes 8..27 and of the payload
//	8  4  payload length
//	12 8  time, unix seconds (int64)
//	20 4  measurements (uint32)
//	24 1  kind (caller-defined)
//	25 3  reserved, zero
//	28 .. payload
//
// An acknowledgement file (NNNNNNNNN.ack, beside its segment) is a list of
// 8-byte entries: the offset of an acknowledged record in the segment
// (uint32) and the CRC32-C of the segment number (uint64) followed by that
// offset, so an entry that is torn, damaged or copied beside another segment
// is ignored. Open trims what follows the last valid entry (a torn tail),
// so that the entries appended next stay 8 bytes apart.
//
// Resynchronising after damage trusts the first magic followed by a frame
// with a valid checksum: a payload that itself held a whole valid frame
// could, were its own header damaged, yield that inner frame as a record.
// JSON payloads cannot: the magic is not UTF-8.
const (
	segHeaderLen = 16
	frameHeader  = 28
	ackEntryLen  = 8
	version      = 1
)

var (
	segMagic   = [8]byte{'L', 'I', 'B', 'S', 'P', 'O', 'O', 'L'}
	frameMagic = [4]byte{0xF8, 0xC1, 0x53, 0x52}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// segHeader returns the header of a segment file of the current version.
func segHeader() [segHeaderLen]byte {
	var h [segHeaderLen]byte
	copy(h[:], segMagic[:])
	h[8] = version
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return h
}

// headerState classifies the first bytes of a segment file.
type headerState int

const (
	headerOK      headerState = iota // a valid header of this version
	headerBad                        // missing, torn or damaged: scan the file for records from offset 0
	headerVersion                    // a valid header of another version: leave the file alone
)

// parseSegHeader checks the header at the start of data and returns its
// state and version.
func parseSegHeader(data []byte) (headerState, byte) {
	if len(data) < segHeaderLen || !bytes.Equal(data[:8], segMagic[:]) ||
		binary.LittleEndian.Uint32(data[12:]) != crc32.Checksum(data[:12], castagnoli) {
		return headerBad, 0
	}
	if data[8] != version {
		return headerVersion, data[8]
	}
	return headerOK, version
}

// frame is one valid record found in a segment.
type frame struct {
	off   int // offset of the frame's magic
	n     int // payload length
	time  int64
	count uint32
	kind  uint8
}

// end returns the offset just past the frame.
func (f frame) end() int { return f.off + frameHeader + f.n }

// appendFrame appends the framed record to dst.
func appendFrame(dst []byte, r *Record) []byte {
	start := len(dst)
	dst = append(dst, frameMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, 0) // CRC, set below
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Payload)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Time))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(r.Measurements))
	dst = append(dst, r.Kind, 0, 0, 0)
	dst = append(dst, r.Payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// parseFrame returns the record framed at data[p:] if it is whole and its
// checksum matches.
func parseFrame(data []byte, p int) (frame, bool) {
	if p < 0 || len(data)-p < frameHeader || !bytes.Equal(data[p:p+4], frameMagic[:]) {
		return frame{}, false
	}
	h := data[p : p+frameHeader]
	n := binary.LittleEndian.Uint32(h[8:])
	if n > MaxPayload || int64(n) > int64(len(data)-p-frameHeader) {
		return frame{}, false
	}
	end := p + frameHeader + int(n)
	if crc32.Checksum(data[p+8:end], castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return frame{}, false
	}
	return frame{
		off:   p,
		n:     int(n),
		time:  int64(binary.LittleEndian.Uint64(h[12:])),
		count: binary.LittleEndian.Uint32(h[20:]),
		kind:  h[24],
	}, true
}

// scan calls visit for every valid record in data from offset p on, in
// order. Bytes that are not part of a valid record (a torn tail, a damaged
// record, garbage) are skipped by searching for the next magic that starts
// a record with a valid checksum; each such run of bytes counts as one
// corrupt record. scan returns the corrupt records and bytes.
func scan(data []byte, p int, visit func(frame)) (badRecords, badBytes int) {
	badStart := -1
	for p < len(data) {
		if f, ok := parseFrame(data, p); ok {
			if badStart >= 0 {
				badRecords++
				badBytes += p - badStart
				badStart = -1
			}
			visit(f)
			p = f.end()
			continue
		}
		if badStart < 0 {
			badStart = p
		}
		i := bytes.Index(data[p+1:], frameMagic[:])
		if i < 0 {
			break
		}
		p += 1 + i
	}
	if badStart >= 0 {
		badRecords++
		badBytes += len(data) - badStart
	}
	return badRecords, badBytes
}

// ackEntry returns the acknowledgement of the record at off in segment seq.
func ackEntry(seq uint64, off uint32) [ackEntryLen]byte {
	var e [ackEntryLen]byte
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	binary.LittleEndian.PutUint32(b[8:], off)
	binary.LittleEndian.PutUint32(e[:], off)
	binary.LittleEndian.PutUint32(e[4:], crc32.Checksum(b[:], castagnoli))
	return e
}

// parseAcks calls visit with the offset of every valid entry of an
// acknowledgement file of segment seq and returns the end of the last
// valid one. Entries follow each other 8 bytes apart; past bytes that are
// not a valid entry (a torn or damaged one) the next valid entry is
// searched byte by byte, so that entries appended after a torn one (by a
// version that did not trim it) still count.
func parseAcks(data []byte, seq uint64, visit func(off uint32)) (end int) {
	for p := 0; len(data)-p >= ackEntryLen; {
		off := binary.LittleEndian.Uint32(data[p:])
		if ackEntry(seq, off) != [ackEntryLen]byte(data[p:p+ackEntryLen]) {
			p++
			continue
		}
		visit(off)
		p += ackEntryLen
		end = p
	}
	return end
}
