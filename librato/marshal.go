package librato

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// batchFormat is the version byte that begins every MarshalBatch encoding.
// Version 1 (read, no longer written) kept a summary's Count, Sum, Min,
// Max and SumSquares or a gauge's Value, and Last; it lost StdDev. Version
// 2 keeps every field.
const batchFormat = 2

// Flags of one measurement of version 1.
const (
	flagSummary = 1 << iota // Count > 0: Count, Sum, Min, Max, SumSquares follow, not Value
	flagLast                // HasLast: Last follows
	flagCounter             // Counter
	flagsKnown  = flagSummary | flagLast | flagCounter
)

// Fields of one measurement of version 2, a uvarint after the name, tags
// and source: a number follows, in this order, for each bit of a number
// set (one that is not zero: a float whose bits are not all zero); a bool
// is the bit itself.
const (
	fieldValue = 1 << iota
	fieldCount
	fieldSum
	fieldMin
	fieldMax
	fieldSumSquares
	fieldCounter
	fieldStdDev
	fieldHasStdDev
	fieldLast
	fieldHasLast
	fieldsKnown = fieldHasLast<<1 - 1
)

// ErrBatchEncoding is wrapped by every error of UnmarshalBatch: the bytes
// are not a batch MarshalBatch wrote (damaged, cut, or of a newer format).
var ErrBatchEncoding = errors.New("librato: bad batch encoding")

// MarshalBatch appends to dst a compact binary encoding of b that
// UnmarshalBatch turns back into an equal Batch, every field and every
// number bit for bit (NaN and infinities included), for keeping a batch on
// disk until it can be sent. It is not a request body: the summaries keep
// their sum of squares (the tagged body carries a standard deviation), so
// a batch can be encoded for either API after it is read back. The API is
// not part of a Batch: a caller that needs it stores it beside the bytes.
func MarshalBatch(dst []byte, b *Batch) []byte {
	dst = append(dst, batchFormat)
	dst = binary.AppendVarint(dst, b.Time)
	dst = binary.AppendVarint(dst, b.Period)
	dst = appendBinString(dst, b.Source)
	dst = appendBinTags(dst, b.Tags)
	dst = binary.AppendUvarint(dst, uint64(len(b.Measurements)))
	for i := range b.Measurements {
		m := &b.Measurements[i]
		var fields uint64
		set := func(bit uint64, on bool) {
			if on {
				fields |= bit
			}
		}
		nz := func(f float64) bool { return math.Float64bits(f) != 0 }
		set(fieldValue, nz(m.Value))
		set(fieldCount, m.Count != 0)
		set(fieldSum, nz(m.Sum))
		set(fieldMin, nz(m.Min))
		set(fieldMax, nz(m.Max))
		set(fieldSumSquares, nz(m.SumSquares))
		set(fieldCounter, m.Counter)
		set(fieldStdDev, nz(m.StdDev))
		set(fieldHasStdDev, m.HasStdDev)
		set(fieldLast, nz(m.Last))
		set(fieldHasLast, m.HasLast)
		dst = appendBinString(dst, m.Name)
		dst = appendBinTags(dst, m.Tags)
		dst = appendBinString(dst, m.Source)
		dst = binary.AppendUvarint(dst, fields)
		for _, f := range [...]struct {
			bit uint64
			v   float64
		}{{fieldValue, m.Value}, {fieldSum, m.Sum}, {fieldMin, m.Min}, {fieldMax, m.Max},
			{fieldSumSquares, m.SumSquares}, {fieldStdDev, m.StdDev}, {fieldLast, m.Last}} {
			if f.bit == fieldSum && fields&fieldCount != 0 {
				dst = binary.AppendVarint(dst, m.Count)
			}
			if fields&f.bit != 0 {
				dst = appendBinFloat(dst, f.v)
			}
		}
	}
	return dst
}

func appendBinString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBinTags(dst []byte, tags []Tag) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(tags)))
	for _, t := range tags {
		dst = appendBinString(dst, t.Name)
		dst = appendBinString(dst, t.Value)
	}
	return dst
}

func appendBinFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

// minMeasurement is the fewest bytes an encoded measurement takes, by
// format: in version 1 flags, three empty lengths and a float; in version
// 2 three empty lengths and the fields.
var minMeasurement = [...]int{1: 1 + 3 + 8, 2: 3 + 1}

