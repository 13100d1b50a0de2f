package parser

import (
	"bytes"
	"reflect"
	"strconv"
	"testing"
	"unsafe"
)

// eventView is an Event with strings for byte slices, for readable
// comparisons.
type eventView struct {
	Title, Text                                                 string
	Timestamp                                                   int64
	Host, AggregationKey, Priority, SourceType, AlertType, Tags string
}

// viewEvent converts ev to an eventView. It fails t if a slice is empty but
// not nil: absent and empty parts are reported as nil.
func viewEvent(t *testing.T, ev Event) eventView {
	t.Helper()
	for name, b := range map[string][]byte{"Title": ev.Title, "Text": ev.Text, "Host": ev.Host,
		"AggregationKey": ev.AggregationKey, "Priority": ev.Priority, "SourceType": ev.SourceType,
		"AlertType": ev.AlertType, "Tags": ev.Tags} {
		if b != nil && len(b) == 0 {
			t.Errorf("%s is empty but not nil", name)
		}
	}
	return eventView{Title: string(ev.Title), Text: string(ev.Text), Timestamp: ev.Timestamp,
		Host: string(ev.Host), AggregationKey: string(ev.AggregationKey), Priority: string(ev.Priority),
		SourceType: string(ev.SourceType), AlertType: string(ev.AlertType), Tags: string(ev.Tags)}
}

