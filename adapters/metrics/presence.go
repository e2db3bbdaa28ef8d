package metrics

import "github.com/prometheus/client_golang/prometheus"

// Presence counts the presence changes a node announces and the typing
// signals it relays or drops; it is the application's PresenceObserver. A
// nil *Presence records nothing.
type Presence struct {
	changes *prometheus.CounterVec
	typing  *prometheus.CounterVec
}

// NewPresence creates the instruments and registers them on reg.
func NewPresence(reg prometheus.Registerer) (*Presence, error) {
	p := &Presence{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_presence_changes_total",
			Help: "Presence changes this node announced to its sessions, by state (online or offline).",
		}, []string{"state"}),
		typing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_typing_signals_total",
			Help: "Typing frames received on this node, by outcome: relayed to the cluster, or dropped by the 2 s throttle.",
		}, []string{"outcome"}),
	}
	if err := registerAll(reg, p.changes, p.typing); err != nil {
		return nil, err
	}
	// Zero series from the start, so rates exist before the first event.
	p.changes.WithLabelValues("online")
	p.changes.WithLabelValues("offline")
	p.typing.WithLabelValues("relayed")
	p.typing.WithLabelValues("dropped")
	return p, nil
}

// PresenceChanged counts a change announced.
func (p *Presence) PresenceChanged(online bool) {
	if p == nil {
		return
	}
	state := "offline"
	if online {
		state = "online"
	}
	p.changes.WithLabelValues(state).Inc()
}

// TypingRelayed counts a typing signal sent on.
func (p *Presence) TypingRelayed() {
	if p != nil {
		p.typing.WithLabelValues("relayed").Inc()
	}
}

// TypingDropped counts a typing frame the throttle dropped.
func (p *Presence) TypingDropped() {
	if p != nil {
		p.typing.WithLabelValues("dropped").Inc()
	}
}
