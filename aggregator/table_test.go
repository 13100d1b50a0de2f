package aggregator

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/libratod/libratod/parser"
)

// inUse returns the number of entries a's shards hold, and the bytes of
// their arenas.
func inUse(a *Aggregator) (entries, arenaBytes int) {
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		entries += sh.nums.inUse() + sh.objs.inUse()
		for _, b := range sh.keys.blocks {
			arenaBytes += cap(b)
		}
		if sh.index.n != sh.nums.inUse()+sh.objs.inUse() {
			panic(fmt.Sprintf("shard %d: %d indexed, %d entries in use", i, sh.index.n, sh.nums.inUse()+sh.objs.inUse()))
		}
		sh.mu.Unlock()
	}
	return entries, arenaBytes
}

// TestEntriesOutliveThePeriod checks that a series keeps its entry while
// it gets lines, period after period, and loses it after a whole period
// without one, and that the values of each period are its own.
func TestEntriesOutliveThePeriod(t *testing.T) {
	a := New(Config{Shards: 4})
	w := a.NewWriter()
	add := func(name string, v float64) {
		t.Helper()
		m := counter(name, v, 1)
		if err := w.Add(&m); err != nil {
			t.Fatal(err)
		}
	}
	add("kept", 1)
	add("once", 2)
	if got := collect(t, a.Snapshot()); len(got) != 2 || got["counter kept"].Value != 1 || got["counter once"].Value != 2 {
		t.Fatalf("period 1: %v", got)
	}
	if n, _ := inUse(a); n != 2 {
		t.Fatalf("%d entries after period 1, want 2 (both may come back)", n)
	}
	add("kept", 10)
	if got := collect(t, a.Snapshot()); len(got) != 1 || got["counter kept"].Value != 10 {
		t.Fatalf("period 2: %v, want kept = 10 alone", got)
	}
	if n, _ := inUse(a); n != 1 {
		t.Errorf("%d entries after period 2, want 1: once was absent a whole period", n)
	}
	add("once", 5)
	if got := collect(t, a.Snapshot()); len(got) != 1 || got["counter once"].Value != 5 {
		t.Fatalf("period 3: %v, want once = 5 alone, made anew", got)
	}
	if got := a.Snapshot(); got.Len() != 0 {
		t.Errorf("period 4 holds %d series, want 0", got.Len())
	}
	if n, _ := inUse(a); n != 0 {
		t.Errorf("%d entries after period 4, want 0: once was absent a whole period", n)
	}
}

// TestArenaCompacts checks that a shard's keys stay bounded when every
// period brings new names, and that a snapshot keeps its keys intact
// through the compactions that follow it.
func TestArenaCompacts(t *testing.T) {
	const names = 500
	a := New(Config{Shards: 2})
	a.compactMin = 1
	w := a.NewWriter()
	var first *Snapshot
	most := 0
	for p := range 30 {
		for i := range names {
			m := tagged(counter(fmt.Sprintf("churn.%d.name.%d", p, i), float64(i), 1), "", "host:a-rather-long-host-name")
			if err := w.Add(&m); err != nil {
				t.Fatal(err)
			}
		}
		snap := a.Snapshot()
		if first == nil {
			first = snap
		}
		_, bytes := inUse(a)
		most = max(most, bytes)
	}
	// Two periods of names live at most (the one taken, and the next
	// one's), in blocks of up to 64 KiB each shard.
	keyLen := len("\x01churn.29.name.499\x00host\x01a-rather-long-host-name")
	if limit := 2*names*keyLen*2 + 2*maxBlock; most > limit {
		t.Errorf("arenas grew to %d bytes, want at most %d: dead keys are not compacted", most, limit)
	}
	seen := 0
	first.Each(func(s *Series) {
		var i int
		if _, err := fmt.Sscanf(s.Name, "churn.0.name.%d", &i); err != nil || s.Value != float64(i) {
			t.Errorf("first snapshot holds %q = %v after 29 compacting periods", s.Name, s.Value)
		}
		if tg := s.Tags(); len(tg) != 1 || tg[0] != (Tag{"host", "a-rather-long-host-name"}) {
			t.Errorf("%s: tags %v", s.Name, tg)
		}
		seen++
	})
	if seen != names {
		t.Errorf("first snapshot walked %d series, want %d", seen, names)
	}
}

