package aggregator

import (
	"hash/maphash"
	"unsafe"
)

// A series lives in its shard as an entry, which outlasts the period: its
// key and its place in the shard's index are made once and kept while the
// series gets lines, period after period. What a period adds to it goes
// to one of the entry's two slots, the period's (its number's parity), so
// that the period just ended (or still closing, see Roll) is read from
// one slot while the current period writes the other. A slot holds a
// period's value only while its gen is that period's number.
//
// Counters and gauges, whose whole state is one number, are numEntries;
// timers and sets, which hold more, are objEntries with a Series of their
// own for each period.

// numEntry is the entry of a counter or gauge series. It holds no
// pointer, for the garbage collector to skip: its key is n bytes at off
// in its shard's arena (n is 0 in an entry not in use).
type numEntry struct {
	off, n uint32
	gen    [2]uint32
	v      [2]float64
}

// objEntry is the entry of a timer or set series.
type objEntry struct {
	off, n uint32
	gen    [2]uint32
	s      [2]*Series
}

// A ref names an entry in its shard: an index into nums, or, with objRef
// set, into objs.
type ref = uint32

const objRef ref = 1 << 31

// chunkLen is the number of entries in a chunk of a table: entries never
// move once made, and a table grows without copying them.
const chunkLen = 128

// table holds the entries of one type of a shard, in chunks.
type table[T any] struct {
	chunks []*[chunkLen]T
	n      uint32   // entries made, in use or free
	free   []uint32 // entries no longer in use
}

// at returns the entry of index i.
func (t *table[T]) at(i uint32) *T { return &t.chunks[i/chunkLen][i%chunkLen] }

// alloc returns the index of an unused entry, a zero T.
func (t *table[T]) alloc() uint32 {
	if k := len(t.free); k > 0 {
		i := t.free[k-1]
		t.free = t.free[:k-1]
		return i
	}
	if int(t.n/chunkLen) == len(t.chunks) {
		t.chunks = append(t.chunks, new([chunkLen]T))
	}
	t.n++
	return t.n - 1
}

// release makes entry i unused; the caller has cleared it.
func (t *table[T]) release(i uint32) { t.free = append(t.free, i) }

// inUse returns the number of entries in use.
func (t *table[T]) inUse() int { return int(t.n) - len(t.free) }

// arena holds a shard's keys, in blocks of at most 64 KiB (a key longer
// than that has a block of its own). A key lies where off says: the block
// off>>16, at off&0xffff. Its bytes are written once and never again (a
// full block is left as it is, a new one started), so that a key is an
// immutable string, which a Snapshot or a Series may hold after its entry
// is gone. The keys of entries no longer in use stay until a compaction
// copies the live keys into a new arena (see shard.compact).
type arena struct {
	blocks [][]byte
	size   int // bytes of the keys held
	dead   int // bytes of the keys of entries no longer in use
}

// The sizes of an arena's blocks: the first minBlock, each next one twice
// the last, up to maxBlock.
const (
	minBlock = 1 << 10
	maxBlock = 1 << 16
)

// intern appends key to the arena and returns where it lies.
func (r *arena) intern(key []byte) (off, n uint32) {
	last := len(r.blocks) - 1
	if last < 0 || len(key) > cap(r.blocks[last])-len(r.blocks[last]) {
		c := minBlock
		if last >= 0 {
			c = min(2*cap(r.blocks[last]), maxBlock)
		}
		r.blocks = append(r.blocks, make([]byte, 0, max(c, len(key))))
		last++
	}
	b := &r.blocks[last]
	off = uint32(last)<<16 | uint32(len(*b))
	*b = append(*b, key...)
	r.size += len(key)
	return off, uint32(len(key))
}

// full reports whether the arena has no room for a key of n bytes: off
// can name 65,536 blocks.
func (r *arena) full(n int) bool {
	last := len(r.blocks) - 1
	return last == 1<<16-1 && n > cap(r.blocks[last])-len(r.blocks[last])
}

// at returns the key of n bytes at off.
func (r *arena) at(off, n uint32) string {
	return unsafe.String(&r.blocks[off>>16][off&0xffff], n)
}

// minCompact is the fewest bytes of dead keys that make a shard compact
// its arena (see shard.compact): Aggregator.compactMin but in tests.
const minCompact = 64 << 10

// lookup returns the ref of the entry of key, whose hash is h, and
// whether there is one.
func (sh *shard) lookup(h uint64, key []byte) (ref, bool) {
	x := &sh.index
	if x.n == 0 {
		return 0, false
	}
	tag, mask := uint32(h), uint32(len(x.slots)-1)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s.r1 == 0 {
			return 0, false
		}
		if s.tag == tag && sh.holds(s.r1-1, key) {
			return s.r1 - 1, true
		}
	}
}

// index maps the hashes of a shard's series keys to their entries: open
// addressing with linear probing, in slots of 8 bytes holding the low 32
// bits of a key's hash (its tag) and its entry's ref plus 1 (0: an empty
// slot). A slot's entry is checked against the key sought, so keys whose
// tags are equal (or whose whole hashes are) only make a probe longer. It
// holds no pointer, for the garbage collector to skip, and is at most 3/4
// full.
type index struct {
	slots []slot
	n     int // slots in use
}

