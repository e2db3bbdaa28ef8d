package application

import "testing"

func TestSettledCommitsForgetTheOldestBeyondCapacity(t *testing.T) {
	s := newSettledCommits(2)
	for i, id := range []string{"a", "b", "a", "c"} {
		s.stored(id, commitPlace{"s", uint64(i + 1)})
	}
	tests := []struct {
		id    string
		want  commitPlace
		known bool
	}{
		{"a", commitPlace{}, false}, // the oldest, gone when c came
		{"b", commitPlace{"s", 2}, true},
		{"c", commitPlace{"s", 4}, true},
	}
	for _, tt := range tests {
		if got, known := s.find(tt.id); got != tt.want || known != tt.known {
			t.Errorf("find(%s) = %v %v, want %v %v", tt.id, got, known, tt.want, tt.known)
		}
	}
}