// TestModel checks the Aggregator against a plain model of what each
// period must hold, over many periods of random lines of every kind whose
// names come and go, with and without colliding hashes, compacting the
// arenas whenever it can, and with every period taken by Snapshot or by
// Roll and TakeClosing, stamped lines going to the closing period.
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		collide bool
		roll    bool
	}{{"snapshot", false, false}, {"collisions", true, false}, {"roll", false, true}, {"roll collisions", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			a := New(Config{Shards: 4, GaugeDeltas: true})
			a.compactMin = 1
			if tc.collide {
				a.hashMask = 0xc000_0000_0000_0003
			}
			w := a.NewWriter()
			type val struct {
				v, count, sum float64
				members       map[string]bool
			}
			gauges := map[string]float64{} // last value of every gauge: the bases
			cur, closing := map[string]*val{}, map[string]*val{}
			line := func(period map[string]*val, m parser.Metric, id string, inClosing bool) {
				v := period[id]
				if v == nil {
					v = &val{members: map[string]bool{}}
					if m.Type == parser.Gauge {
						// A delta starts from the gauge's value in the
						// closing period, as it is now, else its last.
						v.v = gauges[id]
						if c := closing[id]; c != nil && !inClosing {
							v.v = c.v
						}
					}
					period[id] = v
				}
				switch m.Type {
				case parser.Counter:
					v.v += m.Value
				case parser.Gauge:
					if m.Delta {
						v.v += m.Value
					} else {
						v.v = m.Value
					}
				case parser.Timer:
					v.count++
					v.sum += m.Value
				case parser.Set:
					v.members[string(m.Member)] = true
				}
			}
			check := func(p int, snap *Snapshot, want map[string]*val) {
				t.Helper()
				got := collect(t, snap)
				if len(got) != len(want) {
					t.Errorf("period %d: %d series, want %d", p, len(got), len(want))
				}
				for id, v := range want {
					g := got[id]
					switch {
					case g == nil:
						t.Errorf("period %d: %s missing", p, id)
					case g.Kind == Counter || g.Kind == Gauge:
						if g.Value != v.v {
							t.Errorf("period %d: %s = %v, want %v", p, id, g.Value, v.v)
						}
					case g.Kind == Timer:
						if g.Count != v.count || g.Sum != v.sum {
							t.Errorf("period %d: %s count %v sum %v, want %v %v", p, id, g.Count, g.Sum, v.count, v.sum)
						}
					case g.Kind == Set:
						if g.Cardinality() != len(v.members) {
							t.Errorf("period %d: %s cardinality %d, want %d", p, id, g.Cardinality(), len(v.members))
						}
					}
					if g != nil && g.Kind == Gauge {
						gauges[id] = v.v
					}
				}
			}
			kinds := []string{"counter", "gauge", "timer", "set"}
			if tc.roll {
				a.SetSpan(1, 2)
			}
			for p := 1; p <= 40; p++ {
				// Names drift: a window of 60 of 200 moves each period.
				lo := (p * 7) % 140
				for range 400 {
					i := lo + rng.IntN(60)
					k := i % 4
					name := fmt.Sprint("m.", i)
					var m parser.Metric
					switch k {
					case 0:
						m = counter(name, float64(rng.IntN(9)), 1)
					case 1:
						m = gauge(name, float64(rng.IntN(9)-4), rng.IntN(3) == 0)
					case 2:
						m = timer(name, float64(rng.IntN(100)), 1)
					case 3:
						m = set(name, fmt.Sprint("x", rng.IntN(20)))
					}
					m = tagged(m, "", fmt.Sprintf("h:%d", i%3))
					id := kinds[k] + " " + name + " h=" + fmt.Sprint(i%3)
					toClosing := tc.roll && p > 1 && rng.IntN(4) == 0
					if toClosing {
						m.Timestamp = int64(p - 1) // the closing period's span
					}
					if err := w.Add(&m); err != nil {
						t.Fatal(err)
					}
					if toClosing {
						line(closing, m, id, true)
					} else {
						line(cur, m, id, false)
					}
				}
				if !tc.roll {
					check(p, a.Snapshot(), cur)
					cur = map[string]*val{}
					continue
				}
				// Roll at the end of period p (span [p, p+1)), then take
				// the period before it.
				prev := a.Roll(int64(p+1), int64(p+2))
				if p > 1 {
					if prev == nil {
						t.Fatalf("period %d: Roll returned no closing period", p-1)
					}
					check(p-1, prev, closing)
				}
				closing, cur = cur, map[string]*val{}
			}
			if n := a.strays.Load(); n != 0 {
				t.Errorf("%d pending sums found no value to join", n)
			}
			_, bytes := inUse(a)
			t.Logf("arenas at the end: %d bytes", bytes)
		})
	}
}

// TestSnapshotTakesClosingFirst checks that a Snapshot while a closing
// period is open takes that period first and keeps it for the next
// TakeClosing: nothing of either period is lost or merged.
func TestSnapshotTakesClosingFirst(t *testing.T) {
	a := New(Config{Shards: 2})
	w := a.NewWriter()
	a.SetSpan(100, 110)
	m := counter("c", 1, 1)
	if err := w.Add(&m); err != nil {
		t.Fatal(err)
	}
	if prev := a.Roll(110, 120); prev != nil {
		t.Fatalf("Roll returned %d series with no closing period open", prev.Len())
	}
	m = counter("c", 2, 1)
	if err := w.Add(&m); err != nil {
		t.Fatal(err)
	}
	cur := a.Snapshot()
	if got := collect(t, cur); len(got) != 1 || got["counter c"].Value != 2 {
		t.Errorf("Snapshot = %v, want c = 2, the current period", got)
	}
	if got := collect(t, a.TakeClosing()); len(got) != 1 || got["counter c"].Value != 1 {
		t.Errorf("TakeClosing = %v, want c = 1, the closing period", got)
	}
	if got := a.TakeClosing(); got.Len() != 0 {
		t.Errorf("a second TakeClosing holds %d series, want 0", got.Len())
	}
}

