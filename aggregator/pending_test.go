package aggregator

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/libratod/libratod/parser"
)

// TestPendingSums checks the sums a Writer holds apart (pending.go): a
// counter's lines after the first of a period are held by the Writer, and
// reach the period's snapshot, whichever Writer sent them and however
// the runs of Adds lie.
func TestPendingSums(t *testing.T) {
	a := New(Config{Shards: 4})
	w1, w2 := a.NewWriter(), a.NewWriter()
	add := func(w *Writer, m parser.Metric) {
		t.Helper()
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
	}
	w1.Begin()
	for range 10 {
		add(w1, counter("c", 1, 1))
		add(w1, counter("half", 1, 0.5))
	}
	w1.End()
	for range 5 {
		add(w2, counter("c", 100, 1))
	}
	if n := pending(w1) + pending(w2); n == 0 {
		t.Fatal("no sum pending: the Writers added every line to its series")
	}
	got := collect(t, a.Snapshot())
	if got["counter c"].Value != 510 || got["counter half"].Value != 20 {
		t.Errorf("c = %v, half = %v; want 510, 20", got["counter c"].Value, got["counter half"].Value)
	}
	if n := pending(w1) + pending(w2); n != 0 {
		t.Errorf("%v still pending after the period's end", n)
	}

	// The next period: a Writer's first line of it makes the value.
	add(w1, counter("c", 2, 1))
	add(w1, counter("c", 3, 1))
	w1.Close() // publishes the 3
	if _, ok := a.writers.all[w1]; ok || len(a.writers.all) != 1 {
		t.Errorf("%d Writers attached after Close, want 1: a closed Writer must be let go", len(a.writers.all))
	}
	got = collect(t, a.Snapshot())
	if got["counter c"].Value != 5 || len(got) != 1 {
		t.Errorf("after Close: %v series, c = %v; want 1, 5", len(got), got["counter c"].Value)
	}
	if n := a.strays.Load(); n != 0 {
		t.Errorf("%d pending sums found no value to join", n)
	}
}

// pending returns the sum w holds apart.
func pending(w *Writer) float64 {
	var s float64
	for _, ce := range w.dirty {
		s += ce.pend
	}
	return s
}

// TestPendingEvicted sends more names than a Writer's key cache holds,
// three lines each, so that a cache entry holding a pending sum is taken
// by another name within the period: the sum must reach its own series,
// and the new name, whose series has no value yet, must not be summed
// apart.
func TestPendingEvicted(t *testing.T) {
	a := New(Config{Shards: 8})
	w := a.NewWriter()
	const names = 3 * keyCacheSize
	for round := range 2 {
		for i := range names {
			name := fmt.Sprint("evict.", i)
			for range 3 {
				m := counter(name, 1, 1)
				if err := w.Add(&m); err != nil {
					t.Fatal(err)
				}
			}
		}
		snap := a.Snapshot()
		n := 0
		snap.Each(func(s *Series) {
			n++
			if s.Value != 3 {
				t.Errorf("round %d: %s = %v, want 3", round, s.Name, s.Value)
			}
		})
		if n != names {
			t.Errorf("round %d: %d series, want %d", round, n, names)
		}
	}
	if n := a.strays.Load(); n != 0 {
		t.Errorf("%d pending sums found no value to join", n)
	}
}