func TestParseEvent(t *testing.T) {
	tests := map[string]struct {
		line    string
		want    eventView
		wantErr error
	}{
		// Byte lengths that match.
		"title and text": {line: "_e{5,4}:title|text", want: eventView{Title: "title", Text: "text"}},
		"every field": {
			line: "_e{6,11}:Deploy|v45 shipped|d:1700000000|h:web-1|k:deploy|p:low|s:jenkins|t:warning|#env:prod,bare",
			want: eventView{Title: "Deploy", Text: "v45 shipped", Timestamp: 1700000000, Host: "web-1",
				AggregationKey: "deploy", Priority: "low", SourceType: "jenkins", AlertType: "warning", Tags: "env:prod,bare"}},
		"fields in another order": {
			line: "_e{1,1}:a|b|#k:v|t:error|s:src|p:normal|k:key|h:host|d:1",
			want: eventView{Title: "a", Text: "b", Timestamp: 1, Host: "host", AggregationKey: "key",
				Priority: "normal", SourceType: "src", AlertType: "error", Tags: "k:v"}},
		"title is a pipe and more": {line: "_e{5,4}:|text", want: eventView{Title: "|text"}},
		"pipe in title":            {line: "_e{3,4}:a|b|text", want: eventView{Title: "a|b", Text: "text"}},
		"pipe in text":             {line: "_e{5,3}:title|a|b|#k:v", want: eventView{Title: "title", Text: "a|b", Tags: "k:v"}},
		"pipes in both at the end": {line: "_e{3,3}:a|b|c|d", want: eventView{Title: "a|b", Text: "c|d"}},
		"escaped newline kept":     {line: `_e{5,12}:title|line1\nline2`, want: eventView{Title: "title", Text: `line1\nline2`}},
		"utf-8 byte lengths":       {line: "_e{6,6}:café!|naïve|#k:v", want: eventView{Title: "café!", Text: "naïve", Tags: "k:v"}},
		"leading zeros":            {line: "_e{05,04}:title|text", want: eventView{Title: "title", Text: "text"}},
		"nine-digit lengths":       {line: "_e{000000005,000000004}:title|text", want: eventView{Title: "title", Text: "text"}},

		// Lengths that do not match: the parts run to the next '|'.
		"utf-16 lengths (hot-shots)": {line: "_e{5,5}:café!|naïve|#k:v", want: eventView{Title: "café!", Text: "naïve", Tags: "k:v"}},
		"utf-16 lengths, emoji":      {line: "_e{4,2}:hi🎉|ok|h:web", want: eventView{Title: "hi🎉", Text: "ok", Host: "web"}},
		"lengths too long":           {line: "_e{50,50}:title|text", want: eventView{Title: "title", Text: "text"}},
		"lengths too short":          {line: "_e{2,2}:title|text|h:web", want: eventView{Title: "title", Text: "text", Host: "web"}},
		"title length right only":    {line: "_e{3,1}:a|b|tèxt|d:5", want: eventView{Title: "a|b", Text: "tèxt", Timestamp: 5}},
		"text length right only":     {line: "_e{9,3}:tïtle|a|b", want: eventView{Title: "tïtle", Text: "a|b"}},

		// Empty and missing texts.
		"empty text":                    {line: "_e{5,0}:title|", want: eventView{Title: "title"}},
		"empty text then fields":        {line: "_e{5,0}:title||h:web", want: eventView{Title: "title", Host: "web"}},
		"zero text length, fields next": {line: "_e{5,0}:title|d:1700000000", want: eventView{Title: "title", Timestamp: 1700000000}},
		"title only":                    {line: "_e{5,0}:title", want: eventView{Title: "title"}},
		"title only, wrong lengths":     {line: "_e{9,9}:title", want: eventView{Title: "title"}},
		"text length beyond the line":   {line: "_e{5,4}:title|", want: eventView{Title: "title"}},

		// Fields.
		"unknown fields ignored": {line: "_e{1,1}:a|b|c:0123abc|e:it-false,cn-web|card:low|x|zz:1|m:msg",
			want: eventView{Title: "a", Text: "b"}},
		"last field wins":      {line: "_e{1,1}:a|b|h:one|#x|h:two|#y", want: eventView{Title: "a", Text: "b", Host: "two", Tags: "y"}},
		"empty values are nil": {line: "_e{1,1}:a|b|h:|k:|p:|s:|t:|#", want: eventView{Title: "a", Text: "b"}},
		"empty tags reset":     {line: "_e{1,1}:a|b|#k:v|#", want: eventView{Title: "a", Text: "b"}},
		"empty fields":         {line: "_e{1,1}:a|b|||h:web||", want: eventView{Title: "a", Text: "b", Host: "web"}},
		"surrounding space":    {line: " \t_e{1,1}:a|b\r\n", want: eventView{Title: "a", Text: "b"}},
		"space inside kept":    {line: "_e{3,3}: a | b ", want: eventView{Title: " a ", Text: " b"}},

		// Malformed.
		"empty line":              {line: "", wantErr: ErrBadEvent},
		"metric":                  {line: "hits:1|c", wantErr: ErrBadEvent},
		"service check":           {line: "_sc|db|0", wantErr: ErrBadEvent},
		"upper case":              {line: "_E{5,4}:title|text", wantErr: ErrBadEvent},
		"only the start":          {line: "_e{", wantErr: ErrBadEvent},
		"no colon":                {line: "_e{5,4}title|text", wantErr: ErrBadEvent},
		"header only":             {line: "_e{5,4}", wantErr: ErrBadEvent},
		"nothing after colon":     {line: "_e{5,4}:", wantErr: ErrBadEvent},
		"no title length":         {line: "_e{,4}:title|text", wantErr: ErrBadEvent},
		"no text length":          {line: "_e{5,}:title|text", wantErr: ErrBadEvent},
		"one length":              {line: "_e{5}:title|text", wantErr: ErrBadEvent},
		"three lengths":           {line: "_e{5,4,3}:title|text", wantErr: ErrBadEvent},
		"negative length":         {line: "_e{-5,4}:title|text", wantErr: ErrBadEvent},
		"letters for lengths":     {line: "_e{a,b}:title|text", wantErr: ErrBadEvent},
		"space in header":         {line: "_e{ 5,4}:title|text", wantErr: ErrBadEvent},
		"ten-digit length":        {line: "_e{0000000005,4}:title|text", wantErr: ErrBadEvent},
		"huge length":             {line: "_e{99999999999999999999,4}:title|text", wantErr: ErrBadEvent},
		"zero title length":       {line: "_e{0,4}:|text", wantErr: ErrBadEvent},
		"zero title length, text": {line: "_e{0,4}:abc|text", wantErr: ErrBadEvent},
		"empty title":             {line: "_e{2,4}:|text", wantErr: ErrBadEvent},
		"bad timestamp":           {line: "_e{5,4}:title|text|d:soon", wantErr: ErrBadEvent},
		"empty timestamp":         {line: "_e{5,4}:title|text|d:", wantErr: ErrBadEvent},
		"negative timestamp":      {line: "_e{5,4}:title|text|d:-1", wantErr: ErrBadEvent},
		"19-digit timestamp":      {line: "_e{5,4}:title|text|d:1000000000000000000", wantErr: ErrBadEvent},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(tt.line))
			if err != tt.wantErr {
				t.Fatalf("ParseEvent(%q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			if err != nil {
				if !reflect.DeepEqual(ev, Event{}) {
					t.Errorf("ParseEvent(%q) = %+v with an error, want the zero Event", tt.line, ev)
				}
				return
			}
			if got := viewEvent(t, ev); got != tt.want {
				t.Errorf("ParseEvent(%q) =\n\t%+v\nwant\n\t%+v", tt.line, got, tt.want)
			}
			// Parse sends every event line here.
			if _, err := Parse([]byte(tt.line), nil); err != ErrEvent {
				t.Errorf("Parse(%q) error = %v, want ErrEvent", tt.line, err)
			}
		})
	}
}

