package librato

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestMarshalBatchRoundTrip(t *testing.T) {
	tests := map[string]*Batch{
		"empty": {},
		"tagged": {Time: 1_700_000_000, Period: 10, Tags: []Tag{{"host", "a"}, {"env", "prod"}}, Measurements: []Measurement{
			{Name: "c", Value: 3},
			{Name: "t", Tags: []Tag{{"x", "y"}}, Count: 4, Sum: 10, Min: 1, Max: 4, SumSquares: 30, Last: 2, HasLast: true},
			{Name: "weird", Value: math.Inf(-1)},
			{Name: "neg", Value: -0.1, Count: 0},
		}},
		"legacy": {Time: -5, Source: "web1", Measurements: []Measurement{
			{Name: "g", Source: "s2", Value: 1e300},
			{Name: "k", Value: 42, Counter: true},
			{Name: "é\x00\"", Count: 1, Sum: 1, Min: 1, Max: 1, SumSquares: 1},
		}},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			data := MarshalBatch([]byte("prefix"), b)
			got, err := UnmarshalBatch(data[len("prefix"):])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, b) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
			}
		})
	}
}

func TestMarshalBatchNaN(t *testing.T) {
	nan := math.Float64frombits(0x7ff8000000000123)
	got, err := UnmarshalBatch(MarshalBatch(nil, &Batch{Measurements: []Measurement{{Name: "n", Value: nan}}}))
	if err != nil {
		t.Fatal(err)
	}
	if bits := math.Float64bits(got.Measurements[0].Value); bits != 0x7ff8000000000123 {
		t.Errorf("NaN bits %#x", bits)
	}
}

func TestUnmarshalBatchDamaged(t *testing.T) {
	good := MarshalBatch(nil, &Batch{Time: 1, Tags: []Tag{{"a", "b"}}, Measurements: []Measurement{{Name: "m", Count: 2, Sum: 1, HasLast: true}}})
	tests := map[string][]byte{
		"nil":         nil,
		"version":     append([]byte{9}, good[1:]...),
		"left over":   append(append([]byte{}, good...), 0),
		"bad fields":  func() []byte { b := append([]byte{}, good...); b[len(b)-10] = 0x18; return b }(),
		"huge length": {batchFormat, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for i := 1; i < len(good); i++ {
		tests["cut at "+string(rune('a'+i%26))+string(rune('0'+i/26))] = good[:i]
	}
	for name, data := range tests {
		if _, err := UnmarshalBatch(data); !errors.Is(err, ErrBatchEncoding) {
			t.Errorf("%s: err %v, want ErrBatchEncoding", name, err)
		}
	}
}

func FuzzUnmarshalBatch(f *testing.F) {
	f.Add(MarshalBatch(nil, &Batch{Time: 1, Tags: []Tag{{"a", "b"}}, Measurements: []Measurement{{Name: "m", Value: 1}, {Name: "s", Count: 2, Sum: 3}}}))
	f.Add([]byte{batchFormat})
	f.Add(MarshalBatch(nil, &Batch{Measurements: []Measurement{{Name: "t", Count: -1, StdDev: 0.5, HasStdDev: true, Last: 1, Counter: true}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := UnmarshalBatch(data)
		if err != nil {
			return
		}
		enc := MarshalBatch(nil, b)
		again, err := UnmarshalBatch(enc)
		if err != nil {
			t.Fatalf("re-encoding fails: %v", err)
		}
		if !bytes.Equal(MarshalBatch(nil, again), enc) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func BenchmarkUnmarshalBatch(b *testing.B) {
	ms := make([]Measurement, 300)
	for i := range ms {
		ms[i] = Measurement{Name: "some.metric.name.timer", Tags: []Tag{{"host", "web-1"}}, Count: 10, Sum: 55, Min: 1, Max: 10, SumSquares: 385}
	}
	data := MarshalBatch(nil, &Batch{Time: 1_700_000_000, Period: 10, Measurements: ms})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalBatch(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUnmarshalBatchFlagsOffset(t *testing.T) {
	good := MarshalBatch(nil, &Batch{Time: 1, Tags: []Tag{{"a", "b"}}, Measurements: []Measurement{{Name: "m", Count: 2, Sum: 1, HasLast: true}}})
	want := binary.AppendUvarint(nil, fieldCount|fieldSum|fieldHasLast)
	if f := good[len(good)-11 : len(good)-9]; !bytes.Equal(f, want) {
		t.Fatalf("fields are %#x, not %#x: the damaged-fields case tests something else", f, want)
	}
}
