package parser

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// view is a Metric with strings for byte slices, for readable comparisons.
type view struct {
	Name, NameTags, Tags string
	NameTagSep           byte
	Type                 Type
	Value                float64
	Delta                bool
	Member               string
	Rate                 float64
	Timestamp            int64
}

// views converts ms to views. It fails t if a slice is empty but not nil:
// Parse reports absent tags and members as nil.
func views(t *testing.T, ms []Metric) []view {
	t.Helper()
	var vs []view
	for i, m := range ms {
		for field, b := range map[string][]byte{"NameTags": m.NameTags, "Tags": m.Tags, "Member": m.Member} {
			if b != nil && len(b) == 0 {
				t.Errorf("metric %d: %s is empty but not nil", i, field)
			}
		}
		vs = append(vs, view{
			Name: string(m.Name), NameTags: string(m.NameTags), Tags: string(m.Tags), NameTagSep: m.NameTagSep,
			Type: m.Type, Value: m.Value, Delta: m.Delta, Member: string(m.Member),
			Rate: m.Rate, Timestamp: m.Timestamp,
		})
	}
	return vs
}

// num returns a metric named a of type typ and value v, rate 1.
func num(typ Type, v float64) view {
	return view{Name: "a", Type: typ, Value: v, Rate: 1}
}

// repeat returns n copies of v.
func repeat(n int, v view) []view {
	vs := make([]view, n)
	for i := range vs {
		vs[i] = v
	}
	return vs
}