// scView is a ServiceCheck with strings for byte slices.
type scView struct {
	Name                string
	Status              int
	Timestamp           int64
	Host, Message, Tags string
}

func viewSC(t *testing.T, sc ServiceCheck) scView {
	t.Helper()
	for name, b := range map[string][]byte{"Name": sc.Name, "Host": sc.Host, "Message": sc.Message, "Tags": sc.Tags} {
		if b != nil && len(b) == 0 {
			t.Errorf("%s is empty but not nil", name)
		}
	}
	return scView{Name: string(sc.Name), Status: sc.Status, Timestamp: sc.Timestamp,
		Host: string(sc.Host), Message: string(sc.Message), Tags: string(sc.Tags)}
}

func TestParseServiceCheck(t *testing.T) {
	tests := map[string]struct {
		line    string
		want    scView
		wantErr error
	}{
		"ok":       {line: "_sc|db.up|0", want: scView{Name: "db.up"}},
		"warning":  {line: "_sc|db.up|1", want: scView{Name: "db.up", Status: 1}},
		"critical": {line: "_sc|db.up|2", want: scView{Name: "db.up", Status: 2}},
		"unknown":  {line: "_sc|db.up|3", want: scView{Name: "db.up", Status: 3}},
		"every field": {line: "_sc|db.up|2|d:1700000000|h:db-1|#env:prod,bare|m:connection refused",
			want: scView{Name: "db.up", Status: 2, Timestamp: 1700000000, Host: "db-1", Tags: "env:prod,bare", Message: "connection refused"}},
		"fields in another order": {line: "_sc|a|1|m:slow|#k:v|h:h1|d:7",
			want: scView{Name: "a", Status: 1, Timestamp: 7, Host: "h1", Tags: "k:v", Message: "slow"}},
		"message kept as written": {line: `_sc|a|2|m:line1\nline2 m\: x`, want: scView{Name: "a", Status: 2, Message: `line1\nline2 m\: x`}},
		"container after message": {line: "_sc|a|0|#k:v|m:msg|c:0123abc|card:low", want: scView{Name: "a", Tags: "k:v", Message: "msg"}},
		"unknown fields ignored":  {line: "_sc|a|0|x|zz:1|k:key|t:error", want: scView{Name: "a"}},
		"last field wins":         {line: "_sc|a|0|h:one|m:first|h:two|m:second", want: scView{Name: "a", Host: "two", Message: "second"}},
		"empty values are nil":    {line: "_sc|a|0|h:|m:|#", want: scView{Name: "a"}},
		"empty fields":            {line: "_sc|a|0|||h:web|", want: scView{Name: "a", Host: "web"}},
		"trailing pipe":           {line: "_sc|a|0|", want: scView{Name: "a"}},
		"name as written":         {line: "_sc|a:b#c d|0", want: scView{Name: "a:b#c d"}},
		"surrounding space":       {line: " _sc|a|3\r\n", want: scView{Name: "a", Status: 3}},

		"empty line":         {line: "", wantErr: ErrBadServiceCheck},
		"metric":             {line: "a:1|c", wantErr: ErrBadServiceCheck},
		"event":              {line: "_e{1,1}:a|b", wantErr: ErrBadServiceCheck},
		"upper case":         {line: "_SC|a|0", wantErr: ErrBadServiceCheck},
		"no pipe":            {line: "_sc a|0", wantErr: ErrBadServiceCheck},
		"prefix only":        {line: "_sc|", wantErr: ErrBadServiceCheck},
		"empty name":         {line: "_sc||0", wantErr: ErrBadServiceCheck},
		"no status":          {line: "_sc|a", wantErr: ErrBadServiceCheck},
		"empty status":       {line: "_sc|a|", wantErr: ErrBadServiceCheck},
		"status 4":           {line: "_sc|a|4", wantErr: ErrBadServiceCheck},
		"status -1":          {line: "_sc|a|-1", wantErr: ErrBadServiceCheck},
		"status 00":          {line: "_sc|a|00", wantErr: ErrBadServiceCheck},
		"status word":        {line: "_sc|a|ok", wantErr: ErrBadServiceCheck},
		"field as status":    {line: "_sc|a|h:web", wantErr: ErrBadServiceCheck},
		"bad timestamp":      {line: "_sc|a|0|d:x", wantErr: ErrBadServiceCheck},
		"empty timestamp":    {line: "_sc|a|0|d:", wantErr: ErrBadServiceCheck},
		"negative timestamp": {line: "_sc|a|0|d:-5", wantErr: ErrBadServiceCheck},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			sc, err := ParseServiceCheck([]byte(tt.line))
			if err != tt.wantErr {
				t.Fatalf("ParseServiceCheck(%q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			if err != nil {
				if !reflect.DeepEqual(sc, ServiceCheck{}) {
					t.Errorf("ParseServiceCheck(%q) = %+v with an error, want the zero ServiceCheck", tt.line, sc)
				}
				return
			}
			if got := viewSC(t, sc); got != tt.want {
				t.Errorf("ParseServiceCheck(%q) =\n\t%+v\nwant\n\t%+v", tt.line, got, tt.want)
			}
			if _, err := Parse([]byte(tt.line), nil); err != ErrServiceCheck {
				t.Errorf("Parse(%q) error = %v, want ErrServiceCheck", tt.line, err)
			}
		})
	}
}

