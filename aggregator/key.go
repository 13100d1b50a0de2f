package aggregator

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/libratod/libratod/parser"
)

// A series key is the kind byte, the name, then for each tag in name order
// keySep, the tag name, valSep and the value. The separators cannot occur
// in names (the parser refuses control bytes) and are replaced in tags.
const (
	keySep = 0x00
	valSep = 0x01
)

type tagRef struct {
	k, v []byte
}

// buildKey writes m's series key into w.key. With a Sanitizer it returns
// false, and w.key is not a key, when the name has nothing usable.
func (w *Writer) buildKey(kind Kind, m *parser.Metric) bool {
	san := w.a.san
	w.key = append(w.key[:0], byte(kind))
	if san != nil {
		w.key = san.AppendName(w.key, m.Name)
		if len(w.key) == 1 {
			return false
		}
		cleanSeps(w.key[1:])
	} else {
		w.key = appendClean(w.key, m.Name)
	}
	w.tags = splitTags(w.tags[:0], m.NameTags, nameTagSep(m), '=')
	w.tags = splitTags(w.tags, m.Tags, ',', ':')
	if san != nil {
		w.cleanTagNames(san)
	}
	if len(w.tags) > 1 {
		cmp := func(a, b tagRef) int { return bytes.Compare(a.k, b.k) }
		// Clients mostly send a name's tags in one order, often sorted.
		if !slices.IsSortedFunc(w.tags, cmp) {
			slices.SortStableFunc(w.tags, cmp)
		}
	}
	keep := w.a.keepTags
	maxTags, kept := 0, 0
	if san != nil {
		maxTags = san.MaxTags()
	}
	for i, t := range w.tags {
		if i+1 < len(w.tags) && bytes.Equal(t.k, w.tags[i+1].k) {
			continue // a later tag of the same name wins
		}
		if keep != nil && !slices.ContainsFunc(keep, func(k []byte) bool { return bytes.Equal(k, t.k) }) {
			w.dropped.NotKept++
			continue
		}
		if maxTags > 0 && kept == maxTags {
			w.dropped.TooMany++
			continue
		}
		start := len(w.key)
		w.key = append(w.key, keySep)
		w.key = appendClean(w.key, t.k)
		w.key = append(w.key, valSep)
		if san != nil {
			v := len(w.key)
			w.key = san.AppendTagValue(w.key, t.k, t.v)
			if len(w.key) == v {
				w.key = w.key[:start]
				w.dropped.Invalid++
				continue
			}
			cleanSeps(w.key[v:])
		} else {
			w.key = appendClean(w.key, t.v)
		}
		kept++
	}
	return true
}

// cleanTagNames replaces the name of each of w.tags by its clean form,
// held in w.clean, and leaves out (counting them) those with nothing
// usable.
func (w *Writer) cleanTagNames(san Sanitizer) {
	w.clean = w.clean[:0]
	n := 0
	for _, t := range w.tags {
		// Earlier names stay valid if w.clean grows: append copies.
		start := len(w.clean)
		w.clean = san.AppendTagName(w.clean, t.k)
		if len(w.clean) == start {
			w.dropped.Invalid++
			continue
		}
		t.k = w.clean[start:len(w.clean):len(w.clean)]
		w.tags[n] = t
		n++
	}
	w.tags = w.tags[:n]
}