func TestParse(t *testing.T) {
	packed1024 := "a" + strings.Repeat(":1", MaxValues) + "|ms"
	packed1025 := "a" + strings.Repeat(":1", MaxValues+1) + "|ms"
	multi1025 := "a:" + strings.Repeat("1|c:", MaxValues) + "1|c"
	long := "0.1234567890123456789012345678901234567890" // more than 32 bytes: ParseFloat path
	longValue, _ := strconv.ParseFloat(long, 64)

	tests := map[string]struct {
		line    string
		want    []view
		wantErr error
	}{
		// Empty lines are skipped, not errors.
		"empty":           {line: ""},
		"only CR":         {line: "\r"},
		"only whitespace": {line: " \t \r"},

		// One metric of each type.
		"counter":              {line: "a:1|c", want: []view{num(Counter, 1)}},
		"counter float":        {line: "a:1.5|c", want: []view{num(Counter, 1.5)}},
		"counter negative":     {line: "a:-3|c", want: []view{num(Counter, -3)}},
		"counter plus sign":    {line: "a:+3|c", want: []view{num(Counter, 3)}},
		"gauge":                {line: "a:42|g", want: []view{num(Gauge, 42)}},
		"gauge zero":           {line: "a:0|g", want: []view{num(Gauge, 0)}},
		"gauge delta plus":     {line: "a:+3|g", want: []view{{Name: "a", Type: Gauge, Value: 3, Delta: true, Rate: 1}}},
		"gauge delta minus":    {line: "a:-3.5|g", want: []view{{Name: "a", Type: Gauge, Value: -3.5, Delta: true, Rate: 1}}},
		"timer ms":             {line: "a:12.500000|ms", want: []view{num(Timer, 12.5)}},
		"timer h":              {line: "a:7|h", want: []view{num(Timer, 7)}},
		"timer d":              {line: "a:7|d", want: []view{num(Timer, 7)}},
		"timer negative":       {line: "a:-5|ms", want: []view{num(Timer, -5)}},
		"set":                  {line: "a:alice|s", want: []view{{Name: "a", Type: Set, Member: "alice", Rate: 1}}},
		"set member with ':'":  {line: "a:user:1:2|s", want: []view{{Name: "a", Type: Set, Member: "user:1:2", Rate: 1}}},
		"set member with sign": {line: "a:-1|s", want: []view{{Name: "a", Type: Set, Member: "-1", Rate: 1}}},

		// Values.
		"value exponent":      {line: "a:1e3|g", want: []view{num(Gauge, 1000)}},
		"value max magnitude": {line: "a:-1e126|g", want: []view{{Name: "a", Type: Gauge, Value: -1e126, Delta: true, Rate: 1}}},
		"value tiny":          {line: "a:1e-300|g", want: []view{num(Gauge, 1e-300)}},
		"value leading dot":   {line: "a:.5|ms", want: []view{num(Timer, 0.5)}},
		"value trailing dot":  {line: "a:5.|ms", want: []view{num(Timer, 5)}},
		"value 0.1":           {line: "a:0.1|ms", want: []view{num(Timer, 0.1)}},
		"value 16 digits":     {line: "a:9007199254740993|c", want: []view{num(Counter, 9007199254740992)}},
		"value long":          {line: "a:" + long + "|ms", want: []view{num(Timer, longValue)}},

		// Fields after the type.
		"rate":         {line: "a:1|c|@0.1", want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 0.1}}},
		"rate one":     {line: "a:1|ms|@1", want: []view{num(Timer, 1)}},
		"rate floor":   {line: "a:1|c|@1e-6", want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 1e-6}}},
		"rate on set":  {line: "a:x|s|@0.5", want: []view{{Name: "a", Type: Set, Member: "x", Rate: 0.5}}},
		"tags":         {line: "a:1|c|#k:v,k2:v2,bare", want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 1, Tags: "k:v,k2:v2,bare"}}},
		"empty tags":   {line: "a:1|c|#", want: []view{num(Counter, 1)}},
		"rate, tags":   {line: "a:1|ms|@0.5|#k:v", want: []view{{Name: "a", Type: Timer, Value: 1, Rate: 0.5, Tags: "k:v"}}},
		"tags, rate":   {line: "a:1|ms|#k:v|@0.5", want: []view{{Name: "a", Type: Timer, Value: 1, Rate: 0.5, Tags: "k:v"}}},
		"last wins":    {line: "a:1|c|@0.5|#x|@0.25|#y", want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 0.25, Tags: "y"}}},
		"timestamp":    {line: "a:1|g|T1795266106", want: []view{{Name: "a", Type: Gauge, Value: 1, Rate: 1, Timestamp: 1795266106}}},
		"unknown":      {line: "a:1|c|x:y|zz", want: []view{num(Counter, 1)}},
		"empty fields": {line: "a:1|c||#k:v|", want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 1, Tags: "k:v"}}},
		"datadog container": {
			line: "a:1|c|#env:prod,env:test|c:0123abc|e:it-false,cn-web,pu-1|T1795266106|card:low",
			want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 1, Tags: "env:prod,env:test", Timestamp: 1795266106}},
		},

		// Names.
		"name utf8":          {line: "café.hits:1|c", want: []view{{Name: "café.hits", Type: Counter, Value: 1, Rate: 1}}},
		"name kept as is":    {line: "a b/c:1|c", want: []view{{Name: "a b/c", Type: Counter, Value: 1, Rate: 1}}},
		"name tags":          {line: "api.req#host=a,env=prod:1|c", want: []view{{Name: "api.req", NameTags: "host=a,env=prod", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"name tag no value":  {line: "a#k=:1|c", want: []view{{Name: "a", NameTags: "k=", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"name and dog tags":  {line: "a#k=v:1|c|#x:y", want: []view{{Name: "a", NameTags: "k=v", NameTagSep: ',', Tags: "x:y", Type: Counter, Value: 1, Rate: 1}}},
		"name tags with ';'": {line: "a#k=v;x=y:1|c", want: []view{{Name: "a", NameTags: "k=v;x=y", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"dog tags with '#'":  {line: "a:1|c|#tag1:a,#tag2:b", want: []view{{Name: "a", Tags: "tag1:a,#tag2:b", Type: Counter, Value: 1, Rate: 1}}},

		// InfluxDB / Telegraf tags, as hot-shots writes them with telegraf:
		// true.
		"influxdb tags": {
			line: "rcn.requests,app=rcnode,env=test,service=web,code=200:3|c",
			want: []view{{Name: "rcn.requests", NameTags: "app=rcnode,env=test,service=web,code=200", NameTagSep: ',', Type: Counter, Value: 3, Rate: 1}},
		},
		"influxdb timer":     {line: "rcn.latency,app=rcnode:12.5|ms|@0.5", want: []view{{Name: "rcn.latency", NameTags: "app=rcnode", NameTagSep: ',', Type: Timer, Value: 12.5, Rate: 0.5}}},
		"influxdb set":       {line: "rcn.users,app=rcnode,env=test:user-0|s", want: []view{{Name: "rcn.users", NameTags: "app=rcnode,env=test", NameTagSep: ',', Type: Set, Member: "user-0", Rate: 1}}},
		"influxdb bare tag":  {line: "a,canary,env=prod:1|c", want: []view{{Name: "a", NameTags: "canary,env=prod", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"influxdb no value":  {line: "a,k=:1|c", want: []view{{Name: "a", NameTags: "k=", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"influxdb '=' value": {line: "a,url=http=//x/y:1|c", want: []view{{Name: "a", NameTags: "url=http=//x/y", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"influxdb and dog":   {line: "name,env=prod:1|c|#tier:gold", want: []view{{Name: "name", NameTags: "env=prod", NameTagSep: ',', Tags: "tier:gold", Type: Counter, Value: 1, Rate: 1}}},
		"influxdb with ';'":  {line: "a,k=v;x=y:1|c", want: []view{{Name: "a", NameTags: "k=v;x=y", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"influxdb with '#'":  {line: "a,k=v#x=y:1|c", want: []view{{Name: "a", NameTags: "k=v#x=y", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}}},
		"influxdb etsy multi": {
			line: "a,k=v:1|c:2|g",
			want: []view{{Name: "a", NameTags: "k=v", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}, {Name: "a", NameTags: "k=v", NameTagSep: ',', Type: Gauge, Value: 2, Rate: 1}},
		},

		// Graphite 1.1 tags.
		"graphite tags":     {line: "a.b;k=v;k2=w:1|c", want: []view{{Name: "a.b", NameTags: "k=v;k2=w", NameTagSep: ';', Type: Counter, Value: 1, Rate: 1}}},
		"graphite and dog":  {line: "a;k=v:1.5|g|#x:y", want: []view{{Name: "a", NameTags: "k=v", NameTagSep: ';', Tags: "x:y", Type: Gauge, Value: 1.5, Rate: 1}}},
		"graphite with ','": {line: "a;k=v,x=y:1|c", want: []view{{Name: "a", NameTags: "k=v,x=y", NameTagSep: ';', Type: Counter, Value: 1, Rate: 1}}},
		"graphite with '#'": {line: "a;k=v#x:1|c", want: []view{{Name: "a", NameTags: "k=v#x", NameTagSep: ';', Type: Counter, Value: 1, Rate: 1}}},

		// Line ends.
		"CR":         {line: "a:1|c\r", want: []view{num(Counter, 1)}},
		"whitespace": {line: " \ta:1|c|#k:v \r", want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 1, Tags: "k:v"}}},

		// Several metrics on one line.
		"packed": {
			line: "a:1:2:3|ms|@0.5|#k:v",
			want: []view{
				{Name: "a", Type: Timer, Value: 1, Rate: 0.5, Tags: "k:v"},
				{Name: "a", Type: Timer, Value: 2, Rate: 0.5, Tags: "k:v"},
				{Name: "a", Type: Timer, Value: 3, Rate: 0.5, Tags: "k:v"},
			},
		},
		"packed gauges": {
			line: "a:1:+2:-3|g",
			want: []view{num(Gauge, 1), {Name: "a", Type: Gauge, Value: 2, Delta: true, Rate: 1}, {Name: "a", Type: Gauge, Value: -3, Delta: true, Rate: 1}},
		},
		"packed max":         {line: packed1024, want: repeat(MaxValues, num(Timer, 1))},
		"packed empty last":  {line: "a:1:|ms", want: []view{num(Timer, 1)}},
		"packed empty first": {line: "a::1|ms", want: []view{num(Timer, 1)}},
		"packed empty many":  {line: "a:1:::2:|c", want: []view{num(Counter, 1), num(Counter, 2)}},
		"etsy multi":         {line: "a:1|c:2|ms", want: []view{num(Counter, 1), num(Timer, 2)}},
		"etsy multi tags on last": {
			line: "a:1|c:2|ms|#k:v",
			want: []view{num(Counter, 1), {Name: "a", Type: Timer, Value: 2, Rate: 1, Tags: "k:v"}},
		},
		"etsy multi rate": {
			line: "a:1|c|@0.5:2|c|@0.25",
			want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 0.5}, {Name: "a", Type: Counter, Value: 2, Rate: 0.25}},
		},
		"etsy multi set": {
			line: "a:x|s:y|s",
			want: []view{{Name: "a", Type: Set, Member: "x", Rate: 1}, {Name: "a", Type: Set, Member: "y", Rate: 1}},
		},
		"etsy multi packed": {line: "a:1:2|c:3|ms", want: []view{num(Counter, 1), num(Counter, 2), num(Timer, 3)}},
		"etsy multi name tags": {
			line: "a#k=v:1|c:2|g",
			want: []view{{Name: "a", NameTags: "k=v", NameTagSep: ',', Type: Counter, Value: 1, Rate: 1}, {Name: "a", NameTags: "k=v", NameTagSep: ',', Type: Gauge, Value: 2, Rate: 1}},
		},
		"tags not split":      {line: "a:1|c|#k:2|ms", want: []view{{Name: "a", Type: Counter, Value: 1, Rate: 1, Tags: "k:2"}}},
		"container not split": {line: "a:1|c|c:2|ms", want: []view{num(Counter, 1)}},

		// Rejected lines.
		"empty name":                {line: ":1|c", wantErr: ErrEmptyName},
		"empty name with tags":      {line: "#k=v:1|c", wantErr: ErrEmptyName},
		"control byte in name":      {line: "a\x01b:1|c", wantErr: ErrBadName},
		"DEL in name":               {line: "a\x7f:1|c", wantErr: ErrBadName},
		"pipe in name":              {line: "a|b:1|c", wantErr: ErrBadName},
		"newline in name":           {line: "a\nb:1|c", wantErr: ErrBadName},
		"name tags empty":           {line: "a#:1|c", wantErr: ErrBadTags},
		"name tag without =":        {line: "a#k:1|c", wantErr: ErrBadTags},
		"name tag empty key":        {line: "a#=v:1|c", wantErr: ErrBadTags},
		"name tags trailing comma":  {line: "a#k=v,:1|c", wantErr: ErrBadTags},
		"name tags empty item":      {line: "a#k=v,,k2=v:1|c", wantErr: ErrBadTags},
		"no colon":                  {line: "hits", wantErr: ErrNoValue},
		"no colon with type":        {line: "hits|c", wantErr: ErrNoValue},
		"nothing after colon":       {line: "a:", wantErr: ErrNoValue},
		"empty value":               {line: "a:|c", wantErr: ErrNoValue},
		"empty set member":          {line: "a:|s", wantErr: ErrNoValue},
		"multi empty last":          {line: "a:1|c:", wantErr: ErrNoValue},
		"no type":                   {line: "a:1", wantErr: ErrNoType},
		"empty type":                {line: "a:1|", wantErr: ErrNoType},
		"empty type then type":      {line: "a:1||c", wantErr: ErrNoType},
		"multi empty type":          {line: "a:1|:2|c", wantErr: ErrNoType},
		"multi last no type":        {line: "a:1|c:2", wantErr: ErrNoType},
		"unknown type":              {line: "a:1|x", wantErr: ErrBadType},
		"upper-case type":           {line: "a:1|C", wantErr: ErrBadType},
		"long type":                 {line: "a:1|msx", wantErr: ErrBadType},
		"double type":               {line: "a:1|cc", wantErr: ErrBadType},
		"type with space":           {line: "a:1|c |#k", wantErr: ErrBadType},
		"word value":                {line: "a:x|c", wantErr: ErrBadValue},
		"hex value":                 {line: "a:0x1p3|g", wantErr: ErrBadValue},
		"underscore value":          {line: "a:1_000|c", wantErr: ErrBadValue},
		"NaN":                       {line: "a:NaN|g", wantErr: ErrBadValue},
		"Inf":                       {line: "a:Inf|g", wantErr: ErrBadValue},
		"-infinity":                 {line: "a:-infinity|ms", wantErr: ErrBadValue},
		"too big":                   {line: "a:1.1e126|g", wantErr: ErrBadValue},
		"too small":                 {line: "a:-1e200|ms", wantErr: ErrBadValue},
		"overflow":                  {line: "a:1e400|g", wantErr: ErrBadValue},
		"two dots":                  {line: "a:1..2|c", wantErr: ErrBadValue},
		"only dot":                  {line: "a:.|c", wantErr: ErrBadValue},
		"only sign":                 {line: "a:+|g", wantErr: ErrBadValue},
		"double sign":               {line: "a:--1|g", wantErr: ErrBadValue},
		"space in value":            {line: "a:1 |c", wantErr: ErrBadValue},
		"packed only empty":         {line: "a::|ms", wantErr: ErrNoValue},
		"multi packed only empty":   {line: "a:1|c::|ms", wantErr: ErrNoValue},
		"empty name influxdb":       {line: ",k=v:1|c", wantErr: ErrEmptyName},
		"empty name graphite":       {line: ";k=v:1|c", wantErr: ErrEmptyName},
		"influxdb empty key":        {line: "a,=v:1|c", wantErr: ErrBadInfluxDBTags},
		"influxdb tags empty":       {line: "a,:1|c", wantErr: ErrBadInfluxDBTags},
		"influxdb trailing comma":   {line: "a,k=v,:1|c", wantErr: ErrBadInfluxDBTags},
		"influxdb empty item":       {line: "a,k=v,,k2=w:1|c", wantErr: ErrBadInfluxDBTags},
		"influxdb second key empty": {line: "a,k=v,=w:1|c", wantErr: ErrBadInfluxDBTags},
		"influxdb value with ':'":   {line: "a,url=http://x:1|c", wantErr: ErrBadValue}, // as hot-shots in telegraf mode writes it
		"graphite tag without =":    {line: "a;k:1|c", wantErr: ErrBadGraphiteTags},
		"graphite empty value":      {line: "a;k=:1|c", wantErr: ErrBadGraphiteTags},
		"graphite empty key":        {line: "a;=v:1|c", wantErr: ErrBadGraphiteTags},
		"graphite tags empty":       {line: "a;:1|c", wantErr: ErrBadGraphiteTags},
		"graphite trailing ;":       {line: "a;k=v;:1|c", wantErr: ErrBadGraphiteTags},
		"graphite second bad":       {line: "a;k=v;k2:1|c", wantErr: ErrBadGraphiteTags},
		"control byte in tags":      {line: "a,k=\x01:1|c", wantErr: ErrBadName},
		"packed one bad":            {line: "a:1:x:3|ms", wantErr: ErrBadValue},
		"multi second bad":          {line: "a:1|c:x|ms", wantErr: ErrBadValue},
		"empty rate":                {line: "a:1|c|@", wantErr: ErrBadRate},
		"zero rate":                 {line: "a:1|c|@0", wantErr: ErrBadRate},
		"rate above one":            {line: "a:1|c|@1.5", wantErr: ErrBadRate},
		"negative rate":             {line: "a:1|c|@-0.5", wantErr: ErrBadRate},
		"word rate":                 {line: "a:1|c|@x", wantErr: ErrBadRate},
		"NaN rate":                  {line: "a:1|c|@nan", wantErr: ErrBadRate},
		"bad rate on gauge":         {line: "a:1|g|@2", wantErr: ErrBadRate},
		"multi bad rate":            {line: "a:1|c|@2:2|c", wantErr: ErrBadRate},
		"tiny rate":                 {line: "x:1|c|@1e-120", wantErr: ErrRateTooLow},
		"rate just below floor":     {line: "x:1|ms|@0.00000099", wantErr: ErrRateTooLow},
		"tiny rate in multi":        {line: "x:1|c:2|c|@1e-7", wantErr: ErrRateTooLow},
		"empty timestamp":           {line: "a:1|g|T", wantErr: ErrBadTimestamp},
		"letters in timestamp":      {line: "a:1|g|T12x", wantErr: ErrBadTimestamp},
		"negative timestamp":        {line: "a:1|g|T-1", wantErr: ErrBadTimestamp},
		"huge timestamp":            {line: "a:1|g|T1234567890123456789", wantErr: ErrBadTimestamp},
		"too many packed":           {line: packed1025, wantErr: ErrTooManyValues},
		"too many multi":            {line: multi1025, wantErr: ErrTooManyValues},
		"event":                     {line: "_e{5,4}:title|text|#k:v", wantErr: ErrEvent},
		"service check":             {line: "_sc|db.up|0|#k:v", wantErr: ErrServiceCheck},
	}
	sentinel := Metric{Name: []byte("sentinel"), Type: Gauge, Value: -1, Rate: 1}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			out := []Metric{sentinel}
			got, err := Parse([]byte(tt.line), out)
			if err != tt.wantErr {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			if len(got) == 0 || !reflect.DeepEqual(got[0], sentinel) {
				t.Fatalf("Parse(%q) changed the metrics it was given", tt.line)
			}
			if gotViews := views(t, got[1:]); !reflect.DeepEqual(gotViews, tt.want) {
				t.Errorf("Parse(%q) =\n%s\nwant\n%s", tt.line, fmtViews(gotViews), fmtViews(tt.want))
			}
		})
	}
}

func fmtViews(vs []view) string {
	if len(vs) > 5 {
		return fmt.Sprintf("%d metrics, first %+v", len(vs), vs[0])
	}
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\t%+v\n", v)
	}
	return b.String()
}

// TestParseAppends checks that Parse appends to a nil slice and to a slice
// of earlier metrics, and that the metrics point into the line.
func TestParseAppends(t *testing.T) {
	line := []byte("a:1|c")
	out, err := Parse(line, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("Parse(%q, nil) = %d metrics, %v; want 1, nil", line, len(out), err)
	}
	out, err = Parse([]byte("b:2:3|ms"), out)
	if err != nil || len(out) != 3 {
		t.Fatalf("second Parse = %d metrics, %v; want 3, nil", len(out), err)
	}
	if got := string(out[0].Name) + string(out[1].Name) + string(out[2].Name); got != "abb" {
		t.Errorf("names = %q, want %q", got, "abb")
	}
	line[0] = 'z'
	if string(out[0].Name) != "z" {
		t.Errorf("Name = %q after changing the line, want %q: it should point into the line", out[0].Name, "z")
	}
}

// TestParseReusedSlice checks that metrics parsed into the room of a
// slice that held others are what a fresh slice gets: every field of a
// reused element is set (a field added to Metric and not set would keep
// the old line's value).
func TestParseReusedSlice(t *testing.T) {
	garbage := Metric{
		Name: []byte("old"), NameTags: []byte("k=v"), NameTagSep: ';', Tags: []byte("t:u"),
		Type: Set, Value: 9, Delta: true, Member: []byte("m"), Rate: 0.5, Timestamp: 7,
	}
	if v := reflect.ValueOf(garbage); v.NumField() != 10 {
		t.Fatalf("Metric has %d fields; give the new one a value in garbage", v.NumField())
	}
	for i := range reflect.TypeOf(garbage).NumField() {
		if reflect.ValueOf(garbage).Field(i).IsZero() {
			t.Fatalf("garbage.%s is zero: it would not show a field left unset", reflect.TypeOf(garbage).Field(i).Name)
		}
	}
	for _, line := range []string{"a:1|c", "a:+1|g", "a:1:2|ms|@0.5|#x:y", "a#k=v:1|c|T5", "a;k=v:-2|g", "s:m|s"} {
		want, err := Parse([]byte(line), nil)
		if err != nil {
			t.Fatal(err)
		}
		reused := []Metric{garbage, garbage, garbage, garbage}[:1]
		got, err := Parse([]byte(line), reused)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[1:], want) {
			t.Errorf("Parse(%q) into a reused slice = %+v, want %+v", line, got[1:], want)
		}
	}
}

// TestParseNumber checks that the fast path of parseNumber gives exactly
// what strconv.ParseFloat gives.
func TestParseNumber(t *testing.T) {
	tests := []string{
		"0", "-0", "+0", "1", "250", "-3", "+3", "0.1", "0.2", "0.3", "1.1", "12.5", "12.500000", "3.14159",
		".5", "5.", "007", "999999999999999", "99999999999999.9", "0.000000000000001", "123456.789012345",
		"9007199254740993", "1e3", "1E-3", "2.5e+10", "0.1234567890123456789012345678901234567890",
		"1e126", "-1e126",
	}
	for _, s := range tests {
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("ParseFloat(%q): %v", s, err)
		}
		got, ok := parseNumber([]byte(s))
		if !ok || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("parseNumber(%q) = %v, %v; want %v, true", s, got, ok, want)
		}
	}
}

func TestNextLine(t *testing.T) {
	tests := map[string]struct {
		packet string
		want   []string
	}{
		"empty":             {packet: "", want: nil},
		"one line":          {packet: "a:1|c", want: []string{"a:1|c"}},
		"trailing newline":  {packet: "a:1|c\n", want: []string{"a:1|c"}},
		"two lines":         {packet: "a:1|c\nb:2|g\n", want: []string{"a:1|c", "b:2|g"}},
		"no final newline":  {packet: "a:1|c\nb:2|g", want: []string{"a:1|c", "b:2|g"}},
		"CRLF":              {packet: "a:1|c\r\nb:2|g\r\n", want: []string{"a:1|c", "b:2|g"}},
		"CR without LF":     {packet: "a:1|c\r", want: []string{"a:1|c"}},
		"only one CR taken": {packet: "a\r\r\n", want: []string{"a\r"}},
		"CR inside":         {packet: "a\rb\n", want: []string{"a\rb"}},
		"empty lines":       {packet: "\n\na:1|c\n\n", want: []string{"", "", "a:1|c", ""}},
		"only newlines":     {packet: "\n\n\n", want: []string{"", "", ""}},
		"only CRLF":         {packet: "\r\n", want: []string{""}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			p := []byte(tt.packet)
			for len(p) > 0 {
				var line []byte
				line, p = NextLine(p)
				got = append(got, string(line))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines of %q = %q, want %q", tt.packet, got, tt.want)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	label := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := make(map[string]bool)
	all := Reasons()
	for _, e := range all {
		r := e.Reason()
		if !label.MatchString(r) {
			t.Errorf("Error(%d).Reason() = %q, want snake_case", e, r)
		}
		if seen[r] {
			t.Errorf("reason %q appears twice", r)
		}
		seen[r] = true
		if msg := e.Error(); msg == "" || strings.Contains(msg, "unknown parse error") {
			t.Errorf("Error(%d).Error() = %q, want a description", e, msg)
		}
		var target Error
		if !errors.As(fmt.Errorf("line 3: %w", e), &target) || target != e {
			t.Errorf("errors.As does not find Error(%d) in a wrapped error", e)
		}
	}
	// Every named Error is listed, and no other.
	named := []Error{
		ErrEmptyName, ErrBadName, ErrBadTags, ErrNoValue, ErrBadValue, ErrNoType, ErrBadType,
		ErrBadRate, ErrBadTimestamp, ErrTooManyValues, ErrEvent, ErrServiceCheck,
		ErrBadEvent, ErrBadServiceCheck, ErrBadInfluxDBTags, ErrBadGraphiteTags, ErrRateTooLow,
	}
	if !reflect.DeepEqual(all, named) {
		t.Errorf("Reasons() = %v, want %v", all, named)
	}
	if r := Error(0).Reason(); r != "unknown" {
		t.Errorf("Error(0).Reason() = %q, want %q", r, "unknown")
	}
	if r := Error(200).Reason(); r != "unknown" {
		t.Errorf("Error(200).Reason() = %q, want %q", r, "unknown")
	}
}

// TestParseAllocs checks that Parse allocates nothing for well-formed lines,
// for rejected lines and for empty ones when out has room.
func TestParseAllocs(t *testing.T) {
	tests := []struct {
		line  string
		count int // metrics expected; 0 for an empty or rejected line
	}{
		{"hits:1|c", 1},
		{"hits:-3|c|@0.1", 1},
		{"temp:+2.5|g|T1795266106", 1},
		{"latency:12.500000|ms|@0.5|#env:prod,region:eu,bare", 1},
		{"latency:12.5:3:250|ms|#k:v", 3},
		{"latency:1|h", 1},
		{"latency:1|d", 1},
		{"users:alice|s|#k:v", 1},
		{"api.req#host=a,env=prod:1|c:2|ms", 2},
		{"rcn.requests,app=rcnode,env=test,service=web,code=200:3|c", 1},
		{"rcn.users,app=rcnode,canary:user-0|s|#tier:gold", 1},
		{"rcn.latency;app=rcnode;env=test:12.5:3::|ms|@0.5", 2},
		{"a:1|c|#tag1:a,#tag2:b", 1},
		{"a,=v:1|c", 0},
		{"a;k:1|c", 0},
		{"a:1|c|#env:prod|c:0123abc|e:it-false,cn-web,pu-1|T1795266106|card:low", 1},
		{"a:1e5|g", 1},
		{"a:0.1234567890123456789012345678901234567890|g", 1},
		{"", 0},
		{"\r", 0},
		{"a:x|c", 0},
		{"a:1|c|@2", 0},
		{":1|c", 0},
		{"a:1|zz", 0},
		{"_e{1,1}:a|b", 0},
	}
	out := make([]Metric, 0, 8)
	for _, tt := range tests {
		b := []byte(tt.line)
		n := -1
		allocs := testing.AllocsPerRun(100, func() {
			ms, _ := Parse(b, out[:0])
			n = len(ms)
		})
		if allocs != 0 {
			t.Errorf("Parse(%q) allocates %v times, want 0", tt.line, allocs)
		}
		if n != tt.count {
			t.Errorf("Parse(%q) yielded %d metrics, want %d", tt.line, n, tt.count)
		}
	}
}

func TestNextLineAllocs(t *testing.T) {
	p := []byte("a:1|c\r\nb:2|g\n\nc:3|ms")
	lines := 0
	allocs := testing.AllocsPerRun(100, func() {
		lines = 0
		for q := p; len(q) > 0; lines++ {
			_, q = NextLine(q)
		}
	})
	if allocs != 0 {
		t.Errorf("NextLine allocates %v times, want 0", allocs)
	}
	if lines != 4 {
		t.Errorf("NextLine found %d lines, want 4", lines)
	}
}

// TestPlainName checks the table split passes over against the rule it
// stands for: split must stop at every byte that may end the name, start
// its tags or make it bad.
func TestPlainName(t *testing.T) {
	if len(plainName) != 256 {
		t.Fatalf("plainName has %d bytes, want 256", len(plainName))
	}
	for i := range 256 {
		c := byte(i)
		stop := c < 0x20 || c == 0x7f || c == '|' || c == ':' || c == ';' ||
			c == '#' || c == ',' || c >= ' ' && c < '-'
		if got := plainName[c] == 'x'; got == stop || plainName[c] != 'x' && plainName[c] != '.' {
			t.Errorf("plainName[%#02x] = %q, want a stop: %v", c, plainName[c], stop)
		}
	}
}

// TestSimple checks ParseWith's fast path against its general path, on
// lines it takes and on lines near them that it must leave to the
// general path.
func TestSimple(t *testing.T) {
	tests := []struct {
		line   string
		simple bool // the fast path takes it
	}{
		{"a:1|c", true},
		{"load.r1a2b3c.c.17:1|c|#t0:v3,t1:v4", true},
		{"a#k=v:-2.5|g", true},
		{"a:+3|g|#", true},
		{"a:.5|ms", true},
		{"a:7.|h|#k:v", true},
		{"a:123456789012345|d", true},
		{"a:1234567890123456|d", false}, // 16 digits: the slow path's
		{"a:1e3|c", false},
		{"a:1:2|c", false},
		{"a:1|c:2|ms", false},
		{"a:1|c|@0.5", false},
		{"a:1|c|#k:v|T1700000000", false},
		{"a:1|c|", false},
		{"a:1|c|T5", false},
		{"a:1|s", false},
		{"a:1|m", false},
		{"a:1|cx", false},
		{"a:1|", false},
		{"a:1", false},
		{"a:-|c", false},
		{"a:1..2|c", false},
		{"a:|c", false},
	}
	for _, tt := range tests {
		for _, syntaxes := range []TagSyntaxes{AllTagSyntaxes, LibratoTags} {
			rest := tt.line[strings.IndexByte(tt.line, ':')+1:]
			_, _, _, ok := simple([]byte(rest), syntaxes&DogStatsDTags != 0)
			if want := tt.simple && (syntaxes&DogStatsDTags != 0 || !strings.Contains(tt.line, "|#")); ok != want {
				t.Errorf("simple(%q) with %v: ok = %v, want %v", tt.line, syntaxes, ok, want)
			}
			got, err := ParseWith([]byte(tt.line), nil, syntaxes)
			want, wantErr := parseGeneral([]byte(tt.line), nil, syntaxes)
			if err != wantErr || !reflect.DeepEqual(got, want) {
				t.Errorf("ParseWith(%q, %v) = %+v, %v; the general path = %+v, %v", tt.line, syntaxes, got, err, want, wantErr)
			}
		}
	}
}
