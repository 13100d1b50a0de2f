package parser_test

import (
	"errors"
	"fmt"

	"github.com/libratod/libratod/parser"
)

func ExampleParse() {
	ms, err := parser.Parse([]byte("api.latency:12.5:3|ms|@0.5|#env:prod"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range ms {
		fmt.Printf("%s %v %v rate=%v tags=%s\n", m.Name, m.Type, m.Value, m.Rate, m.Tags)
	}

	_, err = parser.Parse([]byte("api.hits:one|c"), ms[:0])
	var perr parser.Error
	if errors.As(err, &perr) {
		fmt.Println("rejected:", perr.Reason())
	}
	// Output:
	// api.latency ms 12.5 rate=0.5 tags=env:prod
	// api.latency ms 3 rate=0.5 tags=env:prod
	// rejected: bad_value
}

func ExampleParseWith() {
	line := []byte("rcn.requests,app=web,code=200:3|c|#tier:gold")
	ms, _ := parser.ParseWith(line, nil, parser.AllTagSyntaxes)
	fmt.Printf("%s name tags %q (separated by %q), DogStatsD tags %q\n", ms[0].Name, ms[0].NameTags, ms[0].NameTagSep, ms[0].Tags)

	// Without the InfluxDB syntax, the ',' and what follows stay in the name.
	ms, _ = parser.ParseWith(line, ms[:0], parser.AllTagSyntaxes&^parser.InfluxDBTags)
	fmt.Printf("%s\n", ms[0].Name)
	// Output:
	// rcn.requests name tags "app=web,code=200" (separated by ','), DogStatsD tags "tier:gold"
	// rcn.requests,app=web,code=200
}

func ExampleNextLine() {
	packet := []byte("hits:1|c\r\nusers:alice|s\n\nload:+0.5|g\n")
	var ms []parser.Metric
	for len(packet) > 0 {
		var line []byte
		line, packet = parser.NextLine(packet)
		var err error
		if ms, err = parser.Parse(line, ms); err != nil {
			fmt.Printf("%q: %v\n", line, err)
		}
	}
	for _, m := range ms {
		fmt.Printf("%s %v value=%v member=%s delta=%v\n", m.Name, m.Type, m.Value, m.Member, m.Delta)
	}
	// Output:
	// hits c value=1 member= delta=false
	// users s value=0 member=alice delta=false
	// load g value=0.5 member= delta=true
}
