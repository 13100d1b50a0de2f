package config

import (
	"errors"
	"io/fs"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

func TestUnixgramFileMode(t *testing.T) {
	tests := []struct {
		in   string
		want fs.FileMode
	}{
		{"0660", 0o660},
		{"660", 0o660},
		{"0600", 0o600},
		{"0777", 0o777},
		{"0001", 0o001},
		{"0000", 0}, // invalid: Validate reports it
		{"1777", 0},
		{"0o660", 0},
		{"", 0},
		{"abc", 0},
	}
	for _, tt := range tests {
		l := Listen{UnixgramMode: tt.in}
		if got := l.UnixgramFileMode(); got != tt.want {
			t.Errorf("UnixgramFileMode(%q) = %#o, want %#o", tt.in, uint32(got), uint32(tt.want))
		}
	}
}

// TestUnixgramOwnerIDs resolves owners given as ids and as names: the names are
// those of the user running the test and its group, looked up in the system's
// databases here too.
func TestUnixgramOwnerIDs(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skipf("no current user: %v", err)
	}
	myGroup, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Skipf("no name for the current group: %v", err)
	}
	uid, err := strconv.Atoi(me.Uid)
	if err != nil {
		t.Skipf("user id %q is not a number", me.Uid)
	}
	gid, err := strconv.Atoi(me.Gid)
	if err != nil {
		t.Skipf("group id %q is not a number", me.Gid)
	}
	tests := []struct {
		owner            string
		wantUID, wantGID int
		wantErr          string // "": no error
	}{
		{owner: "", wantUID: -1, wantGID: -1},
		{owner: "1000:2000", wantUID: 1000, wantGID: 2000},
		{owner: "0:0", wantUID: 0, wantGID: 0},
		{owner: ":5", wantUID: -1, wantGID: 5},
		{owner: "7", wantUID: 7, wantGID: -1},
		{owner: "7:", wantUID: 7, wantGID: -1},
		{owner: "2147483647:1", wantUID: 2147483647, wantGID: 1},
		{owner: me.Username, wantUID: uid, wantGID: -1},
		{owner: me.Username + ":" + myGroup.Name, wantUID: uid, wantGID: gid},
		{owner: ":" + myGroup.Name, wantUID: -1, wantGID: gid},
		{owner: me.Username + ":12", wantUID: uid, wantGID: 12},
		{owner: "no-such-user-libratod", wantErr: `this system has no user named "no-such-user-libratod"`},
		{owner: ":no-such-group-libratod", wantErr: `this system has no group named "no-such-group-libratod"`},
		{owner: "a:b:c", wantErr: `expected "user:group"`},
	}
	for _, tt := range tests {
		t.Run(tt.owner, func(t *testing.T) {
			l := Listen{UnixgramOwner: tt.owner}
			u, g, err := l.UnixgramOwnerIDs()
			if tt.wantErr != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Key != "listen.unixgram_owner" || !strings.Contains(fe.Problem, tt.wantErr) {
					t.Fatalf("UnixgramOwnerIDs() error = %v, want a listen.unixgram_owner error saying %q", err, tt.wantErr)
				}
				if u != -1 || g != -1 {
					t.Errorf("ids %d:%d with an error, want -1:-1", u, g)
				}
				return
			}
			if err != nil || u != tt.wantUID || g != tt.wantGID {
				t.Errorf("UnixgramOwnerIDs() = %d, %d, %v; want %d, %d", u, g, err, tt.wantUID, tt.wantGID)
			}
		})
	}
}
