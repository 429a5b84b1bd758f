package sim

// The direct policy: the seed's "old flow". Every persona is invoked on
// every message as it arrives and asks its model whether to answer; the
// model server queues the calls first in, first out, without bound. The
// thought goes to coordination when the evaluation ends; a granted persona
// asks its model once more, for the reply. There is no inbox, no state and
// no guard.

func (r *run) directDeliver(di int32) {
	d := &r.dels[di]
	r.actors[d.persona].wakes[trDemand]++ // invoked directly: one wake-up per delivery
	r.m.evaluations++
	r.callModel(d.persona, callEval, di)
}

// directStart: the evaluation got a model slot; the persona starts now.
func (r *run) directStart(di int32) {
	r.dels[di].start = r.now
}

func (r *run) directCallDone(c call) {
	a := r.actors[c.persona]
	a.busy += r.now - c.start
	switch c.kind {
	case callEval:
		d := &r.dels[c.ref]
		d.flags |= fProcessed
		d.acct = acHandled
		mi := d.msg
		conf, intent := r.intent(a, &r.msgs[mi], r.msgs[mi].mention == a.idx)
		if !r.think(mi, c.ref, conf, intent, false) {
			r.directDecided(a.idx, mi) // never happens: the decision waits for every evaluation
		}
	case callReply:
		r.postReply(a.idx, c.ref, nil)
	}
}

// directDecided: a granted persona writes its reply at once.
func (r *run) directDecided(p, mi int32) {
	if r.isGranted(mi, p) {
		r.callModel(p, callReply, mi)
	}
}
