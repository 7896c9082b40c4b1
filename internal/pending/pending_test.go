package pending

import (
	"slices"
	"testing"
)

func ready(s *Set) bool {
	select {
	case <-s.Ready():
		return true
	default:
		return false
	}
}

func TestMarkTake(t *testing.T) {
	s := New()
	if all, ids := s.Take(); all || ids != nil {
		t.Fatalf("new set: %v %v", all, ids)
	}
	s.Mark("b")
	s.Mark("a")
	s.Mark("b")
	if !ready(s) {
		t.Fatal("Mark did not wake")
	}
	if ready(s) {
		t.Fatal("three marks woke twice: one receive stands for all")
	}
	all, ids := s.Take()
	slices.Sort(ids)
	if all || !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("took %v %v, want false [a b]", all, ids)
	}
	if all, ids := s.Take(); all || ids != nil {
		t.Fatalf("second take: %v %v, want nothing", all, ids)
	}
	s.Mark("")
	if all, _ := s.Take(); !all || !ready(s) {
		t.Fatal(`Mark("") is everything, and wakes`)
	}
	s.MarkAll()
	if all, _ := s.Take(); !all || !ready(s) {
		t.Fatal("MarkAll is everything, and wakes")
	}
}

func TestRestoreDoesNotWake(t *testing.T) {
	s := New()
	s.Restore(true, []string{"x"})
	if ready(s) {
		t.Fatal("Restore woke the loop")
	}
	s.Wake()
	if !ready(s) {
		t.Fatal("Wake did not wake")
	}
	if all, ids := s.Take(); !all || !slices.Equal(ids, []string{"x"}) {
		t.Fatalf("took %v %v after Restore(true, [x])", all, ids)
	}
}
