package librato

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/libratod/libratod/internal/transport"
)

// annotationsPath is the path of the annotations endpoint, followed by the
// stream name. Librato and AppOptics serve it alike, whichever measurements API
// the client uses.
const annotationsPath = "/v1/annotations/"

// ErrInvalidAnnotation is the Err of the *Error that SendAnnotation returns,
// without sending anything, for an annotation the service would refuse: see
// Annotation.
var ErrInvalidAnnotation = errors.New("invalid annotation")

// Annotation is one annotation event: a titled mark on graphs, at a time or
// over a span of time, in a named annotation stream.
type Annotation struct {
	// Stream is the name of the annotation stream, which the service creates on
	// first use. SendAnnotation cleans it with SanitizeStream; it is invalid
	// when nothing usable is left.
	Stream string
	// Title is a short summary, such as "v45 deployed". Required: an empty or
	// blank title is invalid.
	Title string
	// Description holds the details; "" omits it.
	Description string
	// Source says what the annotation is about when a stream tracks many
	// things, such as a host; "" omits it. Clean it with SanitizeSource.
	Source string
	// StartTime is when the event began, in unix seconds. Zero omits it: the
	// service then uses the time it receives the request. Negative is invalid.
	StartTime int64
	// EndTime is when an event that lasted ended, in unix seconds; zero omits
	// it. Negative, or before a non-zero StartTime, is invalid.
	EndTime int64
	// Links point to more information; each needs a Rel and an Href.
	Links []Link
}

// Link is a link attached to an annotation.
type Link struct {
	// Rel is the kind of link, such as "github" or "runbook". Required.
	Rel string
	// Href is the URL. Required.
	Href string
	// Label is the text shown for the link; "" omits it.
	Label string
}

// SanitizeStream returns s as a valid annotation stream name, by the rules of
// SanitizeName: each byte outside [A-Za-z0-9.:_-] becomes '_' (one '_' for a
// multibyte character or for each byte of invalid UTF-8), the result is cut to
// 255 bytes, and it is "" when it would hold no ASCII letter or digit. As those
// bytes are all safe in a URL path, the result can be put in the path as it is.
func SanitizeStream(s string) string {
	return sanitize(s, maxNameLen, nameChars)
}

// SendAnnotation POSTs a to {URL}/v1/annotations/{stream}, with the
// authentication, headers, gzip setting and dry-run mode of Send, and the
// stream cleaned by SanitizeStream. An invalid annotation (see Annotation; nil
// is invalid too) is not sent: the error then wraps ErrInvalidAnnotation. Every
// error is an *Error, classified as for Send: Retryable says whether the
// annotation may be sent again later. SendAnnotation does not retry.
func (c *Client) SendAnnotation(ctx context.Context, a *Annotation) error {
	stream := ""
	if a != nil {
		stream = SanitizeStream(a.Stream)
	}
	path := annotationsPath + stream
	if msg := invalidAnnotation(a, stream); msg != "" {
		return &Error{Message: transport.Bound("invalid annotation: " + msg), Err: ErrInvalidAnnotation, path: path}
	}
	bufp := c.getBuf()
	defer c.putBuf(bufp)
	body := encodeAnnotation((*bufp)[:0], a)
	*bufp = body
	_, _, _, err := c.deliver(ctx, c.base+path, path, body)
	return err
}

// invalidAnnotation says what is wrong with a, whose cleaned stream name is
// stream, or returns "".
func invalidAnnotation(a *Annotation, stream string) string {
	switch {
	case a == nil:
		return "nil"
	case stream == "":
		return fmt.Sprintf("stream %q has no ASCII letter or digit", a.Stream)
	case strings.TrimSpace(a.Title) == "":
		return "empty title"
	case a.StartTime < 0 || a.EndTime < 0:
		return fmt.Sprintf("negative time (start %d, end %d)", a.StartTime, a.EndTime)
	case a.EndTime != 0 && a.EndTime < a.StartTime:
		return fmt.Sprintf("end time %d before start time %d", a.EndTime, a.StartTime)
	}
	for i, l := range a.Links {
		if l.Rel == "" || l.Href == "" {
			return fmt.Sprintf("link %d needs both rel and href", i)
		}
	}
	return ""
}

// encodeAnnotation appends the JSON body of a to dst.
func encodeAnnotation(dst []byte, a *Annotation) []byte {
	dst = append(dst, `{"title":`...)
	dst = appendString(dst, a.Title)
	if a.Description != "" {
		dst = append(dst, `,"description":`...)
		dst = appendString(dst, a.Description)
	}
	if a.Source != "" {
		dst = append(dst, `,"source":`...)
		dst = appendString(dst, a.Source)
	}
	if a.StartTime != 0 {
		dst = append(dst, `,"start_time":`...)
		dst = strconv.AppendInt(dst, a.StartTime, 10)
	}
	if a.EndTime != 0 {
		dst = append(dst, `,"end_time":`...)
		dst = strconv.AppendInt(dst, a.EndTime, 10)
	}
	if len(a.Links) > 0 {
		dst = append(dst, `,"links":[`...)
		for i, l := range a.Links {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"rel":`...)
			dst = appendString(dst, l.Rel)
			dst = append(dst, `,"href":`...)
			dst = appendString(dst, l.Href)
			if l.Label != "" {
				dst = append(dst, `,"label":`...)
				dst = appendString(dst, l.Label)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}
