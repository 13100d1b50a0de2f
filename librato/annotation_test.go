package librato

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testAnnotation is an annotation with every field set.
func testAnnotation() *Annotation {
	return &Annotation{Stream: "deploys", Title: "v45 deployed", Description: "shipped by ci\nall green",
		Source: "web-1", StartTime: 1700000000, EndTime: 1700000060,
		Links: []Link{{Rel: "github", Href: "https://github.com/x/y/commit/9b562b2", Label: "commit"},
			{Rel: "ci", Href: "https://ci.example.com/build/7"}}}
}

// testAnnotationJSON is the body of testAnnotation.
const testAnnotationJSON = `{"title":"v45 deployed","description":"shipped by ci\nall green","source":"web-1",` +
	`"start_time":1700000000,"end_time":1700000060,"links":[{"rel":"github",` +
	`"href":"https://github.com/x/y/commit/9b562b2","label":"commit"},{"rel":"ci","href":"https://ci.example.com/build/7"}]}`

// annotationJSON mirrors the documented JSON of an annotation, to decode bodies
// with encoding/json.
type annotationJSON struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	Source      string `json:"source"`
	StartTime   int64  `json:"start_time"`
	EndTime     int64  `json:"end_time"`
	Links       []struct {
		Rel   string `json:"rel"`
		Href  string `json:"href"`
		Label string `json:"label"`
	} `json:"links"`
}

