package parser_test

import (
	"fmt"

	"github.com/libratod/libratod/parser"
)

func ExampleParseEvent() {
	line := []byte(`_e{10,24}:Deploy v45|shipped by ci\nall green|h:web-1|t:success|#env:prod`)
	if _, err := parser.Parse(line, nil); err == parser.ErrEvent {
		ev, err := parser.ParseEvent(line)
		if err != nil {
			fmt.Println(err)
			return
		}
		text := parser.UnescapeEventText(nil, ev.Text)
		fmt.Printf("title=%q host=%s alert=%s tags=%s\n", ev.Title, ev.Host, ev.AlertType, ev.Tags)
		fmt.Printf("text=%q\n", text)
	}

	// hot-shots counts UTF-16 units, not bytes: the title still parses.
	ev, err := parser.ParseEvent([]byte("_e{5,2}:café!|ok"))
	fmt.Printf("%q %q %v\n", ev.Title, ev.Text, err)

	_, err = parser.ParseEvent([]byte("_e{0,2}:|ok"))
	fmt.Println(err.(parser.Error).Reason())
	// Output:
	// title="Deploy v45" host=web-1 alert=success tags=env:prod
	// text="shipped by ci\nall green"
	// "café!" "ok" <nil>
	// bad_event
}

func ExampleParseServiceCheck() {
	sc, err := parser.ParseServiceCheck([]byte("_sc|db.up|2|d:1700000000|h:db-1|#env:prod|m:connection refused"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s status=%d time=%d host=%s tags=%s message=%q\n",
		sc.Name, sc.Status, sc.Timestamp, sc.Host, sc.Tags, sc.Message)
	// Output:
	// db.up status=2 time=1700000000 host=db-1 tags=env:prod message="connection refused"
}

func ExampleUnescapeEventText() {
	fmt.Printf("%q\n", parser.UnescapeEventText([]byte("text: "), []byte(`line 1\nline 2`)))
	// Output:
	// "text: line 1\nline 2"
}
