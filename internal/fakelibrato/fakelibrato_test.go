package fakelibrato

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFake checks the dispatch: a request Serve answers is not taken
// unless Serve takes it; the others are taken and answered by OK; a gzipped
// body is read gunzipped, with the credentials.
func TestFake(t *testing.T) {
	var mu sync.Mutex
	var taken []string
	f := &Fake{
		Serve: func(w http.ResponseWriter, r *http.Request, req *Request, take func()) bool {
			switch req.Path {
			case "/refuse":
				Fail(w, http.StatusBadRequest, "no")
				return true
			case "/slow":
				take()
				Wait(r, time.Millisecond)
				Status(w, http.StatusAccepted, "late")
				return true
			}
			return false
		},
		Take: func(req *Request) {
			mu.Lock()
			defer mu.Unlock()
			taken = append(taken, req.Path+" "+string(req.Body)+" "+req.User+":"+req.Password)
		},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	post := func(path string, gz bool) (int, string) {
		t.Helper()
		body := []byte(`{"a":1}`)
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("u", "p")
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(got)
	}
	if code, body := post("/refuse", false); code != http.StatusBadRequest || !strings.Contains(body, `"request":["no"]`) {
		t.Errorf("refused: %d %s", code, body)
	}
	if code, body := post("/slow", false); code != http.StatusAccepted || body != "late" {
		t.Errorf("slow: %d %s", code, body)
	}
	if code, _ := post("/ok", true); code != http.StatusOK {
		t.Errorf("ok: %d", code)
	}
	want := []string{`/slow {"a":1} u:p`, `/ok {"a":1} u:p`}
	if strings.Join(taken, "|") != strings.Join(want, "|") {
		t.Errorf("taken %q, want %q", taken, want)
	}
}

// TestHangUp checks that the client sees the connection closed without an
// answer.
func TestHangUp(t *testing.T) {
	srv := httptest.NewServer(&Fake{Serve: func(w http.ResponseWriter, _ *http.Request, _ *Request, _ func()) bool {
		HangUp(w)
		return true
	}})
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d, want no answer", resp.StatusCode)
	}
}