func TestEncodeAnnotation(t *testing.T) {
	tests := []struct {
		name string
		a    Annotation
		want string
	}{
		{"title only", Annotation{Title: "t"}, `{"title":"t"}`},
		{"every field", *testAnnotation(), testAnnotationJSON},
		{"start time only", Annotation{Title: "t", StartTime: 5}, `{"title":"t","start_time":5}`},
		{"end time only", Annotation{Title: "t", EndTime: 9}, `{"title":"t","end_time":9}`},
		{"empty links omitted", Annotation{Title: "t", Links: []Link{}}, `{"title":"t"}`},
		{"link without label", Annotation{Title: "t", Links: []Link{{Rel: "r", Href: "h"}}},
			`{"title":"t","links":[{"rel":"r","href":"h"}]}`},
		{"escaped strings", Annotation{Title: "say \"hi\"\t\\", Description: "a\x00b\xffc\u2028",
			Source: "<s&>"}, `{"title":"say \"hi\"\t\\","description":"a\u0000b\ufffdc\u2028","source":"<s&>"}`},
		{"unicode kept", Annotation{Title: "café 🎉"}, `{"title":"café 🎉"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encodeAnnotation(nil, &tt.a)
			if string(got) != tt.want {
				t.Errorf("encodeAnnotation =\n\t%s\nwant\n\t%s", got, tt.want)
			}
			var doc annotationJSON
			if err := json.Unmarshal(got, &doc); err != nil {
				t.Fatalf("body %s is not JSON: %v", got, err)
			}
			if strings.ToValidUTF8(tt.a.Title, "\ufffd") != doc.Title || doc.StartTime != tt.a.StartTime ||
				doc.EndTime != tt.a.EndTime || len(doc.Links) != len(tt.a.Links) {
				t.Errorf("decoded %+v, from %+v", doc, tt.a)
			}
		})
	}
}

func TestSendAnnotationRequest(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		stream   string
		wantPath string
		wantUser string
		wantPass string
		wantGzip bool
	}{
		{"tagged with email", Config{API: Tagged, Email: "me@example.com", UserAgent: "libratod/1.2.3"},
			"deploys", "/v1/annotations/deploys", "me@example.com", testToken, false},
		{"legacy token only (AppOptics style)", Config{API: Legacy},
			"app.deploys:web-1", "/v1/annotations/app.deploys:web-1", testToken, "", false},
		{"gzip", Config{API: Tagged, Gzip: true}, "deploys", "/v1/annotations/deploys", testToken, "", true},
		{"sanitized stream", Config{API: Tagged}, "../deploys/web 1?x=y#z", "/v1/annotations/.._deploys_web_1_x_y_z",
			testToken, "", false},
		{"sanitized unicode stream", Config{API: Tagged}, "déploiements", "/v1/annotations/d_ploiements",
			testToken, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan captured, 1)
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				c := captured{method: r.Method, path: r.URL.EscapedPath(), contentType: r.Header.Get("Content-Type"),
					accept: r.Header.Get("Accept"), userAgent: r.Header.Get("User-Agent"),
					encoding: r.Header.Get("Content-Encoding")}
				if r.URL.RawQuery != "" || r.URL.Fragment != "" {
					c.path += "?" + r.URL.RawQuery + "#" + r.URL.Fragment
				}
				c.user, c.pass, c.hasAuth = r.BasicAuth()
				c.body, _ = io.ReadAll(r.Body)
				got <- c
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{"id":1,"title":"v45 deployed"}`)
			})
			cfg := tt.cfg
			cfg.URL = srv.URL
			c := newTestClient(t, cfg)
			a := testAnnotation()
			a.Stream = tt.stream
			if err := c.SendAnnotation(context.Background(), a); err != nil {
				t.Fatalf("SendAnnotation: %v", err)
			}
			r := <-got
			if r.method != http.MethodPost || r.path != tt.wantPath {
				t.Errorf("request %s %s, want POST %s", r.method, r.path, tt.wantPath)
			}
			if r.contentType != "application/json" || r.accept != "application/json" {
				t.Errorf("Content-Type %q, Accept %q; want application/json", r.contentType, r.accept)
			}
			wantUA := cfg.UserAgent
			if wantUA == "" {
				wantUA = DefaultUserAgent
			}
			if r.userAgent != wantUA {
				t.Errorf("User-Agent %q, want %q", r.userAgent, wantUA)
			}
			if !r.hasAuth || r.user != tt.wantUser || r.pass != tt.wantPass {
				t.Errorf("basic auth (%v) %q:%q, want %q:%q", r.hasAuth, r.user, r.pass, tt.wantUser, tt.wantPass)
			}
			body := r.body
			if tt.wantGzip {
				if r.encoding != "gzip" {
					t.Fatalf("Content-Encoding %q, want gzip", r.encoding)
				}
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gzip body: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gzip body: %v", err)
				}
			} else if r.encoding != "" {
				t.Errorf("Content-Encoding %q, want none", r.encoding)
			}
			if string(body) != testAnnotationJSON {
				t.Errorf("body\n got %s\nwant %s", body, testAnnotationJSON)
			}
		})
	}
}

func TestSendAnnotationStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		wantErr *Error // nil for success; path and Err are not compared
	}{
		{name: "201 created", status: 201, body: `{"id":1}`},
		{name: "200", status: 200},
		{name: "400 bad title", status: 400, body: `{"errors":{"params":{"title":["is too long"]}}}`,
			wantErr: &Error{StatusCode: 400, Message: "title: is too long"}},
		{name: "401", status: 401, body: `{"errors":{"request":["Authorization Required"]}}`,
			wantErr: &Error{StatusCode: 401, Message: "request: Authorization Required"}},
		{name: "403 rate limit", status: 403, body: `{"error":"You have hit the API limit"}`,
			wantErr: &Error{StatusCode: 403, Retryable: true, RateLimited: true, Message: "You have hit the API limit"}},
		{name: "404", status: 404, wantErr: &Error{StatusCode: 404, Message: "Not Found"}},
		{name: "429 retry after", status: 429, header: map[string]string{"Retry-After": "3"},
			wantErr: &Error{StatusCode: 429, Retryable: true, RateLimited: true, RetryAfter: 3 * time.Second,
				Message: "Too Many Requests"}},
		{name: "503", status: 503, body: `{"errors":{"system":["Down for maintenance"]}}`,
			wantErr: &Error{StatusCode: 503, Retryable: true, Message: "system: Down for maintenance"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			c := newTestClient(t, Config{URL: srv.URL, Email: "me@example.com"})
			err := c.SendAnnotation(context.Background(), testAnnotation())
			if n := hits.Load(); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("SendAnnotation: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("SendAnnotation error %v (%T), want *Error", err, err)
			}
			got := *e
			got.path, got.Err = "", nil
			if !reflect.DeepEqual(got, *tt.wantErr) {
				t.Errorf("Error\n got %+v\nwant %+v", got, *tt.wantErr)
			}
			wantText := fmt.Sprintf("librato: POST /v1/annotations/deploys: HTTP %d: %s", tt.status, tt.wantErr.Message)
			if e.Error() != wantText {
				t.Errorf("Error() = %q, want %q", e.Error(), wantText)
			}
			checkNoToken(t, fmt.Sprintf("%v %+v %#v", err, err, err))
		})
	}
}

func TestSendAnnotationInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(a *Annotation) *Annotation
		want string // in the message
	}{
		{"nil", func(*Annotation) *Annotation { return nil }, "nil"},
		{"empty title", func(a *Annotation) *Annotation { a.Title = ""; return a }, "empty title"},
		{"blank title", func(a *Annotation) *Annotation { a.Title = " \t\n"; return a }, "empty title"},
		{"empty stream", func(a *Annotation) *Annotation { a.Stream = ""; return a }, "stream"},
		{"stream without letters", func(a *Annotation) *Annotation { a.Stream = "../.."; return a }, "stream"},
		{"stream in another script", func(a *Annotation) *Annotation { a.Stream = "デプロイ"; return a }, "stream"},
		{"negative start", func(a *Annotation) *Annotation { a.StartTime = -1; return a }, "negative"},
		{"negative end", func(a *Annotation) *Annotation { a.StartTime, a.EndTime = 0, -1; return a }, "negative"},
		{"end before start", func(a *Annotation) *Annotation { a.EndTime = a.StartTime - 1; return a }, "before"},
		{"link without rel", func(a *Annotation) *Annotation { a.Links[1].Rel = ""; return a }, "link 1"},
		{"link without href", func(a *Annotation) *Annotation { a.Links[0].Href = ""; return a }, "link 0"},
	}
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	var out bytes.Buffer
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []*Client{
				newTestClient(t, Config{URL: srv.URL}),
				newTestClient(t, Config{URL: "https://metrics-api.librato.com", DryRun: &out}),
			} {
				err := c.SendAnnotation(context.Background(), tt.edit(testAnnotation()))
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrInvalidAnnotation) {
					t.Fatalf("SendAnnotation error %v (%T), want an *Error wrapping ErrInvalidAnnotation", err, err)
				}
				if e.Retryable || e.StatusCode != 0 || !strings.Contains(e.Message, tt.want) {
					t.Errorf("Error %+v: want not retryable, no status, a message about %q", e, tt.want)
				}
				checkNoToken(t, err.Error())
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
	if out.Len() != 0 {
		t.Errorf("dry run wrote %q, want nothing", out.String())
	}
	// The limits themselves are valid.
	c := newTestClient(t, Config{URL: srv.URL})
	for _, a := range []*Annotation{
		{Stream: "s", Title: "t"},
		{Stream: "s", Title: "t", StartTime: 5, EndTime: 5},
		{Stream: "s", Title: "t", EndTime: 5},
		{Stream: "s", Title: "t", Links: []Link{{Rel: "r", Href: "h"}}},
	} {
		if err := c.SendAnnotation(context.Background(), a); err != nil {
			t.Errorf("SendAnnotation(%+v): %v", a, err)
		}
	}
	if n := hits.Load(); n != 4 {
		t.Errorf("server saw %d requests, want 4", n)
	}
}

