// Package pending collects what a rebuild loop has yet to re-read: the ids
// of changed items, or everything. Notifiers mark and never block; the
// loop waits on Ready and takes the whole set at once, so a burst of
// changes makes one rebuild.
package pending

import "sync"

// Set is the changes not yet taken. Use New: the zero value has no wake
// channel.
type Set struct {
	ready chan struct{}

	mu  sync.Mutex
	ids map[string]struct{}
	all bool
}

// New returns an empty set.
func New() *Set { return &Set{ready: make(chan struct{}, 1)} }

// Mark records a change of id and wakes the loop. "" means everything
// (the store's listeners send it after a reconnect: changes may have been
// missed).
func (s *Set) Mark(id string) {
	s.mu.Lock()
	s.mark(id)
	s.mu.Unlock()
	s.Wake()
}

// MarkAll asks for everything to be re-read and wakes the loop.
func (s *Set) MarkAll() { s.Mark("") }

// Restore puts back what a failed rebuild took, without waking the loop:
// the caller retries on its own schedule, and the next change or Wake
// takes it again with whatever else came meanwhile.
func (s *Set) Restore(all bool, ids []string) {
	s.mu.Lock()
	if all {
		s.all = true
	}
	for _, id := range ids {
		s.mark(id)
	}
	s.mu.Unlock()
}

func (s *Set) mark(id string) {
	if id == "" {
		s.all = true
		return
	}
	if s.ids == nil {
		s.ids = map[string]struct{}{}
	}
	s.ids[id] = struct{}{}
}

// Wake wakes the loop without marking anything.
func (s *Set) Wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready receives after a Mark or Wake; one receive stands for any number of
// them.
func (s *Set) Ready() <-chan struct{} { return s.ready }

// Take returns what was marked and empties the set.
func (s *Set) Take() (all bool, ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, s.all = s.all, false
	for id := range s.ids {
		ids = append(ids, id)
	}
	s.ids = nil
	return all, ids
}
