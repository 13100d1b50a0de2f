package librato

import (
	"encoding/binary"
	"fmt"
)

// annotationFormat is the version byte that begins every
// MarshalAnnotation encoding. Version 1 keeps every field.
const annotationFormat = 1

// MarshalAnnotation appends to dst a compact binary encoding of a that
// UnmarshalAnnotation turns back into an equal Annotation, for keeping an
// annotation on disk until it can be sent. It begins with a format
// version byte, as MarshalBatch's encoding does.
func MarshalAnnotation(dst []byte, a *Annotation) []byte {
	dst = append(dst, annotationFormat)
	dst = appendBinString(dst, a.Stream)
	dst = appendBinString(dst, a.Title)
	dst = appendBinString(dst, a.Description)
	dst = appendBinString(dst, a.Source)
	dst = binary.AppendVarint(dst, a.StartTime)
	dst = binary.AppendVarint(dst, a.EndTime)
	dst = binary.AppendUvarint(dst, uint64(len(a.Links)))
	for _, l := range a.Links {
		dst = appendBinString(dst, l.Rel)
		dst = appendBinString(dst, l.Href)
		dst = appendBinString(dst, l.Label)
	}
	return dst
}

// UnmarshalAnnotation decodes what MarshalAnnotation wrote. The result
// shares no memory with data. An error wraps ErrBatchEncoding: the bytes
// are damaged, cut, or of a newer format.
func UnmarshalAnnotation(data []byte) (*Annotation, error) {
	d := binDecoder{data: data}
	v := d.byte()
	if d.err == nil && v != annotationFormat {
		return nil, fmt.Errorf("%w: annotation format version %d", ErrBatchEncoding, v)
	}
	a := &Annotation{Stream: d.string(), Title: d.string(), Description: d.string(), Source: d.string()}
	a.StartTime, a.EndTime = d.varint(), d.varint()
	if n := d.count(3); d.err == nil && n > 0 {
		a.Links = make([]Link, n)
		for i := range a.Links {
			a.Links[i] = Link{Rel: d.string(), Href: d.string(), Label: d.string()}
		}
	}
	if d.err == nil && len(d.data) > 0 {
		d.err = fmt.Errorf("%w: %d bytes left over", ErrBatchEncoding, len(d.data))
	}
	if d.err != nil {
		return nil, fmt.Errorf("librato: unmarshal annotation: %w", d.err)
	}
	return a, nil
}
