package flusher

import (
	"sync"
	"sync/atomic"
)

// stopList holds metric names Librato refuses for their type. Reads are
// lock-free: the set is replaced, not changed, on the rare add.
type stopList struct {
	mu    sync.Mutex
	names atomic.Pointer[map[string]struct{}]
}

// maxStopList bounds the stop list; past it, conflicts are only dropped.
const maxStopList = 10000

func (l *stopList) has(name string) bool {
	m := l.names.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[name]
	return ok
}

func (l *stopList) len() int {
	m := l.names.Load()
	if m == nil {
		return 0
	}
	return len(*m)
}

// add puts name on the list and reports whether it was new.
func (l *stopList) add(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.names.Load()
	if old != nil {
		if _, ok := (*old)[name]; ok || len(*old) >= maxStopList {
			return false
		}
	}
	m := make(map[string]struct{}, l.len()+1)
	if old != nil {
		for k := range *old {
			m[k] = struct{}{}
		}
	}
	m[name] = struct{}{}
	l.names.Store(&m)
	return true
}
