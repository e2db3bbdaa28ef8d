package load

import (
	"strings"
	"testing"
)

func TestCounterValue(t *testing.T) {
	const name = "chat_delivery_commits_received_total"
	tests := []struct {
		name       string
		exposition string
		want       float64
		wantFound  bool
		wantErr    bool
	}{
		{name: "present among others", want: 1234, wantFound: true, exposition: `# HELP chat_delivery_commits_received_total Commits.
# TYPE chat_delivery_commits_received_total counter
chat_delivery_commits_received_total 1234
go_goroutines 57
`},
		{name: "exponent form", exposition: name + " 1.5e+06\n", want: 1.5e6, wantFound: true},
		{name: "with a timestamp", exposition: name + " 7 1700000000000\n", want: 7, wantFound: true},
		{name: "absent: a node built before the metric", exposition: "go_goroutines 57\n# HELP " + name + " Commits.\n"},
		{name: "a longer name is another metric", exposition: name + "_created 1.7e9\n"},
		{name: "unreadable value", exposition: name + " many\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found, err := counterValue(strings.NewReader(tt.exposition), name)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got != tt.want || found != tt.wantFound {
				t.Errorf("got %v (found %v), want %v (found %v)", got, found, tt.want, tt.wantFound)
			}
		})
	}
}
