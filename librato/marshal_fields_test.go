package librato

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"testing"
)

// fillFields sets every field of the struct v points to a non-zero value
// of its own (seed makes the values differ between calls), so that a
// round trip that forgets a field, the next one added included, shows.
func fillFields(t *testing.T, v any, seed int) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f, name := rv.Field(i), rv.Type().Field(i).Name
		k := seed*100 + i + 1
		switch f.Interface().(type) {
		case string:
			f.SetString(fmt.Sprintf("%s-%d", name, k))
		case float64:
			f.SetFloat(float64(k) + 0.25)
		case int64:
			f.SetInt(int64(k))
		case bool:
			f.SetBool(true)
		case []Tag:
			f.Set(reflect.ValueOf([]Tag{{Name: fmt.Sprintf("t%d", k), Value: fmt.Sprintf("v%d", k)}}))
		case []Measurement:
			// Filled by the caller.
		default:
			t.Fatalf("field %s of %s has type %s: teach fillFields (and MarshalBatch) about it",
				name, rv.Type(), f.Type())
		}
	}
}

// TestMarshalBatchEveryField: every field of a Batch and of its
// Measurements survives the round trip, each with a non-zero value, and
// each alone (the others zero) too.
func TestMarshalBatchEveryField(t *testing.T) {
	b := &Batch{}
	fillFields(t, b, 0)
	var full Measurement
	fillFields(t, &full, 1)
	b.Measurements = append(b.Measurements, full)
	mt := reflect.TypeOf(full)
	for i := range mt.NumField() {
		var one Measurement
		reflect.ValueOf(&one).Elem().Field(i).Set(reflect.ValueOf(full).Field(i))
		b.Measurements = append(b.Measurements, one)
	}
	got, err := UnmarshalBatch(MarshalBatch(nil, b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Measurements) != len(b.Measurements) {
		t.Fatalf("%d measurements back, want %d", len(got.Measurements), len(b.Measurements))
	}
	gb, wb := *got, *b
	gb.Measurements, wb.Measurements = nil, nil
	if !reflect.DeepEqual(gb, wb) {
		t.Errorf("batch fields:\n got %+v\nwant %+v", gb, wb)
	}
	for j := range b.Measurements {
		g, w := reflect.ValueOf(got.Measurements[j]), reflect.ValueOf(b.Measurements[j])
		for i := range mt.NumField() {
			if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
				t.Errorf("measurement %d: %s = %v, want %v", j, mt.Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
			}
		}
	}
}

// TestMarshalBatchStdDev: the case of the issue, a timer of 1e9 and 1e9+1,
// whose standard deviation of 0.5 cannot be derived from its sum of
// squares, keeps it through the spool.
func TestMarshalBatchStdDev(t *testing.T) {
	m := Measurement{Name: "t", Count: 2, Sum: 2e9 + 1, Min: 1e9, Max: 1e9 + 1,
		SumSquares: 1e18 + (1e9+1)*(1e9+1), StdDev: 0.5, HasStdDev: true}
	got, err := UnmarshalBatch(MarshalBatch(nil, &Batch{Measurements: []Measurement{m}}))
	if err != nil {
		t.Fatal(err)
	}
	if g := got.Measurements[0]; g.StdDev != 0.5 || !g.HasStdDev || stddev(&g) != 0.5 {
		t.Errorf("stddev %v (has %v), sent as %v; want 0.5", g.StdDev, g.HasStdDev, stddev(&g))
	}
}

// TestUnmarshalBatchVersion1 reads a batch written by the first format
// (testdata/batch-v1.bin, written by MarshalBatch before stddev was kept):
// records spooled by an older libratod are still resent.
func TestUnmarshalBatchVersion1(t *testing.T) {
	data, err := os.ReadFile("testdata/batch-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != 1 {
		t.Fatalf("fixture has format %d, want 1", data[0])
	}
	want := &Batch{Time: 1_700_000_000, Period: 10, Source: "web1", Tags: []Tag{{"host", "a"}}, Measurements: []Measurement{
		{Name: "gauge", Value: 2.5},
		{Name: "timer", Tags: []Tag{{"x", "y"}}, Source: "s2", Count: 2, Sum: 2e9 + 1, Min: 1e9, Max: 1e9 + 1,
			SumSquares: 2e18 + 2e9 + 1, Last: 1e9 + 1, HasLast: true},
		{Name: "counter", Value: 42, Counter: true},
		{Name: "inf", Value: math.Inf(-1)},
	}}
	got, err := UnmarshalBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("version 1 batch:\n got %+v\nwant %+v", got, want)
	}
}

func BenchmarkMarshalBatch(b *testing.B) {
	ms := make([]Measurement, 300)
	for i := range ms {
		ms[i] = Measurement{Name: "some.metric.name.timer", Tags: []Tag{{"host", "web-1"}}, Count: 10, Sum: 55,
			Min: 1, Max: 10, SumSquares: 385, StdDev: 2.87, HasStdDev: true, Last: 3, HasLast: true}
	}
	batch := &Batch{Time: 1_700_000_000, Period: 10, Measurements: ms}
	buf := MarshalBatch(nil, batch)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = MarshalBatch(buf[:0], batch)
	}
}
