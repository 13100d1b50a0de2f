package parser

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseWith checks that each tag syntax is read only when asked for:
// one left out keeps its bytes in the name (or ignores the "|#" field).
func TestParseWith(t *testing.T) {
	const line = "a#k=v,x=1;y=2:1|c|#d:1"
	tests := map[string]struct {
		line     string
		syntaxes TagSyntaxes
		want     view
		wantErr  error
	}{
		"all":       {line: line, syntaxes: AllTagSyntaxes, want: view{Name: "a", NameTags: "k=v,x=1;y=2", NameTagSep: ',', Tags: "d:1"}},
		"none":      {line: line, syntaxes: 0, want: view{Name: "a#k=v,x=1;y=2"}},
		"dogstatsd": {line: line, syntaxes: DogStatsDTags, want: view{Name: "a#k=v,x=1;y=2", Tags: "d:1"}},
		"librato":   {line: line, syntaxes: LibratoTags, want: view{Name: "a", NameTags: "k=v,x=1;y=2", NameTagSep: ','}},
		"influxdb":  {line: line, syntaxes: InfluxDBTags, want: view{Name: "a#k=v", NameTags: "x=1;y=2", NameTagSep: ','}},
		"graphite":  {line: line, syntaxes: GraphiteTags, want: view{Name: "a#k=v,x=1", NameTags: "y=2", NameTagSep: ';'}},
		"influxdb and graphite": {
			line: line, syntaxes: InfluxDBTags | GraphiteTags, want: view{Name: "a#k=v", NameTags: "x=1;y=2", NameTagSep: ','},
		},
		"graphite first": {
			line: "a;k=v,x=1:1|c", syntaxes: AllTagSyntaxes, want: view{Name: "a", NameTags: "k=v,x=1", NameTagSep: ';'},
		},
		// A syntax turned off cannot refuse a line.
		"bad librato off":    {line: "a#:1|c", syntaxes: AllTagSyntaxes &^ LibratoTags, want: view{Name: "a#"}},
		"bad influxdb off":   {line: "a,=v:1|c", syntaxes: AllTagSyntaxes &^ InfluxDBTags, want: view{Name: "a,=v"}},
		"bad graphite off":   {line: "a;k:1|c", syntaxes: AllTagSyntaxes &^ GraphiteTags, want: view{Name: "a;k"}},
		"bad librato on":     {line: "a#:1|c", syntaxes: LibratoTags, wantErr: ErrBadTags},
		"bad influxdb on":    {line: "a,=v:1|c", syntaxes: InfluxDBTags, wantErr: ErrBadInfluxDBTags},
		"bad graphite on":    {line: "a;k:1|c", syntaxes: GraphiteTags, wantErr: ErrBadGraphiteTags},
		"dog tags field off": {line: "a:1|c|#k:v|@0.5", syntaxes: 0, want: view{Name: "a", Rate: 0.5}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseWith([]byte(tt.line), nil, tt.syntaxes)
			if err != tt.wantErr {
				t.Fatalf("ParseWith(%q, %v) error = %v, want %v", tt.line, tt.syntaxes, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			want := tt.want
			want.Type, want.Value = Counter, 1
			if want.Rate == 0 {
				want.Rate = 1
			}
			if vs := views(t, got); !reflect.DeepEqual(vs, []view{want}) {
				t.Errorf("ParseWith(%q, %v) =\n%s\nwant\n%s", tt.line, tt.syntaxes, fmtViews(vs), fmtViews([]view{want}))
			}
		})
	}
}

func TestParseTagSyntaxes(t *testing.T) {
	tests := []struct {
		names   []string
		want    TagSyntaxes
		str     string
		wantErr string
	}{
		{names: nil, want: 0, str: "none"},
		{names: []string{"dogstatsd", "librato", "influxdb", "graphite"}, want: AllTagSyntaxes, str: "dogstatsd,librato,influxdb,graphite"},
		{names: []string{"graphite", "dogstatsd", "graphite"}, want: DogStatsDTags | GraphiteTags, str: "dogstatsd,graphite"},
		{names: []string{"influxdb"}, want: InfluxDBTags, str: "influxdb"},
		{names: []string{"librato", "telegraf"}, wantErr: `unknown tag syntax "telegraf": expected "dogstatsd", "librato", "influxdb", "graphite"`},
		{names: []string{"InfluxDB"}, wantErr: `unknown tag syntax "InfluxDB"`},
	}
	for _, tt := range tests {
		got, err := ParseTagSyntaxes(tt.names)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTagSyntaxes(%q) error = %v, want %q", tt.names, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTagSyntaxes(%q) = %v, %v; want %v", tt.names, got, err, tt.want)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("%v.String() = %q, want %q", tt.names, s, tt.str)
		}
	}
	all, err := ParseTagSyntaxes(TagSyntaxNames())
	if err != nil || all != AllTagSyntaxes {
		t.Errorf("ParseTagSyntaxes(TagSyntaxNames()) = %v, %v; want every syntax", all, err)
	}
}
