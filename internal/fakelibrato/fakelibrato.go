// Package fakelibrato is the one stand-in for Librato's API, shared by the
// daemon's end-to-end tests and the load tool (cmd/statsd-load): an
// http.Handler that reads every request (gzipped or not), lets its user
// answer it in some broken way, and otherwise takes it and answers 200.
// What it records and how it decides are its users' business.
package fakelibrato

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxBody bounds a request body the fake reads (Librato takes far less).
const MaxBody = 64 << 20

// Request is one request the fake read.
type Request struct {
	Method, Path, User, Password, ContentType, UserAgent string
	// Body is the body, gunzipped when it came gzipped; Err says why it
	// could not be read (then Body is what was read).
	Body []byte
	Err  error
	// Payload is for the fake's user: what Serve decoded of Body, handed
	// on to Take and OK.
	Payload any
}

// Fake is an http.Handler standing in for Librato. Its fields are set
// before it serves and not changed after.
type Fake struct {
	// Serve, when set, sees each request first and may answer it itself,
	// calling take when Librato would have taken it (a slow answer, say);
	// it reports whether it answered. nil, or false, leaves the request to
	// be taken and answered by OK.
	Serve func(w http.ResponseWriter, r *http.Request, req *Request, take func()) bool
	// Take, when set, is called with each request taken, before it is
	// answered.
	Take func(req *Request)
	// OK answers a request taken; nil answers 200 with no body.
	OK func(w http.ResponseWriter, req *Request)
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := read(r)
	take := func() {
		if f.Take != nil {
			f.Take(req)
		}
	}
	if f.Serve != nil && f.Serve(w, r, req, take) {
		return
	}
	take()
	if f.OK != nil {
		f.OK(w, req)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// read reads r's credentials and body, up to MaxBody, gunzipped.
func read(r *http.Request) *Request {
	user, pass, _ := r.BasicAuth()
	req := &Request{Method: r.Method, Path: r.URL.Path, User: user, Password: pass,
		ContentType: r.Header.Get("Content-Type"), UserAgent: r.Header.Get("User-Agent")}
	req.Body, req.Err = readBody(r.Body)
	if req.Err == nil && r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(req.Body))
		if err != nil {
			req.Err = fmt.Errorf("gzip body: %w", err)
			return req
		}
		if req.Body, req.Err = readBody(zr); req.Err != nil {
			req.Err = fmt.Errorf("gzip body: %w", req.Err)
		}
	}
	return req
}

// readBody reads r up to MaxBody.
func readBody(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return body, fmt.Errorf("reading the body: %w", err)
	}
	if len(body) > MaxBody {
		return body, fmt.Errorf("body larger than %d bytes", MaxBody)
	}
	return body, nil
}

// Status answers with code, the headers given as name, value pairs, and
// body.
func Status(w http.ResponseWriter, code int, body string, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// Fail answers with status and a Librato-style error body saying msg.
func Fail(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": map[string]any{"request": []string{msg}}}) // cannot fail
	Status(w, status, string(body), "Content-Type", "application/json")
}

// HangUp closes the connection without an answer; a connection that
// cannot be taken over is answered 503 instead.
func HangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close() // the point of it
			return
		}
	}
	Fail(w, http.StatusServiceUnavailable, "hang-up fault (connection not hijackable)")
}

// Wait waits d, or until the client of r gives up (its timeout), and
// reports whether it waited the whole of d.
func Wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