type slot struct{ tag, r1 uint32 }

// minIndex is the fewest slots of an index that has any.
const minIndex = 16

// insert adds the entry r of tag.
func (x *index) insert(tag uint32, r ref) {
	if 4*(x.n+1) > 3*len(x.slots) {
		x.resize(max(2*len(x.slots), minIndex))
	}
	x.place(tag, r+1)
	x.n++
}

// place puts r1 in the first empty slot from tag's own.
func (x *index) place(tag, r1 uint32) {
	mask := uint32(len(x.slots) - 1)
	i := tag & mask
	for x.slots[i].r1 != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = slot{tag: tag, r1: r1}
}

// resize moves the index into n slots (a power of two, more than
// 4/3 of those in use).
func (x *index) resize(n int) {
	old := x.slots
	x.slots = make([]slot, n)
	for _, s := range old {
		if s.r1 != 0 {
			x.place(s.tag, s.r1)
		}
	}
}

// remove drops the entry r of tag, if there. Each slot after it in its run that
// could sit in its place moves back, so that no probe stops short.
func (x *index) remove(tag uint32, r ref) {
	if x.n == 0 {
		return
	}
	mask := uint32(len(x.slots) - 1)
	i := tag & mask
	for x.slots[i].r1 != r+1 {
		if x.slots[i].r1 == 0 {
			return // not there
		}
		i = (i + 1) & mask
	}
	x.slots[i] = slot{}
	for j := (i + 1) & mask; x.slots[j].r1 != 0; j = (j + 1) & mask {
		// The slot at j stays unless its own place, k, lies outside
		// (i, j] (cyclically): then a probe from k passes i.
		k := x.slots[j].tag & mask
		if (i < j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			x.slots[i], x.slots[j] = x.slots[j], slot{}
			i = j
		}
	}
	x.n--
	// Give back what a spike of series left: an eighth full at most.
	if len(x.slots) > 1024 && 8*x.n < len(x.slots) {
		x.resize(len(x.slots) / 4)
	}
}

// cachedEntry is where a Writer's key cache saw a key's series: its
// entry, and where the entry's key lay in the shard's arena then. The
// entry may have been freed since, or made another series': it still
// holds the key only if its key lies at the same place of the same arena
// (a place in an arena is written once, for one key; a compaction starts
// a new arena, of a new epoch). So a line whose key the cache holds finds
// its series without the index, and without reading the key again.
type cachedEntry struct {
	num        *numEntry // nil: none, or obj
	obj        *objEntry
	off, n     uint32
	arenaEpoch uint32
}

// entry returns the remembered entry, one of the two, if it still holds
// the key; nil, nil otherwise. It is called with sh locked.
func (c *cachedEntry) entry(sh *shard) (*numEntry, *objEntry) {
	switch {
	case c.arenaEpoch != sh.arenaEpoch:
	case c.num != nil && c.num.off == c.off && c.num.n == c.n:
		return c.num, nil
	case c.obj != nil && c.obj.off == c.off && c.obj.n == c.n:
		return nil, c.obj
	}
	return nil, nil
}

// remember records r, an entry of sh in use, and returns it, one of the
// two. It is called with sh locked.
func (c *cachedEntry) remember(sh *shard, r ref) (*numEntry, *objEntry) {
	*c = cachedEntry{arenaEpoch: sh.arenaEpoch}
	if r&objRef != 0 {
		c.obj = sh.objs.at(r &^ objRef)
		c.off, c.n = c.obj.off, c.obj.n
	} else {
		c.num = sh.nums.at(r)
		c.off, c.n = c.num.off, c.num.n
	}
	return c.num, c.obj
}

// holds reports whether r names an entry of sh that holds key.
func (sh *shard) holds(r ref, key []byte) bool {
	var off, n uint32
	if r&objRef != 0 {
		i := r &^ objRef
		if i >= sh.objs.n {
			return false
		}
		e := sh.objs.at(i)
		off, n = e.off, e.n
	} else {
		if r >= sh.nums.n {
			return false
		}
		e := sh.nums.at(r)
		off, n = e.off, e.n
	}
	return n == uint32(len(key)) && n != 0 && sh.keys.at(off, n) == string(key)
}

// create makes the entry of key (hash h) and of kind, whose slots hold no
// period, and returns its ref.
func (sh *shard) create(kind Kind, key []byte, h uint64) ref {
	off, n := sh.keys.intern(key)
	var r ref
	if kind == Timer || kind == Set {
		i := sh.objs.alloc()
		e := sh.objs.at(i)
		e.off, e.n = off, n
		r = i | objRef
	} else {
		i := sh.nums.alloc()
		e := sh.nums.at(i)
		e.off, e.n = off, n
		r = i
	}
	sh.index.insert(uint32(h), r)
	return r
}

// unindex drops the entry r, of key k, from sh's index; the caller
// clears and releases it.
func (a *Aggregator) unindex(sh *shard, r ref, k string) {
	sh.index.remove(uint32(maphash.String(a.seed, k)&a.hashMask), r)
}
