package librato_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/libratod/libratod/librato"
)

func ExampleClient_SendAnnotation() {
	c, err := librato.New(librato.Config{
		API:    librato.Tagged,
		URL:    "https://api.appoptics.com",
		Token:  "not-printed",
		DryRun: os.Stdout, // print the request instead of sending it
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.SendAnnotation(context.Background(), &librato.Annotation{
		Stream:      librato.SanitizeStream("deploys/web"),
		Title:       "v45 deployed",
		Description: "shipped by ci",
		Source:      librato.SanitizeSource("web-1"),
		StartTime:   1700000000,
		Links:       []librato.Link{{Rel: "ci", Href: "https://ci.example.com/build/7", Label: "build 7"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	err = c.SendAnnotation(context.Background(), &librato.Annotation{Stream: "deploys", Title: " "})
	fmt.Println(errors.Is(err, librato.ErrInvalidAnnotation), err)
	// Output:
	// POST https://api.appoptics.com/v1/annotations/deploys_web
	// {"title":"v45 deployed","description":"shipped by ci","source":"web-1","start_time":1700000000,"links":[{"rel":"ci","href":"https://ci.example.com/build/7","label":"build 7"}]}
	//
	// true librato: POST /v1/annotations/deploys: invalid annotation: empty title
}