func TestSendAnnotationDryRun(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"librato", "https://metrics-api.librato.com",
			"POST https://metrics-api.librato.com/v1/annotations/deploys\n" + testAnnotationJSON + "\n\n"},
		{"appoptics with a path prefix", "https://proxy.example.com/appoptics/",
			"POST https://proxy.example.com/appoptics/v1/annotations/deploys\n" + testAnnotationJSON + "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c, err := New(Config{API: Tagged, URL: tt.url, Token: testToken, DryRun: &out, Gzip: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SendAnnotation(context.Background(), testAnnotation()); err != nil {
				t.Fatalf("SendAnnotation: %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("dry-run output\n got %q\nwant %q", out.String(), tt.want)
			}
			checkNoToken(t, out.String())
		})
	}
	c := newTestClient(t, Config{URL: "https://metrics-api.librato.com", DryRun: failingWriter{}})
	err := c.SendAnnotation(context.Background(), testAnnotation())
	var e *Error
	if !errors.As(err, &e) || e.Retryable || !strings.Contains(err.Error(), "disk full") ||
		!strings.Contains(err.Error(), "/v1/annotations/deploys") {
		t.Errorf("SendAnnotation error %v, want a non-retryable *Error about the writer", err)
	}
}

func TestSendAnnotationTransportError(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	c := newTestClient(t, Config{URL: srv.URL, Email: "me@example.com", Timeout: 100 * time.Millisecond})
	err := c.SendAnnotation(context.Background(), testAnnotation())
	e := checkTransportError(t, err)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(e.Error(), "POST /v1/annotations/deploys: timed out") {
		t.Errorf("error %q: want a timeout on /v1/annotations/deploys wrapping context.DeadlineExceeded", err)
	}
}

func TestSanitizeStream(t *testing.T) {
	tests := []struct{ in, want string }{
		{"deploys", "deploys"},
		{"app.deploys:web-1_x", "app.deploys:web-1_x"},
		{"web deploys/prod", "web_deploys_prod"},
		{"../etc", ".._etc"},
		{"a?b#c%2F", "a_b_c_2F"},
		{"café", "caf_"},
		{"\xff\xfeok", "__ok"},
		{"", ""},
		{"...", ""},
		{"デプロイ", ""},
		{strings.Repeat("a", 300), strings.Repeat("a", 255)},
	}
	for _, tt := range tests {
		if got := SanitizeStream(tt.in); got != tt.want {
			t.Errorf("SanitizeStream(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzEncodeAnnotation checks that any annotation encodes to JSON that decodes
// to what encoding/json gives for the same fields (so invalid UTF-8 is replaced
// alike).
func FuzzEncodeAnnotation(f *testing.F) {
	f.Add("v45 deployed", "shipped\nby ci", "web-1", int64(1700000000), int64(0), "github", "https://x", "")
	f.Add("say \"hi\"\\", "\x00\xff\xff\u2028", "", int64(0), int64(5), "", "", "label")
	f.Fuzz(func(t *testing.T, title, desc, source string, start, end int64, rel, href, label string) {
		a := Annotation{Title: title, Description: desc, Source: source, StartTime: start, EndTime: end}
		want := annotationJSON{Title: title, Description: desc, Source: source, StartTime: start, EndTime: end}
		if rel != "" || href != "" || label != "" {
			a.Links = []Link{{Rel: rel, Href: href, Label: label}}
			want.Links = append(want.Links, struct {
				Rel   string `json:"rel"`
				Href  string `json:"href"`
				Label string `json:"label"`
			}{rel, href, label})
		}
		wantBody, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var wantDoc, doc annotationJSON
		if err := json.Unmarshal(wantBody, &wantDoc); err != nil {
			t.Fatal(err)
		}
		body := encodeAnnotation(nil, &a)
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("encodeAnnotation(%+v) = %s: not JSON: %v", a, body, err)
		}
		if !reflect.DeepEqual(doc, wantDoc) {
			t.Fatalf("encodeAnnotation(%+v) = %s, decodes as %+v, want %+v", a, body, doc, wantDoc)
		}
	})
}