// TestParseEventPointsIntoLine checks that the parts are sub-slices of the
// line, not copies.
func TestParseEventPointsIntoLine(t *testing.T) {
	line := []byte("_e{5,4}:title|text|h:web|#k:v")
	ev, err := ParseEvent(line)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"Title": ev.Title, "Text": ev.Text, "Host": ev.Host, "Tags": ev.Tags} {
		if !within(line, b) {
			t.Errorf("%s %q does not point into the line", name, b)
		}
	}
	sline := []byte("_sc|db|1|m:down|h:db-1")
	sc, err := ParseServiceCheck(sline)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"Name": sc.Name, "Message": sc.Message, "Host": sc.Host} {
		if !within(sline, b) {
			t.Errorf("%s %q does not point into the line", name, b)
		}
	}
}

func TestUnescapeEventText(t *testing.T) {
	tests := []struct {
		dst, src, want string
	}{
		{"", "", ""},
		{"", "plain", "plain"},
		{"", `a\nb`, "a\nb"},
		{"", `\n\n`, "\n\n"},
		{"", `\nstart and end\n`, "\nstart and end\n"},
		{"", `a\\nb`, "a\\\nb"}, // no backslash escaping: `\\n` is `\` then an escaped newline
		{"", `a\`, `a\`},
		{"", `\`, `\`},
		{"", `\t\x\N`, `\t\x\N`},
		{"", "real\nnewline", "real\nnewline"},
		{"prefix:", `x\ny`, "prefix:x\ny"},
	}
	for _, tt := range tests {
		got := UnescapeEventText([]byte(tt.dst), []byte(tt.src))
		if string(got) != tt.want {
			t.Errorf("UnescapeEventText(%q, %q) = %q, want %q", tt.dst, tt.src, got, tt.want)
		}
	}
}

// TestEventAllocs checks that ParseEvent, ParseServiceCheck and
// UnescapeEventText (with room in dst) allocate nothing, for good lines and
// bad ones.
func TestEventAllocs(t *testing.T) {
	events := []struct {
		line string
		ok   bool
	}{
		{"_e{6,11}:Deploy|v45 shipped|d:1700000000|h:web-1|k:deploy|p:low|s:jenkins|t:warning|#env:prod", true},
		{"_e{5,5}:café!|naïve|#k:v", true},
		{"_e{3,4}:a|b|text", true},
		{"_e{5,4}:title|text|d:x", false},
		{"_e{x}", false},
	}
	for _, tt := range events {
		b := []byte(tt.line)
		ok := false
		allocs := testing.AllocsPerRun(100, func() {
			_, err := ParseEvent(b)
			ok = err == nil
		})
		if allocs != 0 {
			t.Errorf("ParseEvent(%q) allocates %v times, want 0", tt.line, allocs)
		}
		if ok != tt.ok {
			t.Errorf("ParseEvent(%q) ok = %v, want %v", tt.line, ok, tt.ok)
		}
	}
	checks := []struct {
		line string
		ok   bool
	}{
		{"_sc|db.up|2|d:1700000000|h:db-1|#env:prod|m:connection refused", true},
		{"_sc|db.up|9", false},
	}
	for _, tt := range checks {
		b := []byte(tt.line)
		ok := false
		allocs := testing.AllocsPerRun(100, func() {
			_, err := ParseServiceCheck(b)
			ok = err == nil
		})
		if allocs != 0 {
			t.Errorf("ParseServiceCheck(%q) allocates %v times, want 0", tt.line, allocs)
		}
		if ok != tt.ok {
			t.Errorf("ParseServiceCheck(%q) ok = %v, want %v", tt.line, ok, tt.ok)
		}
	}
	src := []byte(`line one\nline two\nline three`)
	dst := make([]byte, 0, 64)
	var out []byte
	allocs := testing.AllocsPerRun(100, func() {
		out = UnescapeEventText(dst[:0], src)
	})
	if allocs != 0 {
		t.Errorf("UnescapeEventText allocates %v times, want 0", allocs)
	}
	if string(out) != "line one\nline two\nline three" {
		t.Errorf("UnescapeEventText = %q", out)
	}
}

// within reports whether b lies inside line's memory (an empty b always
// does).
func within(line, b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if len(line) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(line)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(line))
}

// formatEvent writes ev as a line with exact byte lengths, the way
// datadog-go does.
func formatEvent(ev Event) []byte {
	b := []byte("_e{")
	b = strconv.AppendInt(b, int64(len(ev.Title)), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(len(ev.Text)), 10)
	b = append(b, "}:"...)
	b = append(b, ev.Title...)
	b = append(b, '|')
	b = append(b, ev.Text...)
	if ev.Timestamp != 0 {
		b = append(b, "|d:"...)
		b = strconv.AppendInt(b, ev.Timestamp, 10)
	}
	for _, f := range []struct {
		prefix string
		v      []byte
	}{{"|h:", ev.Host}, {"|k:", ev.AggregationKey}, {"|p:", ev.Priority}, {"|s:", ev.SourceType},
		{"|t:", ev.AlertType}, {"|#", ev.Tags}} {
		if f.v != nil {
			b = append(b, f.prefix...)
			b = append(b, f.v...)
		}
	}
	return b
}

// formatServiceCheck writes sc as a line.
func formatServiceCheck(sc ServiceCheck) []byte {
	b := []byte("_sc|")
	b = append(b, sc.Name...)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(sc.Status), 10)
	if sc.Timestamp != 0 {
		b = append(b, "|d:"...)
		b = strconv.AppendInt(b, sc.Timestamp, 10)
	}
	for _, f := range []struct {
		prefix string
		v      []byte
	}{{"|h:", sc.Host}, {"|#", sc.Tags}, {"|m:", sc.Message}} {
		if f.v != nil {
			b = append(b, f.prefix...)
			b = append(b, f.v...)
		}
	}
	return b
}

// eventSeeds are event lines of every form ParseEvent knows, good and bad.
var eventSeeds = []string{
	"_e{5,4}:title|text", "_e{3,4}:a|b|text", "_e{5,3}:title|a|b|#k:v", `_e{5,12}:title|line1\nline2`,
	"_e{6,11}:Deploy|v45 shipped|d:1700000000|h:web-1|k:deploy|p:low|s:jenkins|t:warning|#env:prod,bare",
	"_e{5,5}:café!|naïve|#k:v", "_e{4,2}:hi🎉|ok", "_e{50,50}:title|text", "_e{5,0}:title|d:1",
	"_e{5,0}:title||h:web", "_e{5,0}:title", "_e{1,1}:a|b|c:abc|e:it-false,cn-web|card:low",
	"_e{0,4}:|text", "_e{5,4}:", "_e{,}:", "_e{1234567890,1}:a|b", "_e{5,4}:title|text|d:x", " _e{1,1}:a|b\r",
	"_sc|a|0", "a:1|c", "",
}

func FuzzParseEvent(f *testing.F) {
	for _, s := range eventSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		ev, err := ParseEvent(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("ParseEvent(%q) changed its input", orig)
		}
		if err != nil {
			if err != ErrBadEvent || !reflect.DeepEqual(ev, Event{}) {
				t.Fatalf("ParseEvent(%q) = %+v, %v; want the zero Event and ErrBadEvent", line, ev, err)
			}
			return
		}
		if len(ev.Title) == 0 || ev.Timestamp < 0 {
			t.Fatalf("ParseEvent(%q) = %+v: empty title or negative timestamp", line, ev)
		}
		fields := map[string][]byte{"Host": ev.Host, "AggregationKey": ev.AggregationKey, "Priority": ev.Priority,
			"SourceType": ev.SourceType, "AlertType": ev.AlertType, "Tags": ev.Tags}
		for name, b := range fields {
			if bytes.IndexByte(b, '|') >= 0 {
				t.Fatalf("ParseEvent(%q).%s = %q holds '|'", line, name, b)
			}
		}
		fields["Title"], fields["Text"] = ev.Title, ev.Text
		for name, b := range fields {
			if b != nil && len(b) == 0 {
				t.Fatalf("ParseEvent(%q).%s is empty but not nil", line, name)
			}
			if !within(line, b) {
				t.Fatalf("ParseEvent(%q).%s = %q does not point into the line", line, name, b)
			}
		}
		if _, err := Parse(line, nil); err != ErrEvent {
			t.Fatalf("Parse(%q) error = %v, want ErrEvent", line, err)
		}
		// Written again with exact byte lengths, it parses the same (unless
		// the new line ends in a space, which parsing trims).
		again := formatEvent(ev)
		if isSpace(again[len(again)-1]) {
			return
		}
		ev2, err := ParseEvent(again)
		if err != nil || !reflect.DeepEqual(ev2, ev) {
			t.Fatalf("ParseEvent(%q) = %+v\nwritten as %q parses as %+v, %v", line, ev, again, ev2, err)
		}
	})
}

func FuzzParseServiceCheck(f *testing.F) {
	for _, s := range []string{
		"_sc|db.up|0", "_sc|db.up|2|d:1700000000|h:db-1|#env:prod,bare|m:connection refused",
		`_sc|a|2|m:line1\nline2 m\: x`, "_sc|a|0|#k:v|m:msg|c:0123abc|card:low", "_sc|a|0|h:|m:|#",
		"_sc||0", "_sc|a", "_sc|a|4", "_sc|a|00", "_sc|a|0|d:x", " _sc|a|3\r", "_e{1,1}:a|b", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		sc, err := ParseServiceCheck(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("ParseServiceCheck(%q) changed its input", orig)
		}
		if err != nil {
			if err != ErrBadServiceCheck || !reflect.DeepEqual(sc, ServiceCheck{}) {
				t.Fatalf("ParseServiceCheck(%q) = %+v, %v; want the zero ServiceCheck and ErrBadServiceCheck", line, sc, err)
			}
			return
		}
		if len(sc.Name) == 0 || sc.Status < 0 || sc.Status > 3 || sc.Timestamp < 0 {
			t.Fatalf("ParseServiceCheck(%q) = %+v", line, sc)
		}
		for name, b := range map[string][]byte{"Name": sc.Name, "Host": sc.Host, "Message": sc.Message, "Tags": sc.Tags} {
			if bytes.IndexByte(b, '|') >= 0 || (b != nil && len(b) == 0) || !within(line, b) {
				t.Fatalf("ParseServiceCheck(%q).%s = %q: holds '|', is empty but not nil, or is not in the line", line, name, b)
			}
		}
		if _, err := Parse(line, nil); err != ErrServiceCheck {
			t.Fatalf("Parse(%q) error = %v, want ErrServiceCheck", line, err)
		}
		again := formatServiceCheck(sc)
		if isSpace(again[len(again)-1]) {
			return
		}
		sc2, err := ParseServiceCheck(again)
		if err != nil || !reflect.DeepEqual(sc2, sc) {
			t.Fatalf("ParseServiceCheck(%q) = %+v\nwritten as %q parses as %+v, %v", line, sc, again, sc2, err)
		}
	})
}

// FuzzUnescapeEventText checks UnescapeEventText against bytes.ReplaceAll.
func FuzzUnescapeEventText(f *testing.F) {
	for _, s := range []string{"", "plain", `a\nb`, `\n\n`, `a\\nb`, `a\`, `\`, "\n"} {
		f.Add([]byte("p:"), []byte(s))
	}
	f.Fuzz(func(t *testing.T, dst, src []byte) {
		want := append(bytes.Clone(dst), bytes.ReplaceAll(src, []byte(`\n`), []byte("\n"))...)
		got := UnescapeEventText(bytes.Clone(dst), src)
		if !bytes.Equal(got, want) {
			t.Fatalf("UnescapeEventText(%q, %q) = %q, want %q", dst, src, got, want)
		}
	})
}

func BenchmarkParseEvent(b *testing.B) {
	benchmarks := map[string]string{
		"title_text":  "_e{6,11}:Deploy|v45 shipped",
		"datadog_go":  "_e{6,23}:Deploy|v45 shipped\\nby jenkins|d:1700000000|h:web-1|k:deploy|p:low|s:jenkins|t:warning|#env:prod,service:api",
		"utf16_sizes": "_e{5,5}:café!|naïve|#env:prod",
	}
	for name, line := range benchmarks {
		b.Run(name, func(b *testing.B) {
			l := []byte(line)
			b.SetBytes(int64(len(l)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseEvent(l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseServiceCheck(b *testing.B) {
	l := []byte("_sc|db.up|2|d:1700000000|h:db-1|#env:prod,service:api|m:connection refused")
	b.SetBytes(int64(len(l)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseServiceCheck(l); err != nil {
			b.Fatal(err)
		}
	}
}