// splitTags appends the tags of raw, separated by sep, each split at its
// first kv, to dst. A '#' in front of a tag is dropped (an old PHP client
// writes DogStatsD tags as "#k:v,#k2:v2"). Items with an empty name are
// skipped.
func splitTags(dst []tagRef, raw []byte, sep, kv byte) []tagRef {
	for len(raw) > 0 {
		item := raw
		if i := bytes.IndexByte(raw, sep); i >= 0 {
			item, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(item) > 0 && item[0] == '#' {
			item = item[1:]
		}
		k, v := item, []byte(nil)
		if i := bytes.IndexByte(item, kv); i >= 0 {
			k, v = item[:i], item[i+1:]
		}
		if len(k) == 0 {
			continue
		}
		dst = append(dst, tagRef{k: k, v: v})
	}
	return dst
}

// nameTagSep returns the byte between m's name tags.
func nameTagSep(m *parser.Metric) byte {
	if m.NameTagSep == 0 {
		return ','
	}
	return m.NameTagSep
}

// cleanSeps replaces the key separators in b with '_'.
func cleanSeps(b []byte) {
	for i, c := range b {
		if c == keySep || c == valSep {
			b[i] = '_'
		}
	}
}

func appendClean(dst, b []byte) []byte {
	for _, c := range b {
		if c == keySep || c == valSep {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// keyName returns the name held in a series key.
func keyName(key string) string {
	rest := key[1:]
	if i := strings.IndexByte(rest, keySep); i >= 0 {
		return rest[:i]
	}
	return rest
}

// appendKeyTags appends the tags held in a series key to dst.
func appendKeyTags(dst []Tag, key string) []Tag {
	rest := key[1:]
	i := strings.IndexByte(rest, keySep)
	if i < 0 {
		return dst
	}
	rest = rest[i+1:]
	for {
		item := rest
		j := strings.IndexByte(rest, keySep)
		if j >= 0 {
			item, rest = rest[:j], rest[j+1:]
		}
		k, v, _ := strings.Cut(item, string(rune(valSep)))
		dst = append(dst, Tag{Name: k, Value: v})
		if j < 0 {
			return dst
		}
	}
}

func sortFloats(v []float64) { slices.Sort(v) }

// seriesKey returns the entry of the Writer's cache that holds m's series
// key and its hash (rh is m's rawHash), found there when the same raw name
// and tags were seen recently; its key is nil when the Sanitizer leaves
// the name empty.
func (w *Writer) seriesKey(kind Kind, m *parser.Metric, rh uint64) *keyCacheEntry {
	set := &w.cache[rh%keyCacheSets]
	shape := shapeOf(kind, m)
	// Only the raw hashes are read until one matches: the entries lie on
	// other cache lines.
	for i := range keyCacheWays {
		if set.rawHash[i] != rh {
			continue
		}
		if e := &set.entries[i]; e.holds(shape, m) {
			if e.drops {
				w.dropped.addCounts(e.dropped)
			}
			return e
		}
	}
	// An empty entry (raw hash 0), else the one the top byte picks (the
	// low bits picked the set).
	way := int(rh>>56) % keyCacheWays
	for i := range keyCacheWays {
		if set.rawHash[i] == 0 {
			way = i
			break
		}
	}
	e := &set.entries[way]
	if e.pend != 0 { // the sum pending in the entry goes to its series first
		w.publishNow(e)
	}
	e.pendGen = 0 // a new key has no value in any period yet
	before := w.dropped
	ok := w.buildKey(kind, m)
	h := maphash.Bytes(w.a.seed, w.key) & w.a.hashMask
	set.rawHash[way], e.hash = rh, h
	e.dropped = [3]uint32{
		uint32(w.dropped.NotKept - before.NotKept),
		uint32(w.dropped.Invalid - before.Invalid),
		uint32(w.dropped.TooMany - before.TooMany),
	}
	e.drops = e.dropped != [3]uint32{}
	e.raw = append(append(append(e.raw[:0], m.Name...), m.NameTags...), m.Tags...)
	if e.shape = shape; shape == noShape {
		e.shape = 0 // which no line has
	}
	e.at = cachedEntry{}
	if e.named = ok; !ok {
		e.key = nil
		return e
	}
	e.key = append(e.key[:0], w.key...)
	return e
}

// noShape is the shape of a line whose name or name tags are too long for
// a shape; no entry has it.
const noShape = math.MaxUint64

// shapeOf returns the shape of kind and m's name and tags: kind, the
// separator of the name tags, and the lengths of the name (24 bits) and
// of the name tags (23 bits), or noShape. With the length of all three,
// it says where each lies in an entry's raw, so equal shapes and equal
// raw bytes mean equal parts.
func shapeOf(kind Kind, m *parser.Metric) uint64 {
	n, nt := uint64(len(m.Name)), uint64(len(m.NameTags))
	if n >= 1<<24 || nt >= 1<<23 {
		return noShape
	}
	return uint64(kind) | uint64(m.NameTagSep)<<8 | n<<16 | nt<<40
}

// holds reports whether e was made from the kind and name and tags of
// m, whose shape is shape.
func (e *keyCacheEntry) holds(shape uint64, m *parser.Metric) bool {
	n, nt := len(m.Name), len(m.NameTags)
	raw := e.raw
	if e.shape != shape || len(raw) != n+nt+len(m.Tags) {
		return false
	}
	return string(raw[:n]) == string(m.Name) &&
		(nt == 0 || string(raw[n:n+nt]) == string(m.NameTags)) &&
		(len(m.Tags) == 0 || string(raw[n+nt:]) == string(m.Tags))
}

// rawHash hashes what holds compares: kind and m's name and tags, each
// part where it lies, with no copy. It need not resist collisions (holds
// compares the bytes), only spread lines over the key cache; seed, drawn
// per Aggregator, keeps a sender from choosing names that share a set.
func rawHash(seed uint64, kind Kind, m *parser.Metric) uint64 {
	h := hashPart(seed^uint64(kind)<<8^uint64(m.NameTagSep), m.Name)
	if len(m.NameTags) > 0 {
		h = hashPart(h, m.NameTags)
	}
	if len(m.Tags) > 0 {
		h = hashPart(h^0x5bd1e9955bd1e995, m.Tags)
	}
	// Spread every part over every bit, the low ones (which pick the
	// set) and the top ones (which pick the entry) too.
	h *= 0x9e3779b97f4a7c15
	if h ^= h >> 32; h == 0 {
		return 1 // 0 marks an empty entry of the cache
	}
	return h
}

// hashPart mixes b into h eight bytes at a time, each by one 128-bit
// multiplication folded to 64 bits (wyhash's step), the last one to
// eight bytes read whole where they can be.
func hashPart(h uint64, b []byte) uint64 {
	h ^= uint64(len(b)) * 0xa0761d6478bd642f
	for len(b) > 8 {
		h = mix(h^binary.LittleEndian.Uint64(b), 0xe7037ed1a0b428db)
		b = b[8:]
	}
	var t uint64
	switch n := len(b); {
	case n == 8:
		t = binary.LittleEndian.Uint64(b)
	case n >= 4:
		t = uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<32
	case n > 0:
		t = uint64(b[0]) | uint64(b[n/2])<<8 | uint64(b[n-1])<<16
	}
	return mix(h^t, 0x8ebc6af09c88c6e3)
}

// mix returns the two halves of a times b, xored.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
