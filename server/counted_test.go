package server

import dto "github.com/prometheus/client_model/go"

// counted returns how often count(persona, reason) was called: the
// persona_chat_not_answered_total counter the daemon exports.
func (d *Daemon) counted(persona, reason string) uint64 {
	var m dto.Metric
	if err := d.suppressed.WithLabelValues(persona, reason).Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}
