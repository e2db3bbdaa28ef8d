package application

// PresenceObserver is told of presence changes announced and typing
// signals relayed or dropped, for metrics; the application has no
// decorators, so this is its one measuring point for ephemeral signals.
type PresenceObserver interface {
	PresenceChanged(online bool)
	TypingRelayed()
	TypingDropped()
}

// noObserver stands in when nothing measures, so that presence and typing
// call their observer unconditionally.
type noObserver struct{}

func (noObserver) PresenceChanged(bool) {}
func (noObserver) TypingRelayed()       {}
func (noObserver) TypingDropped()       {}

// orNoObserver is o, or noObserver when nothing was given to measure.
// O is an observer interface that noObserver implements.
func orNoObserver[O any](o O) O {
	if any(o) == nil {
		return any(noObserver{}).(O)
	}
	return o
}
