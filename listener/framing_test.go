package listener

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

// chunkReader returns data in reads of the given sizes (cycling; a size larger
// than the caller's buffer is cut), and io.EOF with the last bytes when
// eofWithData is set, else on the read after them.
type chunkReader struct {
	data        []byte
	sizes       []int
	i           int
	eofWithData bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = min(n, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	if r.eofWithData && len(r.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// frameAll runs a framer over r until an error and returns the chunks it
// emitted, the too-long count and the final error.
func frameAll(r io.Reader, maxLine int) (chunks []string, tooLong int, err error) {
	f := newFramer(maxLine, func(c []byte) {
		chunks = append(chunks, string(c))
	}, func() {
		tooLong++
	})
	// Every read consumes a byte at least, so the loop ends well before this
	// bound on the inputs used here.
	for range 1 << 20 {
		if _, err = f.readOnce(r); err != nil {
			return chunks, tooLong, err
		}
	}
	return chunks, tooLong, errors.New("framer did not stop")
}

func TestFramer(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		maxLine     int // 8 if 0
		sizes       []int
		eofWithData bool
		want        []string // chunks
		wantTooLong int
	}{
		{name: "one line", in: "a:1|c\n", want: []string{"a:1|c"}},
		{name: "lines in one read are one chunk", in: "a:1|c\nb:2|c\n", maxLine: 64, want: []string{"a:1|c\nb:2|c"}},
		{name: "line split across reads", in: "ab:1|c\n", sizes: []int{1, 2, 4}, want: []string{"ab:1|c"}},
		{name: "partial line waits for the next read", in: "a:1\nb:2\n", sizes: []int{6, 2}, want: []string{"a:1", "b:2"}},
		{name: "CRLF kept", in: "a:1|c\r\nb:2|c\r\n", maxLine: 64, want: []string{"a:1|c\r\nb:2|c\r"}},
		{name: "final line without newline", in: "a:1\nb:2", want: []string{"a:1", "b:2"}},
		{name: "final line with EOF in the same read", in: "a:1\nb:2", eofWithData: true, want: []string{"a:1", "b:2"}},
		{name: "line of exactly max", in: "12345678\nx\n", want: []string{"12345678", "x"}},
		{name: "line of max+1 dropped", in: "123456789\nx\n", want: []string{"x"}, wantTooLong: 1},
		{name: "long line between short ones", in: "a\n0123456789abcdef0123\nb\n", sizes: []int{3}, want: []string{"a", "b"}, wantTooLong: 1},
		{name: "long line spanning many reads", in: strings.Repeat("z", 100) + "\nok\n", sizes: []int{7}, want: []string{"ok"}, wantTooLong: 1},
		{name: "two long lines", in: strings.Repeat("y", 20) + "\n" + strings.Repeat("y", 9) + "\nok", want: []string{"ok"}, wantTooLong: 2},
		{name: "long final line without newline", in: "a\n" + strings.Repeat("w", 12), want: []string{"a"}, wantTooLong: 1},
		{name: "long final line with EOF in the same read", in: strings.Repeat("w", 9), eofWithData: true, wantTooLong: 1},
		{name: "empty lines are not emitted alone", in: "\n\na\n\n", sizes: []int{1}, want: []string{"a"}},
		{name: "empty input", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxLine := tt.maxLine
			if maxLine == 0 {
				maxLine = 8
			}
			r := &chunkReader{data: []byte(tt.in), sizes: tt.sizes, eofWithData: tt.eofWithData}
			got, tooLong, err := frameAll(r, maxLine)
			if err != io.EOF {
				t.Fatalf("error %v, want io.EOF", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("chunks %q, want %q", got, tt.want)
			}
			if tooLong != tt.wantTooLong {
				t.Errorf("too long %d, want %d", tooLong, tt.wantTooLong)
			}
		})
	}
}

func TestFramerKeepsPartialLineOnError(t *testing.T) {
	errBoom := errors.New("boom")
	var chunks []string
	f := newFramer(8, func(c []byte) { chunks = append(chunks, string(c)) }, func() {})
	r := io.MultiReader(strings.NewReader("a\nbc"), &errReader{err: errBoom})
	for range 3 {
		if _, err := f.readOnce(r); err != nil {
			if !errors.Is(err, errBoom) {
				t.Fatalf("error %v, want %v", err, errBoom)
			}
			break
		}
	}
	if want := []string{"a"}; !slices.Equal(chunks, want) {
		t.Errorf("chunks %q, want %q (the partial line is not emitted on an error)", chunks, want)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

// FuzzFraming feeds arbitrary bytes through the framer with an arbitrary
// chunking and a small line limit, and checks the lines emitted against a plain
// split of the input.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("a:1|c\nb:2|c\n"), []byte{1}, uint8(8), false)
	f.Add([]byte("a:1|c\r\nb:2|c"), []byte{3, 5}, uint8(4), true)
	f.Add([]byte("0123456789\nab\n\n\nc"), []byte{2, 9}, uint8(5), false)
	f.Add([]byte(strings.Repeat("x", 300)+"\nok\n"), []byte{255, 1}, uint8(16), true)
	f.Add([]byte("\n\n\n"), []byte{}, uint8(1), false)
	f.Add([]byte("abc"), []byte{0}, uint8(0), true)
	f.Fuzz(func(t *testing.T, data, chunking []byte, maxLine8 uint8, eofWithData bool) {
		maxLine := int(maxLine8)%64 + 1
		sizes := make([]int, len(chunking))
		for i, c := range chunking {
			sizes[i] = int(c) + 1
		}
		r := &chunkReader{data: slices.Clone(data), sizes: sizes, eofWithData: eofWithData}
		chunks, tooLong, err := frameAll(r, maxLine)
		if err != io.EOF {
			t.Fatalf("error %v, want io.EOF", err)
		}

		var got [][]byte
		for _, c := range chunks {
			if len(c) == 0 {
				t.Fatalf("empty chunk")
			}
			for line := range bytes.SplitSeq([]byte(c), []byte("\n")) {
				if len(line) > maxLine {
					t.Fatalf("line of %d bytes > max %d: %q", len(line), maxLine, line)
				}
				if len(line) > 0 {
					got = append(got, line)
				}
			}
		}
		var want [][]byte
		wantTooLong := 0
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			switch {
			case len(line) > maxLine:
				wantTooLong++
			case len(line) > 0:
				want = append(want, line)
			}
		}
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("lines %q, want %q", got, want)
		}
		if tooLong != wantTooLong {
			t.Fatalf("too long %d, want %d", tooLong, wantTooLong)
		}
	})
}
