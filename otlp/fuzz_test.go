package otlp

import (
	"testing"
	"unicode/utf8"

	"github.com/libratod/libratod/internal/transport"
)

// FuzzDecodeResponse feeds the decoders of a receiver's answers (untrusted
// bytes) with anything: they must not panic, must not report a negative
// count, and what reaches a message must be one clean, bounded line.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add(partialSuccess(3, "bad points"), false)
	f.Add(partialSuccess(-1, "\xff\n"), false)
	f.Add(append(partialSuccess(1, "a"), partialSuccess(2, "b")...), false)
	f.Add(rpcStatus(3, "invalid"), false)
	f.Add([]byte{0x0a, 0x80}, false)             // length past the end
	f.Add([]byte{0x0a, 0x02, 0x08, 0xff}, false) // truncated varint inside
	f.Add([]byte{0x0b, 0x0c}, false)             // group tags
	f.Add([]byte(`{"partialSuccess":{"rejectedDataPoints":"7","errorMessage":"x"}}`), true)
	f.Add([]byte(`{"partialSuccess":{"rejectedDataPoints":1e3}}`), true)
	f.Add([]byte(`{"message":"nope"}`), true)
	f.Add([]byte(`[`), true)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		rejected, msg, err := decodeResponse(body, isJSON)
		if err == nil && rejected < 0 {
			t.Errorf("rejected %d", rejected)
		}
		for _, s := range []string{
			transport.Bound(transport.CleanMessage(msg)),
			transport.Bound(transport.CleanMessage(errorMessage(body, isJSON))),
		} {
			if len(s) > maxMessage || !utf8.ValidString(s) {
				t.Errorf("message %q", s)
			}
			for _, r := range s {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("control character in %q", s)
				}
			}
		}
	})
}