// TestIndex checks the index against a map through random inserts and
// removes, with tags drawn from few values (long runs, wrapping around
// the end of the slots) and from many, growing and shrinking.
func TestIndex(t *testing.T) {
	// found reports whether a probe for tag reaches r before an empty slot.
	found := func(x *index, tag uint32, r ref) bool {
		if len(x.slots) == 0 {
			return false
		}
		mask := uint32(len(x.slots) - 1)
		for i := tag & mask; x.slots[i].r1 != 0; i = (i + 1) & mask {
			if x.slots[i] == (slot{tag, r + 1}) {
				return true
			}
		}
		return false
	}
	for _, tags := range []uint32{7, 1 << 30} {
		rng := rand.New(rand.NewPCG(uint64(tags), 1))
		var x index
		model := map[ref]uint32{}
		next := ref(0)
		most := 0
		for step := range 60_000 {
			// Grow to about 5,000, then shrink to a few.
			grow := step < 30_000
			if len(model) > 0 && (rng.IntN(3) == 0 || !grow) {
				for r, tag := range model {
					x.remove(tag, r)
					delete(model, r)
					if found(&x, tag, r) {
						t.Fatalf("tags %d, step %d: %d found after its remove", tags, step, r)
					}
					break
				}
			} else if grow {
				tag := rng.Uint32() % tags
				x.insert(tag, next)
				model[next] = tag
				next++
			}
			most = max(most, len(x.slots))
			if step%1000 == 0 || step == 59_999 {
				if x.n != len(model) {
					t.Fatalf("tags %d, step %d: n = %d, want %d", tags, step, x.n, len(model))
				}
				for r, tag := range model {
					if !found(&x, tag, r) {
						t.Fatalf("tags %d, step %d: %d (tag %d) not found", tags, step, r, tag)
					}
				}
			}
		}
		if len(x.slots) >= most || len(x.slots) > 1024 {
			t.Errorf("tags %d: %d slots at the end (%d at most), want the index shrunk", tags, len(x.slots), most)
		}
	}
}

// TestChurnExactConcurrent checks that every unit lands in exactly one
// snapshot while Writers add lines of names that come and go, and the
// periods end under them: entries are freed and made again, keys
// compacted, and each Writer's cache remembers entries that may be gone.
func TestChurnExactConcurrent(t *testing.T) {
	const (
		goroutines = 4
		perG       = 20_000
	)
	a := New(Config{Shards: 4})
	a.compactMin = 1
	stop := make(chan struct{})
	total := make(chan float64)
	go func() {
		sum := 0.0
		count := func(s *Snapshot) {
			s.Each(func(x *Series) {
				switch x.Kind {
				case Counter:
					// Name n counts n+1 a line: a line added to another
					// name's series would not add up.
					var n int
					if _, err := fmt.Sscanf(x.Name, "churn.%d", &n); err != nil {
						t.Error(err)
					}
					sum += x.Value / float64(n+1)
				case Timer:
					sum += x.Count
				}
			})
		}
		for {
			select {
			case <-stop:
				count(a.Snapshot())
				total <- sum
				return
			default:
				count(a.Snapshot())
			}
		}
	}()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := a.NewWriter()
			// Runs of 1 to 40 Adds (see Begin), single Adds between them,
			// and every 5,000 lines the Writer closed for a new one, as
			// ingest's pool does with a Writer it does not keep.
			run := 0
			for i := range perG {
				if run == 0 && i%3 != 0 {
					run = 1 + (i*7919)%40
					w.Begin()
				}
				// A window of 300 names drifting through 3,000.
				n := (i/50 + i%300) % 3000
				m := counter(fmt.Sprint("churn.", n), float64(n+1), 1)
				if i%5 == 0 {
					m = timer(fmt.Sprint("t.", n), float64(i), 1)
				}
				if err := w.Add(&m); err != nil {
					t.Error(err)
					return
				}
				if run > 0 {
					if run--; run == 0 {
						w.End()
					}
				}
				if i%5000 == 4999 {
					if run > 0 {
						run = 0
						w.End()
					}
					w.Close()
					w = a.NewWriter()
				}
			}
			if run > 0 {
				w.End()
			}
		}()
	}
	wg.Wait()
	close(stop)
	if got := <-total; got != goroutines*perG {
		t.Errorf("snapshots hold %v units, want %d", got, goroutines*perG)
	}
	if n := a.strays.Load(); n != 0 {
		t.Errorf("%d pending sums found no value to join", n)
	}
}
