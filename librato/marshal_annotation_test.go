package librato

import (
	"errors"
	"reflect"
	"testing"
)

func TestMarshalAnnotationRoundTrip(t *testing.T) {
	for _, a := range []Annotation{
		{},
		{Stream: "deploys", Title: "v1 \u00e9", Description: "a\nb", Source: "web-1",
			StartTime: 1800000000, EndTime: 1800000060,
			Links: []Link{{Rel: "github", Href: "https://x/y", Label: "PR"}, {Rel: "r", Href: "h"}}},
		{Title: "negative", StartTime: -5},
	} {
		p := MarshalAnnotation([]byte("prefix"), &a)
		got, err := UnmarshalAnnotation(p[len("prefix"):])
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if !reflect.DeepEqual(*got, a) {
			t.Errorf("round trip of %+v gave %+v", a, *got)
		}
	}
}

func TestUnmarshalAnnotationRefuses(t *testing.T) {
	good := MarshalAnnotation(nil, &Annotation{Stream: "s", Title: "t", Links: []Link{{Rel: "a", Href: "b"}}})
	bad := [][]byte{nil, {2}, append(append([]byte{}, good...), 0)}
	for n := range good {
		bad = append(bad, good[:n])
	}
	for _, p := range bad {
		if a, err := UnmarshalAnnotation(p); !errors.Is(err, ErrBatchEncoding) {
			t.Errorf("UnmarshalAnnotation(%q) = %+v, %v; want an error wrapping ErrBatchEncoding", p, a, err)
		}
	}
	// A batch is not an annotation: its version byte (2) is refused.
	if _, err := UnmarshalAnnotation(MarshalBatch(nil, &Batch{Time: 1})); !errors.Is(err, ErrBatchEncoding) {
		t.Errorf("a batch read as an annotation: %v", err)
	}
}

func FuzzUnmarshalAnnotation(f *testing.F) {
	f.Add(MarshalAnnotation(nil, &Annotation{Stream: "s", Title: "t", Links: []Link{{Rel: "a", Href: "b"}}}))
	f.Fuzz(func(t *testing.T, p []byte) {
		a, err := UnmarshalAnnotation(p)
		if err != nil {
			return
		}
		again, err := UnmarshalAnnotation(MarshalAnnotation(nil, a))
		if err != nil || !reflect.DeepEqual(a, again) {
			t.Fatalf("%+v did not survive a round trip: %+v, %v", a, again, err)
		}
	})
}