// UnmarshalBatch decodes what MarshalBatch wrote, in this format or in an
// earlier one. The result shares no memory with data. An error wraps
// ErrBatchEncoding.
func UnmarshalBatch(data []byte) (*Batch, error) {
	d := binDecoder{data: data}
	v := d.byte()
	if d.err == nil && v != 1 && v != batchFormat {
		return nil, fmt.Errorf("%w: format version %d", ErrBatchEncoding, v)
	}
	if d.err != nil {
		return nil, d.err
	}
	b := &Batch{Time: d.varint(), Period: d.varint(), Source: d.string()}
	b.Tags = d.tags()
	n := d.count(minMeasurement[v])
	if d.err == nil && n > 0 {
		b.Measurements = make([]Measurement, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		if v == 1 {
			d.measurementV1(&b.Measurements[i])
		} else {
			d.measurement(&b.Measurements[i])
		}
	}
	if d.err == nil && len(d.data) > 0 {
		d.err = fmt.Errorf("%w: %d bytes left over", ErrBatchEncoding, len(d.data))
	}
	if d.err != nil {
		return nil, d.err
	}
	return b, nil
}

// measurement reads one measurement of version 2.
func (d *binDecoder) measurement(m *Measurement) {
	m.Name = d.string()
	m.Tags = d.tags()
	m.Source = d.string()
	fields := d.uvarint()
	if fields&^fieldsKnown != 0 && d.err == nil {
		d.err = fmt.Errorf("%w: unknown fields %#x", ErrBatchEncoding, fields)
	}
	float := func(bit uint64) float64 {
		if fields&bit == 0 {
			return 0
		}
		return d.float()
	}
	m.Value = float(fieldValue)
	if fields&fieldCount != 0 {
		m.Count = d.varint()
	}
	m.Sum, m.Min, m.Max, m.SumSquares = float(fieldSum), float(fieldMin), float(fieldMax), float(fieldSumSquares)
	m.StdDev, m.Last = float(fieldStdDev), float(fieldLast)
	m.Counter = fields&fieldCounter != 0
	m.HasStdDev = fields&fieldHasStdDev != 0
	m.HasLast = fields&fieldHasLast != 0
}

// measurementV1 reads one measurement of version 1.
func (d *binDecoder) measurementV1(m *Measurement) {
	flags := d.byte()
	if flags&^flagsKnown != 0 && d.err == nil {
		d.err = fmt.Errorf("%w: unknown flags %#x", ErrBatchEncoding, flags)
	}
	m.Name = d.string()
	m.Tags = d.tags()
	m.Source = d.string()
	if flags&flagSummary != 0 {
		m.Count = d.varint()
		if m.Count <= 0 && d.err == nil {
			d.err = fmt.Errorf("%w: summary with count %d", ErrBatchEncoding, m.Count)
		}
		m.Sum, m.Min, m.Max, m.SumSquares = d.float(), d.float(), d.float(), d.float()
	} else {
		m.Value = d.float()
	}
	if flags&flagLast != 0 {
		m.HasLast, m.Last = true, d.float()
	}
	m.Counter = flags&flagCounter != 0
}

// binDecoder reads MarshalBatch's encoding; the first error sticks and
// every later read returns a zero value.
type binDecoder struct {
	data []byte
	err  error
}

func (d *binDecoder) short(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: cut short in %s", ErrBatchEncoding, what)
	}
	d.data = nil
}

func (d *binDecoder) byte() byte {
	if d.err != nil || len(d.data) < 1 {
		d.short("a byte")
		return 0
	}
	c := d.data[0]
	d.data = d.data[1:]
	return c
}

func (d *binDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.short("a number")
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *binDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.short("a number")
		return 0
	}
	d.data = d.data[n:]
	return v
}

// count reads the length of a list whose items take at least size bytes
// each, refusing one the rest of the data cannot hold.
func (d *binDecoder) count(size int) int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.short("a length")
		return 0
	}
	d.data = d.data[n:]
	if v > uint64(len(d.data)/size) {
		d.short("a list")
		return 0
	}
	return int(v)
}

func (d *binDecoder) string() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := string(d.data[:n])
	d.data = d.data[n:]
	return s
}

func (d *binDecoder) tags() []Tag {
	n := d.count(2)
	if d.err != nil || n == 0 {
		return nil
	}
	tags := make([]Tag, n)
	for i := range tags {
		tags[i] = Tag{Name: d.string(), Value: d.string()}
	}
	if d.err != nil {
		return nil
	}
	return tags
}

func (d *binDecoder) float() float64 {
	if d.err != nil || len(d.data) < 8 {
		d.short("a number")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.data))
	d.data = d.data[8:]
	return f
}