// TestPendingBounds checks that a line too large to be summed apart is
// added to its series, where an overflow is refused as before.
func TestPendingBounds(t *testing.T) {
	a := New(Config{})
	w := a.NewWriter()
	for _, v := range []float64{1, 1, 1e300, 1e300, math.MaxFloat64, math.MaxFloat64} {
		m := counter("big", v, 1)
		err := w.Add(&m)
		if v == math.MaxFloat64 {
			if err != ErrOverflow {
				t.Errorf("Add(%v) = %v, want ErrOverflow", v, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := collect(t, a.Snapshot())["counter big"].Value; got != 2+2e300 {
		t.Errorf("big = %v, want %v", got, 2+2e300)
	}
}

// TestKeyCacheLayout checks what keyCacheEntry's doc promises: what a
// line whose key an entry holds reads (raw, key, the pending sum) lies in
// the entry's first 64 bytes, and entries and sets are whole cache lines.
func TestKeyCacheLayout(t *testing.T) {
	var e keyCacheEntry
	if n := unsafe.Sizeof(e); n != 128 {
		t.Errorf("keyCacheEntry is %d bytes, want 128", n)
	}
	hot := map[string]uintptr{
		"raw": unsafe.Offsetof(e.raw) + unsafe.Sizeof(e.raw), "shape": unsafe.Offsetof(e.shape) + unsafe.Sizeof(e.shape),
		"pend": unsafe.Offsetof(e.pend) + unsafe.Sizeof(e.pend), "pendGen": unsafe.Offsetof(e.pendGen) + unsafe.Sizeof(e.pendGen),
		"dirty": unsafe.Offsetof(e.dirty) + 1, "drops": unsafe.Offsetof(e.drops) + 1, "named": unsafe.Offsetof(e.named) + 1,
	}
	for name, end := range hot {
		if end > 64 {
			t.Errorf("keyCacheEntry.%s ends at byte %d, past the first cache line", name, end)
		}
	}
	if n := unsafe.Sizeof(keyCacheSet{}); n%64 != 0 {
		t.Errorf("keyCacheSet is %d bytes, not whole cache lines", n)
	}
}

// TestKeyCacheHolds checks that a key cache entry holds only the kind,
// name and tags it was made from, however the same bytes are split
// between name, name tags and tags, and that a name too long for a shape
// is never found in the cache.
func TestKeyCacheHolds(t *testing.T) {
	a := New(Config{})
	w := a.NewWriter()
	defer w.Close()
	m := func(typ parser.Type, name, nameTags string, sep byte, tags string) *parser.Metric {
		pm := &parser.Metric{Type: typ, Name: []byte(name), Rate: 1, Value: 1}
		if nameTags != "" {
			pm.NameTags, pm.NameTagSep = []byte(nameTags), sep
		}
		if tags != "" {
			pm.Tags = []byte(tags)
		}
		return pm
	}
	base := m(parser.Counter, "ab", "k=v", ',', "x:y")
	others := []*parser.Metric{
		m(parser.Gauge, "ab", "k=v", ',', "x:y"),
		m(parser.Counter, "ab", "k=v", ';', "x:y"),
		m(parser.Counter, "abk", "=v", ',', "x:y"),
		m(parser.Counter, "a", "bk=v", ',', "x:y"),
		m(parser.Counter, "ab", "k=vx", ',', ":y"),
		m(parser.Counter, "ab", "", 0, "k=vx:y"),
		m(parser.Counter, "abk=vx:y", "", 0, ""),
		m(parser.Counter, "ab", "k=v", ',', "x:z"),
		m(parser.Counter, "ab", "k=w", ',', "x:y"),
		m(parser.Counter, "ac", "k=v", ',', "x:y"),
	}
	e := w.seriesKey(Counter, base, rawHash(a.rawSeed, Counter, base))
	if !e.holds(shapeOf(Counter, base), base) {
		t.Fatalf("the entry made from %+v does not hold it", base)
	}
	for _, o := range others {
		if e.holds(shapeOf(kindOf(o.Type), o), o) {
			t.Errorf("the entry made from %+v holds %+v", base, o)
		}
	}
	long := m(parser.Counter, strings.Repeat("n", 1<<24), "", 0, "")
	if shapeOf(Counter, long) != noShape {
		t.Fatalf("a name of 2^24 bytes has a shape")
	}
	e = w.seriesKey(Counter, long, rawHash(a.rawSeed, Counter, long))
	if e.holds(noShape, long) {
		t.Errorf("an entry made from a name too long for a shape holds it")
	}
}
